package mount

import (
	"sync"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// Directories without opens. The first OPENDIR answers ENOSYS, which
// switches the kernel to FUSE's no-opendir mode for the rest of the
// mount: it sends no OPENDIR and RELEASEDIR at all, and treats every
// directory as opened with FOPEN_KEEP_CACHE | FOPEN_CACHE_DIR (its
// default in that mode), so a directory whose listing the kernel holds is
// read without any request to the mount, as on a local disk. A walk of a
// tree the kernel knows (`find`, `git status`, the second `tar`) was one
// OPENDIR round trip per directory before, several hundred per walk of
// the bench's tree (docs/benchmarks.md, issue 21).
//
// go-fuse's node bridge lists a directory through the handle its OPENDIR
// made, so READDIR and READDIRPLUS without a handle (Fh 0) are given one
// here: the listing a read at offset 0 opens is kept for the reads that
// continue it (the same snapshot, as one opendir's handle keeps it) and
// released once a read finds its end, or when the next read at offset 0
// of that directory starts a new listing.
type dirsFS struct {
	fuse.RawFileSystem

	mu    sync.Mutex
	open  map[uint64]uint64 // directory node -> handle of the listing in progress
	ready bool              // false: pass OPENDIR through (KeepOpens)
}

func newDirsFS(raw fuse.RawFileSystem, noOpendir bool) *dirsFS {
	return &dirsFS{RawFileSystem: raw, open: map[uint64]uint64{}, ready: noOpendir}
}

func (d *dirsFS) OpenDir(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	if !d.ready {
		return d.RawFileSystem.OpenDir(cancel, in, out)
	}
	return fuse.ENOSYS
}

func (d *dirsFS) ReadDir(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	if in.Fh != 0 {
		return d.RawFileSystem.ReadDir(cancel, in, out)
	}
	return d.list(cancel, in, out, d.RawFileSystem.ReadDir)
}

func (d *dirsFS) ReadDirPlus(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	if in.Fh != 0 {
		return d.RawFileSystem.ReadDirPlus(cancel, in, out)
	}
	return d.list(cancel, in, out, d.RawFileSystem.ReadDirPlus)
}

// list serves a read of a directory without a handle through one of its
// own.
func (d *dirsFS) list(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList,
	read func(<-chan struct{}, *fuse.ReadIn, *fuse.DirEntryList) fuse.Status) fuse.Status {
	node := in.NodeId
	d.mu.Lock()
	fh, ok := d.open[node]
	if ok && in.Offset == 0 {
		delete(d.open, node) // a new listing: drop the old one's snapshot
		d.mu.Unlock()
		d.release(in, fh)
		d.mu.Lock()
		ok = false
	}
	if ok {
		delete(d.open, node) // this read owns the handle until it returns
	}
	d.mu.Unlock()
	if !ok {
		var oo fuse.OpenOut
		if st := d.RawFileSystem.OpenDir(cancel, &fuse.OpenIn{InHeader: in.InHeader}, &oo); !st.Ok() {
			return st
		}
		fh = oo.Fh
	}
	rin := *in
	rin.Fh = fh
	st := read(cancel, &rin, out)
	if !st.Ok() || out.Offset == in.Offset {
		// An error, or nothing after in.Offset: the listing is done.
		d.release(in, fh)
		return st
	}
	d.mu.Lock()
	old, taken := d.open[node]
	d.open[node] = fh
	d.mu.Unlock()
	if taken {
		d.release(in, old)
	}
	return st
}

func (d *dirsFS) release(in *fuse.ReadIn, fh uint64) {
	d.RawFileSystem.ReleaseDir(&fuse.ReleaseIn{InHeader: in.InHeader, Fh: fh})
}
