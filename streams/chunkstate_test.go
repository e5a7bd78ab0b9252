package streams_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/streams"
	"github.com/strand-dev/strand/streams/streamstest"
)

// TestBlobs_PutChunksResumes: content given as chunks that begins as
// content already stored (an append to a large file, a change far into
// it) is verified by reading only the chunks from the first that
// differs, and is stored exactly; a hash that does not match is still
// refused, after reading everything; a chunk size off SHA-256's block
// size, or a base that is not a chunk index, reads everything.
func TestBlobs_PutChunksResumes(t *testing.T) {
	ctx := context.Background()
	const chunk = 1024
	env := streamstest.Start(t, streamstest.Options{Config: streams.Config{ChunkSize: chunk}})
	b := env.Store.Blobs
	var read []domain.Hash
	streams.OnChunkRead(b, func(h domain.Hash) { read = append(read, h) })

	// put uploads content chunk by chunk and assembles it as a client
	// does, against base; it returns the hash and the chunks read back.
	put := func(content []byte, base domain.Hash) (domain.Hash, int) {
		t.Helper()
		chunks := uploadChunks(t, b, content, chunk)
		read = nil
		want := domain.Sum(content)
		h, size, err := b.PutChunks(ctx, chunks, want, base)
		if err != nil || h != want || size != int64(len(content)) {
			t.Fatalf("put chunks: %s %d %v, want %s %d", h, size, err, want, len(content))
		}
		got, err := b.Get(ctx, h)
		if err != nil || !bytes.Equal(got, content) {
			t.Fatalf("get %s: %d bytes, %v; want the %d bytes put", h, len(got), err, len(content))
		}
		return h, len(read)
	}
	content := make([]byte, 10*chunk+100)
	for i := range content {
		content[i] = byte(i*7 + i/1000)
	}
	h0, n := put(content, domain.Hash{})
	if n != 11 {
		t.Fatalf("first assembly read %d chunks, want all 11", n)
	}

	// An append: the ten full chunks are the base's; the ragged eleventh
	// and the new twelfth are read.
	content = append(content, bytes.Repeat([]byte("appended "), 150)...)
	h1, n := put(content, h0)
	if n != 2 {
		t.Fatalf("append: read %d chunks, want 2 (from the first that differs)", n)
	}
	// Again on the appended content: its index, itself resumed, carries
	// the states of the chunks it did not read.
	content = append(content, []byte("and more\n")...)
	h2, n := put(content, h1)
	if n != 1 {
		t.Fatalf("second append: read %d chunks, want 1", n)
	}
	// A change in chunk 3: chunks 3 to the end are read.
	content[3*chunk+10] ^= 0xff
	h3, n := put(content, h2)
	if n != len(content)/chunk+1-3 {
		t.Fatalf("change in chunk 3: read %d chunks, want %d", n, len(content)/chunk+1-3)
	}
	// The base shares nothing at the start: everything is read.
	other := bytes.Clone(content)
	other[0] ^= 0xff
	if _, n := put(other, h3); n != len(other)/chunk+1 {
		t.Fatalf("no common start: read %d chunks, want all %d", n, len(other)/chunk+1)
	}
	// A base that is one message, not an index: everything is read.
	small, err := b.Put(ctx, []byte("small"))
	if err != nil {
		t.Fatal(err)
	}
	if _, n := put(content[:5*chunk], small); n != 5 {
		t.Fatalf("base not an index: read %d chunks, want all 5", n)
	}

	// A hash that does not match is refused, and nothing is stored under
	// it, resumed or not.
	chunks := uploadChunks(t, b, append(bytes.Clone(content), 'x'), chunk)
	wrong := domain.Sum([]byte("not this content"))
	read = nil
	if _, _, err := b.PutChunks(ctx, chunks, wrong, h3); domain.ErrorCode(err) != domain.CodeInvalidArgument {
		t.Fatalf("wrong hash: got %v, want invalid_argument", err)
	}
	if len(read) != 1+len(chunks) {
		t.Fatalf("wrong hash: read %d chunks, want the resumed 1 and then all %d", len(read), len(chunks))
	}
	if _, err := b.Stat(ctx, wrong); domain.ErrorCode(err) != domain.CodeNotFound {
		t.Fatalf("wrong hash: stat %s: %v, want not_found", wrong, err)
	}
}

// TestBlobs_PutChunksUnalignedReadsAll: with a chunk size that is not a
// whole number of SHA-256 blocks no state is kept at a boundary off the
// blocks (with 1,000-byte chunks, all but every eighth), and a change
// after such boundaries only is verified by reading every chunk, as
// before states were kept.
func TestBlobs_PutChunksUnalignedReadsAll(t *testing.T) {
	ctx := context.Background()
	const chunk = 1000
	env := streamstest.Start(t, streamstest.Options{Config: streams.Config{ChunkSize: chunk}})
	b := env.Store.Blobs
	reads := 0
	streams.OnChunkRead(b, func(domain.Hash) { reads++ })
	content := bytes.Repeat([]byte("0123456789abcdef"), 468) // 7 chunks and 488 bytes
	h0, err := b.Put(ctx, content)
	if err != nil {
		t.Fatal(err)
	}
	content = append(content, []byte("tail")...)
	chunks := uploadChunks(t, b, content, chunk)
	h, _, err := b.PutChunks(ctx, chunks, domain.Sum(content), h0)
	if err != nil || h != domain.Sum(content) {
		t.Fatalf("put chunks: %s %v", h, err)
	}
	if reads != len(chunks) {
		t.Fatalf("read %d chunks, want all %d", reads, len(chunks))
	}
}

// uploadChunks stores content's chunks of the given size one by one, as
// a client uploads them, and returns their hashes.
func uploadChunks(t *testing.T, b *streams.Blobs, content []byte, chunk int) []domain.Hash {
	t.Helper()
	var chunks []domain.Hash
	for off := 0; off < len(content); off += chunk {
		h, err := b.Put(context.Background(), content[off:min(off+chunk, len(content))])
		if err != nil {
			t.Fatal(err)
		}
		chunks = append(chunks, h)
	}
	return chunks
}
