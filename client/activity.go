package client

import (
	"context"
	"time"
)

// Activity feed page sizes.
const (
	DefaultActivityLimit = 50
	MaxActivityLimit     = 1000
)

// ActivityRequest is the body of activity.list.
type ActivityRequest struct {
	Limit int `json:"limit,omitempty"`
	// Before lists entries at positions below it: the next_before of the
	// previous page (0: from the newest).
	Before uint64 `json:"before,omitempty"`
}

// ActivityEntry is one event of the tenant's feed.
type ActivityEntry struct {
	Position uint64    `json:"position"`
	Session  string    `json:"session"`
	Type     string    `json:"type"`
	Actor    string    `json:"actor"`
	Time     time.Time `json:"time"`
	Paths    []string  `json:"paths,omitempty"`
	Detail   string    `json:"detail,omitempty"`
}

// ActivityReply answers activity.list, newest first.
type ActivityReply struct {
	Entries []ActivityEntry `json:"entries"`
	// NextBefore is the before of the next (older) page; absent on the
	// last.
	NextBefore uint64 `json:"next_before,omitempty"`
}

// Activity lists a page of the tenant's recent events, newest first.
func (c *Client) Activity(ctx context.Context, req ActivityRequest) (ActivityReply, error) {
	var r ActivityReply
	return r, c.Call(ctx, ActivityList, req, &r)
}
