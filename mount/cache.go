package mount

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strand-dev/strand/domain"
)

// DefaultCacheMax bounds the cache when no size is given.
const DefaultCacheMax int64 = 4 << 30

// Cache is a local content-addressed store of file contents, one file per
// SHA-256 under dir/blobs, shared by every mount on the machine: identical
// content is stored, and fetched, once. A blob is written to dir/tmp and
// renamed into place only once its hash is checked, so a reader (in this
// process or another) never sees a partial blob. Past max bytes the least
// recently used blobs are removed; a blob removed while open stays readable
// through the open descriptor.
type Cache struct {
	dir string
	max int64

	mu       sync.Mutex
	size     int64
	fetching map[domain.Hash]*fetchCall
	touched  map[domain.Hash]time.Time

	hits, misses, fetched, evicted atomic.Int64
}

type fetchCall struct {
	done chan struct{}
	err  error
}

// CacheStats are the cache's figures since it was opened.
type CacheStats struct {
	Dir          string `json:"dir"`
	Bytes        int64  `json:"bytes"`
	MaxBytes     int64  `json:"max_bytes"`
	Hits         int64  `json:"hits"`
	Misses       int64  `json:"misses"`
	FetchedBytes int64  `json:"fetched_bytes"`
	Evicted      int64  `json:"evicted"`
}

// OpenCache opens (creating it) the cache in dir, bounded to max bytes (0:
// DefaultCacheMax).
func OpenCache(dir string, max int64) (*Cache, error) {
	if max <= 0 {
		max = DefaultCacheMax
	}
	for _, d := range []string{filepath.Join(dir, "blobs"), filepath.Join(dir, "tmp")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("open cache: %w", err)
		}
	}
	c := &Cache{dir: dir, max: max, fetching: map[domain.Hash]*fetchCall{}, touched: map[domain.Hash]time.Time{}}
	size, err := c.scan(nil)
	if err != nil {
		return nil, err
	}
	c.size = size
	return c, nil
}

// Dir returns the cache folder.
func (c *Cache) Dir() string { return c.dir }

// Stats returns the cache's figures.
func (c *Cache) Stats() CacheStats {
	c.mu.Lock()
	size := c.size
	c.mu.Unlock()
	return CacheStats{Dir: c.dir, Bytes: size, MaxBytes: c.max, Hits: c.hits.Load(), Misses: c.misses.Load(),
		FetchedBytes: c.fetched.Load(), Evicted: c.evicted.Load()}
}

func (c *Cache) path(h domain.Hash) string {
	s := h.String()
	return filepath.Join(c.dir, "blobs", s[:2], s)
}

// Has reports whether the content is cached.
func (c *Cache) Has(h domain.Hash) bool {
	_, err := os.Stat(c.path(h))
	return err == nil
}

// Open returns the cached content with hash h, fetching it first with
// fetch (which writes the content to w) when it is not cached. Concurrent
// calls for the same hash fetch once.
func (c *Cache) Open(h domain.Hash, fetch func(w io.Writer) error) (*os.File, error) {
	for {
		if f, err := os.Open(c.path(h)); err == nil {
			c.hits.Add(1)
			c.touch(h)
			return f, nil
		}
		c.mu.Lock()
		if call, ok := c.fetching[h]; ok {
			c.mu.Unlock()
			<-call.done
			if call.err != nil {
				return nil, call.err
			}
			continue
		}
		call := &fetchCall{done: make(chan struct{})}
		c.fetching[h] = call
		c.mu.Unlock()
		c.misses.Add(1)
		call.err = c.fetch(h, fetch)
		c.mu.Lock()
		delete(c.fetching, h)
		c.mu.Unlock()
		close(call.done)
		if call.err != nil {
			return nil, call.err
		}
	}
}

func (c *Cache) fetch(h domain.Hash, fetch func(w io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Join(c.dir, "tmp"), "fetch-")
	if err != nil {
		return fmt.Errorf("cache %s: %w", h, err)
	}
	defer os.Remove(tmp.Name()) //nolint:errcheck // gone after the rename
	defer tmp.Close()           //nolint:errcheck // read-only use after the rename
	sum := sha256.New()
	cw := &countWriter{w: io.MultiWriter(tmp, sum)}
	if err := fetch(cw); err != nil {
		return fmt.Errorf("fetch %s: %w", h, err)
	}
	if got := domain.Hash(sum.Sum(nil)); got != h {
		return fmt.Errorf("fetch %s: content hashes to %s", h, got)
	}
	c.fetched.Add(cw.n)
	return c.install(tmp.Name(), h, cw.n)
}

// PutBytes stores content the caller has in memory.
func (c *Cache) PutBytes(h domain.Hash, data []byte) error {
	if c.Has(h) {
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Join(c.dir, "tmp"), "put-")
	if err != nil {
		return fmt.Errorf("cache %s: %w", h, err)
	}
	defer os.Remove(tmp.Name()) //nolint:errcheck // gone after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close() //nolint:errcheck // failing anyway
		return fmt.Errorf("cache %s: %w", h, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("cache %s: %w", h, err)
	}
	return c.install(tmp.Name(), h, int64(len(data)))
}

// Adopt moves a file whose content hashes to h into the cache (the file is
// gone from its place afterwards). The caller vouches for the hash.
func (c *Cache) Adopt(name string, h domain.Hash) error {
	st, err := os.Stat(name)
	if err != nil {
		return fmt.Errorf("cache %s: %w", h, err)
	}
	if c.Has(h) {
		return os.Remove(name)
	}
	return c.install(name, h, st.Size())
}

func (c *Cache) install(name string, h domain.Hash, size int64) error {
	dst := c.path(h)
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return fmt.Errorf("cache %s: %w", h, err)
	}
	if err := os.Chmod(name, 0o400); err != nil {
		return fmt.Errorf("cache %s: %w", h, err)
	}
	if err := os.Rename(name, dst); err != nil {
		return fmt.Errorf("cache %s: %w", h, err)
	}
	c.mu.Lock()
	c.size += size
	over := c.size > c.max
	c.mu.Unlock()
	c.touch(h)
	if over {
		c.evict()
	}
	return nil
}

// touch marks a blob as used (its mtime, which eviction orders by), at
// most once a minute per blob so that reads do not turn into writes.
func (c *Cache) touch(h domain.Hash) {
	now := time.Now()
	c.mu.Lock()
	last, ok := c.touched[h]
	if ok && now.Sub(last) < time.Minute {
		c.mu.Unlock()
		return
	}
	c.touched[h] = now
	c.mu.Unlock()
	_ = os.Chtimes(c.path(h), now, now) // best effort: it only orders eviction
}

type blobFile struct {
	path  string
	size  int64
	mtime time.Time
}

// scan sums the cached bytes, collecting the blobs into list when given.
func (c *Cache) scan(list *[]blobFile) (int64, error) {
	var total int64
	err := filepath.WalkDir(filepath.Join(c.dir, "blobs"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed by another process meanwhile
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil //nolint:nilerr // removed meanwhile
		}
		total += info.Size()
		if list != nil {
			*list = append(*list, blobFile{p, info.Size(), info.ModTime()})
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("scan cache: %w", err)
	}
	return total, nil
}

// evict removes the least recently used blobs until the cache holds at
// most 90% of its bound. Other processes share the folder, so it rescans
// rather than trusting its own count.
func (c *Cache) evict() {
	var list []blobFile
	total, err := c.scan(&list)
	if err != nil {
		return
	}
	sort.Slice(list, func(i, j int) bool { return list[i].mtime.Before(list[j].mtime) })
	target := c.max / 10 * 9
	for _, b := range list {
		if total <= target {
			break
		}
		if os.Remove(b.path) == nil {
			total -= b.size
			c.evicted.Add(1)
		}
	}
	c.mu.Lock()
	c.size = total
	c.mu.Unlock()
}

type countWriter struct {
	w io.Writer
	n int64
}

func (w *countWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	w.n += int64(n)
	return n, err
}
