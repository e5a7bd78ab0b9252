package domain

import (
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"hash"
)

// A large content's SHA-256 can be resumed where its first chunks end:
// the chaining value after them, with their length, is the whole state of
// the hash at a 64-byte block boundary. The service keeps it in chunk
// indexes and a mount in its snapshots, so that content that begins as
// content hashed before (an append) is hashed from where it differs.

// sha256Magic and sha256Marshaled are the layout of a SHA-256 state as Go's
// crypto/sha256 marshals it: magic, the eight chaining words (big endian),
// the pending block, the length in bytes.
const (
	sha256Magic     = "sha\x03"
	sha256Marshaled = len(sha256Magic) + 32 + sha256.BlockSize + 8
)

// HashState returns the 32-byte chaining value of sum (a SHA-256 from
// sha256.New) after n bytes, or nil when n is not a whole number of
// blocks (the state would need the pending bytes too) or the state does
// not marshal as known.
func HashState(sum hash.Hash, n int64) []byte {
	if n <= 0 || n%sha256.BlockSize != 0 {
		return nil
	}
	m, ok := sum.(encoding.BinaryMarshaler)
	if !ok {
		return nil
	}
	b, err := m.MarshalBinary()
	if err != nil || len(b) != sha256Marshaled || string(b[:len(sha256Magic)]) != sha256Magic ||
		binary.BigEndian.Uint64(b[len(b)-8:]) != uint64(n) {
		return nil
	}
	return append(make([]byte, 0, 32), b[len(sha256Magic):len(sha256Magic)+32]...)
}

// ResumeHash returns a SHA-256 that continues from a chaining value that
// HashState took after n bytes; false when it cannot.
func ResumeHash(state []byte, n int64) (hash.Hash, bool) {
	if len(state) != 32 || n <= 0 || n%sha256.BlockSize != 0 {
		return nil, false
	}
	b := make([]byte, 0, sha256Marshaled)
	b = append(b, sha256Magic...)
	b = append(b, state...)
	b = append(b, make([]byte, sha256.BlockSize)...)
	b = binary.BigEndian.AppendUint64(b, uint64(n))
	sum := sha256.New()
	u, ok := sum.(encoding.BinaryUnmarshaler)
	if !ok || u.UnmarshalBinary(b) != nil {
		return nil, false
	}
	return sum, true
}
