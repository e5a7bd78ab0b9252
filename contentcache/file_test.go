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
