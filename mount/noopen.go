package mount

import (
	"context"
	"errors"
	"io"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// Files without opens. The first read-only open of a file the service
// holds answers ENOSYS; the kernel then stops sending OPEN and RELEASE for
// files for the rest of the mount (FUSE's no-open mode), and keeps every
// file's pages until told otherwise. FLUSH of such a file answers ENOSYS
// too, which stops FLUSH (the kernel's report of every close). Reading a
// file whose pages the kernel holds then costs no round trip at all, as on
// a local disk. Reads and writes arrive without a handle and are served
// from the entry: its staging file, else its content in the cache.
// Creates still return a handle (Create), as do opens before the switch.
//
// What the mount gives up: it no longer learns of closes. A written file
// is flushed once writes to it have paused for settleTime (and at least
// every flush interval, and on fsync), instead of at its close; a staging
// file is retired (moved into the cache) after a flush when small, and
// when the kernel forgets the inode when large, instead of at its last
// close. The kernel keeps pages until the content changes: local changes
// pass through it, remote ones are notified (live.go).

// settleTime is how long writes must pause before a flush is kicked: a
// tenth of the flush interval (100 ms by default), at least 10 ms.
func (m *Mount) settleTime() time.Duration {
	return max(m.opts.FlushInterval/10, 10*time.Millisecond)
}

var (
	_ fs.NodeReader      = (*node)(nil)
	_ fs.NodeWriter      = (*node)(nil)
	_ fs.NodeFlusher     = (*node)(nil)
	_ fs.NodeAllocater   = (*node)(nil)
	_ fs.NodeOnForgetter = (*node)(nil)
)

// wrote arms the flush kick of written files: settleTime after the last
// write.
func (m *Mount) wrote() {
	m.settleMu.Lock()
	defer m.settleMu.Unlock()
	if m.settle == nil {
		m.settle = time.AfterFunc(m.settleTime(), m.kickFlush)
		return
	}
	m.settle.Reset(m.settleTime())
}

func (n *node) Read(ctx context.Context, f fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if h, ok := f.(*handle); ok {
		return h.Read(ctx, dest, off)
	}
	m := n.m
	for {
		m.mu.Lock()
		e := n.e
		st, hash, size, src := e.staged, e.hash, e.size, e.src
		m.mu.Unlock()
		if st != nil {
			k, err := st.readAt(dest, off)
			if errors.Is(err, errRetired) {
				continue // moved into the cache meanwhile: read it there
			}
			if err != nil && err != io.EOF {
				return nil, fs.ToErrno(err)
			}
			return fuse.ReadResultData(dest[:k]), 0
		}
		if !m.cache.held(hash) && !m.cache.inFlight(hash) {
			m.missed(e)
		}
		b, err := m.openContent(hash, size, src)
		if err != nil {
			m.log.Warn("read failed", "session", m.session, "err", err)
			return nil, syscall.EIO
		}
		k, err := b.ReadAt(dest, off)
		b.Close() //nolint:errcheck // read-only
		if err != nil && err != io.EOF {
			return nil, fs.ToErrno(err)
		}
		return fuse.ReadResultData(dest[:k]), 0
	}
}

func (n *node) Write(ctx context.Context, f fs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	if h, ok := f.(*handle); ok {
		return h.Write(ctx, data, off)
	}
	m := n.m
	if m.ro {
		return 0, syscall.EROFS
	}
	for {
		st, errno := m.stage(n.e, false)
		if errno != 0 {
			return 0, errno
		}
		k, err := st.writeAt(data, off)
		if errors.Is(err, errRetired) {
			continue
		}
		m.mu.Lock()
		if st.refs == 0 {
			st.loose = true
		}
		if end := off + int64(k); end > n.e.size {
			n.e.size = end
		}
		n.e.mtime = time.Now()
		m.dirtied(n.e, st)
		m.mu.Unlock()
		m.wrote()
		if err != nil {
			return uint32(k), fs.ToErrno(err)
		}
		return uint32(k), 0
	}
}

// Flush of a file opened without OPEN answers ENOSYS, which tells the
// kernel to stop reporting closes (see above).
func (n *node) Flush(ctx context.Context, f fs.FileHandle) syscall.Errno {
	if h, ok := f.(*handle); ok {
		return h.Flush(ctx)
	}
	return syscall.ENOSYS
}

func (n *node) Allocate(ctx context.Context, f fs.FileHandle, off uint64, size uint64, mode uint32) syscall.Errno {
	if h, ok := f.(*handle); ok {
		return h.Allocate(ctx, off, size, mode)
	}
	m := n.m
	if m.ro {
		return syscall.EROFS
	}
	for {
		st, errno := m.stage(n.e, false)
		if errno != 0 {
			return errno
		}
		h := &handle{m: m, e: n.e, f: st.f, st: st, write: true}
		st.mu.RLock()
		if st.closed {
			st.mu.RUnlock()
			continue
		}
		st.mu.RUnlock()
		// A retire between the check and the call fails it with EBADF:
		// rare, and the caller sees an error, never a lost change.
		errno = h.Allocate(ctx, off, size, mode)
		m.wrote()
		return errno
	}
}

// OnForget: the kernel holds the inode no more, so no file is open on it;
// a staging file kept for a large file written without opens is retired.
func (n *node) OnForget() {
	m := n.m
	m.mu.Lock()
	defer m.mu.Unlock()
	e := n.e
	st := e.staged
	if st != nil && st.refs > 0 && m.noOpen.Load() {
		// Handles open when the kernel stopped sending opens: their
		// RELEASE never came, and no file is open on a forgotten inode.
		st.refs = 0
	}
	if st == nil || st.refs > 0 {
		return
	}
	if !e.attached(m.root) && !m.referenced(st.id) {
		e.staged = nil
		st.close()
		m.journal.discard(st.id)
		return
	}
	st.loose = false
	m.retire(e)
	m.resyncLater(e)
}
