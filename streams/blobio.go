package streams

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"

	"github.com/strand-dev/strand/domain"
)

// PutStream stores content read from r, at most limit bytes (more fails
// with too_large), without holding more than one chunk in memory. The
// layout is the one Put gives the same content: one message up to the
// chunk size, chunks plus an index beyond.
func (b *Blobs) PutStream(ctx context.Context, r io.Reader, limit int64) (domain.Hash, int64, error) {
	limit = min(limit, domain.MaxBlobSize)
	buf := make([]byte, b.chunkSize)
	sum := sha256.New()
	var idx chunkIndex
	var total int64
	var first []byte
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			total += int64(n)
			if total > limit {
				return domain.Hash{}, 0, domain.Errorf(domain.CodeTooLarge, "content larger than %d bytes", limit)
			}
			sum.Write(buf[:n])
			if first == nil && len(idx.Chunks) == 0 && (errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)) {
				// All of it fits in one message.
				first = buf[:n]
			} else {
				ch := domain.Sum(buf[:n])
				if err := b.putRaw(ctx, ch, buf[:n]); err != nil {
					return domain.Hash{}, 0, err
				}
				idx.add(ch, int64(n), sum, total)
			}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return domain.Hash{}, 0, err
		}
	}
	var h domain.Hash
	sum.Sum(h[:0])
	if len(idx.Chunks) == 0 {
		return h, total, b.putRaw(ctx, h, first)
	}
	if len(idx.Chunks) == 1 {
		// Exactly one full chunk: Put stores that as one message too.
		return h, total, nil
	}
	return h, total, b.putIndex(ctx, h, total, idx)
}

// ChunkReader returns a reader of the concatenated content of blobs, read
// one at a time, in order.
func (b *Blobs) ChunkReader(ctx context.Context, chunks []domain.Hash) io.Reader {
	return &chunkReader{ctx: ctx, b: b, chunks: chunks}
}

type chunkReader struct {
	ctx    context.Context
	b      *Blobs
	chunks []domain.Hash
	cur    []byte
}

func (r *chunkReader) Read(p []byte) (int, error) {
	for len(r.cur) == 0 {
		if len(r.chunks) == 0 {
			return 0, io.EOF
		}
		data, err := r.b.Get(r.ctx, r.chunks[0])
		if err != nil {
			return 0, err
		}
		r.cur, r.chunks = data, r.chunks[1:]
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}
