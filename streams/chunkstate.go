package streams

import (
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"hash"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
)

// A chunk index keeps, for each boundary between its chunks and for its
// end, the SHA-256 chaining value of the content before it
// (chunkIndex.States). A new
// content that shares its first chunks with one already stored, as an
// append or a change far into a large file does, is then verified by
// hashing only the chunks from the first that differs: the state of the
// shared ones is taken from the stored index, which the service wrote
// when it hashed them. Without it every flush of a changed 256 MiB file
// read back and hashed all 256 MiB (docs/mounts.md, "Large files").

// sha256Magic and sha256Marshaled are the layout of a SHA-256 state as Go's
// crypto/sha256 marshals it: magic, the eight chaining words (big endian),
// the pending block, the length in bytes.
const (
	sha256Magic     = "sha\x03"
	sha256Marshaled = len(sha256Magic) + 32 + sha256.BlockSize + 8
)

// chunkState returns the chaining value of sum after n bytes, or nil when n
// is not a whole number of SHA-256 blocks (the state would need the
// pending bytes too) or the state does not marshal as known.
func chunkState(sum hash.Hash, n int64) []byte {
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
	return b[len(sha256Magic) : len(sha256Magic)+32]
}

// resumeSum returns a SHA-256 that continues from a chaining value taken
// by chunkState after n bytes; false when it cannot.
func resumeSum(state []byte, n int64) (hash.Hash, bool) {
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

// resumable returns the leading chunks of chunks that content base (a
// chunk index) holds too, as an index of them, with the state to resume
// hashing after them; false when none can be skipped. The last chunk is
// always left to read.
func (b *Blobs) resumable(ctx context.Context, base domain.Hash, chunks []domain.Hash) (chunkIndex, hash.Hash, bool) {
	if base.IsZero() || len(chunks) < 2 {
		return chunkIndex{}, nil, false
	}
	m, err := b.get(ctx, base)
	if err != nil || m.Header.Get(names.HeaderBlobKind) != blobChunks {
		return chunkIndex{}, nil, false
	}
	var idx chunkIndex
	if err := domain.DecodeMsgpack(m.Data, &idx); err != nil || len(idx.Chunks) != len(idx.Sizes) || len(idx.States) != len(idx.Chunks)+1 {
		return chunkIndex{}, nil, false
	}
	k := 0
	var size int64
	for k < len(chunks)-1 && k < len(idx.Chunks) && string(idx.Chunks[k]) == string(chunks[k][:]) {
		size += idx.Sizes[k]
		k++
	}
	// Back off to the last boundary with a state.
	for ; k > 0; k-- {
		if sum, ok := resumeSum(idx.States[k], size); ok {
			return chunkIndex{Chunks: idx.Chunks[:k], Sizes: idx.Sizes[:k], States: idx.States[:k+1]}, sum, true
		}
		size -= idx.Sizes[k-1]
	}
	return chunkIndex{}, nil, false
}
