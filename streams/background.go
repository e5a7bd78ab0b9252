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
func DeleteMsg(ctx context.Context, nc *nats.Conn, stream string, seq uint64) (bool, error) {
	body, _ := json.Marshal(map[string]any{"seq": seq, "no_erase": true})
	resp, err := nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.DELETE."+stream, body)
	if err != nil {
		return false, fmt.Errorf("delete %s/%d: %w", stream, seq, err)
	}
	var r struct {
		Success bool                `json:"success"`
		Error   *jetstream.APIError `json:"error,omitempty"`
	}
	if err := json.Unmarshal(resp.Data, &r); err != nil {
		return false, fmt.Errorf("delete %s/%d: bad reply: %w", stream, seq, err)
	}
	if r.Error != nil {
		if deleteFoundNothing(r.Error) {
			return false, nil
		}
		return false, fmt.Errorf("delete %s/%d: %w", stream, seq, r.Error)
	}
	return r.Success, nil
}

// deleteFoundNothing tells the answers to deleting a sequence the stream
// does not hold: 10043 (sequence not found), or 10057 with the store's "no
// message found" (a sequence below the first, or deleted already).
func deleteFoundNothing(e *jetstream.APIError) bool {
	return e.ErrorCode == 10043 || e.ErrorCode == jsErrNoMessage ||
		(e.ErrorCode == 10057 && strings.Contains(e.Description, "no message found"))
}
