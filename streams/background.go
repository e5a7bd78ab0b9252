package streams

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/names"
)

// FeedPerTenant is how many recent events the activity feed keeps per
// tenant.
const FeedPerTenant = 1000

// backgroundStreamConfigs are the streams Provision adds for projections
// and workers.
func backgroundStreamConfigs(c Config) []jetstream.StreamConfig {
	return []jetstream.StreamConfig{
		{
			Name:        names.WorkStream,
			Description: "Strand work items: removed once a worker acknowledges them",
			Subjects:    []string{names.WorkPrefix + ">"},
			Retention:   jetstream.WorkQueuePolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    c.Replicas,
			Discard:     jetstream.DiscardNew,
			// Item ids (a review request's id) de-duplicate a projection's
			// redelivered event for this long.
			Duplicates: 15 * time.Minute,
			// The session views store a catch-up's review items as atomic
			// batches where they share syncs (projections/work.go).
			AllowAtomicPublish: true,
		},
		{
			Name:        names.DeadStream,
			Description: "Strand dead letters: work items that failed too often",
			Subjects:    []string{names.DeadPrefix + ">"},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    c.Replicas,
			Discard:     jetstream.DiscardOld,
			MaxAge:      30 * 24 * time.Hour,
			Duplicates:  2 * time.Minute,
		},
		{
			Name:              names.FeedStream,
			Description:       "Strand activity feed: each tenant's recent events",
			Subjects:          []string{names.FeedPrefix + ">"},
			Retention:         jetstream.LimitsPolicy,
			Storage:           jetstream.FileStorage,
			Replicas:          c.Replicas,
			MaxMsgsPerSubject: FeedPerTenant,
			Discard:           jetstream.DiscardOld,
			Duplicates:        15 * time.Minute,
			AllowDirect:       true,
			// The activity projection stores a catch-up's chunks as
			// atomic batches: with fsync, one sync for many.
			AllowAtomicPublish: true,
		},
		{
			Name:              names.GCStream,
			Description:       "Strand blob collector: condemned blobs and runs",
			Subjects:          []string{names.GCPrefix + ">"},
			Retention:         jetstream.LimitsPolicy,
			Storage:           jetstream.FileStorage,
			Replicas:          c.Replicas,
			MaxMsgsPerSubject: 1,
			Discard:           jetstream.DiscardOld,
			MaxAge:            7 * 24 * time.Hour,
			Duplicates:        2 * time.Minute,
		},
	}
}

// DeleteMsg removes one message of a stream by sequence (erasing nothing
// else). It reports false, without error, when the stream does not hold
// that sequence (any more). jetstream's DeleteMsg loses the API error code
// in a string; this keeps it.
//
// Like every JetStream request of the store (retry.go), it is retried
// while the stream's server is unreachable or its leader being elected,
// each attempt bounded, within ctx or, when ctx has no deadline,
// backgroundTimeout: a request whose server died before answering never
// answers, and a caller without a deadline (a worker's item) would wait
// for it forever. A retried delete whose first attempt took effect finds
// nothing: false.
func DeleteMsg(ctx context.Context, nc *nats.Conn, stream string, seq uint64) (bool, error) {
	body, _ := json.Marshal(map[string]any{"seq": seq, "no_erase": true})
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, backgroundTimeout)
		defer cancel()
	}
	var r struct {
		Success bool                `json:"success"`
		Error   *jetstream.APIError `json:"error,omitempty"`
	}
	err := retry(ctx, "delete from "+stream, func(ctx context.Context) error {
		resp, err := nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.DELETE."+stream, body)
		if err != nil {
			return err
		}
		r.Success, r.Error = false, nil
		if err := json.Unmarshal(resp.Data, &r); err != nil {
			return fmt.Errorf("bad reply: %w", err)
		}
		if r.Error != nil && transient(r.Error) {
			return r.Error
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("delete %s/%d: %w", stream, seq, err)
	}
	if r.Error != nil {
		if deleteFoundNothing(r.Error) {
			return false, nil
		}
		return false, fmt.Errorf("delete %s/%d: %w", stream, seq, r.Error)
	}
	return r.Success, nil
}

// backgroundTimeout bounds a request of the store made without a deadline
// (by background work: the collector, workers). A variable for tests.
var backgroundTimeout = 10 * time.Second

// deleteFoundNothing tells the answers to deleting a sequence the stream
// does not hold: 10043 (sequence not found), or 10057 with the store's "no
// message found" (a sequence below the first, or deleted already).
func deleteFoundNothing(e *jetstream.APIError) bool {
	return e.ErrorCode == 10043 || e.ErrorCode == jsErrNoMessage ||
		(e.ErrorCode == 10057 && strings.Contains(e.Description, "no message found"))
}
