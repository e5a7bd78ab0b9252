package client

import (
	"context"
	"time"
)

// Cache page sizes.
const (
	DefaultCacheKeysLimit = 100
	MaxCacheKeysLimit     = 1000
)

// CacheRequest names one key (get, exists, meta, delete).
type CacheRequest struct {
	Mutation
	Session string `json:"session"`
	Key     string `json:"key"`
	At      At     `json:"at,omitempty"`
}

// CachePutRequest is the body of cache.put and cache.cas.
type CachePutRequest struct {
	Mutation
	Session string `json:"session"`
	Key     string `json:"key"`
	Value   []byte `json:"value"`
	// TTL is a duration ("90s", "1h"): the entry expires that long after
	// the event that wrote it.
	TTL string `json:"ttl,omitempty"`
	// ExpectedRev (cas): the revision the key must have; 0 means absent.
	ExpectedRev *uint64 `json:"expected_rev,omitempty"`
}

// CacheEntryView is one key as shown to callers.
type CacheEntryView struct {
	Key       string     `json:"key"`
	Value     []byte     `json:"value,omitempty"`
	Rev       uint64     `json:"rev"`
	Size      int        `json:"size"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	UpdatedAt time.Time  `json:"updated_at"`
}

// CacheReply answers the single-key requests.
type CacheReply struct {
	Entry    *CacheEntryView `json:"entry,omitempty"`
	Exists   bool            `json:"exists"`
	Position uint64          `json:"position"`
	Replayed bool            `json:"replayed,omitempty"`
}

// CacheKeysRequest is the body of cache.keys.
type CacheKeysRequest struct {
	Session string `json:"session"`
	Prefix  string `json:"prefix,omitempty"`
	After   string `json:"after,omitempty"`
	Limit   int    `json:"limit,omitempty"`
	At      At     `json:"at,omitempty"`
}

// CacheKeysReply answers cache.keys.
type CacheKeysReply struct {
	Keys       []CacheEntryView `json:"keys"`
	NextCursor string           `json:"next_cursor,omitempty"`
	Position   uint64           `json:"position"`
}

// CacheStatsReply answers cache.stats.
type CacheStatsReply struct {
	Keys     int    `json:"keys"`
	Bytes    int    `json:"bytes"`
	Position uint64 `json:"position"`
}

// CacheBatchRequest is the body of cache.batch_get, batch_put,
// batch_delete and delete_prefix.
type CacheBatchRequest struct {
	Mutation
	Session string            `json:"session"`
	Keys    []string          `json:"keys,omitempty"`
	Entries []CachePutRequest `json:"entries,omitempty"`
	Prefix  string            `json:"prefix,omitempty"`
	At      At                `json:"at,omitempty"`
}

// CacheBatchReply answers the batch requests.
type CacheBatchReply struct {
	Entries  []CacheEntryView `json:"entries"`
	Missing  []string         `json:"missing,omitempty"`
	Deleted  int              `json:"deleted,omitempty"`
	Position uint64           `json:"position"`
	Replayed bool             `json:"replayed,omitempty"`
}

// CacheGet reads a key.
func (c *Client) CacheGet(ctx context.Context, req CacheRequest) (CacheReply, error) {
	var r CacheReply
	return r, c.Call(ctx, CacheGet, req, &r)
}

// CachePut writes a key.
func (c *Client) CachePut(ctx context.Context, req CachePutRequest) (CacheReply, error) {
	var r CacheReply
	return r, c.Call(ctx, CachePut, req, &r)
}

// CacheCAS writes a key only at the expected revision.
func (c *Client) CacheCAS(ctx context.Context, req CachePutRequest) (CacheReply, error) {
	var r CacheReply
	return r, c.Call(ctx, CacheCAS, req, &r)
}

// CacheDelete deletes a key.
func (c *Client) CacheDelete(ctx context.Context, req CacheRequest) (CacheReply, error) {
	var r CacheReply
	return r, c.Call(ctx, CacheDelete, req, &r)
}

// CacheExists tells whether a key exists.
func (c *Client) CacheExists(ctx context.Context, req CacheRequest) (CacheReply, error) {
	var r CacheReply
	return r, c.Call(ctx, CacheExists, req, &r)
}

// CacheMeta returns a key's revision, size and expiry.
func (c *Client) CacheMeta(ctx context.Context, req CacheRequest) (CacheReply, error) {
	var r CacheReply
	return r, c.Call(ctx, CacheMeta, req, &r)
}

// CacheKeys lists a page of keys.
func (c *Client) CacheKeys(ctx context.Context, req CacheKeysRequest) (CacheKeysReply, error) {
	var r CacheKeysReply
	return r, c.Call(ctx, CacheKeys, req, &r)
}

// CacheStats counts keys and bytes.
func (c *Client) CacheStats(ctx context.Context, req CacheKeysRequest) (CacheStatsReply, error) {
	var r CacheStatsReply
	return r, c.Call(ctx, CacheStats, req, &r)
}

// CacheBatch runs cache.batch_get, batch_put, batch_delete or delete_prefix.
func (c *Client) CacheBatch(ctx context.Context, verb string, req CacheBatchRequest) (CacheBatchReply, error) {
	var r CacheBatchReply
	return r, c.Request(ctx, CacheGet.Area, verb, req, &r)
}
