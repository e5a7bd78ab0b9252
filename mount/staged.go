package mount

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"

	"github.com/strand-dev/strand/domain"
)

// staged is the local content of a file being written: a staging file in
// the journal. Writes take mu for reading (pwrite is safe in parallel), a
// flush's snapshot takes it for writing so that what it hashes is one
// state of the file.
type staged struct {
	id string
	f  *os.File

	mu     sync.RWMutex
	gen    atomic.Uint64 // bumped by every change
	closed bool          // retired or dropped (under mu): the entry has no staging file now

	cmu sync.Mutex
	// dirty chunks (index by chunkSize) since the base content; all is set
	// when there is no base (a new file) or the chunk size is unknown.
	chunks   map[int64]bool
	all      bool
	baseSize int64

	// Guarded by Mount.mu:
	dirty bool // changed since the last snapshot; a write op is queued
	refs  int  // open handles
	// loose: written without an open (no-open mode), so no close will
	// tell when it is free; a large one is retired when the kernel
	// forgets the inode.
	loose bool
	// flushedGen and flushed: the state the service last stored.
	flushedGen uint64
	flushed    domain.Hash
}

func (s *staged) markChunks(off, n int64) {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	if s.all || n <= 0 {
		return
	}
	if s.chunks == nil {
		s.chunks = map[int64]bool{}
	}
	for i := off / chunkSize; i <= (off+n-1)/chunkSize; i++ {
		s.chunks[i] = true
	}
}

// markAll makes the next snapshot upload every chunk: after a flush that
// failed, the service may lack chunks the snapshot took as sent.
func (s *staged) markAll() {
	s.cmu.Lock()
	s.all = true
	s.cmu.Unlock()
}

// errRetired is returned by a staged file that was closed meanwhile: the
// caller stages the entry again.
var errRetired = errors.New("staging file retired")

// close closes the staging file once no write or read is under way.
func (s *staged) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		s.f.Close() //nolint:errcheck // read-only or dropped from here on
	}
}

// closeAt closes the staging file if nothing changed it since generation
// gen, waiting for a write under way; it reports whether it closed it. A
// staging file retired into the cache under the hash of generation gen
// must hold exactly that content: a write that slipped in between the
// check and the close would be lost, and the cache would hold the wrong
// bytes under that hash.
func (s *staged) closeAt(gen uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.gen.Load() != gen {
		return false
	}
	s.closed = true
	s.f.Close() //nolint:errcheck // read-only from here on
	return true
}

// readAt reads the staging file.
func (s *staged) readAt(p []byte, off int64) (int, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, errRetired
	}
	return s.f.ReadAt(p, off)
}

// writeAt writes to the staging file.
func (s *staged) writeAt(p []byte, off int64) (int, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, errRetired
	}
	n, err := s.f.WriteAt(p, off)
	s.markChunks(off, int64(n))
	s.gen.Add(1)
	return n, err
}

// truncate changes the staging file's size.
func (s *staged) truncate(size int64) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return errRetired
	}
	st, err := s.f.Stat()
	if err != nil {
		return err
	}
	if err := s.f.Truncate(size); err != nil {
		return err
	}
	lo, hi := min(size, st.Size()), max(size, st.Size())
	s.markChunks(lo, max(hi-lo, 1))
	s.gen.Add(1)
	return nil
}

// snapshot is one state of a staged file, as a flush sends it.
type snapshot struct {
	gen    uint64
	hash   domain.Hash
	size   int64
	inline []byte // the whole content, when it is at most one chunk
	// chunks of larger content, and the data of those that changed
	chunkHashes []domain.Hash
	changed     map[int][]byte
}

// take hashes the staging file in one pass: the whole content and, for
// content larger than a chunk, each chunk (keeping the data of the changed
// ones to upload).
func (s *staged) take() (snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cmu.Lock()
	all, dirty, baseSize := s.all, s.chunks, s.baseSize
	s.chunks, s.all = nil, false
	s.cmu.Unlock()
	restore := func() {
		s.cmu.Lock()
		s.all = s.all || all
		for i := range dirty {
			if s.chunks == nil {
				s.chunks = map[int64]bool{}
			}
			s.chunks[i] = true
		}
		s.cmu.Unlock()
	}
	st, err := s.f.Stat()
	if err != nil {
		restore()
		return snapshot{}, fmt.Errorf("stat staging file: %w", err)
	}
	snap := snapshot{gen: s.gen.Load(), size: st.Size()}
	sum := sha256.New()
	if snap.size <= chunkSize {
		data := make([]byte, snap.size)
		if _, err := s.f.ReadAt(data, 0); err != nil && err != io.EOF {
			restore()
			return snapshot{}, fmt.Errorf("read staging file: %w", err)
		}
		snap.inline, snap.hash = data, domain.Sum(data)
		s.baseSize = snap.size
		return snap, nil
	}
	snap.changed = map[int][]byte{}
	buf := make([]byte, chunkSize)
	for i, off := 0, int64(0); off < snap.size; i, off = i+1, off+chunkSize {
		n, err := s.f.ReadAt(buf, off)
		if err != nil && err != io.EOF {
			restore()
			return snapshot{}, fmt.Errorf("read staging file: %w", err)
		}
		sum.Write(buf[:n])
		snap.chunkHashes = append(snap.chunkHashes, domain.Sum(buf[:n]))
		// A chunk is new if written, or past (or at the ragged end of) the
		// base content, whose last chunk was shorter.
		if all || dirty[int64(i)] || off+int64(n) > baseSize || (off+chunkSize > baseSize && int64(n) != baseSize-off) {
			snap.changed[i] = append([]byte(nil), buf[:n]...)
		}
	}
	copy(snap.hash[:], sum.Sum(nil))
	s.baseSize = snap.size
	return snap, nil
}
