package mount

import (
	"context"
	"errors"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/strand-dev/strand/domain"
)

// node is the inode of an entry. Everything it answers comes from the
// entry, under Mount.mu.
type node struct {
	fs.Inode
	m *Mount
	e *entry
}

var (
	_ fs.NodeLookuper       = (*node)(nil)
	_ fs.NodeOpendirHandler = (*node)(nil)
	_ fs.NodeGetattrer      = (*node)(nil)
	_ fs.NodeSetattrer      = (*node)(nil)
	_ fs.NodeOpener         = (*node)(nil)
	_ fs.NodeCreater        = (*node)(nil)
	_ fs.NodeMkdirer        = (*node)(nil)
	_ fs.NodeUnlinker       = (*node)(nil)
	_ fs.NodeRmdirer        = (*node)(nil)
	_ fs.NodeRenamer        = (*node)(nil)
	_ fs.NodeSymlinker      = (*node)(nil)
	_ fs.NodeReadlinker     = (*node)(nil)
	_ fs.NodeGetxattrer     = (*node)(nil)
	_ fs.NodeSetxattrer     = (*node)(nil)
	_ fs.NodeListxattrer    = (*node)(nil)
	_ fs.NodeRemovexattrer  = (*node)(nil)
	_ fs.NodeStatfser       = (*node)(nil)
	_ fs.NodeFsyncer        = (*node)(nil)
)

// inode returns the entry's inode, making it on first use. Called without
// mu (NewInode may call back into the bridge).
func (n *node) inode(ctx context.Context, e *entry) *fs.Inode {
	n.m.mu.Lock()
	child := e.node
	mode := e.kind.typeBits()
	if child == nil {
		child = &node{m: n.m, e: e}
	}
	n.m.mu.Unlock()
	in := n.NewInode(ctx, child, fs.StableAttr{Mode: mode, Ino: e.ino})
	n.m.mu.Lock()
	if got, ok := in.Operations().(*node); ok {
		e.node = got
	}
	n.m.mu.Unlock()
	return in
}

func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if len(name) > domain.MaxComponentBytes {
		return nil, syscall.ENAMETOOLONG // as a local disk answers
	}
	n.m.mu.Lock()
	e := n.e.children[name]
	if e == nil {
		n.m.mu.Unlock()
		return nil, syscall.ENOENT
	}
	n.m.fillAttr(e, &out.Attr)
	n.m.mu.Unlock()
	return n.inode(ctx, e), 0
}

// OpendirHandle lists a directory. The kernel keeps the listing in its
// cache (FOPEN_CACHE_DIR) until the directory changes: local changes pass
// through the kernel, remote ones are notified (live.go).
func (n *node) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	return &dirHandle{n: n}, fuse.FOPEN_CACHE_DIR | fuse.FOPEN_KEEP_CACHE, 0
}

// dirHandle is an open directory; its listing is made on the first read
// (a listing the kernel has cached is never read).
type dirHandle struct {
	n    *node
	mu   sync.Mutex
	list []fuse.DirEntry
	read bool
	idx  int
}

var (
	_ fs.FileReaddirenter = (*dirHandle)(nil)
	_ fs.FileSeekdirer    = (*dirHandle)(nil)
)

func (d *dirHandle) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.read {
		d.read = true
		d.list = d.n.listing()
	}
	if d.idx >= len(d.list) {
		return nil, 0
	}
	de := d.list[d.idx]
	d.idx++
	de.Off = uint64(d.idx)
	return &de, 0
}

func (d *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.read {
		d.read = true
		d.list = d.n.listing()
	}
	if off > uint64(len(d.list)) {
		return syscall.EINVAL
	}
	d.idx = int(off)
	return 0
}

// listing returns a directory's entries in name order.
func (n *node) listing() []fuse.DirEntry {
	n.m.mu.Lock()
	defer n.m.mu.Unlock()
	names := n.e.sortedNames()
	list := make([]fuse.DirEntry, 0, len(names))
	for _, name := range names {
		c := n.e.children[name]
		list = append(list, fuse.DirEntry{Name: name, Mode: c.kind.typeBits(), Ino: c.ino})
	}
	return list
}

// fillAttr describes an entry. Guarded by mu.
func (m *Mount) fillAttr(e *entry, a *fuse.Attr) {
	a.Ino = e.ino
	a.Mode = e.kind.typeBits() | e.mode
	a.Nlink = 1
	a.Owner = fuse.Owner{Uid: m.uid, Gid: m.gid}
	a.Blksize = 4096
	switch e.kind {
	case kindDir:
		a.Nlink = 2
		a.Size = 4096
	case kindSymlink:
		a.Size = uint64(len(e.target))
	case kindFile:
		a.Size = uint64(e.size)
	}
	if e.parent == nil && e != m.root {
		a.Nlink = 0 // removed while open
	}
	a.Blocks = (a.Size + 511) / 512
	a.SetTimes(&e.mtime, &e.mtime, &e.mtime)
}

func (n *node) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.m.mu.Lock()
	defer n.m.mu.Unlock()
	n.m.fillAttr(n.e, &out.Attr)
	out.SetTimeout(n.m.ttl)
	return 0
}

func (n *node) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if n.m.ro {
		return syscall.EROFS
	}
	if size, ok := in.GetSize(); ok {
		if errno := n.m.truncate(n.e, int64(size)); errno != 0 {
			return errno
		}
	}
	m := n.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if mode, ok := in.GetMode(); ok && n.e.kind != kindSymlink {
		if mode&0o7777 != n.e.mode {
			n.e.mode = mode & 0o7777
			// A file with a write queued records its mode with that write;
			// the root's mode is the mount's own.
			if n.e.kind == kindFile && (n.e.staged == nil || !n.e.staged.dirty) || n.e.kind == kindDir && n.e != m.root {
				m.record(&jop{Op: "chmod", Path: n.e.path(), Mode: n.e.mode, ent: n.e})
			}
		}
	}
	if mt, ok := in.GetMTime(); ok {
		n.e.mtime = mt
	} else if _, ok := in.GetSize(); ok {
		n.e.mtime = time.Now()
	}
	m.fillAttr(n.e, &out.Attr)
	return 0
}

// record queues a local change and writes it to the journal. Guarded by mu.
func (m *Mount) record(op *jop) {
	if op.ent != nil && op.ent.kind == kindFile && !op.ent.hash.IsZero() {
		op.Expect = op.ent.hash.String()
	}
	m.pending = append(m.pending, op)
	if err := m.journal.append(op); err != nil {
		m.log.Error("journal append failed", "session", m.session, "err", err)
	}
}

// truncate changes a file's size, staging it first.
func (m *Mount) truncate(e *entry, size int64) syscall.Errno {
	if size > domain.MaxBlobSize {
		return syscall.EFBIG // the largest file the service stores
	}
	var st *staged
	for {
		var errno syscall.Errno
		if st, errno = m.stage(e, size == 0); errno != 0 {
			return errno
		}
		err := st.truncate(size)
		if errors.Is(err, errRetired) {
			continue // moved into the cache meanwhile: stage it again
		}
		if err != nil {
			return fs.ToErrno(err)
		}
		break
	}
	m.mu.Lock()
	if st.refs == 0 {
		st.loose = true
	}
	e.size = size
	m.dirtied(e, st)
	m.mu.Unlock()
	return 0
}

// dirtied marks a staged file changed, queueing its write. Guarded by mu.
func (m *Mount) dirtied(e *entry, st *staged) {
	if st.dirty || e.staged != st {
		return
	}
	st.dirty = true
	op := &jop{Op: "write", File: st.id, Mode: e.mode, ent: e}
	if e.attached(m.root) {
		op.Path = e.path()
	} else {
		return // unlinked while open: nothing to write
	}
	m.record(op)
}

func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	m := n.m
	write := flags&syscall.O_ACCMODE != syscall.O_RDONLY
	if write && m.ro {
		return nil, 0, syscall.EROFS
	}
	m.mu.Lock()
	e := n.e
	if e.kind != kindFile {
		m.mu.Unlock()
		return nil, 0, syscall.EISDIR
	}
	if !write && e.staged == nil && !m.opts.KeepOpens {
		// From here on the kernel opens files without asking (noopen.go).
		m.noOpen.Store(true)
		m.mu.Unlock()
		return nil, 0, syscall.ENOSYS
	}
	if !write && e.staged == nil {
		// Read-only, of content the service holds: the kernel need not
		// tell us of its close (FOPEN_NOFLUSH), and keeps its pages for as
		// long as the content stays the same. The content is opened (and
		// fetched) on the first read that the page cache does not answer.
		fl := uint32(fuse.FOPEN_NOFLUSH)
		if e.kernelHash == e.hash {
			fl |= fuse.FOPEN_KEEP_CACHE
		}
		e.kernelHash = e.hash
		h := &handle{m: m, e: e, hash: e.hash, size: e.size, src: e.src}
		m.mu.Unlock()
		return h, fl, 0
	}
	m.mu.Unlock()
	for {
		st, errno := m.stage(e, flags&syscall.O_TRUNC != 0)
		if errno != 0 {
			return nil, 0, errno
		}
		// No FLUSH at close: a pause in writes kicks the flush (noopen.go).
		if h := m.openStaged(e, st, write); h != nil {
			return h, fuse.FOPEN_NOFLUSH, 0
		}
	}
}

func (n *node) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	m := n.m
	if m.ro {
		return nil, nil, 0, syscall.EROFS
	}
	m.mu.Lock()
	errno := nameErrno(n.e, name)
	m.mu.Unlock()
	if errno != 0 {
		return nil, nil, 0, errno
	}
	id, f, err := m.journal.newFile()
	if err != nil {
		return nil, nil, 0, fs.ToErrno(err)
	}
	st := &staged{id: id, f: f, all: true}
	m.mu.Lock()
	if n.e.children[name] != nil {
		m.mu.Unlock()
		f.Close() //nolint:errcheck // unused
		m.journal.discard(id)
		return nil, nil, 0, syscall.EEXIST
	}
	now := time.Now()
	e := &entry{kind: kindFile, mode: mode & 0o7777, mtime: now, ino: m.newIno(), staged: st}
	attach(n.e, name, e)
	m.dirtied(e, st)
	m.fillAttr(e, &out.Attr)
	// The handle is held before mu is released: a flush may take the new
	// file's write at once, and must not retire its staging file from
	// under the handle. In no-open mode there is no handle: the kernel
	// would never release it (it sends no RELEASE in that mode), so the
	// file is written without one, as any other (noopen.go).
	var h *handle
	if !m.noOpen.Load() {
		h = m.hold(e, st, true)
	}
	m.mu.Unlock()
	in := n.inode(ctx, e)
	if h == nil {
		return in, nil, fuse.FOPEN_NOFLUSH, 0
	}
	return in, h, fuse.FOPEN_NOFLUSH, 0
}

func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if n.m.ro {
		return nil, syscall.EROFS
	}
	m := n.m
	m.mu.Lock()
	if n.e.children[name] != nil {
		m.mu.Unlock()
		return nil, syscall.EEXIST
	}
	if errno := nameErrno(n.e, name); errno != 0 {
		m.mu.Unlock()
		return nil, errno
	}
	e := &entry{kind: kindDir, mode: mode & 0o7777, mtime: time.Now(), ino: m.newIno(), children: map[string]*entry{}}
	attach(n.e, name, e)
	m.record(&jop{Op: "mkdir", Path: e.path(), Mode: e.mode, ent: e})
	m.fillAttr(e, &out.Attr)
	m.mu.Unlock()
	return n.inode(ctx, e), 0
}

func (n *node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if n.m.ro {
		return nil, syscall.EROFS
	}
	if target == "" || len(target) > domain.MaxTargetBytes {
		return nil, syscall.EINVAL
	}
	m := n.m
	m.mu.Lock()
	if n.e.children[name] != nil {
		m.mu.Unlock()
		return nil, syscall.EEXIST
	}
	if errno := nameErrno(n.e, name); errno != 0 {
		m.mu.Unlock()
		return nil, errno
	}
	e := &entry{kind: kindSymlink, mode: 0o777, target: target, mtime: time.Now(), ino: m.newIno()}
	attach(n.e, name, e)
	m.record(&jop{Op: "symlink", Path: e.path(), Target: target, ent: e})
	m.fillAttr(e, &out.Attr)
	m.mu.Unlock()
	return n.inode(ctx, e), 0
}

func (n *node) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	n.m.mu.Lock()
	defer n.m.mu.Unlock()
	if n.e.kind != kindSymlink {
		return nil, syscall.EINVAL
	}
	return []byte(n.e.target), 0
}

func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	return n.remove(name, false)
}

func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	return n.remove(name, true)
}

func (n *node) remove(name string, dir bool) syscall.Errno {
	m := n.m
	if m.ro {
		return syscall.EROFS
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e := n.e.children[name]
	switch {
	case e == nil:
		return syscall.ENOENT
	case dir && e.kind != kindDir:
		return syscall.ENOTDIR
	case !dir && e.kind == kindDir:
		return syscall.EISDIR
	case dir && len(e.children) > 0:
		return syscall.ENOTEMPTY
	}
	m.record(&jop{Op: "remove", Path: e.path(), ent: e})
	detach(e)
	return 0
}

func (n *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	m := n.m
	if m.ro {
		return syscall.EROFS
	}
	np, ok := newParent.(*node)
	if !ok {
		return syscall.EXDEV
	}
	if flags&^uint32(renameNoReplace) != 0 {
		return syscall.ENOTSUP // RENAME_EXCHANGE, RENAME_WHITEOUT
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e := n.e.children[name]
	if e == nil {
		return syscall.ENOENT
	}
	if dst := np.e; dst == e || isUnder(dst, e) {
		return syscall.EINVAL
	}
	if errno := nameErrno(np.e, newName); errno != 0 {
		return errno
	}
	if e.kind == kindDir {
		if errno := subtreeErrno(np.e, newName, e); errno != 0 {
			return errno
		}
	}
	if old := np.e.children[newName]; old != nil {
		if old == e {
			return 0
		}
		if flags&renameNoReplace != 0 {
			return syscall.EEXIST
		}
		switch {
		case e.kind == kindDir && old.kind != kindDir:
			return syscall.ENOTDIR
		case e.kind != kindDir && old.kind == kindDir:
			return syscall.EISDIR
		case old.kind == kindDir && len(old.children) > 0:
			return syscall.ENOTEMPTY
		}
		m.record(&jop{Op: "remove", Path: old.path(), ent: old})
		detach(old)
	}
	from := e.path()
	detach(e)
	attach(np.e, newName, e)
	m.record(&jop{Op: "rename", Path: from, To: e.path(), ent: e})
	return 0
}

// nameErrno refuses a new name in dir that the service would refuse
// (domain.CleanPath), before anything is recorded, as a local disk refuses
// a name it cannot hold: a name over 255 bytes or a path over 4,096,
// ENAMETOOLONG; a control character, a backslash, bytes that are not UTF-8
// or a path deeper than 64, EINVAL. Guarded by mu.
func nameErrno(dir *entry, name string) syscall.Errno {
	if len(name) > domain.MaxComponentBytes {
		return syscall.ENAMETOOLONG
	}
	p := name
	if d := dir.path(); d != "" {
		p = d + "/" + name
	}
	if len(p) > domain.MaxPathBytes {
		return syscall.ENAMETOOLONG
	}
	if c, err := domain.CleanPath(p); err != nil || c != p {
		return syscall.EINVAL
	}
	return 0
}

// subtreeErrno refuses to move folder e to name in dir when a path below
// it would be longer (ENAMETOOLONG) or deeper (EINVAL) there than the
// service takes, as nameErrno refuses the name itself: before 2026-12-07
// such a rename was taken and its flush set aside as a conflict. Guarded
// by mu.
func subtreeErrno(dir *entry, name string, e *entry) syscall.Errno {
	to, depth := len(name), 1
	if d := dir.path(); d != "" {
		to += len(d) + 1
		depth += strings.Count(d, "/") + 1
	}
	below, deeper := subtreeExtent(e)
	if to+below > domain.MaxPathBytes {
		return syscall.ENAMETOOLONG
	}
	if depth+deeper > domain.MaxPathDepth {
		return syscall.EINVAL
	}
	return 0
}

// subtreeExtent returns the longest path below folder dir, relative to
// it and with its leading slash, in bytes, and the most components of
// one (each may be of another path). Guarded by mu.
func subtreeExtent(dir *entry) (bytes, depth int) {
	for name, c := range dir.children {
		b, d := 1+len(name), 1
		if c.kind == kindDir {
			cb, cd := subtreeExtent(c)
			b, d = b+cb, d+cd
		}
		bytes, depth = max(bytes, b), max(depth, d)
	}
	return bytes, depth
}

// isUnder reports whether e is below dir.
func isUnder(e, dir *entry) bool {
	for x := e.parent; x != nil; x = x.parent {
		if x == dir {
			return true
		}
	}
	return false
}

func (n *node) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	n.m.mu.Lock()
	defer n.m.mu.Unlock()
	v, ok := n.e.xattrs[attr]
	if !ok {
		return 0, syscall.ENODATA
	}
	if len(dest) < len(v) {
		return uint32(len(v)), syscall.ERANGE
	}
	return uint32(copy(dest, v)), 0
}

func (n *node) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	n.m.mu.Lock()
	defer n.m.mu.Unlock()
	var buf []byte
	for name := range n.e.xattrs {
		buf = append(append(buf, name...), 0)
	}
	if len(dest) < len(buf) {
		return uint32(len(buf)), syscall.ERANGE
	}
	return uint32(copy(dest, buf)), 0
}

func (n *node) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	m := n.m
	if m.ro {
		return syscall.EROFS
	}
	if len(attr) > domain.MaxXattrName || len(data) > domain.MaxXattrValue {
		return syscall.E2BIG
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	_, exists := n.e.xattrs[attr]
	switch {
	case flags&0x1 != 0 && exists: // XATTR_CREATE
		return syscall.EEXIST
	case flags&0x2 != 0 && !exists: // XATTR_REPLACE
		return syscall.ENODATA
	case !exists && len(n.e.xattrs) >= domain.MaxXattrs:
		return syscall.ENOSPC
	}
	xs := make(map[string][]byte, len(n.e.xattrs)+1)
	for k, v := range n.e.xattrs {
		xs[k] = v
	}
	xs[attr] = append([]byte{}, data...)
	n.e.xattrs = xs
	m.record(&jop{Op: "setxattr", Path: n.e.path(), Name: attr, Value: xs[attr], ent: n.e})
	return 0
}

func (n *node) Removexattr(ctx context.Context, attr string) syscall.Errno {
	m := n.m
	if m.ro {
		return syscall.EROFS
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := n.e.xattrs[attr]; !ok {
		return syscall.ENODATA
	}
	xs := make(map[string][]byte, len(n.e.xattrs))
	for k, v := range n.e.xattrs {
		if k != attr {
			xs[k] = v
		}
	}
	n.e.xattrs = xs
	m.record(&jop{Op: "rmxattr", Path: n.e.path(), Name: attr, ent: n.e})
	return 0
}

func (n *node) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	// The service has no fixed capacity; report a large, mostly free disk
	// so that tools which check free space go ahead.
	out.Bsize, out.Frsize = 4096, 4096
	out.Blocks, out.Bfree, out.Bavail = 1<<32, 1<<31, 1<<31
	out.Files, out.Ffree = 1<<24, 1<<23
	out.NameLen = 255
	return 0
}

// Fsync of a node without a handle (fsync on a directory) flushes too.
func (n *node) Fsync(ctx context.Context, f fs.FileHandle, flags uint32) syscall.Errno {
	if h, ok := f.(*handle); ok {
		return h.Fsync(ctx, flags)
	}
	if n.m.ro {
		return 0
	}
	if err := n.m.Flush(ctx); err != nil {
		n.m.log.Warn("fsync: flush failed", "session", n.m.session, "err", err)
		return flushErrno(err)
	}
	return 0
}

// renameNoReplace is RENAME_NOREPLACE of renameat2(2).
const renameNoReplace = 1
