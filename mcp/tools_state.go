package mcp

import (
	"context"
	"fmt"
	"time"

	"github.com/strand-dev/strand/client"
)

// CacheGetArgs are the arguments of cache_get.
type CacheGetArgs struct {
	Session string `json:"session" jsonschema:"the session id"`
	Key     string `json:"key" jsonschema:"the key"`
}

// CachePutArgs are the arguments of cache_put.
type CachePutArgs struct {
	Session     string  `json:"session" jsonschema:"the session id"`
	Key         string  `json:"key" jsonschema:"the key, e.g. build/last-result"`
	Value       string  `json:"value" jsonschema:"the value (text)"`
	TTL         string  `json:"ttl,omitempty" jsonschema:"forget it after this long, e.g. 10m or 2h"`
	ExpectedRev *uint64 `json:"expected_rev,omitempty" jsonschema:"compare-and-set: store only if the key's revision is still this (0: only if absent)"`
}

// CacheResult answers cache_get and cache_put.
type CacheResult struct {
	Key       string     `json:"key"`
	Exists    bool       `json:"exists"`
	Value     string     `json:"value,omitempty"`
	Rev       uint64     `json:"rev,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// LockArgs are the arguments of lock_acquire and lock_release.
type LockArgs struct {
	Session string `json:"session" jsonschema:"the session id"`
	Path    string `json:"path" jsonschema:"the path to lock"`
	Subtree bool   `json:"subtree,omitempty" jsonschema:"lock everything below the path too (acquire only)"`
	TTL     string `json:"ttl,omitempty" jsonschema:"how long the lease lasts, e.g. 5m (acquire only)"`
	Token   string `json:"token,omitempty" jsonschema:"the token lock_acquire gave (release only)"`
}

// LockResult answers lock_acquire and lock_release.
type LockResult struct {
	Path      string    `json:"path"`
	Token     string    `json:"token,omitempty"`
	Owner     string    `json:"owner"`
	ExpiresAt time.Time `json:"expires_at"`
	Active    bool      `json:"active"`
	Position  uint64    `json:"position"`
}

func (s *Server) addStateTools() {
	add(s, "cache_get", "Read a cache entry",
		"Read a value from the session's key-value cache (scratch state that is not a file: build results, notes to yourself).",
		readOnly, true, s.cacheGet)
	add(s, "cache_put", "Write a cache entry",
		"Store a value in the session's key-value cache, optionally with a time to live or a compare-and-set revision.",
		destructive, true, s.cachePut)
	add(s, "lock_acquire", "Lock a path",
		"Take a lease on a path so that nobody else changes it meanwhile: writes to it then need the token this returns. Release it when done.",
		additive, false, s.lockAcquire)
	add(s, "lock_release", "Unlock a path",
		"Release a lease lock_acquire gave, with its token.",
		destructive, true, s.lockRelease)
}

func (s *Server) cacheGet(ctx context.Context, _ *call, in CacheGetArgs) (string, CacheResult, error) {
	id, err := s.session(in.Session)
	if err != nil {
		return "", CacheResult{}, err
	}
	r, err := s.c.CacheGet(ctx, client.CacheRequest{Session: id, Key: in.Key})
	if err != nil {
		return "", CacheResult{}, err
	}
	out := CacheResult{Key: in.Key, Exists: r.Exists}
	if !r.Exists || r.Entry == nil {
		return fmt.Sprintf("%s is not set", in.Key), out, nil
	}
	out.Value, out.Rev, out.ExpiresAt = string(r.Entry.Value), r.Entry.Rev, r.Entry.ExpiresAt
	return fmt.Sprintf("%s (rev %d) = %s", in.Key, r.Entry.Rev, out.Value), out, nil
}

func (s *Server) cachePut(ctx context.Context, c *call, in CachePutArgs) (string, CacheResult, error) {
	id, err := s.session(in.Session)
	if err != nil {
		return "", CacheResult{}, err
	}
	req := client.CachePutRequest{Mutation: c.mutation(), Session: id, Key: in.Key, Value: []byte(in.Value), TTL: in.TTL, ExpectedRev: in.ExpectedRev}
	put := s.c.CachePut
	if in.ExpectedRev != nil {
		put = s.c.CacheCAS
	}
	r, err := put(ctx, req)
	if err != nil {
		return "", CacheResult{}, err
	}
	out := CacheResult{Key: in.Key, Exists: true, Value: in.Value}
	if r.Entry != nil {
		out.Rev, out.ExpiresAt = r.Entry.Rev, r.Entry.ExpiresAt
	}
	return fmt.Sprintf("stored %s (rev %d)", in.Key, out.Rev), out, nil
}

func (s *Server) lockAcquire(ctx context.Context, c *call, in LockArgs) (string, LockResult, error) {
	return s.lock(ctx, c, "acquire", in)
}

func (s *Server) lockRelease(ctx context.Context, c *call, in LockArgs) (string, LockResult, error) {
	if in.Token == "" {
		return "", LockResult{}, invalid("token is required: the token lock_acquire gave")
	}
	return s.lock(ctx, c, "release", in)
}

func (s *Server) lock(ctx context.Context, c *call, verb string, in LockArgs) (string, LockResult, error) {
	id, err := s.session(in.Session)
	if err != nil {
		return "", LockResult{}, err
	}
	m := c.mutation()
	m.Token = in.Token
	req := client.LockRequest{Mutation: m, Session: id, Path: in.Path}
	if verb == "acquire" {
		req.Subtree, req.TTL = in.Subtree, in.TTL
	}
	r, err := s.c.Lock(ctx, verb, req)
	if err != nil {
		return "", LockResult{}, err
	}
	l := r.Lock
	out := LockResult{Path: l.Path, Token: l.Token, Owner: l.Owner, ExpiresAt: l.ExpiresAt, Active: l.Active, Position: r.Position}
	if verb == "release" {
		return fmt.Sprintf("released the lock on %s", l.Path), out, nil
	}
	return fmt.Sprintf("locked %s until %s; token %s (pass it as token to change the path, and to lock_release)", l.Path, l.ExpiresAt.UTC().Format(time.RFC3339), l.Token), out, nil
}
