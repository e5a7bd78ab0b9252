package mount

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/strand-dev/strand/contentcache"
	"github.com/strand-dev/strand/domain"
)

// blobs is the mount's side of the machine's content cache
// (contentcache): it opens content in place for reads in parts, fetches
// what is missing once however many opens wait for it, checks each entry
// the first time this mount uses it, and counts.
type blobs struct {
	cc  *contentcache.Cache
	tmp string // where fetches are written before they enter the cache

	mu       sync.Mutex
	fetching map[domain.Hash]*fetchCall
	verified map[domain.Hash]bool

	hits, misses, fetched atomic.Int64
}

type fetchCall struct {
	done chan struct{}
	err  error
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
	return &blobs{cc: cc, tmp: tmp, fetching: map[domain.Hash]*fetchCall{}, verified: map[domain.Hash]bool{}}, nil
}

func (b *blobs) stats() CacheStats {
	return CacheStats{Dir: b.cc.Dir(), Bytes: b.cc.Size(), MaxBytes: b.cc.MaxBytes(), Hits: b.hits.Load(),
		Misses: b.misses.Load(), FetchedBytes: b.fetched.Load()}
}

// held reports whether the cache holds h (unchecked).
func (b *blobs) held(h domain.Hash) bool { return b.cc.Has(h.String()) }

// open returns the content with hash h, fetching it with fetch (which
// writes it to w) when the cache does not hold it. Concurrent calls for
// one hash fetch once.
func (b *blobs) open(h domain.Hash, fetch func(w io.Writer) error) (*os.File, error) {
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
		call.err = b.fetch(h, fetch)
		b.mu.Lock()
		delete(b.fetching, h)
		b.mu.Unlock()
		close(call.done)
		if call.err != nil {
			return nil, call.err
		}
	}
}

// cached opens h if the cache holds it, checking it on first use.
func (b *blobs) cached(h domain.Hash) (*os.File, error) {
	b.mu.Lock()
	ok := b.verified[h]
	b.mu.Unlock()
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
	return b.adopt(tmp.Name(), h)
}

// put stores content held in memory.
func (b *blobs) put(h domain.Hash, data []byte) error {
	if err := b.cc.Put(h.String(), data); err != nil {
		return err
	}
	b.mu.Lock()
	b.verified[h] = true
	b.mu.Unlock()
	return nil
}

// adopt moves a file with content h into the cache.
func (b *blobs) adopt(name string, h domain.Hash) error {
	if err := b.cc.PutFile(h.String(), name); err != nil {
		return err
	}
	b.mu.Lock()
	b.verified[h] = true
	b.mu.Unlock()
	return nil
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
