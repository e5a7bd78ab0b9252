package client

import (
	"context"
)

// Diff limits.
const (
	DefaultDiffLimit   = 1000
	MaxDiffLimit       = 10000
	DefaultDiffContext = 3
)

// DiffSide names one side of a diff: a session at a point of its history
// (At empty: its head).
type DiffSide struct {
	Session string `json:"session"`
	At      At     `json:"at,omitempty"`
}

// DiffRequest is the body of diff (subject strand.v1.<tenant>.diff).
type DiffRequest struct {
	// From is the old side. Omitted, or without a session, it is the base
	// of To: for a fork its parent at the fork point, for any other session
	// its first state (the empty tree for a blank session).
	From *DiffSide `json:"from,omitempty"`
	// To is the new side.
	To DiffSide `json:"to"`
	// Path, when set, asks for the unified text diff of this one path. It
	// must be a file or symlink on at least one side.
	Path string `json:"path,omitempty"`
	// Context is the number of unchanged lines shown around each change of
	// the unified diff (default 3).
	Context *int `json:"context,omitempty"`
	// Limit bounds how many changes the lists hold (default 1000).
	Limit int `json:"limit,omitempty"`
}

// DiffSideView is one side of a diff as it was resolved.
type DiffSideView struct {
	Session  string `json:"session"`
	Position uint64 `json:"position"`
	Root     string `json:"root"`
}

// DiffNodeView is what a changed path holds on one side. Hash is the
// content hash of a file and the Merkle hash of anything else.
type DiffNodeView struct {
	Kind   string `json:"kind"`
	Size   int64  `json:"size"`
	Mode   uint32 `json:"mode"`
	Hash   string `json:"hash"`
	Target string `json:"target,omitempty"`
}

// DiffEntryView is an added, modified or deleted path. Kind is its kind on
// the new side (on the old one when deleted); Old is absent when added and
// New when deleted.
type DiffEntryView struct {
	Path string        `json:"path"`
	Kind string        `json:"kind"`
	Old  *DiffNodeView `json:"old,omitempty"`
	New  *DiffNodeView `json:"new,omitempty"`
}

// DiffRenameView is a path deleted at From and added at To with the same
// content (a file's content hash, a symlink's target).
type DiffRenameView struct {
	From string       `json:"from"`
	To   string       `json:"to"`
	Kind string       `json:"kind"`
	Old  DiffNodeView `json:"old"`
	New  DiffNodeView `json:"new"`
}

// DiffCounts are the totals of each kind of change, whatever the lists hold.
type DiffCounts struct {
	Added    int `json:"added"`
	Modified int `json:"modified"`
	Deleted  int `json:"deleted"`
	Renamed  int `json:"renamed"`
}

// DiffReply answers diff. The lists are in tree order (renames in the
// tree order of To). A directory added or deleted as a whole is listed
// with everything below it.
type DiffReply struct {
	From     DiffSideView     `json:"from"`
	To       DiffSideView     `json:"to"`
	Added    []DiffEntryView  `json:"added"`
	Modified []DiffEntryView  `json:"modified"`
	Deleted  []DiffEntryView  `json:"deleted"`
	Renamed  []DiffRenameView `json:"renamed"`
	Counts   DiffCounts       `json:"counts"`
	// Truncated is true when the lists hold only the first changes in tree
	// order, cut by Limit or by the size of a reply.
	Truncated bool `json:"truncated,omitempty"`
	// Unified is the unified diff of the requested path; empty when it did
	// not change.
	Unified string `json:"unified,omitempty"`
	// UnifiedTruncated is true when Unified was cut, at a line end, to fit
	// in a reply.
	UnifiedTruncated bool `json:"unified_truncated,omitempty"`
}

// Diff compares two sessions, each at a point of its history, or a session
// with its base when req.From is nil.
func (c *Client) Diff(ctx context.Context, req DiffRequest) (DiffReply, error) {
	var r DiffReply
	return r, c.Call(ctx, DiffTrees, req, &r)
}
