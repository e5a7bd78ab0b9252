package mount

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	lru "github.com/hashicorp/golang-lru/v2"

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

	// The chunk hashes of the last snapshot of more than one chunk, and
	// the SHA-256 state before each of its chunks (and after the last), so
	// that the next snapshot hashes from the first chunk changed since
	// rather than the whole file: an append to a large file hashes its
	// last chunks only. Under mu, written with it held for writing.
	lastHash   domain.Hash
	lastHashes []domain.Hash
	lastStates [][]byte

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

// writeAt writes to the staging file. The service stores files of up to
// domain.MaxBlobSize: a write past it fails here with EFBIG, as on a disk
// whose files have a largest size (a write that crosses it writes what
// fits), rather than later at the flush.
func (s *staged) writeAt(p []byte, off int64) (int, error) {
	if off >= domain.MaxBlobSize {
		return 0, syscall.EFBIG
	}
	p = p[:min(int64(len(p)), domain.MaxBlobSize-off)]
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

// size is the staging file's size.
func (s *staged) size() (int64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, errRetired
	}
	st, err := s.f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
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
	// chunks of larger content; changed lists the chunks that changed
	// since the base content, in order, and held the data of the last
	// heldChunks of them, read under the same lock as the hashes.
	chunkHashes []domain.Hash
	changed     []int
	held        map[int][]byte
	// hashed is how many bytes of the staging file taking it read and
	// hashed.
	hashed int64
}

// heldChunks is how many changed chunks a snapshot keeps in memory: the
// last ones, where a file still being written (a copy, a log) changes
// next. The others are read back from the staging file as they are
// uploaded and checked against the hash taken here, so that a flush of a
// large new file holds a few chunks in memory, not the file.
const heldChunks = 16

// errChangedSince is a chunk read back for its upload that no longer
// holds what the snapshot hashed: the file was written meanwhile, and the
// snapshot is taken again.
var errChangedSince = errors.New("staging file changed since its snapshot")

// take hashes the staging file in one pass: the whole content and, for
// content larger than a chunk, each chunk (noting the changed ones and
// keeping the data of the last of them to upload). held says the caller
// holds s.mu for writing already.
func (s *staged) take(held bool) (snapshot, error) {
	if !held {
		s.mu.Lock()
		defer s.mu.Unlock()
	}
	if s.closed {
		return snapshot{}, errRetired
	}
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
		snap.inline, snap.hash, snap.hashed = data, domain.Sum(data), snap.size
		s.baseSize = snap.size
		s.lastHash, s.lastHashes, s.lastStates = domain.Hash{}, nil, nil
		return snap, nil
	}
	// The chunks that changed, known before reading: a chunk is new if
	// written, or past (or at the ragged end of) the base content, whose
	// last chunk was shorter. The last heldChunks of them are kept.
	n := int((snap.size + chunkSize - 1) / chunkSize)
	for i := range n {
		off := int64(i) * chunkSize
		end := min(off+chunkSize, snap.size)
		if all || dirty[int64(i)] || end > baseSize || (off+chunkSize > baseSize && end-off != baseSize-off) {
			snap.changed = append(snap.changed, i)
		}
	}
	hold := map[int]bool{}
	for _, i := range snap.changed[max(0, len(snap.changed)-heldChunks):] {
		hold[i] = true
	}
	snap.held = map[int][]byte{}
	snap.chunkHashes = make([]domain.Hash, 0, n)
	states := make([][]byte, 1, n+1)
	// The chunks before the first that changed are as the last snapshot
	// hashed them: start from its state after them.
	first := n
	if len(snap.changed) > 0 {
		first = snap.changed[0]
	}
	if !all {
		for k := min(first, len(s.lastHashes)); k > 0; k-- {
			if resumed, ok := domain.ResumeHash(s.lastStates[k], int64(k)*chunkSize); ok {
				sum = resumed
				snap.chunkHashes = append(snap.chunkHashes, s.lastHashes[:k]...)
				states = append(states, s.lastStates[1:k+1]...)
				break
			}
		}
	}
	buf := make([]byte, chunkSize)
	for i := len(snap.chunkHashes); i < n; i++ {
		k, err := s.f.ReadAt(buf, int64(i)*chunkSize)
		if err != nil && err != io.EOF {
			restore()
			return snapshot{}, fmt.Errorf("read staging file: %w", err)
		}
		sum.Write(buf[:k])
		snap.hashed += int64(k)
		snap.chunkHashes = append(snap.chunkHashes, domain.Sum(buf[:k]))
		states = append(states, domain.HashState(sum, int64(i)*chunkSize+int64(k)))
		if hold[i] {
			snap.held[i] = append([]byte(nil), buf[:k]...)
		}
	}
	copy(snap.hash[:], sum.Sum(nil))
	s.baseSize = snap.size
	s.lastHash, s.lastHashes, s.lastStates = snap.hash, snap.chunkHashes, states
	return snap, nil
}

// chunkStates are the chunk hashes of a large content and the hashing
// states before each of its chunks and after the last (staged.take).
type chunkStates struct {
	hashes []domain.Hash
	states [][]byte
}

// keptChunkStates is how many contents' states a mount keeps once their
// staging files went back into the cache: about 180 KiB each for a file
// of 1 GiB.
const keptChunkStates = 16

func newChunkStates() *lru.Cache[domain.Hash, chunkStates] {
	c, _ := lru.New[domain.Hash, chunkStates](keptChunkStates)
	return c
}

// states returns what the last snapshot of more than one chunk knew, if
// it was of content h.
func (s *staged) states(h domain.Hash) (chunkStates, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.lastHash != h || len(s.lastHashes) == 0 {
		return chunkStates{}, false
	}
	return chunkStates{hashes: s.lastHashes, states: s.lastStates}, true
}

// resume makes the next snapshot of a staging file just filled with
// content h start from cs, the states of h.
func (s *staged) resume(h domain.Hash, cs chunkStates) {
	s.lastHash, s.lastHashes, s.lastStates = h, cs.hashes, cs.states
}

// chunk returns chunk i of snapshot snap: the data it kept, or the chunk
// read back from the staging file, which must still hash as it did
// (errChangedSince if not; errRetired if the staging file was closed, its
// entry staged anew). held says the caller holds s.mu.
func (s *staged) chunk(snap *snapshot, i int, held bool) ([]byte, error) {
	if data, ok := snap.held[i]; ok {
		return data, nil
	}
	off := int64(i) * chunkSize
	data := make([]byte, min(chunkSize, snap.size-off))
	if !held {
		s.mu.RLock()
		defer s.mu.RUnlock()
	}
	if s.closed {
		return nil, errRetired
	}
	k, err := s.f.ReadAt(data, off)
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("read staging file: %w", err)
	}
	if k != len(data) || domain.Sum(data) != snap.chunkHashes[i] {
		return nil, errChangedSince
	}
	return data, nil
}
