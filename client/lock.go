package client

import (
	"context"
	"time"
)

// LockRequest is the body of the lock requests.
type LockRequest struct {
	Mutation
	Session string `json:"session"`
	Path    string `json:"path"`
	// Subtree locks the path and everything below it.
	Subtree bool `json:"subtree,omitempty"`
	// TTL is the lease's duration ("30s", "5m"; default 5m, at most 24h).
	TTL string `json:"ttl,omitempty"`
}

// LockView is a lease as shown to callers. Token is only in the reply of
// lock.acquire: it is never stored, only its hash.
type LockView struct {
	Path      string    `json:"path"`
	Subtree   bool      `json:"subtree,omitempty"`
	Owner     string    `json:"owner"`
	ExpiresAt time.Time `json:"expires_at"`
	Active    bool      `json:"active"`
	Token     string    `json:"token,omitempty"`
}

// LockReply answers acquire, renew, release and force_release.
type LockReply struct {
	Lock     LockView `json:"lock"`
	Position uint64   `json:"position"`
	Replayed bool     `json:"replayed,omitempty"`
}

// LockListRequest is the body of lock.list.
type LockListRequest struct {
	Session string `json:"session"`
}

// LockListReply answers lock.list.
type LockListReply struct {
	Locks    []LockView `json:"locks"`
	Position uint64     `json:"position"`
}

// Lock runs lock.acquire, renew, release or force_release.
func (c *Client) Lock(ctx context.Context, verb string, req LockRequest) (LockReply, error) {
	var r LockReply
	return r, c.Request(ctx, LockList.Area, verb, req, &r)
}

// Locks lists a session's leases.
func (c *Client) Locks(ctx context.Context, req LockListRequest) (LockListReply, error) {
	var r LockListReply
	return r, c.Call(ctx, LockList, req, &r)
}
