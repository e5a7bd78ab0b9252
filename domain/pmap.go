package domain

// pmap is a persistent ordered map from string keys: a treap with
// name-determined priorities, like a directory's entries but without
// hashes. Set and Delete return a new map that shares all untouched nodes,
// so a session's cache costs O(log n) per change and nothing per fork.
type pmap[V any] struct {
	root *pnode[V]
}

type pnode[V any] struct {
	key         string
	val         V
	prio        uint64
	left, right *pnode[V]
	size        int
}

func mkp[V any](key string, val V, prio uint64, left, right *pnode[V]) *pnode[V] {
	n := &pnode[V]{key: key, val: val, prio: prio, left: left, right: right, size: 1}
	if left != nil {
		n.size += left.size
	}
	if right != nil {
		n.size += right.size
	}
	return n
}

func (n *pnode[V]) above(o *pnode[V]) bool {
	if n.prio != o.prio {
		return n.prio > o.prio
	}
	return n.key < o.key
}

// Len returns the number of keys.
func (m pmap[V]) Len() int {
	if m.root == nil {
		return 0
	}
	return m.root.size
}

// Get returns the value of a key.
func (m pmap[V]) Get(key string) (V, bool) {
	n := m.root
	for n != nil {
		switch {
		case key < n.key:
			n = n.left
		case key > n.key:
			n = n.right
		default:
			return n.val, true
		}
	}
	var zero V
	return zero, false
}

// Set returns the map with key set to val.
func (m pmap[V]) Set(key string, val V) pmap[V] {
	return pmap[V]{root: pinsert(m.root, key, val, priority(key))}
}

func pinsert[V any](n *pnode[V], key string, val V, prio uint64) *pnode[V] {
	if n == nil {
		return mkp(key, val, prio, nil, nil)
	}
	switch {
	case key < n.key:
		l := pinsert(n.left, key, val, prio)
		if l.above(n) {
			return mkp(l.key, l.val, l.prio, l.left, mkp(n.key, n.val, n.prio, l.right, n.right))
		}
		return mkp(n.key, n.val, n.prio, l, n.right)
	case key > n.key:
		r := pinsert(n.right, key, val, prio)
		if r.above(n) {
			return mkp(r.key, r.val, r.prio, mkp(n.key, n.val, n.prio, n.left, r.left), r.right)
		}
		return mkp(n.key, n.val, n.prio, n.left, r)
	default:
		return mkp(key, val, n.prio, n.left, n.right)
	}
}

// Delete returns the map without key.
func (m pmap[V]) Delete(key string) pmap[V] {
	return pmap[V]{root: pdelete(m.root, key)}
}

func pdelete[V any](n *pnode[V], key string) *pnode[V] {
	if n == nil {
		return nil
	}
	switch {
	case key < n.key:
		l := pdelete(n.left, key)
		if l == n.left {
			return n
		}
		return mkp(n.key, n.val, n.prio, l, n.right)
	case key > n.key:
		r := pdelete(n.right, key)
		if r == n.right {
			return n
		}
		return mkp(n.key, n.val, n.prio, n.left, r)
	default:
		return pjoin(n.left, n.right)
	}
}

func pjoin[V any](a, b *pnode[V]) *pnode[V] {
	if a == nil {
		return b
	}
	if b == nil {
		return a
	}
	if a.above(b) {
		return mkp(a.key, a.val, a.prio, a.left, pjoin(a.right, b))
	}
	return mkp(b.key, b.val, b.prio, pjoin(a, b.left), b.right)
}

// Ascend calls fn for every key >= from in order until fn returns false.
func (m pmap[V]) Ascend(from string, fn func(key string, val V) bool) {
	pascend(m.root, from, fn)
}

func pascend[V any](n *pnode[V], from string, fn func(string, V) bool) bool {
	if n == nil {
		return true
	}
	if from <= n.key {
		if !pascend(n.left, from, fn) {
			return false
		}
		if !fn(n.key, n.val) {
			return false
		}
	}
	return pascend(n.right, from, fn)
}
