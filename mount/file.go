package mount

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

// handle is an open file: a cached blob (read-only) or a staged file.
type handle struct {
	m     *Mount
	e     *entry
	f     *os.File // the staging file
	st    *staged  // nil for content the service holds
	write bool
	wrote atomic.Bool

	// Content the service holds, as it was when opened; b once read.
	fmu  sync.Mutex
	b    blob
	hash domain.Hash
	size int64
	src  source
}

var (
	_ fs.FileReader    = (*handle)(nil)
	_ fs.FileWriter    = (*handle)(nil)
	_ fs.FileFlusher   = (*handle)(nil)
	_ fs.FileFsyncer   = (*handle)(nil)
	_ fs.FileReleaser  = (*handle)(nil)
	_ fs.FileAllocater = (*handle)(nil)
)

// stage gives an entry a staging file holding its content (or nothing,
// when it is about to be truncated), fetching the content if need be.
func (m *Mount) stage(e *entry, trunc bool) (*staged, syscall.Errno) {
	m.mu.Lock()
	if st := e.staged; st != nil {
		if trunc && e.size != 0 {
			m.mu.Unlock()
			if err := st.truncate(0); err != nil {
				return nil, fs.ToErrno(err)
			}
			m.mu.Lock()
			e.size = 0
			m.dirtied(e, st)
		}
		m.mu.Unlock()
		return st, 0
	}
	hash, size, src := e.hash, e.size, e.src
	m.mu.Unlock()
	id, f, err := m.journal.newFile()
	if err != nil {
		return nil, fs.ToErrno(err)
	}
	st := &staged{id: id, f: f}
	if !trunc && size > 0 {
		blob, err := m.cache.open(hash, m.fetcher(src, size))
		if err == nil {
			_, err = io.Copy(f, blob) // copy_file_range where the kernel can
			blob.Close()              //nolint:errcheck // read-only
		}
		if err != nil {
			f.Close() //nolint:errcheck // failing anyway
			m.journal.discard(id)
			m.log.Warn("read failed", "session", m.session, "err", err)
			return nil, syscall.EIO
		}
		st.baseSize = size
		if cs, ok := m.chunkStates.Get(hash); ok {
			st.resume(hash, cs)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if e.staged != nil { // staged meanwhile by another open
		f.Close() //nolint:errcheck // unused
		m.journal.discard(id)
		return e.staged, 0
	}
	e.staged = st
	e.kernelHash = [32]byte{}
	if trunc && size != 0 {
		e.size = 0
		m.dirtied(e, st)
	}
	return st, 0
}

// openStaged returns a handle on e's staging file st, or nil if a flush
// retired st since the caller staged it (the caller stages e again).
func (m *Mount) openStaged(e *entry, st *staged, write bool) *handle {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e.staged != st {
		return nil
	}
	return m.hold(e, st, write)
}

// hold returns a handle on e's staging file st, counted in st.refs: no
// flush retires a staging file while a handle is open on it. Guarded by
// mu.
func (m *Mount) hold(e *entry, st *staged, write bool) *handle {
	st.refs++
	return &handle{m: m, e: e, f: st.f, st: st, write: write}
}

// openContent opens content in the cache, fetching it if need be (or
// waiting for the prefetch that is bringing it).
func (m *Mount) openContent(hash domain.Hash, size int64, src source) (blob, error) {
	return m.cache.open(hash, m.fetcher(src, size))
}

// content returns a read-only handle's content, opened on first use: an open
// whose pages the kernel keeps (FOPEN_KEEP_CACHE) is often never read.
func (h *handle) content() (blob, error) {
	h.fmu.Lock()
	defer h.fmu.Unlock()
	if h.b != nil {
		return h.b, nil
	}
	if !h.m.cache.held(h.hash) && !h.m.cache.inFlight(h.hash) {
		h.m.missed(h.e)
	}
	f, err := h.m.openContent(h.hash, h.size, h.src)
	if err != nil {
		h.m.log.Warn("read failed", "session", h.m.session, "err", err)
		return nil, err
	}
	h.b = f
	return f, nil
}

func (h *handle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	var f io.ReaderAt = h.f
	if h.st == nil {
		b, err := h.content()
		if err != nil {
			return nil, syscall.EIO
		}
		f = b
	}
	n, err := f.ReadAt(dest, off)
	if err != nil && err != io.EOF {
		return nil, fs.ToErrno(err)
	}
	return fuse.ReadResultData(dest[:n]), 0
}

func (h *handle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	if h.st == nil || !h.write {
		return 0, syscall.EBADF
	}
	n, err := h.st.writeAt(data, off)
	h.wrote.Store(true)
	h.m.wrote()
	h.m.mu.Lock()
	if end := off + int64(n); end > h.e.size {
		h.e.size = end
	}
	h.e.mtime = time.Now()
	h.m.dirtied(h.e, h.st)
	h.m.mu.Unlock()
	if err != nil {
		return uint32(n), fs.ToErrno(err)
	}
	return uint32(n), 0
}

func (h *handle) Allocate(ctx context.Context, off uint64, size uint64, mode uint32) syscall.Errno {
	if h.st == nil || !h.write {
		return syscall.EBADF
	}
	if mode&unix.FALLOC_FL_KEEP_SIZE == 0 && off+size > domain.MaxBlobSize {
		return syscall.EFBIG
	}
	h.st.mu.RLock()
	err := syscall.Fallocate(int(h.f.Fd()), mode, int64(off), int64(size))
	var st os.FileInfo
	if err == nil {
		st, err = h.f.Stat()
	}
	h.st.markChunks(int64(off), int64(size))
	h.st.gen.Add(1)
	h.st.mu.RUnlock()
	if err != nil {
		return fs.ToErrno(err)
	}
	h.m.mu.Lock()
	h.e.size = st.Size()
	h.m.dirtied(h.e, h.st)
	h.m.mu.Unlock()
	return 0
}

// Flush: handles are opened with FOPEN_NOFLUSH, so a kernel that knows
// the flag (Linux 5.19 and later) sends none; for one that does not, a
// written file is flushed soon, without making close wait for the service.
func (h *handle) Flush(ctx context.Context) syscall.Errno {
	if h.wrote.Load() {
		h.m.kickFlush()
	}
	return 0
}

// Fsync flushes everything pending to the service before it returns.
func (h *handle) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	if h.m.ro {
		return 0
	}
	if err := h.m.Flush(ctx); err != nil {
		h.m.log.Warn("fsync: flush failed", "session", h.m.session, "err", err)
		return flushErrno(err)
	}
	return 0
}

// flushErrno is what fsync answers for a flush the service refused: what
// a local disk answers in the same case where there is one (the tenant's
// bytes used up: EDQUOT; the session archived: EROFS; refused to this
// identity: EACCES), else EIO. The changes stay in the journal either way.
func flushErrno(err error) syscall.Errno {
	var ce *client.Error
	if !errors.As(err, &ce) {
		return syscall.EIO
	}
	switch {
	case ce.Code == domain.CodeTooLarge && strings.Contains(ce.Message, "its limit is"):
		return syscall.EDQUOT
	case ce.Code == domain.CodeConflict && strings.Contains(ce.Message, "is archived"):
		return syscall.EROFS
	case ce.Code == domain.CodeForbidden:
		return syscall.EACCES
	}
	return syscall.EIO
}

func (h *handle) Release(ctx context.Context) syscall.Errno {
	if h.st == nil {
		h.fmu.Lock()
		if h.b != nil {
			h.b.Close() //nolint:errcheck // read-only
		}
		h.fmu.Unlock()
		return 0
	}
	m := h.m
	m.mu.Lock()
	defer m.mu.Unlock()
	h.st.refs--
	if h.st.refs > 0 {
		return 0
	}
	if h.e.staged != h.st {
		// Dropped (a conflict settled for the remote version).
		h.st.close()
		if !m.referenced(h.st.id) {
			m.journal.discard(h.st.id)
		}
		return 0
	}
	if !h.e.attached(m.root) && !m.referenced(h.st.id) {
		// Unlinked while open, and nothing left to flush: it is gone.
		h.e.staged = nil
		h.st.close()
		m.journal.discard(h.st.id)
		return 0
	}
	m.retire(h.e)
	m.resyncLater(h.e)
	return 0
}
