package client

import (
	"context"

	"github.com/strand-dev/strand/domain"
)

// MergeRequest is the body of merge: the session From (SESSION or
// SESSION@AT) merged into the session Into. Strategy resolves every
// conflict that Paths does not; Paths maps a path (and everything below
// it) to ours (keep Into's side) or theirs (take From's side).
// ExpectedPosition and RequestID apply to Into.
type MergeRequest struct {
	Mutation
	From     string            `json:"from"`
	Into     string            `json:"into"`
	Strategy string            `json:"strategy,omitempty"`
	Paths    map[string]string `json:"paths,omitempty"`
}

// MergeBaseView is the common state a merge compared both sides with: a
// session at a position, or a source revision.
type MergeBaseView struct {
	Session  string `json:"session,omitempty"`
	Position uint64 `json:"position,omitempty"`
	Source   string `json:"source,omitempty"`
	Revision uint64 `json:"revision,omitempty"`
}

// ConflictView is one conflict of a merge.
type ConflictView struct {
	Path       string `json:"path"`
	Kind       string `json:"kind"`
	Ours       string `json:"ours"`
	Theirs     string `json:"theirs"`
	OursKind   string `json:"ours_kind,omitempty"`
	TheirsKind string `json:"theirs_kind,omitempty"`
	Resolution string `json:"resolution,omitempty"`
}

// MergePathView is the result of a merge at one path: theirs (taken from
// From), merged (lines of both sides) or conflict.
type MergePathView struct {
	Path   string `json:"path"`
	Result string `json:"result"`
}

// MergeReply answers merge. A merge with unresolved conflicts is not an
// error: it answers with Applied false and the conflicts, and changes
// nothing (no event, Into's status untouched). UpToDate means From had
// nothing that Into lacks: nothing was written either.
type MergeReply struct {
	Applied      bool            `json:"applied"`
	UpToDate     bool            `json:"up_to_date,omitempty"`
	Session      string          `json:"session"`
	Position     uint64          `json:"position"`
	Root         string          `json:"root"`
	From         string          `json:"from"`
	FromPosition uint64          `json:"from_position"`
	Base         MergeBaseView   `json:"base"`
	Paths        []MergePathView `json:"paths"`
	Conflicts    []ConflictView  `json:"conflicts"`
	Resolved     []ConflictView  `json:"resolved,omitempty"`
	Replayed     bool            `json:"replayed,omitempty"`
	// Gate is what the policy required of the merge and Approvals the
	// requests that met it (recorded in the SessionMerged event).
	Gate      domain.Policy `json:"gate,omitempty"`
	Approvals []string      `json:"approvals,omitempty"`
}

// Merge merges one session into another.
func (c *Client) Merge(ctx context.Context, req MergeRequest) (MergeReply, error) {
	var r MergeReply
	return r, c.Call(ctx, MergeInto, req, &r)
}
