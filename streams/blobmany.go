package streams

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
)

// manyMax is the most blobs one batched direct get asks for: the server
// answers at most 1024 subjects of a multi_last request.
const manyMax = 1000

// manyMaxBytes bounds the content of one batched direct get; what does not
// fit is read one blob at a time.
const manyMaxBytes = 16 << 20

// GetMany reads the whole content of many blobs, each checked against its
// hash as Get checks it, and passes each to fn (from the caller's
// goroutine, in any order, each hash once). Content stored as one message
// comes with one batched direct get per thousand hashes
// ($JS.API.DIRECT.GET with multi_last), where Get costs one request per
// blob: for a directory of small files that is one round trip instead of
// fifty (docs/benchmarks.md, issue 21). What the batch does not answer
// (content stored in chunks, a replica that lags, a reply cut short by its
// bytes) is read with Get, so the answer is the same as Get's.
func (b *Blobs) GetMany(ctx context.Context, hs []domain.Hash, fn func(domain.Hash, []byte) error) error {
	want := make(map[domain.Hash]bool, len(hs))
	var todo []domain.Hash
	for _, h := range hs {
		if !want[h] {
			want[h] = true
			todo = append(todo, h)
		}
	}
	for len(todo) > 0 {
		part := todo[:min(len(todo), manyMax)]
		todo = todo[len(part):]
		got, err := b.directMany(ctx, part, want, fn)
		if err != nil {
			return err
		}
		for _, h := range part {
			if got[h] {
				continue
			}
			data, err := b.Get(ctx, h)
			if err != nil {
				return err
			}
			if err := fn(h, data); err != nil {
				return err
			}
		}
	}
	return nil
}

// directMany asks for the last message of each blob subject of hs in one
// batched direct get and passes the raw ones whose content matches to fn.
// It returns the hashes it passed. A failure of the batch itself is not
// an error: the caller reads what is missing one blob at a time.
func (b *Blobs) directMany(ctx context.Context, hs []domain.Hash, want map[domain.Hash]bool, fn func(domain.Hash, []byte) error) (map[domain.Hash]bool, error) {
	got := make(map[domain.Hash]bool, len(hs))
	subjects := make([]string, len(hs))
	for i, h := range hs {
		subjects[i] = names.BlobSubject(h.String())
	}
	actx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	inbox := b.nc.NewRespInbox()
	// A channel sized for the batch and its end, as directRange's.
	msgs := make(chan *nats.Msg, len(hs)+2)
	sub, err := b.nc.ChanSubscribe(inbox, msgs)
	if err != nil {
		return got, nil
	}
	defer sub.Unsubscribe() //nolint:errcheck // the inbox is ours alone
	body, _ := json.Marshal(map[string]any{"multi_last": subjects, "batch": len(subjects), "max_bytes": manyMaxBytes})
	if err := b.nc.PublishRequest("$JS.API.DIRECT.GET."+names.BlobStream, inbox, body); err != nil {
		return got, nil
	}
	for {
		var m *nats.Msg
		select {
		case m = <-msgs:
		case <-actx.Done():
			if ctx.Err() != nil {
				return got, fmt.Errorf("get blobs: %w", ctx.Err())
			}
			return got, nil // no answer in time: what is missing is read one by one
		}
		if m.Header.Get(statusHeader) != "" {
			return got, nil // 204 end of batch, 404 none, or an error
		}
		subj := m.Header.Get(jetstream.SubjectHeader)
		h, err := domain.ParseHash(strings.TrimPrefix(subj, names.BlobPrefix))
		if err != nil || !want[h] || got[h] || m.Header.Get(names.HeaderBlobKind) != blobRaw || domain.Sum(m.Data) != h {
			continue // a chunk index, or bytes that do not match: Get decides
		}
		got[h] = true
		if err := fn(h, m.Data); err != nil {
			return got, err
		}
	}
}
