package client_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"reflect"
	"testing"

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

	t.Run("Empty", func(t *testing.T) {
		var buf bytes.Buffer
		if err := client.EncodeManifest(&buf, 1, root, "", nil); err != nil {
			t.Fatalf("encode: %v", err)
		}
		got, err := client.DecodeManifest(buf.Bytes())
		if err != nil || got.Entries == nil || len(got.Entries) != 0 || got.NextCursor != "" {
			t.Fatalf("got %+v, %v; want no entries (not nil), no cursor", got, err)
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
		}
	})
}

// BenchmarkDecodeManifest decodes a page of 10,000 entries, the bench's
// page size for a whole tree (docs/benchmarks.md, row 4).
func BenchmarkDecodeManifest(b *testing.B) {
	entries := make([]client.ManifestEntry, 10_000)
	for i := range entries {
		entries[i] = client.ManifestEntry{Path: "d" + string(rune('a'+i%20)) + "/sub/file-" + hex.EncodeToString([]byte{byte(i >> 8), byte(i)}) + ".txt",
			Kind: "file", Size: int64(i * 37), Mode: 0o644, Hash: sha256.Sum256([]byte{byte(i), byte(i >> 8)})}
	}
	var buf bytes.Buffer
	if err := client.EncodeManifest(&buf, 1, [32]byte{}, "", entries); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(buf.Len()))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := client.DecodeManifest(buf.Bytes()); err != nil {
			b.Fatal(err)
		}
	}
}
