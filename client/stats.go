package client

import (
	"context"
	"time"

	"github.com/strand-dev/strand/domain"
)

// SessionStatsRequest is the body of session.stats.
type SessionStatsRequest struct {
	Session string `json:"session"`
	// Bucket is the width of the timeline's buckets: "hour" or "day"
	// (default).
	Bucket string `json:"bucket,omitempty"`
}

// StatsBucket is one step of a session's timeline (the stats
// projection's own type, so that the figures cross with one definition).
type StatsBucket = domain.StatsBucket

// ApprovalTiming is how long one approval request waited for its decision.
type ApprovalTiming = domain.ApprovalTiming

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
