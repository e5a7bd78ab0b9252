package mount

import (
	"context"
	"io"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

// handle is an open file: a cached blob (read-only) or a staged file.
type handle struct {
	m     *Mount
	e     *entry
	f     *os.File
	st    *staged // nil for a cached blob
	write bool
	wrote atomic.Bool
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
			m.journal.removeFile(id)
			m.log.Warn("read failed", "session", m.session, "err", err)
			return nil, syscall.EIO
		}
		st.baseSize = size
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if e.staged != nil { // staged meanwhile by another open
		f.Close() //nolint:errcheck // unused
		m.journal.removeFile(id)
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

func (m *Mount) openStaged(e *entry, st *staged, write bool) *handle {
	m.mu.Lock()
	defer m.mu.Unlock()
	st.refs++
	return &handle{m: m, e: e, f: st.f, st: st, write: write}
}

// openContent opens an entry's content in the cache, fetching it on first
// use. A small file's first fetch brings its directory's other small files
// along in a few fs.read_batch requests: tools that read one file of a
// folder tend to read the rest.
func (m *Mount) openContent(e *entry) (*os.File, error) {
	m.mu.Lock()
	hash, size, src := e.hash, e.size, e.src
	var batch []client.FileRef
	if size <= prefetchMax && e.parent != nil && e.parent.prefetched != src.position && !m.cache.held(hash) {
		e.parent.prefetched = src.position
		batch = m.siblings(e.parent, src.position)
	}
	m.mu.Unlock()
	if len(batch) > 1 {
		m.prefetch(src.position, batch)
	}
	return m.cache.open(hash, m.fetcher(src, size))
}

// prefetchMax is the largest file a directory's prefetch brings along.
const prefetchMax = 256 << 10

// siblings lists a directory's small files readable at position pos that
// the cache does not hold. Guarded by mu.
func (m *Mount) siblings(dir *entry, pos uint64) []client.FileRef {
	var out []client.FileRef
	for _, c := range dir.children {
		if c.kind != kindFile || c.staged != nil || c.size > prefetchMax || c.src.position != pos || c.src.path == "" {
			continue
		}
		if m.cache.held(c.hash) {
			continue
		}
		out = append(out, client.FileRef{Path: c.src.path, Hash: c.hash.String(), Size: c.size})
		if len(out) == 1000 {
			break
		}
	}
	return out
}

// prefetch brings files into the cache; a failure only means that each
// file is fetched when it is opened.
func (m *Mount) prefetch(pos uint64, files []client.FileRef) {
	ctx, cancel := context.WithTimeout(m.ctx, time.Minute)
	defer cancel()
	err := m.client.FetchContent(ctx, m.session, client.AtPosition(pos), files, 0, func(hash string, data []byte) error {
		h, err := domain.ParseHash(hash)
		if err != nil {
			return err
		}
		m.cache.addFetched(int64(len(data)))
		return m.cache.put(h, data)
	})
	if err != nil && m.ctx.Err() == nil {
		m.log.Debug("prefetch failed; files are fetched one by one", "session", m.session, "err", err)
	}
}

func (h *handle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	n, err := h.f.ReadAt(dest, off)
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

// Flush is called on every close of a descriptor: a written file is
// flushed soon, without making close wait for the service.
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
		return syscall.EIO
	}
	return 0
}

func (h *handle) Release(ctx context.Context) syscall.Errno {
	if h.st == nil {
		h.f.Close() //nolint:errcheck // read-only
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
		h.st.f.Close() //nolint:errcheck // dropped
		if !m.referenced(h.st.id) {
			m.journal.removeFile(h.st.id)
		}
		return 0
	}
	if !h.e.attached(m.root) && !m.referenced(h.st.id) {
		// Unlinked while open, and nothing left to flush: it is gone.
		h.e.staged = nil
		h.st.f.Close() //nolint:errcheck // gone
		m.journal.removeFile(h.st.id)
		return 0
	}
	m.retire(h.e)
	return 0
}
