package client

import (
	"context"
	"time"

	"github.com/strand-dev/strand/domain"
)

// CommitView is a commit as shown to callers.
type CommitView struct {
	ID        string          `json:"id"`
	Session   string          `json:"session"`
	Position  uint64          `json:"position"`
	Root      string          `json:"root"`
	Message   string          `json:"message"`
	Author    string          `json:"author"`
	Summary   *domain.Summary `json:"summary,omitempty"`
	Approvals []string        `json:"approvals"`
	// Gate is what the policy required of the commit, overall and per
	// reviewer group; Approvals are the requests that met it.
	Gate      domain.Policy `json:"gate,omitempty"`
	CreatedAt time.Time     `json:"created_at"`
	// EventPosition is the position of the CommitCreated event.
	EventPosition uint64 `json:"event_position"`
}

// CommitRequest is the body of commit.create.
type CommitRequest struct {
	Mutation
	Session string `json:"session"`
	Message string `json:"message"`
	// Author defaults to the actor.
	Author string `json:"author,omitempty"`
}

// CommitReply answers commit.create and commit.get.
type CommitReply struct {
	Commit   CommitView `json:"commit"`
	Position uint64     `json:"position"`
	Replayed bool       `json:"replayed,omitempty"`
}

// CommitListRequest is the body of commit.list.
type CommitListRequest struct {
	Session string `json:"session"`
	At      At     `json:"at,omitempty"`
}

// CommitListReply answers commit.list, oldest first.
type CommitListReply struct {
	Commits []CommitView `json:"commits"`
}

// CommitGetRequest is the body of commit.get.
type CommitGetRequest struct {
	Session string `json:"session"`
	Commit  string `json:"commit"`
}

// SummaryRequest is the body of commit.summary. Offset and Limit page
// through the changed files (default and largest limit:
// domain.MaxSummaryFiles).
type SummaryRequest struct {
	Session string `json:"session"`
	At      At     `json:"at,omitempty"`
	Offset  int    `json:"offset,omitempty"`
	Limit   int    `json:"limit,omitempty"`
}

// SummaryReply answers commit.summary: what the session at a point changed
// against its base (its fork point, or the empty tree).
type SummaryReply struct {
	Summary  domain.Summary `json:"summary"`
	Base     *OriginView    `json:"base,omitempty"`
	BaseRoot string         `json:"base_root"`
	Root     string         `json:"root"`
	Position uint64         `json:"position"`
	// NextOffset pages on through summary.files (0: no more).
	NextOffset int `json:"next_offset,omitempty"`
}

// CreateCommit records the session's current content as a commit.
func (c *Client) CreateCommit(ctx context.Context, req CommitRequest) (CommitReply, error) {
	var r CommitReply
	return r, c.Call(ctx, CommitCreate, req, &r)
}

// ListCommits lists a session's commits.
func (c *Client) ListCommits(ctx context.Context, req CommitListRequest) (CommitListReply, error) {
	var r CommitListReply
	return r, c.Call(ctx, CommitList, req, &r)
}

// GetCommit returns a commit.
func (c *Client) GetCommit(ctx context.Context, req CommitGetRequest) (CommitReply, error) {
	var r CommitReply
	return r, c.Call(ctx, CommitGet, req, &r)
}

// Summary computes what a session changed against its base.
func (c *Client) Summary(ctx context.Context, req SummaryRequest) (SummaryReply, error) {
	var r SummaryReply
	return r, c.Call(ctx, CommitSummary, req, &r)
}
