package streams

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"strconv"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/vmihailenco/msgpack/v5"
	"golang.org/x/sync/errgroup"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
)

// Headers on blob messages.
const (
	blobRaw    = "raw"
	blobChunks = "chunks"
)

// Blobs is the content-addressed blob store: stream STRAND_BLOBS, one
// subject per SHA-256, at most one message per subject.
type Blobs struct {
	nc        *nats.Conn
	js        jetstream.JetStream
	stream    jetstream.Stream
	chunkSize int
	// batches: PutMany stores many small contents as atomic batches
	// (blobbatch.go); on where group commit is (store.go).
	batches bool
	stats   blobBatchStats
	// stored remembers contents this store put or found stored lately
	// (blobbatch.go): PutMany sends those one by one rather than in a
	// batch they would make refused.
	stored *lru.Cache[domain.Hash, struct{}]
	// onChunkRead, when set (tests), is told of every chunk PutChunks
	// reads back.
	onChunkRead func(domain.Hash)
}

type chunkIndex struct {
	Chunks [][]byte `msgpack:"c"`
	Sizes  []int64  `msgpack:"s"`
	// States[i] is the SHA-256 chaining value of the content before chunk
	// i (States[len(Chunks)]: of the whole content, before its final
	// padding), nil where there is none (i = 0, or a boundary that is not
	// a whole number of SHA-256 blocks): see chunkstate.go. Indexes
	// written before 2026-12-07 have none.
	States [][]byte `msgpack:"h,omitempty"`
}

// add appends a chunk, with the state of sum once it has hashed it.
func (idx *chunkIndex) add(ch domain.Hash, size int64, sum hash.Hash, total int64) {
	if idx.States == nil {
		idx.States = [][]byte{nil}
	}
	idx.Chunks = append(idx.Chunks, append([]byte(nil), ch[:]...))
	idx.Sizes = append(idx.Sizes, size)
	idx.States = append(idx.States, domain.HashState(sum, total))
}

// BlobInfo is domain.BlobInfo (the contracts own the types that cross them).
type BlobInfo = domain.BlobInfo

// Put stores content and returns its hash. Content already stored is not
// stored again.
func (b *Blobs) Put(ctx context.Context, data []byte) (domain.Hash, error) {
	if len(data) > domain.MaxBlobSize {
		return domain.Hash{}, domain.Errorf(domain.CodeTooLarge, "content larger than %d bytes", domain.MaxBlobSize)
	}
	if len(data) <= b.chunkSize {
		h := domain.Sum(data)
		return h, b.putRaw(ctx, h, data)
	}
	var idx chunkIndex
	sum := sha256.New()
	for off := 0; off < len(data); off += b.chunkSize {
		end := min(off+b.chunkSize, len(data))
		ch := domain.Sum(data[off:end])
		if err := b.putRaw(ctx, ch, data[off:end]); err != nil {
			return domain.Hash{}, err
		}
		sum.Write(data[off:end])
		idx.add(ch, int64(end-off), sum, int64(end))
	}
	var h domain.Hash
	sum.Sum(h[:0])
	return h, b.putIndex(ctx, h, int64(len(data)), idx)
}

// PutChunks stores the index of content already uploaded as chunks, after
// checking that every chunk exists and that together they hash to want (when
// want is not zero). It returns the hash and size of the whole content.
// base is content the new one may begin as (the content a write replaces;
// zero if none): the chunks they share at the start are not read again
// when base's index holds the hashing state after them (chunkstate.go).
func (b *Blobs) PutChunks(ctx context.Context, chunks []domain.Hash, want, base domain.Hash) (domain.Hash, int64, error) {
	if len(chunks) == 0 {
		return domain.Hash{}, 0, domain.Errorf(domain.CodeInvalidArgument, "no chunks")
	}
	if len(chunks) == 1 {
		info, err := b.Stat(ctx, chunks[0])
		if err != nil {
			return domain.Hash{}, 0, err
		}
		if err := b.keep(ctx, chunks[0], nil); err != nil { // see blobgc.go
			return domain.Hash{}, 0, err
		}
		if !want.IsZero() && want != chunks[0] {
			return domain.Hash{}, 0, domain.Errorf(domain.CodeInvalidArgument, "content hash does not match the chunks")
		}
		return chunks[0], info.Size, nil
	}
	if !want.IsZero() {
		if prefix, sum, ok := b.resumable(ctx, base, chunks); ok {
			h, size, idx, err := b.assemble(ctx, chunks, prefix, sum)
			if err != nil {
				return domain.Hash{}, 0, err
			}
			if h == want {
				return h, size, b.putIndex(ctx, h, size, idx)
			}
			// Not what the client hashed: hash it all before refusing.
		}
	}
	h, size, idx, err := b.assemble(ctx, chunks, chunkIndex{}, sha256.New())
	if err != nil {
		return domain.Hash{}, 0, err
	}
	if !want.IsZero() && want != h {
		return domain.Hash{}, 0, domain.Errorf(domain.CodeInvalidArgument, "content hash %s does not match the chunks (%s)", want, h)
	}
	return h, size, b.putIndex(ctx, h, size, idx)
}

// assemble hashes the chunks that follow prefix (the first chunks, known
// already, whose content sum has hashed), reading them a few at a time,
// and keeps every chunk from the collector. It returns the content's hash,
// size and index, for the caller to store once it has checked the hash.
func (b *Blobs) assemble(ctx context.Context, chunks []domain.Hash, prefix chunkIndex, sum hash.Hash) (domain.Hash, int64, chunkIndex, error) {
	idx := prefix
	var total int64
	for _, n := range idx.Sizes {
		total += n
	}
	k := len(idx.Chunks)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(chunkReadsInFlight)
	for _, ch := range chunks[:k] {
		g.Go(func() error { return b.keep(gctx, ch, nil) }) // see blobgc.go
	}
	err := b.readChunks(ctx, chunks[k:], func(i int, data []byte) error {
		sum.Write(data)
		total += int64(len(data))
		if total > domain.MaxBlobSize {
			return domain.Errorf(domain.CodeTooLarge, "content larger than %d bytes", domain.MaxBlobSize)
		}
		idx.add(chunks[k+i], int64(len(data)), sum, total)
		return nil
	})
	if werr := g.Wait(); err == nil {
		err = werr
	}
	if err != nil {
		return domain.Hash{}, 0, chunkIndex{}, err
	}
	var h domain.Hash
	sum.Sum(h[:0])
	return h, total, idx, nil
}

// chunkReadsInFlight is how many chunks assemble reads at once: each read
// waits on the stream's store as much as it works.
const chunkReadsInFlight = 4

// readChunks reads chunks (checked against their hashes and kept from the
// collector) chunkReadsInFlight at a time and hands them to fn in order.
func (b *Blobs) readChunks(ctx context.Context, chunks []domain.Hash, fn func(i int, data []byte) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type read struct {
		data []byte
		err  error
	}
	reads := make([]chan read, len(chunks))
	start := func(i int) {
		reads[i] = make(chan read, 1)
		if b.onChunkRead != nil {
			b.onChunkRead(chunks[i])
		}
		go func() {
			data, err := b.getRaw(ctx, chunks[i])
			if err == nil {
				err = b.keep(ctx, chunks[i], &nats.Msg{Header: nats.Header{names.HeaderBlobKind: {blobRaw}}, Data: data})
			}
			reads[i] <- read{data, err}
		}()
	}
	for i := range min(chunkReadsInFlight, len(chunks)) {
		start(i)
	}
	for i := range chunks {
		r := <-reads[i]
		if r.err != nil {
			return r.err
		}
		if j := i + chunkReadsInFlight; j < len(chunks) {
			start(j)
		}
		if err := fn(i, r.data); err != nil {
			return err
		}
	}
	return nil
}

func (b *Blobs) putIndex(ctx context.Context, h domain.Hash, size int64, idx chunkIndex) error {
	body, err := msgpack.Marshal(idx)
	if err != nil {
		return fmt.Errorf("encode chunk index: %w", err)
	}
	m := nats.NewMsg(names.BlobSubject(h.String()))
	m.Header.Set(names.HeaderBlobKind, blobChunks)
	m.Header.Set(names.HeaderBlobSize, strconv.FormatInt(size, 10))
	m.Data = body
	return b.publish(ctx, m)
}

func (b *Blobs) putRaw(ctx context.Context, h domain.Hash, data []byte) error {
	m := nats.NewMsg(names.BlobSubject(h.String()))
	m.Header.Set(names.HeaderBlobKind, blobRaw)
	m.Data = data
	return b.publish(ctx, m)
}

// publish stores a blob message unless its subject already holds one: the
// expectation "subject empty" makes an existing blob a cheap refusal.
func (b *Blobs) publish(ctx context.Context, m *nats.Msg) error {
	err := retry(ctx, "store content", func(ctx context.Context) error {
		_, err := b.js.PublishMsg(ctx, m, jetstream.WithExpectLastSequencePerSubject(0))
		return err
	})
	if err == nil {
		return nil
	}
	if isConflict(err) {
		return b.keepSubject(ctx, m) // stored already: see blobgc.go
	}
	if domain.ErrorCode(err) == domain.CodeUnavailable {
		return err
	}
	return fmt.Errorf("store blob %s: %w", m.Subject, err)
}

// get reads the message of a blob, through a direct get and, when that finds
// nothing (a follower may lag behind), through the stream leader.
func (b *Blobs) get(ctx context.Context, h domain.Hash) (*StoredMsg, error) {
	subj := names.BlobSubject(h.String())
	actx, cancel := context.WithTimeout(ctx, attemptTimeout)
	raw, err := b.stream.GetLastMsgForSubject(actx, subj)
	cancel()
	if err == nil {
		return fromRaw(raw), nil
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("get blob %s: %w", h, err)
	}
	// Not found on the replica that answered (it may lag), or no replica
	// answered (a stream just created or electing): ask the leader.
	m, err := leaderGet(ctx, b.nc, names.BlobStream, 0, subj)
	if errors.Is(err, errNoMessage) {
		return nil, domain.Errorf(domain.CodeNotFound, "blob %s not found", h)
	}
	return m, err
}

func (b *Blobs) getRaw(ctx context.Context, h domain.Hash) ([]byte, error) {
	m, err := b.get(ctx, h)
	if err != nil {
		return nil, err
	}
	if m.Header.Get(names.HeaderBlobKind) != blobRaw {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "blob %s is not a chunk", h)
	}
	if domain.Sum(m.Data) != h {
		return nil, domain.Wrap(fmt.Errorf("blob %s does not match its hash", h), "read blob")
	}
	return m.Data, nil
}

// Stat returns a blob's size and layout.
func (b *Blobs) Stat(ctx context.Context, h domain.Hash) (BlobInfo, error) {
	m, err := b.get(ctx, h)
	if err != nil {
		return BlobInfo{}, err
	}
	return blobInfo(h, m)
}

func blobInfo(h domain.Hash, m *StoredMsg) (BlobInfo, error) {
	switch m.Header.Get(names.HeaderBlobKind) {
	case blobRaw:
		return BlobInfo{Hash: h, Size: int64(len(m.Data))}, nil
	case blobChunks:
		var idx chunkIndex
		if err := domain.DecodeMsgpack(m.Data, &idx); err != nil || len(idx.Chunks) != len(idx.Sizes) {
			return BlobInfo{}, domain.Wrap(fmt.Errorf("blob %s: bad chunk index", h), "read blob")
		}
		info := BlobInfo{Hash: h, Sizes: idx.Sizes}
		for i, c := range idx.Chunks {
			ch, ok := domain.HashFromBytes(c)
			if !ok {
				return BlobInfo{}, domain.Wrap(fmt.Errorf("blob %s: bad chunk hash", h), "read blob")
			}
			info.Chunks = append(info.Chunks, ch)
			info.Size += idx.Sizes[i]
		}
		return info, nil
	}
	return BlobInfo{}, domain.Wrap(fmt.Errorf("blob %s: unknown kind %q", h, m.Header.Get(names.HeaderBlobKind)), "read blob")
}

// Get returns the whole content of a blob, checked against its hash.
func (b *Blobs) Get(ctx context.Context, h domain.Hash) ([]byte, error) {
	m, err := b.get(ctx, h)
	if err != nil {
		return nil, err
	}
	info, err := blobInfo(h, m)
	if err != nil {
		return nil, err
	}
	if info.Chunks == nil {
		if domain.Sum(m.Data) != h {
			return nil, domain.Wrap(fmt.Errorf("blob %s does not match its hash", h), "read blob")
		}
		return m.Data, nil
	}
	var buf bytes.Buffer
	buf.Grow(int(info.Size))
	for _, ch := range info.Chunks {
		data, err := b.getRaw(ctx, ch)
		if err != nil {
			return nil, err
		}
		buf.Write(data)
	}
	if domain.Sum(buf.Bytes()) != h {
		return nil, domain.Wrap(fmt.Errorf("blob %s does not match its hash", h), "read blob")
	}
	return buf.Bytes(), nil
}

// ReadAt returns up to n bytes of a blob from offset off.
func (b *Blobs) ReadAt(ctx context.Context, h domain.Hash, off, n int64) ([]byte, error) {
	m, err := b.get(ctx, h)
	if err != nil {
		return nil, err
	}
	info, err := blobInfo(h, m)
	if err != nil {
		return nil, err
	}
	if off < 0 || n < 0 {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "offset and length must not be negative")
	}
	if off >= info.Size {
		return []byte{}, nil
	}
	n = min(n, info.Size-off)
	if info.Chunks == nil {
		return m.Data[off : off+n], nil
	}
	out := make([]byte, 0, n)
	var start int64
	for i, ch := range info.Chunks {
		end := start + info.Sizes[i]
		if end > off && start < off+n {
			data, err := b.getRaw(ctx, ch)
			if err != nil {
				return nil, err
			}
			lo := max(off, start) - start
			hi := min(off+n, end) - start
			out = append(out, data[lo:hi]...)
		}
		start = end
		if start >= off+n {
			break
		}
	}
	return out, nil
}
