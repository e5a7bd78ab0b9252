package contentcache

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
)

// DefaultMaxBytes bounds a cache opened without a bound: 2 GiB.
const DefaultMaxBytes = 2 << 30

// EnvDir names the environment variable that overrides DefaultDir.
const EnvDir = "STRAND_CACHE_DIR"

// ErrBadHash is returned for a key that is not 64 lowercase hex digits.
var ErrBadHash = errors.New("contentcache: key must be a SHA-256 in lowercase hex")

// ErrMismatch is returned by Put when the content does not hash to its key.
var ErrMismatch = errors.New("contentcache: content does not match its hash")

// Cache is a content-addressed cache in a directory. It is safe for
// concurrent use, by goroutines and by processes.
type Cache struct {
	dir      string
	maxBytes int64
	// size is the bytes held, counted once at Open and kept up to date by
	// this process (other processes' writes are seen at the next trim).
	size atomic.Int64
	trim sync.Mutex

	pmu   sync.Mutex // guards packs; taken after trim, never before
	packs packs
}

// DefaultDir is where the cache lives unless told otherwise:
// $STRAND_CACHE_DIR, else $XDG_CACHE_HOME/strand/content, else
// ~/.cache/strand/content (os.UserCacheDir).
func DefaultDir() (string, error) {
	if d := os.Getenv(EnvDir); d != "" {
		return d, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("find the user cache folder (set %s): %w", EnvDir, err)
	}
	return filepath.Join(base, "strand", "content"), nil
}

// Open opens (creating it if need be) the cache in dir, bounded to maxBytes
// (0: DefaultMaxBytes).
func Open(dir string, maxBytes int64) (*Cache, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("open content cache: %w", err)
	}
	c := &Cache{dir: dir, maxBytes: maxBytes, packs: packs{byName: map[string]*pack{}, entries: map[string]packLoc{}}}
	c.pmu.Lock()
	c.refreshPacksLocked()
	c.pmu.Unlock()
	n, err := c.count()
	if err != nil {
		return nil, err
	}
	c.size.Store(n)
	return c, nil
}

// Dir returns the cache's directory.
func (c *Cache) Dir() string { return c.dir }

// Size returns the bytes the cache holds, as this process counts them.
func (c *Cache) Size() int64 { return c.size.Load() }

// MaxBytes returns the cache's bound.
func (c *Cache) MaxBytes() int64 { return c.maxBytes }

func validHash(h string) bool {
	if len(h) != 64 {
		return false
	}
	for i := 0; i < len(h); i++ {
		b := h[i]
		if (b < '0' || b > '9') && (b < 'a' || b > 'f') {
			return false
		}
	}
	return true
}

func (c *Cache) path(h string) string { return filepath.Join(c.dir, h[:2], h[2:]) }

// Get returns the content with hash h. ok is false when the cache does not
// hold it (or holds damaged bytes, which are removed).
func (c *Cache) Get(h string) (data []byte, ok bool, err error) {
	if !validHash(h) {
		return nil, false, ErrBadHash
	}
	data, err = os.ReadFile(c.path(h))
	if errors.Is(err, fs.ErrNotExist) {
		data, ok = c.getPacked(h)
		return data, ok, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read cached %s: %w", h, err)
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != h {
		_ = os.Remove(c.path(h))
		return nil, false, nil
	}
	return data, true, nil
}

// Has reports whether the cache holds an entry for h (without checking it).
func (c *Cache) Has(h string) bool {
	if !validHash(h) {
		return false
	}
	if _, err := os.Stat(c.path(h)); err == nil {
		return true
	}
	_, ok := c.inPack(h)
	return ok
}

// Put stores data under its hash h. Content already held is not written
// again. Put fails with ErrMismatch when data does not hash to h.
func (c *Cache) Put(h string, data []byte) error {
	if !validHash(h) {
		return ErrBadHash
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != h {
		return ErrMismatch
	}
	p := c.path(h)
	if c.Has(h) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("cache %s: %w", h, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return fmt.Errorf("cache %s: %w", h, err)
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), p)
	}
	if werr != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("cache %s: %w", h, werr)
	}
	if c.size.Add(int64(len(data))) > c.maxBytes {
		return c.Trim()
	}
	return nil
}

// Link records the file at path, which holds the content with hash h, by
// a hard link when the cache is on the same file system (one system call
// instead of writing the content again) and by a copy otherwise. The
// caller vouches for the content; since Get checks it on every read, a
// linked file changed in place later is a miss, never wrong bytes.
func (c *Cache) Link(h, path string) error {
	if !validHash(h) {
		return ErrBadHash
	}
	p := c.path(h)
	err := os.Link(path, p)
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Lstat(path); serr != nil {
			return fmt.Errorf("cache %s: %w", h, serr)
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("cache %s: %w", h, err)
		}
		err = os.Link(path, p)
	}
	switch {
	case errors.Is(err, fs.ErrExist):
		return nil
	case err != nil:
		// Another file system, or links not allowed: copy.
		data, rerr := os.ReadFile(path)
		if rerr != nil {
			return fmt.Errorf("cache %s: %w", h, rerr)
		}
		return c.Put(h, data)
	}
	info, err := os.Lstat(p)
	if err != nil {
		return fmt.Errorf("cache %s: %w", h, err)
	}
	if !info.Mode().IsRegular() {
		_ = os.Remove(p)
		return fmt.Errorf("cache %s: %s is not a regular file", h, path)
	}
	if c.size.Add(info.Size()) > c.maxBytes {
		return c.Trim()
	}
	return nil
}

type entry struct {
	path  string
	size  int64
	mtime int64
}

func (c *Cache) entries() ([]entry, error) {
	var out []entry
	err := filepath.WalkDir(c.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		out = append(out, entry{path: p, size: info.Size(), mtime: info.ModTime().UnixNano()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list content cache: %w", err)
	}
	return out, nil
}

func (c *Cache) count() (int64, error) {
	es, err := c.entries()
	if err != nil {
		return 0, err
	}
	var n int64
	for _, e := range es {
		n += e.size
	}
	return n, nil
}

// Trim evicts the entries written longest ago until the cache holds at
// most three quarters of its bound. Put calls it when the bound is passed.
func (c *Cache) Trim() error {
	c.trim.Lock()
	defer c.trim.Unlock()
	es, err := c.entries()
	if err != nil {
		return err
	}
	var total int64
	for _, e := range es {
		total += e.size
	}
	sort.Slice(es, func(i, j int) bool { return es[i].mtime < es[j].mtime })
	goal := c.maxBytes / 4 * 3
	for _, e := range es {
		if total <= goal {
			break
		}
		if err := os.Remove(e.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("evict %s: %w", e.path, err)
		}
		total -= e.size
	}
	c.size.Store(total)
	c.pmu.Lock()
	c.refreshPacksLocked() // forget the packs evicted
	c.pmu.Unlock()
	return nil
}
