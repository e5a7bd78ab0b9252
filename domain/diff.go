package domain

import (
	"bytes"
	"maps"
	"slices"
)

// Change is one path that differs between two trees. Old is its entry in
// the first tree and New its entry in the second; Old is nil for an added
// path and New for a deleted one.
type Change struct {
	Path string
	Old  *Node
	New  *Node
}

// Rename is an entry deleted at From and added at To with the same content:
// a file with the same content hash, or a symlink with the same target. Its
// mode and xattrs may differ.
type Rename struct {
	From, To string
	Old, New *Node
}

// Changes is the difference between two trees.
//
// Added, Modified and Deleted are in tree order (ComparePaths); Renamed is in
// the tree order of To. A directory that is added or deleted as a whole is
// listed together with everything below it, the directory first. A path
// whose kind, mode, xattrs, content or target changed is modified; for a
// directory that is only its own mode or xattrs (a change below it lists
// the paths below it instead). The root directory is listed, with path "",
// only when its own mode or xattrs change.
type Changes struct {
	Added    []Change
	Modified []Change
	Deleted  []Change
	Renamed  []Rename
}

// Len is the number of changes.
func (c Changes) Len() int {
	return len(c.Added) + len(c.Modified) + len(c.Deleted) + len(c.Renamed)
}

// Diff returns what changed from tree a to tree b.
//
// It walks both Merkle trees at once and never descends into a pair of
// nodes with equal hashes: two versions of a tree share every node that no
// change touched, so the walk only follows the paths to what changed.
// Within a directory it merges the two treaps of entries the same way, and
// a treap has one shape per set of names, so equal runs of entries are
// skipped whole too. The cost is O(c·log n) for c changes among n entries,
// plus the size of any subtree that is added or deleted as a whole (which
// is listed entry by entry), whatever the size of the rest of the tree.
func Diff(a, b Tree) Changes {
	c, _ := diffCounted(a, b)
	return c
}

// diffCounted is Diff that also returns how many nodes and treap nodes it
// visited, so that tests can prove that equal subtrees are skipped.
func diffCounted(a, b Tree) (Changes, int) {
	var d differ
	d.node("", a.Root(), b.Root())
	d.out.findRenames()
	return d.out, d.visits
}

type differ struct {
	out    Changes
	visits int
}

// node compares the entries at path p of both trees.
func (d *differ) node(p string, x, y *Node) {
	d.visits++
	if x == y || x.Hash() == y.Hash() {
		return
	}
	if x.Kind != KindDir || y.Kind != KindDir {
		d.out.Modified = append(d.out.Modified, Change{Path: p, Old: x, New: y})
		if x.Kind == KindDir {
			d.below(p, x, false)
		}
		if y.Kind == KindDir {
			d.below(p, y, true)
		}
		return
	}
	if x.Mode != y.Mode || !maps.EqualFunc(x.Xattrs, y.Xattrs, bytes.Equal) {
		d.out.Modified = append(d.out.Modified, Change{Path: p, Old: x, New: y})
	}
	d.entries(p, x.entries, y.entries)
}

// entries compares two directories' treaps of entries and reports the
// entries that differ in name order.
func (d *differ) entries(dir string, x, y *entries) {
	d.visits++
	switch {
	case x == y:
		return
	case x == nil:
		y.ascend("", func(name string, n *Node) bool { d.one(joinPath(dir, name), n, true); return true })
		return
	case y == nil:
		x.ascend("", func(name string, n *Node) bool { d.one(joinPath(dir, name), n, false); return true })
		return
	case x.digest() == y.digest():
		return
	}
	// The root of a treap is its name of highest priority. When both roots
	// have the same name, their subtrees split the names the same way. When
	// they do not, the root that sits higher has a name the other treap
	// lacks (or it would be that treap's root): split the other treap at it
	// into the canonical treaps of the names before and after, whose hashes
	// then match the unchanged parts of the first.
	xl, xr, yl, yr := x.left, x.right, y.left, y.right
	var name string
	var cx, cy *Node
	switch {
	case x.name == y.name:
		name, cx, cy = x.name, x.child, y.child
	case above(x, y):
		name, cx = x.name, x.child
		yl, cy, yr = d.split(y, name)
	default:
		name, cy = y.name, y.child
		xl, cx, xr = d.split(x, name)
	}
	d.entries(dir, xl, yl)
	switch p := joinPath(dir, name); {
	case cx == nil:
		d.one(p, cy, true)
	case cy == nil:
		d.one(p, cx, false)
	default:
		d.node(p, cx, cy)
	}
	d.entries(dir, xr, yr)
}

// split returns the entries of t before name, the child called name (or
// nil) and the entries after it, as canonical treaps that share every node
// they can with t.
func (d *differ) split(t *entries, name string) (*entries, *Node, *entries) {
	d.visits++
	if t == nil {
		return nil, nil, nil
	}
	switch {
	case name < t.name:
		l, m, r := d.split(t.left, name)
		if l == nil && m == nil {
			return nil, nil, t
		}
		return l, m, t.with(r, t.right)
	case name > t.name:
		l, m, r := d.split(t.right, name)
		if r == nil && m == nil {
			return t, nil, nil
		}
		return t.with(t.left, l), m, r
	}
	return t.left, t.child, t.right
}

// one reports an entry that only one tree has, and everything below it.
func (d *differ) one(p string, n *Node, added bool) {
	if added {
		d.out.Added = append(d.out.Added, Change{Path: p, New: n})
	} else {
		d.out.Deleted = append(d.out.Deleted, Change{Path: p, Old: n})
	}
	if n.Kind == KindDir {
		d.below(p, n, added)
	}
}

// below reports everything below directory p as added or deleted.
func (d *differ) below(p string, dir *Node, added bool) {
	dir.entries.ascend("", func(name string, child *Node) bool {
		d.one(joinPath(p, name), child, added)
		return true
	})
}

func joinPath(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// renameKey is what a deleted and an added entry must share to be a rename.
type renameKey struct {
	kind Kind
	hash Hash
}

func renameKeyOf(n *Node) (renameKey, bool) {
	switch n.Kind {
	case KindFile:
		// Every empty file has the same content: pairing them would invent
		// renames, so they stay added and deleted (as git does).
		if n.Size == 0 {
			return renameKey{}, false
		}
		return renameKey{KindFile, n.Content}, true
	case KindSymlink:
		return renameKey{KindSymlink, Sum([]byte(n.Target))}, true
	}
	return renameKey{}, false
}

// findRenames pairs deleted and added entries with the same content into
// renames. When several match, pairs with the same base name go first,
// then the rest in tree order, so the result depends only on the trees.
func (c *Changes) findRenames() {
	if len(c.Added) == 0 || len(c.Deleted) == 0 {
		return
	}
	gone := map[renameKey][]int{}
	for i, ch := range c.Deleted {
		if k, ok := renameKeyOf(ch.Old); ok {
			gone[k] = append(gone[k], i)
		}
	}
	if len(gone) == 0 {
		return
	}
	came := map[renameKey][]int{}
	var keys []renameKey // in the tree order of their first added entry
	for i, ch := range c.Added {
		if k, ok := renameKeyOf(ch.New); ok && gone[k] != nil {
			if came[k] == nil {
				keys = append(keys, k)
			}
			came[k] = append(came[k], i)
		}
	}
	usedDel := make([]bool, len(c.Deleted))
	usedAdd := make([]bool, len(c.Added))
	for _, k := range keys {
		dels, adds := gone[k], came[k]
		pair := func(di, ai int) {
			usedDel[di], usedAdd[ai] = true, true
			c.Renamed = append(c.Renamed, Rename{From: c.Deleted[di].Path, To: c.Added[ai].Path, Old: c.Deleted[di].Old, New: c.Added[ai].New})
		}
		for _, ai := range adds {
			_, base := parentOf(c.Added[ai].Path)
			for _, di := range dels {
				if _, b := parentOf(c.Deleted[di].Path); !usedDel[di] && b == base {
					pair(di, ai)
					break
				}
			}
		}
		di := 0
		for _, ai := range adds {
			if usedAdd[ai] {
				continue
			}
			for di < len(dels) && usedDel[dels[di]] {
				di++
			}
			if di == len(dels) {
				break
			}
			pair(dels[di], ai)
		}
	}
	if len(c.Renamed) == 0 {
		return
	}
	c.Added = keep(c.Added, usedAdd)
	c.Deleted = keep(c.Deleted, usedDel)
	slices.SortFunc(c.Renamed, func(a, b Rename) int { return ComparePaths(a.To, b.To) })
}

// keep returns the changes whose index is not marked used, in order.
func keep(list []Change, used []bool) []Change {
	out := list[:0:0]
	for i, ch := range list {
		if !used[i] {
			out = append(out, ch)
		}
	}
	return out
}
