package streams

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
)

// The writer's half of blob garbage collection (the collector is
// collector.go, which explains the whole argument).
//
// A put that finds its blob already stored stores nothing, so it leaves no
// trace the collector could see: a writer could find an old, unreferenced
// blob, and the collector delete it before the writer's event names it.
// So the collector deletes in two steps. It first condemns a blob: a record
// on CondemnedSubject(hash) with the blob message's sequence. Only a full
// grace period later, if no event names the blob by then, does it delete
// exactly that sequence (DeleteMsg), and it leaves the record in place for
// another grace period. A writer about to name a blob that it found stored
// calls keep: if the blob is condemned, keep stores it again, which gives
// it a new sequence, so the collector's delete of the condemned sequence
// removes nothing (or, if it came first, the blob is back before any event
// names it).

// Names the collector reads on blob messages.
const (
	BlobKindHeader = names.HeaderBlobKind
	BlobKindChunks = blobChunks
)

// Condemnation is the record the collector keeps on CondemnedSubject: it
// means to delete the blob message with this sequence.
type Condemnation struct {
	Seq uint64 `json:"seq"`
	// At is the server time of the run that condemned it.
	At time.Time `json:"at"`
}

const jsErrStreamNotFound = 10059

// keep makes sure the collector does not delete blob h, which the caller
// found stored and is about to name. m is the caller's own message for the
// blob (nil: read it back).
func (b *Blobs) keep(ctx context.Context, h domain.Hash, m *nats.Msg) error {
	mark, err := leaderGet(ctx, b.nc, names.GCStream, 0, names.CondemnedSubject(h.String()))
	var apiErr *jetstream.APIError
	switch {
	case errors.Is(err, errNoMessage), errors.As(err, &apiErr) && apiErr.ErrorCode == jsErrStreamNotFound:
		return nil
	case err != nil:
		return fmt.Errorf("check blob %s: %w", h, err)
	}
	if m == nil {
		sm, err := b.get(ctx, h)
		if err != nil {
			return err // deleted already: the caller must not name it
		}
		m = &nats.Msg{Header: sm.Header, Data: sm.Data}
	}
	again := nats.NewMsg(names.BlobSubject(h.String()))
	for k, v := range m.Header {
		if strings.HasPrefix(k, "Strand-") {
			again.Header[k] = v
		}
	}
	again.Data = m.Data
	// Unconditional: with one message per subject the new one replaces
	// the condemned one, or stores the blob again if it is gone.
	if _, err := b.js.PublishMsg(ctx, again); err != nil {
		return fmt.Errorf("keep blob %s: %w", h, err)
	}
	// The record has done its work. Deleting exactly its sequence leaves a
	// newer condemnation alone.
	_, _ = DeleteMsg(ctx, b.nc, names.GCStream, mark.Sequence)
	return nil
}

// keepSubject is keep for a message about to be published on a blob
// subject that turned out to be taken.
func (b *Blobs) keepSubject(ctx context.Context, m *nats.Msg) error {
	h, err := domain.ParseHash(strings.TrimPrefix(m.Subject, names.BlobPrefix))
	if err != nil {
		return fmt.Errorf("keep %s: %w", m.Subject, err)
	}
	return b.keep(ctx, h, m)
}

// DecodeChunkIndex returns the chunks of a chunked blob's index message.
func DecodeChunkIndex(data []byte) ([]domain.Hash, error) {
	var idx chunkIndex
	if err := domain.DecodeMsgpack(data, &idx); err != nil {
		return nil, fmt.Errorf("decode chunk index: %w", err)
	}
	out := make([]domain.Hash, 0, len(idx.Chunks))
	for _, c := range idx.Chunks {
		h, ok := domain.HashFromBytes(c)
		if !ok {
			return nil, errors.New("decode chunk index: bad chunk hash")
		}
		out = append(out, h)
	}
	return out, nil
}

// SnapshotBlob returns the blob that a snapshot reference (a value of
// SnapshotBucket) names.
func SnapshotBlob(ref []byte) (domain.Hash, bool) {
	var r snapshotRef
	if err := domain.DecodeMsgpack(ref, &r); err != nil {
		return domain.Hash{}, false
	}
	return domain.HashFromBytes(r.Blob)
}

// TreeBlobContents returns the file contents that a stored tree (a source
// revision's tree blob) names as blobs; inline content names none.
func TreeBlobContents(body []byte) ([]domain.Hash, error) {
	var doc treeDoc
	if err := domain.DecodeMsgpack(body, &doc); err != nil {
		return nil, fmt.Errorf("decode tree: %w", err)
	}
	var out []domain.Hash
	for _, e := range doc.Entries {
		if domain.Kind(e.Kind) != domain.KindFile || len(e.Data) > 0 {
			continue
		}
		if h, ok := domain.HashFromBytes(e.Content); ok && !h.IsZero() {
			out = append(out, h)
		}
	}
	return out, nil
}

// EncodeCondemnation is the body of a condemnation record.
func EncodeCondemnation(c Condemnation) []byte {
	b, _ := json.Marshal(c)
	return b
}

// DecodeCondemnation parses a condemnation record.
func DecodeCondemnation(b []byte) (Condemnation, error) {
	var c Condemnation
	err := json.Unmarshal(b, &c)
	return c, err
}
