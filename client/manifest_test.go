package client_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"reflect"
	"syscall"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/strand-dev/strand/client"
)

// TestManifest_RoundTrip holds DecodeManifest to EncodeManifest, and to
// the rules that let the format grow: unknown keys and extra entry fields
// are skipped; a truncated or malformed body is an error, never a panic.
func TestManifest_RoundTrip(t *testing.T) {
	root := sha256.Sum256([]byte("root"))
	h1 := sha256.Sum256([]byte("one"))
	entries := []client.ManifestEntry{
		{Path: "a.txt", Kind: "file", Size: 3, Mode: 0o644, Hash: h1, Xattrs: map[string][]byte{"user.x": {0, 0xff}}},
		{Path: "dir", Kind: "dir", Mode: 0o755, Hash: root},
		{Path: "dir/l", Kind: "symlink", Mode: 0o777, Hash: h1, Target: "../a.txt"},
	}
	var buf bytes.Buffer
	if err := client.EncodeManifest(&buf, 42, root, "dir/l", entries); err != nil {
		t.Fatalf("encode: %v", err)
	}
	got, err := client.DecodeManifest(buf.Bytes())
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	want := client.ManifestReply{Position: 42, Root: hex.EncodeToString(root[:]), NextCursor: "dir/l", Entries: []client.EntryView{
		{Path: "a.txt", Kind: "file", Size: 3, Mode: 0o644, Hash: hex.EncodeToString(h1[:]), Xattrs: map[string][]byte{"user.x": {0, 0xff}}},
		{Path: "dir", Kind: "dir", Mode: 0o755, Hash: hex.EncodeToString(root[:])},
		{Path: "dir/l", Kind: "symlink", Mode: 0o777, Hash: hex.EncodeToString(h1[:]), Target: "../a.txt"},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	page, err := client.DecodeManifestPage(buf.Bytes())
	if err != nil {
		t.Fatalf("decode page: %v", err)
	}
	if wantPage := (client.ManifestPage{Position: 42, Root: root, NextCursor: "dir/l", Entries: entries}); !reflect.DeepEqual(page, wantPage) {
		t.Fatalf("page: got %+v, want %+v", page, wantPage)
	}

	t.Run("Empty", func(t *testing.T) {
		var buf bytes.Buffer
		if err := client.EncodeManifest(&buf, 1, root, "", nil); err != nil {
			t.Fatalf("encode: %v", err)
		}
		got, err := client.DecodeManifest(buf.Bytes())
		if err != nil || got.Entries == nil || len(got.Entries) != 0 || got.NextCursor != "" {
			t.Fatalf("got %+v, %v; want no entries (not nil), no cursor", got, err)
		}
		page, err := client.DecodeManifestPage(buf.Bytes())
		if err != nil || page.Entries == nil || len(page.Entries) != 0 || page.NextCursor != "" || page.Root != root {
			t.Fatalf("page: got %+v, %v; want no entries (not nil), no cursor", page, err)
		}
	})

	t.Run("Grows", func(t *testing.T) {
		body, err := msgpack.Marshal(map[string]any{
			"position": 7, "later": []int{1, 2},
			"entries": [][]any{{"f", "file", 1, 420, h1[:], "", nil, "an eighth field"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		got, err := client.DecodeManifest(body)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if got.Position != 7 || len(got.Entries) != 1 || got.Entries[0].Path != "f" || got.Entries[0].Hash != hex.EncodeToString(h1[:]) {
			t.Errorf("got %+v, want position 7 and entry f", got)
		}
		page, err := client.DecodeManifestPage(body)
		if err != nil {
			t.Fatalf("decode page: %v", err)
		}
		if page.Position != 7 || len(page.Entries) != 1 || page.Entries[0].Path != "f" || page.Entries[0].Hash != h1 {
			t.Errorf("page: got %+v, want position 7 and entry f", page)
		}
	})

	t.Run("Malformed", func(t *testing.T) {
		short, _ := msgpack.Marshal(map[string]any{"entries": [][]any{{"f", "file"}}})
		// A map of one key "entries" whose array claims 2^31 entries.
		huge := append([]byte{0x81, 0xa7}, "entries"...)
		huge = append(huge, 0xdd, 0x80, 0, 0, 0)
		bad := [][]byte{nil, huge, {0xc1}, []byte(`{"entries":[]}`), buf.Bytes()[:buf.Len()/2], short}
		for _, b := range bad {
			if _, err := client.DecodeManifest(b); err == nil {
				t.Errorf("decode %x: no error, want one", b)
			}
			if _, err := client.DecodeManifestPage(b); err == nil {
				t.Errorf("decode page %x: no error, want one", b)
			}
		}
	})
}

// BenchmarkDecodeManifest decodes a page of 1,000 entries (the default
// page size) and one of 10,000 (the bench's page size for a whole tree;
// docs/benchmarks.md, row 4). cpu-µs/op is the process's CPU (the
// garbage collector's included), which a loaded machine distorts less
// than the wall clock.
func BenchmarkDecodeManifest(b *testing.B) {
	for _, n := range []int{1_000, 10_000} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			benchmarkDecodeManifest(b, n)
		})
	}
}

func benchmarkDecodeManifest(b *testing.B, n int) {
	entries := make([]client.ManifestEntry, n)
	for i := range entries {
		entries[i] = client.ManifestEntry{Path: "d" + string(rune('a'+i%20)) + "/sub/file-" + hex.EncodeToString([]byte{byte(i >> 8), byte(i)}) + ".txt",
			Kind: "file", Size: int64(i * 37), Mode: 0o644, Hash: sha256.Sum256([]byte{byte(i), byte(i >> 8)})}
	}
	var buf bytes.Buffer
	if err := client.EncodeManifest(&buf, 1, [32]byte{}, "", entries); err != nil {
		b.Fatal(err)
	}
	for _, d := range []struct {
		name   string
		decode func([]byte) error
	}{
		{"reply", func(b []byte) error { _, err := client.DecodeManifest(b); return err }},
		{"page", func(b []byte) error { _, err := client.DecodeManifestPage(b); return err }},
	} {
		b.Run(d.name, func(b *testing.B) {
			b.SetBytes(int64(buf.Len()))
			b.ReportAllocs()
			cpu := processCPU()
			for b.Loop() {
				if err := d.decode(buf.Bytes()); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64((processCPU()-cpu).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}

// processCPU is the CPU time the process has used (user and system).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
