package contentcache

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Open opens the entry with hash h for reading in place, for callers that
// read content in parts rather than whole (a mount's files). Unlike Get
// it does not read or check the bytes: the caller checks them (Verify)
// before trusting them. ok is false when the cache does not hold h.
func (c *Cache) Open(h string) (e Entry, ok bool, err error) {
	if !validHash(h) {
		return nil, false, ErrBadHash
	}
	f, err := os.Open(c.path(h))
	if errors.Is(err, fs.ErrNotExist) {
		e, ok = c.openPacked(h)
		return e, ok, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("open cached %s: %w", h, err)
	}
	return f, true, nil
}

// Verify reads the entry with hash h and checks it; a damaged entry is
// removed (with the pack that holds it) and reported as not held (ok
// false).
func (c *Cache) Verify(h string) (ok bool, err error) {
	e, held, err := c.Open(h)
	if err != nil || !held {
		return false, err
	}
	defer e.Close() //nolint:errcheck // read-only
	sum := sha256.New()
	if _, err := io.Copy(sum, e); err != nil {
		return false, fmt.Errorf("read cached %s: %w", h, err)
	}
	if hex.EncodeToString(sum.Sum(nil)) != h {
		if _, packed := e.(packEntry); packed {
			if loc, ok := c.inPack(h); ok {
				c.removePack(loc.p)
			}
			return false, nil
		}
		_ = os.Remove(c.path(h))
		return false, nil
	}
	return true, nil
}

// PutFile moves the file name into the cache as the entry for h, checking
// first that its content hashes to h (ErrMismatch, and the file is left
// where it was, when it does not). A file on another file system is
// copied, then removed. Content already held is not written again.
func (c *Cache) PutFile(h, name string) error {
	return c.putFile(h, name, true)
}

// AdoptFile is PutFile for a file whose content the caller hashed itself
// and has not changed since (a mount's staging file, hashed by its last
// flush): it is not read again to check. A wrong h would serve the wrong
// content under it, to every user of the cache.
func (c *Cache) AdoptFile(h, name string) error {
	return c.putFile(h, name, false)
}

func (c *Cache) putFile(h, name string, check bool) error {
	if !validHash(h) {
		return ErrBadHash
	}
	f, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("cache %s: %w", h, err)
	}
	defer f.Close() //nolint:errcheck // read-only
	var n int64
	if check {
		sum := sha256.New()
		if n, err = io.Copy(sum, f); err != nil {
			return fmt.Errorf("cache %s: %w", h, err)
		}
		if hex.EncodeToString(sum.Sum(nil)) != h {
			return ErrMismatch
		}
	} else {
		st, err := f.Stat()
		if err != nil {
			return fmt.Errorf("cache %s: %w", h, err)
		}
		n = st.Size()
	}
	p := c.path(h)
	if c.Has(h) {
		return os.Remove(name)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("cache %s: %w", h, err)
	}
	if err := os.Chmod(name, 0o644); err != nil {
		return fmt.Errorf("cache %s: %w", h, err)
	}
	if err := os.Rename(name, p); err != nil {
		// Another file system: copy into place, then remove the original.
		if err := c.copyIn(p, f); err != nil {
			return fmt.Errorf("cache %s: %w", h, err)
		}
		_ = os.Remove(name)
	}
	if c.size.Add(n) > c.maxBytes {
		return c.Trim()
	}
	return nil
}

func (c *Cache) copyIn(p string, f *os.File) error {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return err
	}
	_, werr := io.Copy(tmp, f)
	cerr := tmp.Close()
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), p)
	}
	if werr != nil {
		_ = os.Remove(tmp.Name())
	}
	return werr
}
