package mount

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strand-dev/strand/contentcache"
	"github.com/strand-dev/strand/domain"
)

// blobs is the mount's side of the machine's content cache
// (contentcache): it opens content in place for reads in parts, fetches
// what is missing once however many opens wait for it, checks each entry
// the first time this mount uses it, and counts.
//
// Small content that arrives in memory (a prefetch, a flushed write) is
// served from memory at once and written to the cache by a background
// writer, in packs of what arrived together: creating a file costs far
// more than reading one (0.15-0.8 ms on the machines of
// docs/benchmarks.md), and a read should not wait for it.
type blobs struct {
	cc  *contentcache.Cache
	tmp string // where fetches are written before they enter the cache

	mu       sync.Mutex
	fetching map[domain.Hash]*fetchCall
	verified map[domain.Hash]bool
	mem      map[domain.Hash][]byte // not yet in the cache; written by persist
	memBytes int64

	queue   chan domain.Hash // content in mem to write to the cache
	stopped chan struct{}    // closed once the writer has finished

	hits, misses, fetched atomic.Int64
}

// memMax bounds the content held in memory waiting for the cache; past it
// content is written to the cache before it is served.
const memMax = 128 << 20

// blob is content being read: a cache file, or bytes in memory.
type blob interface {
	io.Reader
	io.ReaderAt
	io.Closer
}

type memBlob struct{ *bytes.Reader }

func (memBlob) Close() error { return nil }

// fetchCall is one fetch of a content in progress, which opens of the same
// content wait for. A prefetch that fails ends its calls without an error:
// the waiters then fetch the content themselves.
type fetchCall struct {
	done chan struct{}
	err  error
}

// claim registers a fetch of h by the caller unless one is in progress;
// the caller must end it with settle. It does not look at the cache.
func (b *blobs) claim(h domain.Hash) (*fetchCall, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.fetching[h]; ok {
		return nil, false
	}
	call := &fetchCall{done: make(chan struct{})}
	b.fetching[h] = call
	return call, true
}

// inFlight reports whether h is being fetched.
func (b *blobs) inFlight(h domain.Hash) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.fetching[h]
	return ok
}

// settle ends a claimed fetch.
func (b *blobs) settle(h domain.Hash, call *fetchCall, err error) {
	b.mu.Lock()
	if b.fetching[h] == call {
		delete(b.fetching, h)
	}
	b.mu.Unlock()
	call.err = err
	close(call.done)
}

// CacheStats are the content cache's figures as a mount sees them.
type CacheStats struct {
	Dir          string `json:"dir"`
	Bytes        int64  `json:"bytes"`
	MaxBytes     int64  `json:"max_bytes"`
	Hits         int64  `json:"hits"`
	Misses       int64  `json:"misses"`
	FetchedBytes int64  `json:"fetched_bytes"`
}

func newBlobs(cc *contentcache.Cache, tmp string) (*blobs, error) {
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	b := &blobs{cc: cc, tmp: tmp, fetching: map[domain.Hash]*fetchCall{}, verified: map[domain.Hash]bool{},
		mem: map[domain.Hash][]byte{}, queue: make(chan domain.Hash, 1<<16), stopped: make(chan struct{})}
	go b.writer()
	return b, nil
}

// Packing: the writer gathers what arrives within packLinger of the
// first content (a prefetch delivers a batch one content after another),
// up to packMaxEntries contents or packMaxBytes, and stores it as one
// pack (contentcache.PutPack): one file created per batch instead of one
// per content. Content larger than packMaxContent gets a file of its own.
const (
	packLinger     = 20 * time.Millisecond
	packMaxEntries = 2000
	packMaxBytes   = 8 << 20
	packMaxContent = 1 << 20
)

// writer writes the content held in memory to the cache, in the order it
// came, until close.
func (b *blobs) writer() {
	defer close(b.stopped)
	for h := range b.queue {
		b.persist(b.gather(h))
	}
}

// gather returns h and what else the queue holds within packLinger, up
// to packMaxEntries.
func (b *blobs) gather(h domain.Hash) []domain.Hash {
	batch := []domain.Hash{h}
	linger := time.NewTimer(packLinger)
	defer linger.Stop()
	for len(batch) < packMaxEntries {
		select {
		case h, ok := <-b.queue:
			if !ok {
				return batch
			}
			batch = append(batch, h)
		case <-linger.C:
			return batch
		}
	}
	return batch
}

// persist writes the contents of batch held in memory to the cache: small
// ones in packs, large ones each in a file.
func (b *blobs) persist(batch []domain.Hash) {
	var pack []contentcache.PackEntry
	var packed []domain.Hash
	var bytes int
	flush := func() {
		if len(pack) > 0 {
			b.done(packed, b.cc.PutPack(pack))
		}
		pack, packed, bytes = nil, nil, 0
	}
	for _, h := range batch {
		b.mu.Lock()
		data, ok := b.mem[h]
		b.mu.Unlock()
		switch {
		case !ok:
		case len(data) > packMaxContent:
			b.done([]domain.Hash{h}, b.cc.Put(h.String(), data))
		default:
			pack = append(pack, contentcache.PackEntry{Hash: h.String(), Data: data})
			packed = append(packed, h)
			if bytes += len(data); bytes >= packMaxBytes {
				flush()
			}
		}
	}
	flush()
}

// done drops written contents from memory: the cache holds them now
// (checked), or, after a failed write, they are fetched again if read.
func (b *blobs) done(hs []domain.Hash, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, h := range hs {
		data, ok := b.mem[h]
		if !ok {
			continue
		}
		delete(b.mem, h)
		b.memBytes -= int64(len(data))
		if err == nil {
			b.verified[h] = true
		}
	}
}

// close writes what memory holds to the cache and stops the writer.
func (b *blobs) close() {
	close(b.queue)
	<-b.stopped
}

func (b *blobs) stats() CacheStats {
	return CacheStats{Dir: b.cc.Dir(), Bytes: b.cc.Size(), MaxBytes: b.cc.MaxBytes(), Hits: b.hits.Load(),
		Misses: b.misses.Load(), FetchedBytes: b.fetched.Load()}
}

// held reports whether the cache (or memory) holds h (unchecked). What
// this mount put into the cache or checked there is known without asking
// the cache (a stat of the disk per read, before).
func (b *blobs) held(h domain.Hash) bool {
	b.mu.Lock()
	_, ok := b.mem[h]
	ok = ok || b.verified[h]
	b.mu.Unlock()
	return ok || b.cc.Has(h.String())
}

// open returns the content with hash h, fetching it with fetch (which
// writes it to w) when the cache does not hold it. Concurrent calls for
// one hash fetch once.
func (b *blobs) open(h domain.Hash, fetch func(w io.Writer) error) (blob, error) {
	for {
		if f, err := b.cached(h); f != nil || err != nil {
			return f, err
		}
		b.mu.Lock()
		if call, ok := b.fetching[h]; ok {
			b.mu.Unlock()
			<-call.done
			if call.err != nil {
				return nil, call.err
			}
			continue
		}
		call := &fetchCall{done: make(chan struct{})}
		b.fetching[h] = call
		b.mu.Unlock()
		b.misses.Add(1)
		err := b.fetch(h, fetch)
		b.settle(h, call, err)
		if err != nil {
			return nil, err
		}
	}
}

// cached opens h if the cache holds it, checking it on first use.
func (b *blobs) cached(h domain.Hash) (blob, error) {
	b.mu.Lock()
	ok := b.verified[h]
	data, inMem := b.mem[h]
	b.mu.Unlock()
	if inMem {
		b.hits.Add(1)
		return memBlob{bytes.NewReader(data)}, nil
	}
	if !ok {
		good, err := b.cc.Verify(h.String())
		if err != nil || !good {
			return nil, err
		}
		b.mu.Lock()
		b.verified[h] = true
		b.mu.Unlock()
	}
	f, held, err := b.cc.Open(h.String())
	if err != nil || !held {
		return nil, err
	}
	b.hits.Add(1)
	return f, nil
}

func (b *blobs) fetch(h domain.Hash, fetch func(w io.Writer) error) error {
	tmp, err := os.CreateTemp(b.tmp, "fetch-")
	if err != nil {
		return fmt.Errorf("cache %s: %w", h, err)
	}
	defer os.Remove(tmp.Name()) //nolint:errcheck // moved into the cache, or failed
	sum := sha256.New()
	cw := &countWriter{w: io.MultiWriter(tmp, sum)}
	err = fetch(cw)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fetch %s: %w", h, err)
	}
	if got := domain.Hash(sum.Sum(nil)); got != h {
		return fmt.Errorf("fetch %s: content hashes to %s", h, got)
	}
	b.fetched.Add(cw.n)
	_, err = b.adopt(tmp.Name(), h) // held meanwhile: the deferred remove
	return err
}

// keep stores content that is in memory (and was checked against its
// hash): it is served from memory until the writer has put it in the
// cache. Past memMax it is written at once. data must not change.
func (b *blobs) keep(h domain.Hash, data []byte) error {
	b.mu.Lock()
	if _, ok := b.mem[h]; ok {
		b.mu.Unlock()
		return nil
	}
	if b.memBytes+int64(len(data)) <= memMax {
		b.mem[h] = data
		b.memBytes += int64(len(data))
		select {
		case b.queue <- h:
			b.mu.Unlock()
			return nil
		default: // the writer is far behind: write it here
			delete(b.mem, h)
			b.memBytes -= int64(len(data))
		}
	}
	b.mu.Unlock()
	return b.put(h, data)
}

// put stores content held in memory in the cache.
func (b *blobs) put(h domain.Hash, data []byte) error {
	if err := b.cc.Put(h.String(), data); err != nil {
		return err
	}
	b.mu.Lock()
	b.verified[h] = true
	b.mu.Unlock()
	return nil
}

// adopt moves a file with content h into the cache. When the cache holds
// h already (held), or on an error, the file is left where it was. The
// caller hashed the file itself (a fetch as it wrote it, a flush its
// staging file at the generation it still has): it is not read again.
func (b *blobs) adopt(name string, h domain.Hash) (held bool, err error) {
	if b.cc.Has(h.String()) {
		return true, nil
	}
	if err := b.cc.AdoptFile(h.String(), name); err != nil {
		return false, err
	}
	b.mu.Lock()
	b.verified[h] = true
	b.mu.Unlock()
	return false, nil
}

// fetched records bytes brought in by a prefetch.
func (b *blobs) addFetched(n int64) { b.fetched.Add(n) }

type countWriter struct {
	w io.Writer
	n int64
}

func (w *countWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	w.n += int64(n)
	return n, err
}

// tmpDir is where a mount writes fetches: beside its journals, on local
// disk.
func tmpDir(stateDir string) string { return filepath.Join(stateDir, "tmp") }
