package contentcache_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/strand-dev/strand/contentcache"
)

func packOf(t *testing.T, n, from int) []contentcache.PackEntry {
	t.Helper()
	var out []contentcache.PackEntry
	for i := from; i < from+n; i++ {
		data := []byte(fmt.Sprintf("packed content %d\n", i))
		if i == 0 {
			data = nil // empty content packs too
		}
		out = append(out, contentcache.PackEntry{Hash: hashOf(data), Data: data})
	}
	return out
}

func TestCache_PutPack(t *testing.T) {
	dir := t.TempDir()
	c, err := contentcache.Open(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	single := []byte("held on its own")
	if err := c.Put(hashOf(single), single); err != nil {
		t.Fatal(err)
	}
	entries := append(packOf(t, 40, 0), contentcache.PackEntry{Hash: hashOf(single), Data: single})
	if err := c.PutPack(entries); err != nil {
		t.Fatal(err)
	}
	packs, _ := filepath.Glob(filepath.Join(dir, "packs", "*.pack"))
	if len(packs) != 1 {
		t.Fatalf("%d pack files, want 1", len(packs))
	}
	check := func(name string, c *contentcache.Cache) {
		t.Helper()
		for _, e := range entries {
			if !c.Has(e.Hash) {
				t.Fatalf("%s: Has(%s) is false", name, e.Hash)
			}
			got, ok, err := c.Get(e.Hash)
			if err != nil || !ok || !bytes.Equal(got, e.Data) {
				t.Fatalf("%s: Get(%s) = %q, %v, %v; want %q", name, e.Hash, got, ok, err, e.Data)
			}
			f, ok, err := c.Open(e.Hash)
			if err != nil || !ok {
				t.Fatalf("%s: Open(%s) = %v, %v", name, e.Hash, ok, err)
			}
			got, err = io.ReadAll(f)
			f.Close()
			if err != nil || !bytes.Equal(got, e.Data) {
				t.Fatalf("%s: read of Open(%s) = %q, %v; want %q", name, e.Hash, got, err, e.Data)
			}
			if ok, err := c.Verify(e.Hash); !ok || err != nil {
				t.Fatalf("%s: Verify(%s) = %v, %v", name, e.Hash, ok, err)
			}
		}
	}
	check("the writer", c)
	// Another process: the packs are read at Open, and again when the
	// folder changes.
	other, err := contentcache.Open(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	if other.Size() != c.Size() {
		t.Fatalf("reopened size %d, want %d", other.Size(), c.Size())
	}
	check("another process", other)
	more := packOf(t, 10, 100)
	if err := c.PutPack(more); err != nil {
		t.Fatal(err)
	}
	if !other.Has(more[3].Hash) {
		t.Fatal("another process does not see a pack written after it opened the cache")
	}
	t.Run("Mismatch", func(t *testing.T) {
		bad := []contentcache.PackEntry{{Hash: hashOf([]byte("a")), Data: []byte("b")}}
		if err := c.PutPack(bad); !errors.Is(err, contentcache.ErrMismatch) {
			t.Fatalf("PutPack with a wrong hash: got %v, want ErrMismatch", err)
		}
	})
	t.Run("Damaged", func(t *testing.T) {
		// Flip a byte of the first pack's content: its entries are misses
		// from then on, never wrong bytes.
		raw, err := os.ReadFile(packs[0])
		if err != nil {
			t.Fatal(err)
		}
		raw[0] ^= 0xff
		if err := os.WriteFile(packs[0], raw, 0o644); err != nil {
			t.Fatal(err)
		}
		fresh, err := contentcache.Open(dir, 0)
		if err != nil {
			t.Fatal(err)
		}
		first := entries[1] // entries[0] is the empty content, at offset 0 with no bytes
		if got, ok, _ := fresh.Get(first.Hash); ok {
			t.Fatalf("Get of a damaged packed entry returned %q", got)
		}
		if fresh.Has(first.Hash) {
			t.Fatal("the damaged pack is still held")
		}
		if !fresh.Has(hashOf(single)) || !fresh.Has(more[3].Hash) {
			t.Fatal("removing the damaged pack lost other entries")
		}
	})
}

func TestCache_EvictsPacks(t *testing.T) {
	dir := t.TempDir()
	c, err := contentcache.Open(dir, 20_000)
	if err != nil {
		t.Fatal(err)
	}
	var last []contentcache.PackEntry
	for i := 0; i < 10; i++ {
		var entries []contentcache.PackEntry
		for j := 0; j < 5; j++ {
			data := bytes.Repeat([]byte{byte(i), byte(j)}, 500)
			entries = append(entries, contentcache.PackEntry{Hash: hashOf(data), Data: data})
		}
		if err := c.PutPack(entries); err != nil {
			t.Fatal(err)
		}
		if c.Size() > 20_000 {
			t.Fatalf("after %d packs the cache holds %d bytes, bound 20000", i+1, c.Size())
		}
		last = entries
	}
	for _, e := range last {
		if !c.Has(e.Hash) {
			t.Fatal("an entry of the newest pack was evicted")
		}
	}
	first := bytes.Repeat([]byte{0, 0}, 500)
	if c.Has(hashOf(first)) {
		t.Fatal("an entry of the oldest pack is still held")
	}
}
