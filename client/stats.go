package client

import (
	"context"
	"time"
)

// SessionStatsRequest is the body of session.stats.
type SessionStatsRequest struct {
	Session string `json:"session"`
	// Bucket is the width of the timeline's buckets: "hour" or "day"
	// (default).
	Bucket string `json:"bucket,omitempty"`
}

// StatsBucket is one step of a session's timeline: the events stored in
// [start, start+bucket).
type StatsBucket struct {
	Start  time.Time      `json:"start"`
	Events int            `json:"events"`
	ByType map[string]int `json:"by_type"`
}

// ApprovalTiming is how long one approval request waited for its decision.
type ApprovalTiming struct {
	ID          string    `json:"id"`
	Reason      string    `json:"reason"`
	Requester   string    `json:"requester"`
	RequestedAt time.Time `json:"requested_at"`
	// Decision is granted or denied ("" while pending); DecidedAt is the
	// first grant or the denial, Seconds the wait until then.
	Decision  string    `json:"decision,omitempty"`
	DecidedAt time.Time `json:"decided_at,omitzero"`
	Seconds   float64   `json:"seconds,omitempty"`
}

// SessionStatsReply answers session.stats: figures of a session's history
// up to Position, from the stats projection (exact at that position;
// Behind counts the session's events the projection has not folded yet).
type SessionStatsReply struct {
	Session  string `json:"session"`
	Position uint64 `json:"position"`
	Behind   uint64 `json:"behind"`
	Events   int    `json:"events"`
	// EventBytes is what the events take in a file-stored event stream.
	EventBytes int64     `json:"event_bytes"`
	First      time.Time `json:"first"`
	Last       time.Time `json:"last"`
	// ByType and ByActor count the events.
	ByType  map[string]int `json:"by_type"`
	ByActor map[string]int `json:"by_actor"`
	// Timeline counts the events per bucket, oldest first, empty buckets
	// included.
	Bucket   string        `json:"bucket"`
	Timeline []StatsBucket `json:"timeline"`
	// FilesChanged counts the distinct paths that events changed (a lower
	// bound when FilesChangedCapped: past 20,000 paths); ContentBytes the
	// file content they wrote.
	FilesChanged       int   `json:"files_changed"`
	FilesChangedCapped bool  `json:"files_changed_capped,omitempty"`
	ContentBytes       int64 `json:"content_bytes"`
	// Approvals lists every approval request with its wait;
	// MedianApprovalSeconds is the median wait of the granted ones.
	Approvals             []ApprovalTiming `json:"approvals"`
	MedianApprovalSeconds float64          `json:"median_approval_seconds,omitempty"`
}

// SessionStats returns a session's figures.
func (c *Client) SessionStats(ctx context.Context, req SessionStatsRequest) (SessionStatsReply, error) {
	var r SessionStatsReply
	return r, c.Request(ctx, "session", "stats", req, &r)
}
