package contentcache_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/strand-dev/strand/contentcache"
)

func TestCache_PutFileOpenVerify(t *testing.T) {
	data := []byte("content kept in a file\n")
	c, h, name := cacheAndFile(t, data)
	t.Run("Mismatch", func(t *testing.T) {
		other := sha256.Sum256([]byte("other"))
		if err := c.PutFile(hex.EncodeToString(other[:]), name); !errors.Is(err, contentcache.ErrMismatch) {
			t.Fatalf("PutFile with a wrong hash: got %v, want ErrMismatch", err)
		}
		if _, err := os.Stat(name); err != nil {
			t.Fatalf("the file was not left in place: %v", err)
		}
	})
	if err := c.PutFile(h, name); err != nil {
		t.Fatalf("PutFile: %v", err)
	}
	if _, err := os.Stat(name); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("PutFile left the file behind: %v", err)
	}
	holds(t, c, h, data)
	if ok, err := c.Verify(h); !ok || err != nil {
		t.Errorf("Verify of a good entry: got %v, %v", ok, err)
	}
	// A damaged entry fails verification and is gone afterwards.
	f, _, _ := c.Open(h)
	p := f.(*os.File).Name()
	f.Close()
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("damaged"), 0o644); err != nil {
		t.Fatal(err)
	}
	if ok, err := c.Verify(h); ok || err != nil {
		t.Errorf("Verify of a damaged entry: got %v, %v; want false, nil", ok, err)
	}
	if _, ok, _ := c.Open(h); ok {
		t.Errorf("a damaged entry is still held after Verify")
	}
}

// TestCache_AdoptFile: a file the caller hashed itself is moved in as it
// is, counted in the cache's size, and a malformed hash is still refused.
func TestCache_AdoptFile(t *testing.T) {
	data := []byte("a staging file, hashed by its flush\n")
	c, h, name := cacheAndFile(t, data)
	if err := c.AdoptFile("not-a-hash", name); !errors.Is(err, contentcache.ErrBadHash) {
		t.Fatalf("AdoptFile with a malformed hash: got %v, want ErrBadHash", err)
	}
	before := c.Size()
	if err := c.AdoptFile(h, name); err != nil {
		t.Fatalf("AdoptFile: %v", err)
	}
	if _, err := os.Stat(name); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("AdoptFile left the file behind: %v", err)
	}
	if got := c.Size() - before; got != int64(len(data)) {
		t.Errorf("cache size grew by %d, want %d", got, len(data))
	}
	holds(t, c, h, data)
}

// cacheAndFile opens an empty cache and writes data to a file outside it;
// it returns the cache, data's hash and the file's name.
func cacheAndFile(t *testing.T, data []byte) (*contentcache.Cache, string, string) {
	t.Helper()
	c, err := contentcache.Open(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	name := filepath.Join(t.TempDir(), "staged")
	if err := os.WriteFile(name, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return c, hex.EncodeToString(sum[:]), name
}

// holds checks that c serves data as the entry for h.
func holds(t *testing.T, c *contentcache.Cache, h string, data []byte) {
	t.Helper()
	f, ok, err := c.Open(h)
	if err != nil || !ok {
		t.Fatalf("Open: got %v, %v", ok, err)
	}
	got, _ := io.ReadAll(f)
	f.Close()
	if string(got) != string(data) {
		t.Errorf("Open: got %q, want %q", got, data)
	}
}
