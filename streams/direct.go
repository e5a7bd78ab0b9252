package streams

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/names"
)

// directMax is the most events a replay reads with one batched direct get
// instead of an ordered consumer, and directMaxBytes the most bytes: one
// request and its replies, where a consumer costs three requests and the
// server's setting up and tearing down of a consumer. It covers a replay
// from a snapshot (fewer than SnapshotEvery events, 500 by default): row
// 13's first reads of a stretch took 4.1-5.0 ms p50 with it against
// 6.5-7.8 ms with a bound of 64 (docs/benchmarks.md). A batch the bytes cut
// short is finished by a consumer.
const (
	directMax      = 1024
	directMaxBytes = 8 << 20
)

// The headers of a status message (nats.go keeps its names unexported).
const (
	statusHeader      = "Status"
	descriptionHeader = "Description"
)

// directRange reads the events of a session's subject with positions in
// [from, to], at most max of them, with one batched direct get
// ($JS.API.DIRECT.GET with next_by_subj, batch and up_to_seq), and passes
// them to fn in order. It returns the position of the last event it passed
// (0: none). On a replicated stream any replica may answer a direct get,
// and one that lags may end before to: the caller reads the rest another
// way, so the answer is never short.
func (st *Store) directRange(ctx context.Context, subject string, from, to uint64, max int, fn func(StoredEvent) error) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	inbox := st.nc.NewRespInbox()
	// A channel sized for the batch and its end: a synchronous
	// subscription would allocate its default 64K-message channel (512
	// KiB) for every replay.
	msgs := make(chan *nats.Msg, max+2)
	sub, err := st.nc.ChanSubscribe(inbox, msgs)
	if err != nil {
		return 0, fmt.Errorf("direct get: %w", err)
	}
	defer sub.Unsubscribe() //nolint:errcheck // the inbox is ours alone
	body, _ := json.Marshal(map[string]any{"seq": from, "next_by_subj": subject, "batch": max, "max_bytes": directMaxBytes, "up_to_seq": to})
	if err := st.nc.PublishRequest("$JS.API.DIRECT.GET."+names.EventStream, inbox, body); err != nil {
		return 0, fmt.Errorf("direct get: %w", err)
	}
	var last uint64
	for {
		var m *nats.Msg
		select {
		case m = <-msgs:
		case <-ctx.Done():
			return last, fmt.Errorf("direct get: %w", ctx.Err())
		}
		if status := m.Header.Get(statusHeader); status != "" {
			switch status {
			case "204", "404": // end of the batch; no (more) messages
				return last, nil
			default:
				return last, fmt.Errorf("direct get: status %s %s", status, m.Header.Get(descriptionHeader))
			}
		}
		seq, err := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
		if err != nil || seq <= last || seq < from || seq > to {
			return last, fmt.Errorf("direct get: message at %q out of [%d, %d]", m.Header.Get(jetstream.SequenceHeader), from, to)
		}
		se, err := decodeStored(&StoredMsg{Subject: subject, Sequence: seq, Data: m.Data})
		if err != nil {
			return last, err
		}
		if err := fn(se); err != nil {
			return last, err
		}
		last = seq
	}
}
