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
	c, err := contentcache.Open(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("content kept in a file\n")
	sum := sha256.Sum256(data)
	h := hex.EncodeToString(sum[:])
	name := filepath.Join(t.TempDir(), "staged")
	if err := os.WriteFile(name, data, 0o600); err != nil {
		t.Fatal(err)
	}
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
	f, ok, err := c.Open(h)
	if err != nil || !ok {
		t.Fatalf("Open: got %v, %v", ok, err)
	}
	got, _ := io.ReadAll(f)
	f.Close()
	if string(got) != string(data) {
		t.Errorf("Open: got %q, want %q", got, data)
	}
	if ok, err := c.Verify(h); !ok || err != nil {
		t.Errorf("Verify of a good entry: got %v, %v", ok, err)
	}
	// A damaged entry fails verification and is gone afterwards.
	f, _, _ = c.Open(h)
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
	c, err := contentcache.Open(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("a staging file, hashed by its flush\n")
	sum := sha256.Sum256(data)
	h := hex.EncodeToString(sum[:])
	name := filepath.Join(t.TempDir(), "staged")
	if err := os.WriteFile(name, data, 0o600); err != nil {
		t.Fatal(err)
	}
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
