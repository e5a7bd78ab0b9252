package domain

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// checkTree checks every directory's treap below n (checkEntries: order,
// heap, sizes, cached hashes equal to recomputed ones).
func checkTree(t *testing.T, n *Node) {
	t.Helper()
	if n.Kind != KindDir {
		return
	}
	checkEntries(t, n.entries, "", "")
	n.entries.ascend("", func(_ string, c *Node) bool {
		checkTree(t, c)
		return true
	})
}

// persistentApply is the reference: one operation at a time through the
// persistent Put and Delete, as before edits.
func persistentApply(t Tree, op Op) (Tree, error) {
	switch op.Kind {
	case OpWrite:
		h, _ := HashFromBytes(op.Content)
		n := NewFile(h, op.Size, op.Mode, nil)
		n.Data = op.Data
		return t.put(op.Path, n, true)
	case OpMkdir:
		return t.Put(op.Path, NewDir(op.Mode, nil))
	case OpRemove:
		return t.Delete(op.Path), nil
	case OpRename:
		node := t.Lookup(op.Path)
		return t.Delete(op.Path).Put(op.To, node)
	case OpSetXattr, OpRemoveXattr:
		node, err := withXattrOp(t, op)
		if err != nil {
			return t, err
		}
		return t.Put(op.Path, node)
	}
	return t, fmt.Errorf("kind %s", op.Kind)
}

// randomOps makes n operations that apply to t one after the other:
// writes (new and overwrites), mkdirs, removes of files and whole
// directories, renames and xattrs, in few directories so that one batch
// touches the same directories and treap nodes many times.
func randomOps(r *rand.Rand, t Tree, n int) ([]Op, Tree) {
	var ops []Op
	for len(ops) < n {
		dir := fmt.Sprintf("d%d/s%d", r.IntN(3), r.IntN(3))
		p := fmt.Sprintf("%s/f%03d", dir, r.IntN(60))
		var op Op
		switch k := r.IntN(10); {
		case k < 5:
			data := []byte(fmt.Sprint(r.Uint64()))
			op = Op{Kind: OpWrite, Path: p, Content: Sum(data).Bytes(), Size: int64(len(data)), Mode: DefaultFileMode, Data: data}
		case k == 5:
			if t.Lookup(p) != nil {
				continue
			}
			op = Op{Kind: OpMkdir, Path: p, Mode: DefaultDirMode}
		case k == 6:
			if r.IntN(8) == 0 {
				p = dir // a whole directory now and then
			}
			if t.Lookup(p) == nil {
				continue
			}
			op = Op{Kind: OpRemove, Path: p, Recursive: true}
		case k == 7:
			to := fmt.Sprintf("d%d/s%d/r%03d", r.IntN(3), r.IntN(3), r.IntN(60))
			if t.Lookup(p) == nil || t.Lookup(to) != nil {
				continue
			}
			if n := t.Lookup(parentPath(to)); n != nil && n.Kind != KindDir {
				continue
			}
			op = Op{Kind: OpRename, Path: p, To: to}
		default:
			node := t.Lookup(p)
			if node == nil {
				continue
			}
			op = Op{Kind: OpSetXattr, Path: p, Name: fmt.Sprint("user.", r.IntN(3)), Value: []byte{byte(r.Uint32())}}
		}
		next, err := persistentApply(t, op)
		if err != nil {
			continue // a parent is a file: not an operation a batch could hold
		}
		ops, t = append(ops, op), next
	}
	return ops, t
}

func parentPath(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			return p[:i]
		}
	}
	return ""
}

// TestTreeEdit: a batch applied in one edit gives the tree that applying
// its operations one at a time gives (same Merkle root, same entries), the
// tree it started from is left as it was, the result's treaps keep their
// invariants, and a later edit of the result leaves the result alone.
func TestTreeEdit(t *testing.T) {
	for seed := range uint64(30) {
		r := rand.New(rand.NewPCG(seed, 21))
		ops, _ := randomOps(r, Tree{}, 200)
		base, err := applyOps(Tree{}, ops)
		if err != nil {
			t.Fatal(err)
		}
		baseHash := base.Hash()
		baseList := listTree(base)

		ops, want := randomOps(r, base, 300)
		got, err := applyOps(base, ops)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if got.Hash() != want.Hash() {
			t.Fatalf("seed %d: edited root %s, one at a time %s", seed, got.Hash(), want.Hash())
		}
		if g, w := listTree(got), listTree(want); g != w {
			t.Fatalf("seed %d: edited tree\n%s\nwant\n%s", seed, g, w)
		}
		checkTree(t, got.Root())
		// The starting tree: same entries, same hashes recomputed.
		if listTree(base) != baseList || recomputed(base.Root()) != baseHash {
			t.Fatalf("seed %d: the edit changed the tree it started from", seed)
		}
		checkTree(t, base.Root())

		// A second edit of the result does not change the result.
		gotHash, gotList := got.Hash(), listTree(got)
		more, _ := randomOps(r, got, 100)
		if _, err := applyOps(got, more); err != nil {
			t.Fatal(err)
		}
		if listTree(got) != gotList || recomputed(got.Root()) != gotHash {
			t.Fatalf("seed %d: a later edit changed an edit's result", seed)
		}
	}
}

// TestTreeEdit_HashMidEdit: a directory the edit made has its hash asked
// for in the middle (as a batch's expected hash of a directory does), and
// is then changed in place: its hash and its ancestors' are recomputed,
// not kept.
func TestTreeEdit_HashMidEdit(t *testing.T) {
	ed := newTreeEdit(Tree{}, 3)
	write := func(p, data string) {
		t.Helper()
		d := []byte(data)
		if err := ed.apply(Op{Kind: OpWrite, Path: p, Content: Sum(d).Bytes(), Size: int64(len(d)), Mode: DefaultFileMode, Data: d}); err != nil {
			t.Fatal(err)
		}
	}
	write("a/b/x", "1")
	mid := ed.tree().Lookup("a").Hash()
	_ = ed.tree().Hash()
	write("a/b/y", "2")
	got := ed.done()
	if got.Lookup("a").Hash() == mid {
		t.Fatal("a's hash after a second write below it is the one computed before")
	}
	if got.Hash() != recomputed(got.Root()) {
		t.Fatalf("root hash %s, recomputed %s", got.Hash(), recomputed(got.Root()))
	}
	checkTree(t, got.Root())
}

// recomputed is the Merkle hash of n computed afresh, from no cached hash.
func recomputed(n *Node) Hash { return fresh(n).digest() }

// fresh copies n and everything below it without their cached hashes.
func fresh(n *Node) *Node {
	c := &Node{Kind: n.Kind, Mode: n.Mode, Size: n.Size, Content: n.Content, Target: n.Target, Xattrs: n.Xattrs, Data: n.Data}
	c.entries = freshEntries(n.entries)
	return c
}

func freshEntries(e *entries) *entries {
	if e == nil {
		return nil
	}
	return mkEntries(e.name, fresh(e.child), e.prio, freshEntries(e.left), freshEntries(e.right))
}

func listTree(t Tree) string {
	var out []byte
	t.Walk("", "", func(e Entry) bool {
		n := e.Node
		out = fmt.Appendf(out, "%s %s %o %d %x %q %v\n", e.Path, n.Kind, n.Mode, n.Size, n.Content[:4], n.Target, n.Xattrs)
		return true
	})
	return string(out)
}

// TestLookupPlain: where lookupPlain answers, it answers what Resolve,
// Lookup and checkParents do, on trees of directories, files and
// symlinks (relative, absolute, dangling, to files) and paths through
// all of them; and it declines every path whose walk meets a symlink to
// follow.
func TestLookupPlain(t *testing.T) {
	names := []string{"a", "b", "c", "l"}
	for seed := range uint64(40) {
		r := rand.New(rand.NewPCG(seed, 5))
		var tree Tree
		for range 60 {
			p := names[r.IntN(4)]
			for d := r.IntN(3); d > 0; d-- {
				p += "/" + names[r.IntN(4)]
			}
			var node *Node
			switch r.IntN(4) {
			case 0:
				node = NewSymlink([]string{"a", "/b/c", "../a", "missing", "a/b"}[r.IntN(5)], nil)
			case 1:
				node = NewDir(DefaultDirMode, nil)
			default:
				node = NewFile(Sum([]byte(p)), 1, DefaultFileMode, nil)
			}
			if next, err := tree.Put(p, node); err == nil {
				tree = next
			}
		}
		answered := 0
		for range 400 {
			p := names[r.IntN(4)]
			for d := r.IntN(4); d > 0; d-- {
				p += "/" + names[r.IntN(4)]
			}
			followLast := r.IntN(2) == 0
			cur, fileParent, plain := tree.lookupPlain(p, followLast)
			if !plain {
				if !metSymlink(tree, p, followLast) {
					t.Fatalf("seed %d: %q declined with no symlink on the way", seed, p)
				}
				continue
			}
			answered++
			resolved, err := tree.Resolve(p, followLast)
			if err != nil || resolved != p {
				t.Fatalf("seed %d: %q: plain, but Resolve gives %q, %v", seed, p, resolved, err)
			}
			if want := tree.Lookup(p); cur != want {
				t.Fatalf("seed %d: %q: node %v, Lookup %v", seed, p, cur, want)
			}
			if want := checkParents(tree, p) != nil; fileParent != want {
				t.Fatalf("seed %d: %q: file parent %v, checkParents %v", seed, p, fileParent, want)
			}
		}
		if answered == 0 {
			t.Fatalf("seed %d: no path answered", seed)
		}
	}
}

// metSymlink reports whether walking down p meets a symlink that Resolve
// follows.
func metSymlink(t Tree, p string, followLast bool) bool {
	n := t.Root()
	parts := strings.Split(p, "/")
	for i, c := range parts {
		if n == nil || n.Kind != KindDir {
			return false
		}
		n = n.Child(c)
		if n != nil && n.Kind == KindSymlink && (i < len(parts)-1 || followLast) {
			return true
		}
	}
	return false
}
