package contentcache_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/strand-dev/strand/contentcache"
)

func hashOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestCache_PutGet(t *testing.T) {
	c, err := contentcache.Open(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("hello, cache")
	h := hashOf(data)
	if _, ok, err := c.Get(h); ok || err != nil {
		t.Fatalf("Get before Put: ok=%v err=%v, want a miss", ok, err)
	}
	if err := c.Put(h, data); err != nil {
		t.Fatal(err)
	}
	got, ok, err := c.Get(h)
	if err != nil || !ok || !bytes.Equal(got, data) {
		t.Fatalf("Get = %q, %v, %v; want %q", got, ok, err, data)
	}
	if !c.Has(h) {
		t.Fatal("Has = false after Put")
	}
	// An empty file is content like any other.
	if err := c.Put(hashOf(nil), nil); err != nil {
		t.Fatal(err)
	}
	if got, ok, _ := c.Get(hashOf(nil)); !ok || len(got) != 0 {
		t.Fatalf("empty content: got %q, %v", got, ok)
	}
}

func TestCache_RefusesBadInput(t *testing.T) {
	c, err := contentcache.Open(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"", "../../etc/passwd", "ABCD", hashOf(nil)[:63] + "G", hashOf(nil) + "0"} {
		if err := c.Put(h, nil); !errors.Is(err, contentcache.ErrBadHash) {
			t.Errorf("Put(%q) = %v, want ErrBadHash", h, err)
		}
		if _, _, err := c.Get(h); !errors.Is(err, contentcache.ErrBadHash) {
			t.Errorf("Get(%q) = %v, want ErrBadHash", h, err)
		}
	}
	if err := c.Put(hashOf([]byte("a")), []byte("b")); !errors.Is(err, contentcache.ErrMismatch) {
		t.Fatalf("Put of content under another hash = %v, want ErrMismatch", err)
	}
	if c.Has(hashOf([]byte("a"))) {
		t.Fatal("a refused Put left an entry")
	}
}

func TestCache_DamagedEntryIsAMiss(t *testing.T) {
	dir := t.TempDir()
	c, err := contentcache.Open(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("original")
	h := hashOf(data)
	if err := c.Put(h, data); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, h[:2], h[2:]), []byte("tampered"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := c.Get(h); ok || err != nil {
		t.Fatalf("Get of a damaged entry = %q, %v, %v; want a miss", got, ok, err)
	}
	if c.Has(h) {
		t.Fatal("the damaged entry is still there")
	}
}

func TestCache_EvictsToItsBound(t *testing.T) {
	dir := t.TempDir()
	c, err := contentcache.Open(dir, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	var hashes []string
	for i := 0; i < 30; i++ {
		data := bytes.Repeat([]byte{byte(i)}, 1000)
		h := hashOf(data)
		hashes = append(hashes, h)
		if err := c.Put(h, data); err != nil {
			t.Fatal(err)
		}
		if c.Size() > 10_000 {
			t.Fatalf("after %d puts the cache holds %d bytes, bound 10000", i+1, c.Size())
		}
	}
	if !c.Has(hashes[29]) {
		t.Fatal("the newest entry was evicted")
	}
	// A second process opening the cache counts what is on disk.
	c2, err := contentcache.Open(dir, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	if c2.Size() != c.Size() {
		t.Fatalf("reopened size %d, want %d", c2.Size(), c.Size())
	}
}

func TestCache_ConcurrentPutsOfOneEntry(t *testing.T) {
	c, err := contentcache.Open(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("x"), 1<<16)
	h := hashOf(data)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Put(h, data); err != nil {
				errs <- err
			}
			if got, ok, err := c.Get(h); err != nil || (ok && !bytes.Equal(got, data)) {
				errs <- fmt.Errorf("Get during puts: ok=%v err=%v", ok, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestDefaultDir(t *testing.T) {
	t.Setenv(contentcache.EnvDir, "/tmp/somewhere")
	if d, err := contentcache.DefaultDir(); err != nil || d != "/tmp/somewhere" {
		t.Fatalf("DefaultDir with %s set = %q, %v", contentcache.EnvDir, d, err)
	}
	t.Setenv(contentcache.EnvDir, "")
	t.Setenv("XDG_CACHE_HOME", "/tmp/xdg")
	if d, err := contentcache.DefaultDir(); err != nil || d != "/tmp/xdg/strand/content" {
		t.Fatalf("DefaultDir with XDG_CACHE_HOME = %q, %v", d, err)
	}
}

func TestCache_Link(t *testing.T) {
	c, err := contentcache.Open(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("written into a working copy")
	h := hashOf(data)
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := c.Link(h, file); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := c.Get(h); err != nil || !ok || !bytes.Equal(got, data) {
		t.Fatalf("Get after Link = %q, %v, %v", got, ok, err)
	}
	// The file is changed in place (through the link): a miss, not wrong bytes.
	if err := os.WriteFile(file, []byte("edited in place"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := c.Get(h); ok || err != nil {
		t.Fatalf("Get after an in-place edit = %q, %v, %v; want a miss", got, ok, err)
	}
	if err := c.Link(h, filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("Link of a missing file succeeded")
	}
	if err := c.Link("nope", file); !errors.Is(err, contentcache.ErrBadHash) {
		t.Fatalf("Link with a bad hash = %v", err)
	}
}
