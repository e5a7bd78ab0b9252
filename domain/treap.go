package domain

import (
	"crypto/sha256"
	"encoding/binary"
)

// entries is a persistent ordered map from entry name to child node: a treap
// whose priorities are a fixed function of the name. A treap with
// name-determined priorities has one shape per key set, so the hash cached at
// its root is a canonical Merkle hash of the directory's entries, and updates
// cost O(log n) node copies and hashes whatever the size of the directory.
type entries struct {
	name        string
	child       *Node
	prio        uint64
	left, right *entries
	edit        *editToken // the edit that made the node and may change it in place (treeedit.go)
	size        int32
	hashed      lazyHash
}

// priority is the 64-bit FNV-1a hash of the name (as hash/fnv computes
// it, without its allocations): priorities decide every treap's shape, so
// they must never change.
func priority(name string) uint64 {
	const offset64, prime64 = 14695981039346656037, 1099511628211
	h := uint64(offset64)
	for i := 0; i < len(name); i++ {
		h ^= uint64(name[i])
		h *= prime64
	}
	return h
}

// above reports whether a sits above b in the heap order.
func above(a, b *entries) bool {
	if a.prio != b.prio {
		return a.prio > b.prio
	}
	return a.name < b.name
}

// mkEntries returns a treap node. Its hash is computed when first asked
// for (digest), so a replay that checks only the last root of a history
// never hashes the nodes that later changes replaced.
func mkEntries(name string, child *Node, prio uint64, left, right *entries) *entries {
	t := &entries{name: name, child: child, prio: prio, left: left, right: right, size: 1}
	if left != nil {
		t.size += left.size
	}
	if right != nil {
		t.size += right.size
	}
	return t
}

// digest is the node's hash: the SHA-256 of the left subtree's hash (zero
// when empty), the name's length as 8 bytes big endian, the name, the
// child's hash and the right subtree's hash. The input is put together in
// one buffer (on the stack for names up to 152 bytes) and hashed in one
// call: this runs for every node on the path of every change.
func (t *entries) digest() Hash {
	if h, ok := t.hashed.known(); ok {
		return h
	}
	return t.hashed.publish(t.computeDigest())
}

func (t *entries) computeDigest() Hash {
	var stack [256]byte // 3 hashes, a length and a name of up to 152 bytes
	buf := stack[:0]
	if t.left != nil {
		h := t.left.digest()
		buf = append(buf, h[:]...)
	} else {
		buf = append(buf, ZeroHash[:]...)
	}
	buf = binary.BigEndian.AppendUint64(buf, uint64(len(t.name)))
	buf = append(buf, t.name...)
	h := t.child.Hash()
	buf = append(buf, h[:]...)
	if t.right != nil {
		h := t.right.digest()
		buf = append(buf, h[:]...)
	} else {
		buf = append(buf, ZeroHash[:]...)
	}
	return sha256.Sum256(buf)
}

// with is a copy of t with other subtrees.
func (t *entries) with(left, right *entries) *entries {
	return mkEntries(t.name, t.child, t.prio, left, right)
}

func (t *entries) len() int {
	if t == nil {
		return 0
	}
	return int(t.size)
}

func (t *entries) get(name string) *Node {
	for t != nil {
		switch {
		case name < t.name:
			t = t.left
		case name > t.name:
			t = t.right
		default:
			return t.child
		}
	}
	return nil
}

// ascend calls fn for every entry with name >= from, in name order, until fn
// returns false. It returns false if it was stopped.
func (t *entries) ascend(from string, fn func(name string, child *Node) bool) bool {
	if t == nil {
		return true
	}
	if from < t.name || from == "" {
		if !t.left.ascend(from, fn) {
			return false
		}
	}
	if t.name >= from {
		if !fn(t.name, t.child) {
			return false
		}
	}
	return t.right.ascend(from, fn)
}

// buildEntries builds a treap from entries sorted by name in O(n), as a
// Cartesian tree; the result is the same as inserting them one by one.
func buildEntries(names []string, children []*Node) *entries {
	type pending struct {
		name  string
		child *Node
		prio  uint64
		left  *entries
	}
	// Right spine as a stack of unfinished nodes (right child not yet known).
	var stack []pending
	var finish = func(p pending, right *entries) *entries {
		return mkEntries(p.name, p.child, p.prio, p.left, right)
	}
	for i, name := range names {
		cur := pending{name: name, child: children[i], prio: priority(name)}
		var last *entries
		for len(stack) > 0 {
			top := stack[len(stack)-1]
			probe := &entries{name: top.name, prio: top.prio}
			curProbe := &entries{name: cur.name, prio: cur.prio}
			if above(probe, curProbe) {
				break
			}
			stack = stack[:len(stack)-1]
			last = finish(top, last)
		}
		cur.left = last
		stack = append(stack, cur)
	}
	var right *entries
	for i := len(stack) - 1; i >= 0; i-- {
		right = finish(stack[i], right)
	}
	return right
}
