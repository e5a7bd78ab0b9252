package client

import (
	"bytes"
	"crypto/sha256"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// TestDecodeEntriesFast holds the direct decoders of entries (entryFast for
// the service's encodings, entrySlow for the others) to the general
// one: on random pages (long and empty strings, sizes of every integer
// width, xattrs or none) both give the same entries, and on every
// truncation of a page the direct one gives up (ok false) rather than
// decode something else.
func TestDecodeEntriesFast(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 16))
	for round := range 50 {
		entries := make([]ManifestEntry, rng.IntN(40))
		for i := range entries {
			e := &entries[i]
			e.Path = strings.Repeat("p", rng.IntN(300)) + string(rune('a'+i%26))
			e.Kind = []string{"file", "dir", "symlink"}[rng.IntN(3)]
			e.Size = []int64{0, 1, 127, 128, 255, 256, 65535, 65536, 1 << 40, -1, -129}[rng.IntN(11)]
			e.Mode = []uint32{0, 0o644, 0o100755, 1<<32 - 1}[rng.IntN(4)]
			e.Hash = sha256.Sum256([]byte(e.Path))
			if rng.IntN(3) == 0 {
				e.Target = strings.Repeat("t", rng.IntN(300))
			}
			if i == 0 && round%10 == 0 {
				e.Target = strings.Repeat("t", 70000) // a str32
			}
			if rng.IntN(4) == 0 {
				e.Xattrs = map[string][]byte{"user.a": {0, 1}, "user.b": bytes.Repeat([]byte{7}, rng.IntN(300))}
			}
		}
		var buf bytes.Buffer
		enc := msgpack.NewEncoder(&buf)
		if err := enc.EncodeArrayLen(len(entries)); err != nil {
			t.Fatal(err)
		}
		for i := range entries {
			if err := EncodeManifestEntry(enc, &entries[i]); err != nil {
				t.Fatal(err)
			}
		}
		body := buf.Bytes()
		want, err := decodeManifestEntries(msgpack.NewDecoder(bytes.NewReader(body)), len(body))
		if err != nil {
			t.Fatalf("round %d: general decoder: %v", round, err)
		}
		got, used, ok := decodeEntriesFast(body)
		if !ok || used != len(body) || !reflect.DeepEqual(got, want) {
			t.Fatalf("round %d: direct decoder: ok %v, used %d of %d, equal %v", round, ok, used, len(body), reflect.DeepEqual(got, want))
		}
		raw, used, ok := decodeRawEntries(body)
		if !ok || used != len(body) || len(raw) != len(entries) || (len(raw) > 0 && !reflect.DeepEqual(raw, entries)) {
			t.Fatalf("round %d: raw decoder: ok %v, used %d of %d, equal %v", round, ok, used, len(body), reflect.DeepEqual(raw, entries))
		}
		for k := 0; k < 20 && len(entries) > 0; k++ {
			cut := rng.IntN(len(body))
			if _, _, ok := decodeEntriesFast(body[:cut]); ok {
				t.Fatalf("round %d: %d of %d bytes decoded", round, cut, len(body))
			}
			if _, _, ok := decodeRawEntries(body[:cut]); ok {
				t.Fatalf("round %d: %d of %d bytes decoded raw", round, cut, len(body))
			}
		}
	}
}
