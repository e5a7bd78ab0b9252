package streams

import (
	"context"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"
	"golang.org/x/sync/errgroup"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
)

// Bounds of one atomic batch of blobs (PutMany).
const (
	blobBatchMin   = 8       // fewer blobs go one by one
	blobBatchMax   = 256     // messages in one batch
	blobBatchBytes = 2 << 20 // content in one batch
	blobPutsAtOnce = 16      // single puts in flight
	// blobsRemembered bounds Blobs.stored: 32,768 hashes, about 6 MiB of
	// heap (an LRU of 65,536 measured 12 MiB).
	blobsRemembered = 1 << 15
)

func newBlobs(nc *nats.Conn, js jetstream.JetStream, stream jetstream.Stream, chunkSize int) *Blobs {
	stored, _ := lru.New[domain.Hash, struct{}](blobsRemembered)
	return &Blobs{nc: nc, js: js, stream: stream, chunkSize: chunkSize, stored: stored}
}

// PutMany stores many contents as blobs, each distinct content once, and
// returns when all are stored or one failed; blobPutsAtOnce at a time.
//
// Where group commit is on (a replicated stream, or one server that fsyncs
// every write: Config.GroupCommitMin), content of one chunk or less goes
// in atomic batches (up to blobBatchMax messages and blobBatchBytes), each
// message expecting its subject to be empty, as a single Put does. The
// stream then syncs (or replicates) a batch once where single puts do it
// once each: an fs.batch of 200 files of 4 KiB took 12-21 ms instead of
// 47-63 ms on a server that fsyncs (BenchmarkBatch_Blobs, design record
// 0022). On one server that does not, the batch's staging cost more than
// it saved (15-19 ms against 10-13 ms), so contents go one by one there.
// Batches go one after another (the stream would store two in flight one
// after the other anyway); larger contents meanwhile, a few at a time. A batch is all or
// nothing: when it is refused (one of its contents is stored already, or
// the batch failed), each of its contents goes on its own, which stores
// what is missing and keeps what is there (blobgc.go), as before. So that
// a change of contents stored before (a second push or import of the same
// files) does not pay a refused batch each time, the store remembers the
// last blobsRemembered contents it put or found stored, and sends those
// one by one: a put of stored content is refused without a sync. Larger
// content is chunked by Put.
func (b *Blobs) PutMany(ctx context.Context, contents [][]byte) error {
	seen := make(map[domain.Hash]bool, len(contents))
	var small, known []*nats.Msg
	var large [][]byte
	for _, c := range contents {
		h := domain.Sum(c)
		if seen[h] {
			continue
		}
		seen[h] = true
		if len(c) > b.chunkSize {
			large = append(large, c)
			continue
		}
		m := nats.NewMsg(names.BlobSubject(h.String()))
		m.Header.Set(names.HeaderBlobKind, blobRaw)
		m.Data = c
		if _, ok := b.stored.Get(h); ok {
			known = append(known, m)
		} else {
			small = append(small, m)
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(blobPutsAtOnce)
	for _, c := range large {
		g.Go(func() error {
			_, err := b.Put(gctx, c)
			return err
		})
	}
	one := func(m *nats.Msg) { g.Go(func() error { return b.publish(gctx, m) }) }
	for _, m := range known {
		one(m)
	}
	for len(small) > 0 {
		n, size := 0, 0
		for n < len(small) && n < blobBatchMax && (n == 0 || size+len(small[n].Data) <= blobBatchBytes) {
			size += len(small[n].Data)
			n++
		}
		part := small[:n]
		small = small[n:]
		if !b.batches || len(part) < blobBatchMin || !b.putBatch(gctx, part) {
			for _, m := range part {
				one(m)
			}
		}
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for h := range seen {
		b.stored.Add(h, struct{}{})
	}
	return nil
}

type blobBatchStats struct {
	batches, batched, refused atomic.Uint64
}

// BlobBatchStats counts PutMany's atomic batches: stored, the blobs they
// held, and refused (their blobs then went one by one).
type BlobBatchStats struct {
	Batches, Blobs, Refused uint64
}

// BatchStats returns what PutMany's batches did since the store opened.
func (b *Blobs) BatchStats() BlobBatchStats {
	return BlobBatchStats{Batches: b.stats.batches.Load(), Blobs: b.stats.batched.Load(), Refused: b.stats.refused.Load()}
}

// putBatch stores blob messages as one atomic batch, each expecting its
// subject to be empty, and reports whether the stream stored them all.
func (b *Blobs) putBatch(ctx context.Context, msgs []*nats.Msg) bool {
	batch := make([]*nats.Msg, len(msgs))
	for i, m := range msgs {
		c := nats.NewMsg(m.Subject)
		for k, v := range m.Header {
			c.Header[k] = v
		}
		c.Header.Set(jetstream.ExpectedLastSubjSeqHeader, "0")
		c.Data = m.Data
		batch[i] = c
	}
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ack, err := jetstreamext.PublishMsgBatch(actx, b.js, batch)
	if err != nil || ack == nil || ack.BatchSize != uint64(len(batch)) || ack.Stream != names.BlobStream {
		b.stats.refused.Add(1)
		return false
	}
	b.stats.batches.Add(1)
	b.stats.batched.Add(uint64(len(batch)))
	return true
}
