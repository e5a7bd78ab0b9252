package mount

import (
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/strand-dev/strand/domain"
)

// kind is what an entry is.
type kind uint8

const (
	kindFile kind = iota + 1
	kindDir
	kindSymlink
)

func kindOf(s string) (kind, bool) {
	switch s {
	case "file":
		return kindFile, true
	case "dir":
		return kindDir, true
	case "symlink":
		return kindSymlink, true
	}
	return 0, false
}

// typeBits are the file-type bits of st_mode.
func (k kind) typeBits() uint32 {
	switch k {
	case kindFile:
		return syscall.S_IFREG
	case kindDir:
		return syscall.S_IFDIR
	case kindSymlink:
		return syscall.S_IFLNK
	}
	panic("mount: entry of no kind")
}

// source is where an entry's content can be read from the service: the
// path it had at a position. Content is addressed by hash in the cache; the
// service reads by path, so the entry remembers one place that holds it.
type source struct {
	path     string
	position uint64
}

// entry is one file, directory or symlink of the mount's view: the service's
// tree as last seen, with the local changes not yet flushed on top. Entries
// are guarded by Mount.mu. An entry keeps its identity (and inode number)
// across renames and remote updates of its content.
type entry struct {
	name     string
	parent   *entry // nil for the root and for entries removed from the tree
	kind     kind
	mode     uint32 // permission bits
	size     int64
	hash     domain.Hash // file: the content the service holds (or will, once flushed)
	stored   uint32      // file: the mode the service holds with hash (0: none yet)
	target   string      // symlink
	xattrs   map[string][]byte
	mtime    time.Time
	ino      uint64
	children map[string]*entry // directories
	src      source
	staged   *staged // file being written: its local content
	node     *node   // the inode, once the kernel has looked it up
	// kernelHash is the content the kernel may hold in its page cache.
	kernelHash domain.Hash
	// prefetched is 1 + the position of the view at which a
	// directory's small files were last queued for a prefetch.
	prefetched uint64
}

// path returns the entry's path from the root ("" for the root).
func (e *entry) path() string {
	if e.parent == nil {
		return e.name
	}
	var parts []string
	for x := e; x.parent != nil; x = x.parent {
		parts = append(parts, x.name)
	}
	for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
		parts[i], parts[j] = parts[j], parts[i]
	}
	return strings.Join(parts, "/")
}

// attached reports whether the entry is still in the tree.
func (e *entry) attached(root *entry) bool {
	x := e
	for x.parent != nil {
		x = x.parent
	}
	return x == root
}

// sortedNames returns a directory's child names in order.
func (e *entry) sortedNames() []string {
	names := make([]string, 0, len(e.children))
	for n := range e.children {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// lookupPath walks from root to p.
func lookupPath(root *entry, p string) *entry {
	e := root
	if p == "" {
		return e
	}
	for _, part := range strings.Split(p, "/") {
		if e.children == nil {
			return nil
		}
		if e = e.children[part]; e == nil {
			return nil
		}
	}
	return e
}

// attach makes e the child name of dir.
func attach(dir *entry, name string, e *entry) {
	if dir.children == nil {
		dir.children = map[string]*entry{}
	}
	e.name, e.parent = name, dir
	dir.children[name] = e
}

// detach removes e from its directory.
func detach(e *entry) {
	if e.parent != nil {
		delete(e.parent.children, e.name)
		e.parent = nil
	}
}

// within reports whether p is q or below it.
func within(p, q string) bool {
	return q == "" || p == q || strings.HasPrefix(p, q+"/")
}

func splitPath(p string) (dir, name string) {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i], p[i+1:]
	}
	return "", p
}
