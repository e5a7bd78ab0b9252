package streams

import (
	"context"
	"hash"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
)

// A chunk index keeps, for each boundary between its chunks and for its
// end, the SHA-256 chaining value of the content before it
// (chunkIndex.States, domain.HashState). A new content that shares its
// first chunks with one already stored, as an append or a change far into
// a large file does, is then verified by hashing only the chunks from the
// first that differs: the state of the shared ones is taken from the
// stored index, which the service wrote when it hashed them. Without it
// every flush of a changed 256 MiB file read back and hashed all 256 MiB
// (docs/mounts.md, "Large files").

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
		if sum, ok := domain.ResumeHash(idx.States[k], size); ok {
			return chunkIndex{Chunks: idx.Chunks[:k], Sizes: idx.Sizes[:k], States: idx.States[:k+1]}, sum, true
		}
		size -= idx.Sizes[k-1]
	}
	return chunkIndex{}, nil, false
}
