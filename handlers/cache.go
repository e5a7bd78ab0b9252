package handlers

import (
	"context"
	"time"

	"github.com/strand-dev/strand/domain"
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

func cacheView(key string, e domain.CacheEntry, withValue bool) CacheEntryView {
	v := CacheEntryView{Key: key, Rev: e.Rev, Size: len(e.Value), UpdatedAt: time.Unix(0, e.Updated).UTC()}
	if withValue {
		v.Value = e.Value
		if v.Value == nil {
			v.Value = []byte{}
		}
	}
	if e.Expires != 0 {
		t := time.Unix(0, e.Expires).UTC()
		v.ExpiresAt = &t
	}
	return v
}

// cacheState returns the session at a point and the time against which
// TTLs are judged there: the service's clock at the head, the event time of
// the position otherwise (so reading the past always answers the same).
func (c *call) cacheState(id string, at At) (*domain.Session, time.Time, error) {
	sess, err := c.resolveAt(id, at)
	if err != nil {
		return nil, time.Time{}, err
	}
	if at == "" {
		if err := readable(sess); err != nil {
			return nil, time.Time{}, err
		}
		return sess, c.svc.opts.Now(), nil
	}
	return sess, sess.UpdatedAt, nil
}

func (s *Service) cacheGet(c *call) (any, error) {
	return s.cacheRead(c, func(sess *domain.Session, key string, now time.Time) (any, error) {
		e, ok := sess.Cache.Get(key, now)
		if !ok {
			return nil, domain.Errorf(domain.CodeNotFound, "cache key %q not found", key)
		}
		v := cacheView(key, e, true)
		return CacheReply{Entry: &v, Exists: true, Position: sess.Position}, nil
	})
}

func (s *Service) cacheExists(c *call) (any, error) {
	return s.cacheRead(c, func(sess *domain.Session, key string, now time.Time) (any, error) {
		e, ok := sess.Cache.Get(key, now)
		r := CacheReply{Exists: ok, Position: sess.Position}
		if ok {
			v := cacheView(key, e, false)
			r.Entry = &v
		}
		return r, nil
	})
}

func (s *Service) cacheMeta(c *call) (any, error) {
	return s.cacheRead(c, func(sess *domain.Session, key string, now time.Time) (any, error) {
		e, ok := sess.Cache.Get(key, now)
		if !ok {
			return nil, domain.Errorf(domain.CodeNotFound, "cache key %q not found", key)
		}
		v := cacheView(key, e, false)
		return CacheReply{Entry: &v, Exists: true, Position: sess.Position}, nil
	})
}

func (s *Service) cacheRead(c *call, fn func(*domain.Session, string, time.Time) (any, error)) (any, error) {
	var req CacheRequest
	id, err := c.decodeSession(&req, &req.Session)
	if err != nil {
		return nil, err
	}
	if req.Key == "" {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "key is required")
	}
	sess, now, err := c.cacheState(id, req.At)
	if err != nil {
		return nil, err
	}
	return fn(sess, req.Key, now)
}

func (c *call) ttl(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, domain.Errorf(domain.CodeInvalidArgument, "ttl must be a positive duration like 90s or 1h")
	}
	return int64(d), nil
}

// cacheChange appends one cache update; expires are relative TTLs turned
// into absolute times with the event's own time.
func (c *call) cacheChange(id string, m Mutation, ops []domain.CacheOp, ttls []int64, expect []*uint64, strict bool) (CacheBatchReply, error) {
	meta, err := c.meta(m)
	if err != nil {
		return CacheBatchReply{}, err
	}
	for i := range ops {
		if i < len(ttls) && ttls[i] != 0 {
			ops[i].Expires = meta.Time.UnixNano() + ttls[i]
		}
	}
	res, err := c.svc.store.Change(c.ctx, c.tenant, id, meta, func(*domain.Session) (domain.Command, error) {
		return domain.UpdateCache{Ops: ops, Expect: expect, Strict: strict}, nil
	})
	if err != nil {
		return CacheBatchReply{}, err
	}
	reply := CacheBatchReply{Entries: []CacheEntryView{}, Position: res.Position, Replayed: res.Replayed}
	at := res.Session.UpdatedAt
	for _, op := range res.Event.Cache {
		if op.Op != domain.CachePut {
			reply.Deleted++
			continue
		}
		if e, ok := res.Session.Cache.Get(op.Key, at); ok {
			reply.Entries = append(reply.Entries, cacheView(op.Key, e, false))
		}
	}
	return reply, nil
}

func (s *Service) cachePut(c *call) (any, error) { return s.cacheWrite(c, false) }
func (s *Service) cacheCAS(c *call) (any, error) { return s.cacheWrite(c, true) }

func (s *Service) cacheWrite(c *call, cas bool) (any, error) {
	var req CachePutRequest
	id, err := c.decodeSession(&req, &req.Session)
	if err != nil {
		return nil, err
	}
	if cas && req.ExpectedRev == nil {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "cas needs expected_rev (0: the key must not exist)")
	}
	ttl, err := c.ttl(req.TTL)
	if err != nil {
		return nil, err
	}
	r, err := c.cacheChange(id, req.Mutation, []domain.CacheOp{{Op: domain.CachePut, Key: req.Key, Value: req.Value}}, []int64{ttl}, []*uint64{req.ExpectedRev}, true)
	if err != nil {
		return nil, err
	}
	out := CacheReply{Exists: true, Position: r.Position, Replayed: r.Replayed}
	if len(r.Entries) == 1 {
		out.Entry = &r.Entries[0]
	}
	return out, nil
}

func (s *Service) cacheDelete(c *call) (any, error) {
	var req CacheRequest
	id, err := c.decodeSession(&req, &req.Session)
	if err != nil {
		return nil, err
	}
	if req.At != "" {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "at cannot be given to a change")
	}
	r, err := c.cacheChange(id, req.Mutation, []domain.CacheOp{{Op: domain.CacheDelete, Key: req.Key}}, nil, nil, true)
	if err != nil {
		return nil, err
	}
	return CacheReply{Position: r.Position, Replayed: r.Replayed}, nil
}

func (s *Service) cacheKeys(c *call) (any, error) {
	var req CacheKeysRequest
	id, err := c.decodeSession(&req, &req.Session)
	if err != nil {
		return nil, err
	}
	if req.Limit < 0 || req.Limit > MaxCacheKeysLimit {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "limit must be between 0 and %d", MaxCacheKeysLimit)
	}
	limit := req.Limit
	if limit == 0 {
		limit = DefaultCacheKeysLimit
	}
	sess, now, err := c.cacheState(id, req.At)
	if err != nil {
		return nil, err
	}
	reply := CacheKeysReply{Keys: []CacheEntryView{}, Position: sess.Position}
	sess.Cache.Keys(req.Prefix, req.After, now, func(k string, e domain.CacheEntry) bool {
		if len(reply.Keys) == limit {
			reply.NextCursor = reply.Keys[limit-1].Key
			return false
		}
		reply.Keys = append(reply.Keys, cacheView(k, e, false))
		return true
	})
	return reply, nil
}

func (s *Service) cacheStats(c *call) (any, error) {
	var req CacheKeysRequest
	id, err := c.decodeSession(&req, &req.Session)
	if err != nil {
		return nil, err
	}
	sess, now, err := c.cacheState(id, req.At)
	if err != nil {
		return nil, err
	}
	reply := CacheStatsReply{Position: sess.Position}
	sess.Cache.Keys(req.Prefix, "", now, func(k string, e domain.CacheEntry) bool {
		reply.Keys++
		reply.Bytes += len(k) + len(e.Value)
		return true
	})
	return reply, nil
}

func (s *Service) cacheBatchGet(c *call) (any, error) {
	var req CacheBatchRequest
	id, err := c.decodeSession(&req, &req.Session)
	if err != nil {
		return nil, err
	}
	if len(req.Keys) == 0 || len(req.Keys) > domain.MaxCacheOps {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "keys must hold 1 to %d keys", domain.MaxCacheOps)
	}
	sess, now, err := c.cacheState(id, req.At)
	if err != nil {
		return nil, err
	}
	reply := CacheBatchReply{Entries: []CacheEntryView{}, Position: sess.Position}
	for _, k := range req.Keys {
		if e, ok := sess.Cache.Get(k, now); ok {
			reply.Entries = append(reply.Entries, cacheView(k, e, true))
		} else {
			reply.Missing = append(reply.Missing, k)
		}
	}
	return reply, nil
}

func (s *Service) cacheBatchPut(c *call) (any, error) {
	var req CacheBatchRequest
	id, err := c.decodeSession(&req, &req.Session)
	if err != nil {
		return nil, err
	}
	if len(req.Entries) == 0 {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "entries must hold at least one entry")
	}
	if len(req.Entries) > domain.MaxCacheOps {
		return nil, domain.Errorf(domain.CodeTooLarge, "at most %d entries at once", domain.MaxCacheOps)
	}
	ops := make([]domain.CacheOp, len(req.Entries))
	ttls := make([]int64, len(req.Entries))
	expect := make([]*uint64, len(req.Entries))
	for i, e := range req.Entries {
		if e.Session != "" || e.RequestID != "" || e.ExpectedPosition != 0 {
			return nil, domain.Errorf(domain.CodeInvalidArgument, "entry %d: only key, value, ttl and expected_rev belong in an entry", i)
		}
		if ttls[i], err = c.ttl(e.TTL); err != nil {
			return nil, err
		}
		ops[i] = domain.CacheOp{Op: domain.CachePut, Key: e.Key, Value: e.Value}
		expect[i] = e.ExpectedRev
	}
	return c.cacheChange(id, req.Mutation, ops, ttls, expect, true)
}

func (s *Service) cacheBatchDelete(c *call) (any, error) {
	var req CacheBatchRequest
	id, err := c.decodeSession(&req, &req.Session)
	if err != nil {
		return nil, err
	}
	if len(req.Keys) == 0 {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "keys must hold at least one key")
	}
	ops := make([]domain.CacheOp, len(req.Keys))
	for i, k := range req.Keys {
		ops[i] = domain.CacheOp{Op: domain.CacheDelete, Key: k}
	}
	return c.cacheChange(id, req.Mutation, ops, nil, nil, false)
}

func (s *Service) cacheDeletePrefix(c *call) (any, error) {
	var req CacheBatchRequest
	id, err := c.decodeSession(&req, &req.Session)
	if err != nil {
		return nil, err
	}
	if req.Keys != nil || req.Entries != nil {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "delete_prefix takes a prefix")
	}
	sess, err := s.store.Peek(c.ctx, c.tenant, id)
	if err != nil {
		return nil, err
	}
	n := 0
	sess.Cache.Keys(req.Prefix, "", s.opts.Now(), func(string, domain.CacheEntry) bool { n++; return true })
	r, err := c.cacheChange(id, req.Mutation, []domain.CacheOp{{Op: domain.CacheDeletePrefix, Key: req.Prefix}}, nil, nil, true)
	if err != nil {
		return nil, err
	}
	r.Deleted = n
	return r, nil
}

// CacheGet reads a key.
func (c *Client) CacheGet(ctx context.Context, req CacheRequest) (CacheReply, error) {
	var r CacheReply
	return r, c.Request(ctx, "cache", "get", req, &r)
}

// CachePut writes a key.
func (c *Client) CachePut(ctx context.Context, req CachePutRequest) (CacheReply, error) {
	var r CacheReply
	return r, c.Request(ctx, "cache", "put", req, &r)
}

// CacheCAS writes a key only at the expected revision.
func (c *Client) CacheCAS(ctx context.Context, req CachePutRequest) (CacheReply, error) {
	var r CacheReply
	return r, c.Request(ctx, "cache", "cas", req, &r)
}

// CacheDelete deletes a key.
func (c *Client) CacheDelete(ctx context.Context, req CacheRequest) (CacheReply, error) {
	var r CacheReply
	return r, c.Request(ctx, "cache", "delete", req, &r)
}

// CacheExists tells whether a key exists.
func (c *Client) CacheExists(ctx context.Context, req CacheRequest) (CacheReply, error) {
	var r CacheReply
	return r, c.Request(ctx, "cache", "exists", req, &r)
}

// CacheMeta returns a key's revision, size and expiry.
func (c *Client) CacheMeta(ctx context.Context, req CacheRequest) (CacheReply, error) {
	var r CacheReply
	return r, c.Request(ctx, "cache", "meta", req, &r)
}

// CacheKeys lists a page of keys.
func (c *Client) CacheKeys(ctx context.Context, req CacheKeysRequest) (CacheKeysReply, error) {
	var r CacheKeysReply
	return r, c.Request(ctx, "cache", "keys", req, &r)
}

// CacheStats counts keys and bytes.
func (c *Client) CacheStats(ctx context.Context, req CacheKeysRequest) (CacheStatsReply, error) {
	var r CacheStatsReply
	return r, c.Request(ctx, "cache", "stats", req, &r)
}

// CacheBatch runs cache.batch_get, batch_put, batch_delete or delete_prefix.
func (c *Client) CacheBatch(ctx context.Context, verb string, req CacheBatchRequest) (CacheBatchReply, error) {
	var r CacheBatchReply
	return r, c.Request(ctx, "cache", verb, req, &r)
}
