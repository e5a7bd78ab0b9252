package domain

import (
	"crypto/sha256"
	"encoding/hex"
)

// Hash is a SHA-256 digest: of file content, of a tree node, or of an event.
type Hash [32]byte

// ZeroHash is the hash of nothing: the previous-event hash of a first event.
var ZeroHash Hash

// String returns the lowercase hex form.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// IsZero reports whether h is the zero hash.
func (h Hash) IsZero() bool { return h == ZeroHash }

// Bytes returns h as a slice, or nil for the zero hash.
func (h Hash) Bytes() []byte {
	if h.IsZero() {
		return nil
	}
	return h[:]
}

// ParseHash parses a 64-character lowercase hex digest.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 64 {
		return h, Errorf(CodeInvalidArgument, "hash must be 64 hex characters")
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, Errorf(CodeInvalidArgument, "hash is not hex")
	}
	return h, nil
}

// HashFromBytes converts a slice of length 0 or 32 into a Hash.
func HashFromBytes(b []byte) (Hash, bool) {
	var h Hash
	if len(b) == 0 {
		return h, true
	}
	if len(b) != len(h) {
		return h, false
	}
	copy(h[:], b)
	return h, true
}

// Sum returns the SHA-256 of b.
func Sum(b []byte) Hash { return sha256.Sum256(b) }
