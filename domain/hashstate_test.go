package domain_test

import (
	"bytes"
	"crypto/sha256"
	"testing"

	"github.com/strand-dev/strand/domain"
)

// TestHashState: a SHA-256 resumed from the state HashState took at a
// block boundary gives the hash of the whole content; off a boundary, or
// from a state of the wrong length or for another length, there is none.
func TestHashState(t *testing.T) {
	data := bytes.Repeat([]byte("resumable content "), 1000) // 18,000 bytes
	want := domain.Sum(data)
	for _, at := range []int{64, 4096, 17984} {
		sum := sha256.New()
		sum.Write(data[:at])
		state := domain.HashState(sum, int64(at))
		if len(state) != 32 {
			t.Fatalf("state after %d bytes: %d bytes, want 32", at, len(state))
		}
		resumed, ok := domain.ResumeHash(state, int64(at))
		if !ok {
			t.Fatalf("resume after %d bytes refused", at)
		}
		resumed.Write(data[at:])
		if got := domain.Hash(resumed.Sum(nil)); got != want {
			t.Fatalf("resumed after %d bytes: %s, want %s", at, got, want)
		}
		// The state says nothing of the length: resumed as another one, the
		// hash is another.
		other, _ := domain.ResumeHash(state, int64(at+64))
		other.Write(data[at:])
		if domain.Hash(other.Sum(nil)) == want {
			t.Fatalf("a state resumed at the wrong length gave the right hash")
		}
	}
	sum := sha256.New()
	sum.Write(data[:100])
	if s := domain.HashState(sum, 100); s != nil {
		t.Errorf("state off a block boundary: %x, want none", s)
	}
	if _, ok := domain.ResumeHash(make([]byte, 31), 64); ok {
		t.Error("a 31-byte state resumed")
	}
	if _, ok := domain.ResumeHash(make([]byte, 32), 100); ok {
		t.Error("a state resumed off a block boundary")
	}
}
