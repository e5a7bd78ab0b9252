package streams

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The streams of projections and workers (see projections/ and workers/):
// work items, dead letters, the activity feed, and the blob collector's
// records.
const (
	// WorkStream is the work queue: strand.work.<tenant>.<kind>[.<more>].
	// Each message is delivered to the one consumer whose filter takes its
	// subject and is removed once acknowledged.
	WorkStream = "STRAND_WORK"
	// DeadStream keeps work items that failed too often:
	// strand.dead.<tenant>.<kind>, for 30 days.
	DeadStream = "STRAND_DEAD"
	// FeedStream is the activity feed: strand.feed.<tenant>, the tenant's
	// most recent FeedPerTenant events.
	FeedStream = "STRAND_FEED"
	// GCStream holds the blob collector's records: one condemnation per
	// blob on strand.gc.condemned.<sha256hex> and its run markers.
	GCStream = "STRAND_GC"

	workPrefix = "strand.work."
	deadPrefix = "strand.dead."
	feedPrefix = "strand.feed."
	gcPrefix   = "strand.gc."
)

// FeedPerTenant is how many recent events the activity feed keeps per
// tenant.
const FeedPerTenant = 1000

// WorkSubject is the subject of a work item: strand.work.<tenant>.<kind>,
// followed by more tokens when given (review.<group>).
func WorkSubject(tenant, kind string, more ...string) string {
	s := workPrefix + tenant + "." + kind
	for _, m := range more {
		s += "." + m
	}
	return s
}

// DeadSubject is where work items of a kind go when they keep failing.
func DeadSubject(tenant, kind string) string { return deadPrefix + tenant + "." + kind }

// FeedSubject is the activity feed of a tenant.
func FeedSubject(tenant string) string { return feedPrefix + tenant }

// CondemnedSubject records that the collector means to delete a blob.
func CondemnedSubject(hexHash string) string { return gcPrefix + "condemned." + hexHash }

// GCRunSubject receives a marker at the start of every collection; its
// server time stamp is the run's clock.
const GCRunSubject = gcPrefix + "run"

// backgroundStreamConfigs are the streams Provision adds for projections
// and workers.
func backgroundStreamConfigs(c Config) []jetstream.StreamConfig {
	return []jetstream.StreamConfig{
		{
			Name:        WorkStream,
			Description: "Strand work items: removed once a worker acknowledges them",
			Subjects:    []string{workPrefix + ">"},
			Retention:   jetstream.WorkQueuePolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    c.Replicas,
			Discard:     jetstream.DiscardNew,
			// Item ids (a review request's id) de-duplicate a projection's
			// redelivered event for this long.
			Duplicates: 15 * time.Minute,
		},
		{
			Name:        DeadStream,
			Description: "Strand dead letters: work items that failed too often",
			Subjects:    []string{deadPrefix + ">"},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    c.Replicas,
			Discard:     jetstream.DiscardOld,
			MaxAge:      30 * 24 * time.Hour,
			Duplicates:  2 * time.Minute,
		},
		{
			Name:              FeedStream,
			Description:       "Strand activity feed: each tenant's recent events",
			Subjects:          []string{feedPrefix + ">"},
			Retention:         jetstream.LimitsPolicy,
			Storage:           jetstream.FileStorage,
			Replicas:          c.Replicas,
			MaxMsgsPerSubject: FeedPerTenant,
			Discard:           jetstream.DiscardOld,
			Duplicates:        15 * time.Minute,
			AllowDirect:       true,
		},
		{
			Name:              GCStream,
			Description:       "Strand blob collector: condemned blobs and runs",
			Subjects:          []string{gcPrefix + ">"},
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
