package domain

import (
	"crypto/sha256"
	"encoding/binary"
	"sort"
	"strings"
)

// Kind is the kind of a tree entry.
type Kind uint8

// The kinds of entries in a file tree.
const (
	KindFile Kind = iota + 1
	KindDir
	KindSymlink
)

func (k Kind) String() string {
	switch k {
	case KindFile:
		return "file"
	case KindDir:
		return "dir"
	case KindSymlink:
		return "symlink"
	}
	return "unknown"
}

// ParseKind parses the String form of a Kind.
func ParseKind(s string) (Kind, bool) {
	switch s {
	case "file":
		return KindFile, true
	case "dir":
		return KindDir, true
	case "symlink":
		return KindSymlink, true
	}
	return 0, false
}

// Default modes for new entries.
const (
	DefaultFileMode    uint32 = 0o644
	DefaultDirMode     uint32 = 0o755
	DefaultSymlinkMode uint32 = 0o777
	// MaxSymlinkHops bounds symlink resolution, as in POSIX's ELOOP.
	MaxSymlinkHops = 40
)

// Node is an immutable entry of a file tree. Directories hold their entries
// in a persistent treap, so a new version of a tree shares every node that a
// change did not touch with the version before it.
type Node struct {
	Kind    Kind
	Mode    uint32
	Size    int64  // files: content length
	Content Hash   // files: SHA-256 of the content
	Target  string // symlinks
	Xattrs  map[string][]byte
	// Data is a file's content when it travelled inside the event that
	// wrote it (design record 0009); nil when it is a blob. It is not
	// part of the hash: Content is its SHA-256 either way, so an inline
	// file and a blob file of the same bytes are the same entry.
	Data []byte

	entries *entries
	hashed  lazyHash
}

// Hash is the Merkle hash of the node: of the content, mode and xattrs for a
// file, of the target for a symlink, of every entry for a directory.
func (n *Node) Hash() Hash {
	if h, ok := n.hashed.known(); ok {
		return h
	}
	return n.hashed.publish(n.digest())
}

// Len is the number of entries of a directory.
func (n *Node) Len() int { return n.entries.len() }

// Child returns the entry called name of a directory, or nil.
func (n *Node) Child(name string) *Node { return n.entries.get(name) }

// Ascend calls fn for the entries of a directory with name >= from, in order.
func (n *Node) Ascend(from string, fn func(name string, child *Node) bool) bool {
	return n.entries.ascend(from, fn)
}

// digest computes the node's hash: the SHA-256 of its kind (1 byte), its
// mode (4 bytes big endian) and then, for a file, its size (8 bytes) and
// content hash; for a symlink, its target's length (8 bytes) and target; for
// a directory, the hash of its entries (zero when empty); and last, for
// every extended attribute in name order, the name's length, the name, the
// value's length and the value. The input is put together in one buffer,
// on the stack unless the node has long attributes or target, and hashed
// in one call.
func (n *Node) digest() Hash {
	var stack [128]byte
	buf := append(stack[:0], byte(n.Kind))
	buf = binary.BigEndian.AppendUint32(buf, n.Mode)
	switch n.Kind {
	case KindFile:
		buf = binary.BigEndian.AppendUint64(buf, uint64(n.Size))
		buf = append(buf, n.Content[:]...)
	case KindSymlink:
		buf = binary.BigEndian.AppendUint64(buf, uint64(len(n.Target)))
		buf = append(buf, n.Target...)
	case KindDir:
		if n.entries != nil {
			h := n.entries.digest()
			buf = append(buf, h[:]...)
		} else {
			buf = append(buf, ZeroHash[:]...)
		}
	}
	if len(n.Xattrs) > 0 {
		keys := make([]string, 0, len(n.Xattrs))
		for k := range n.Xattrs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v := n.Xattrs[k]
			buf = binary.BigEndian.AppendUint64(buf, uint64(len(k)))
			buf = append(buf, k...)
			buf = binary.BigEndian.AppendUint64(buf, uint64(len(v)))
			buf = append(buf, v...)
		}
	}
	return sha256.Sum256(buf)
}

// NewFile returns a file node.
func NewFile(content Hash, size int64, mode uint32, xattrs map[string][]byte) *Node {
	return &Node{Kind: KindFile, Mode: mode & 0o7777, Size: size, Content: content, Xattrs: xattrs}
}

// NewInlineFile returns a file node whose content travels with it.
func NewInlineFile(data []byte, mode uint32, xattrs map[string][]byte) *Node {
	n := NewFile(Sum(data), int64(len(data)), mode, xattrs)
	n.Data = data
	return n
}

// Inline reports whether a file's content is held in the node (and in the
// event that wrote it) rather than in the blob store.
func (n *Node) Inline() bool { return len(n.Data) > 0 }

// NewSymlink returns a symlink node.
func NewSymlink(target string, xattrs map[string][]byte) *Node {
	return &Node{Kind: KindSymlink, Mode: DefaultSymlinkMode, Target: target, Xattrs: xattrs}
}

// NewDir returns an empty directory node.
func NewDir(mode uint32, xattrs map[string][]byte) *Node {
	return &Node{Kind: KindDir, Mode: mode & 0o7777, Xattrs: xattrs}
}

// WithXattrs returns a copy of the node with other extended attributes.
func (n *Node) WithXattrs(x map[string][]byte) *Node {
	c := &Node{Kind: n.Kind, Mode: n.Mode, Size: n.Size, Content: n.Content, Target: n.Target, Data: n.Data, entries: n.entries}
	if len(x) > 0 {
		c.Xattrs = x
	}
	return c
}

// WithMode returns a copy of n with another mode (a directory keeps its
// entries).
func (n *Node) WithMode(mode uint32) *Node {
	return &Node{Kind: n.Kind, Mode: mode & 0o7777, Size: n.Size, Content: n.Content, Target: n.Target, Xattrs: n.Xattrs, Data: n.Data, entries: n.entries}
}

func (n *Node) withEntries(e *entries) *Node {
	return &Node{Kind: KindDir, Mode: n.Mode, Xattrs: n.Xattrs, entries: e}
}

// Tree is an immutable file tree. The zero Tree is an empty root directory.
type Tree struct {
	root *Node
}

var emptyRoot = NewDir(DefaultDirMode, nil)

// Root returns the root directory node.
func (t Tree) Root() *Node {
	if t.root == nil {
		return emptyRoot
	}
	return t.root
}

// Hash is the Merkle root of the tree.
func (t Tree) Hash() Hash { return t.Root().Hash() }

// Lookup returns the node at a clean path without following a final
// symlink, or nil. Intermediate symlinks are not followed either.
func (t Tree) Lookup(p string) *Node {
	n := t.Root()
	for rest, more := p, p != ""; more; {
		var c string
		c, rest, more = strings.Cut(rest, "/")
		if n.Kind != KindDir {
			return nil
		}
		n = n.entries.get(c)
		if n == nil {
			return nil
		}
	}
	return n
}

// Resolve follows symlinks in a clean path (every component, and the last
// one too when followLast) and returns the clean path they lead to. Link
// targets are resolved as POSIX does: relative to the link's directory (or
// to the session root when they start with "/"), one component at a time, so
// a ".." after a link to a directory leaves the directory the link points to,
// not the one holding the link. It fails with invalid_argument when a link
// leads out of the tree, through a ".." of something that is not a directory,
// to a path that CleanPath would refuse, or loops.
func (t Tree) Resolve(p string, followLast bool) (string, error) {
	parts := splitPath(p)
	// stack holds the components resolved so far and nodes the node at each
	// (nil once a component does not exist).
	var stack []string
	var nodes []*Node
	hops := 0
	for len(parts) > 0 {
		c := parts[0]
		parts = parts[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(stack) == 0 {
				return "", Errorf(CodeInvalidArgument, "path %q goes through a symlink that leaves the session tree", p)
			}
			if n := nodes[len(nodes)-1]; n == nil || n.Kind != KindDir {
				return "", Errorf(CodeInvalidArgument, "path %q goes through a symlink whose target has \"..\" after a missing directory or a file", p)
			}
			stack, nodes = stack[:len(stack)-1], nodes[:len(nodes)-1]
			continue
		}
		dir := t.Root()
		if len(nodes) > 0 {
			dir = nodes[len(nodes)-1]
		}
		var child *Node
		if dir != nil && dir.Kind == KindDir {
			child = dir.entries.get(c)
		}
		if child != nil && child.Kind == KindSymlink && (len(parts) > 0 || followLast) {
			hops++
			if hops > MaxSymlinkHops {
				return "", Errorf(CodeInvalidArgument, "too many levels of symbolic links at %q", p)
			}
			if strings.HasPrefix(child.Target, "/") {
				stack, nodes = stack[:0], nodes[:0]
			}
			parts = append(strings.Split(child.Target, "/"), parts...)
			continue
		}
		stack, nodes = append(stack, c), append(nodes, child)
	}
	out := strings.Join(stack, "/")
	if hops > 0 {
		// Components taken from link targets were never cleaned.
		if _, err := CleanPath(out); err != nil {
			return "", Errorf(CodeInvalidArgument, "path %q leads through a symlink to an invalid path: %s", p, ErrorMessage(err))
		}
	}
	return out, nil
}

// lookupPlain is Resolve, Lookup and checkParents of a clean path below
// the root in one walk down, without allocating, for a path that meets no
// symlink to follow (most paths): the node at p (nil when absent) and
// whether a parent of p is not a directory. plain is false when the walk
// meets a symlink that Resolve would follow: the caller resolves the path
// then.
func (t Tree) lookupPlain(p string, followLast bool) (cur *Node, fileParent, plain bool) {
	dir := t.Root()
	for rest := p; ; {
		name, tail, more := strings.Cut(rest, "/")
		child := dir.entries.get(name)
		switch {
		case child == nil:
			return nil, false, true
		case child.Kind == KindSymlink && (more || followLast):
			return nil, false, false
		case !more:
			return child, false, true
		case child.Kind != KindDir:
			return nil, true, true
		}
		dir, rest = child, tail
	}
}

// Put returns a tree with node at clean path p, creating missing parent
// directories. It fails if a parent exists and is not a directory.
func (t Tree) Put(p string, node *Node) (Tree, error) {
	return t.put(p, node, false)
}

// put is Put; with inherit, a file node put where a file with extended
// attributes was takes them over (a write keeps a file's attributes), in
// the same walk down the tree. It is an edit of one operation (treeedit.go),
// which copies the path from the root and changes nothing in place.
func (t Tree) put(p string, node *Node, inherit bool) (Tree, error) {
	ed := newTreeEdit(t, 1)
	if err := ed.put(p, node, inherit); err != nil {
		return t, err
	}
	return ed.done(), nil
}

// Delete returns a tree without the entry at clean path p (and all below it).
func (t Tree) Delete(p string) Tree {
	if p == "" {
		return Tree{}
	}
	ed := newTreeEdit(t, 1)
	if !ed.delete(p) {
		return t
	}
	return ed.done()
}

// Entry is one entry of a walk: its clean path and node.
type Entry struct {
	Path string
	Node *Node
}

// Walk calls fn for every entry below clean directory path base that comes
// after the clean path after (when not empty), in tree order: depth first,
// names sorted bytewise within each directory, a directory before its
// entries. It stops when fn returns false. The base itself is not visited.
func (t Tree) Walk(base, after string, fn func(e Entry) bool) {
	n := t.Lookup(base)
	if n == nil || n.Kind != KindDir {
		return
	}
	var bound []string
	if after != "" {
		if base != "" && !isWithin(after, base) {
			if ComparePaths(after, base) < 0 {
				bound = nil
			} else {
				return
			}
		} else {
			rel := after
			if base != "" {
				rel = strings.TrimPrefix(after, base+"/")
				if after == base {
					rel = ""
				}
			}
			bound = splitPath(rel)
		}
	}
	walkDir(n, base, bound, fn)
}

func walkDir(dir *Node, prefix string, bound []string, fn func(Entry) bool) bool {
	from := ""
	if len(bound) > 0 {
		from = bound[0]
	}
	return dir.entries.ascend(from, func(name string, child *Node) bool {
		p := name
		if prefix != "" {
			p = prefix + "/" + name
		}
		var sub []string
		if len(bound) > 0 && name == from {
			sub = bound[1:]
			if len(sub) == 0 {
				sub = nil
			}
			// the entry itself is at or before the bound: skip it
			if child.Kind == KindDir {
				if len(bound) == 1 {
					return walkDir(child, p, nil, fn)
				}
				return walkDir(child, p, sub, fn)
			}
			return true
		}
		if !fn(Entry{Path: p, Node: child}) {
			return false
		}
		if child.Kind == KindDir {
			return walkDir(child, p, nil, fn)
		}
		return true
	})
}

// ComparePaths orders clean paths in tree order (component by component).
func ComparePaths(a, b string) int {
	for a != "" || b != "" {
		if a == "" {
			return -1
		}
		if b == "" {
			return 1
		}
		ac, ar, _ := strings.Cut(a, "/")
		bc, br, _ := strings.Cut(b, "/")
		if ac != bc {
			return strings.Compare(ac, bc)
		}
		a, b = ar, br
	}
	return 0
}

// Count returns the number of entries in the tree below the root.
func (t Tree) Count() int {
	return countDir(t.Root())
}

func countDir(n *Node) int {
	c := 0
	n.entries.ascend("", func(_ string, child *Node) bool {
		c++
		if child.Kind == KindDir {
			c += countDir(child)
		}
		return true
	})
	return c
}

// Build returns the tree made of the given entries in one pass: a bulk load
// for snapshots. Entries must be sorted by path in Walk order and every
// parent must come before its children.
func Build(list []Entry) (Tree, error) {
	type frame struct {
		path     string
		node     *Node
		names    []string
		children []*Node
	}
	stack := []frame{{path: "", node: emptyRoot}}
	closeTop := func() {
		top := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		d := top.node.withEntries(buildEntries(top.names, top.children))
		parent := &stack[len(stack)-1]
		parent.children[len(parent.children)-1] = d
	}
	for _, e := range list {
		dir, name := parentOf(e.Path)
		for len(stack) > 1 && stack[len(stack)-1].path != dir {
			closeTop()
		}
		top := &stack[len(stack)-1]
		if top.path != dir {
			return Tree{}, Errorf(CodeInvalidArgument, "bulk tree entry %q has no parent directory", e.Path)
		}
		if n := len(top.names); n > 0 && top.names[n-1] >= name {
			return Tree{}, Errorf(CodeInvalidArgument, "bulk tree entries out of order at %q", e.Path)
		}
		top.names = append(top.names, name)
		top.children = append(top.children, e.Node)
		if e.Node.Kind == KindDir {
			stack = append(stack, frame{path: e.Path, node: e.Node})
		}
	}
	for len(stack) > 1 {
		closeTop()
	}
	root := stack[0].node.withEntries(buildEntries(stack[0].names, stack[0].children))
	return Tree{root: root}, nil
}
