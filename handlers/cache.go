package handlers

import (
	"time"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

func cacheView(key string, e domain.CacheEntry, withValue bool) client.CacheEntryView {
	v := client.CacheEntryView{Key: key, Rev: e.Rev, Size: len(e.Value), UpdatedAt: time.Unix(0, e.Updated).UTC()}
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
func (c *call) cacheState(id string, at client.At) (*domain.Session, time.Time, error) {
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
		return client.CacheReply{Entry: &v, Exists: true, Position: sess.Position}, nil
	})
}

func (s *Service) cacheExists(c *call) (any, error) {
	return s.cacheRead(c, func(sess *domain.Session, key string, now time.Time) (any, error) {
		e, ok := sess.Cache.Get(key, now)
		r := client.CacheReply{Exists: ok, Position: sess.Position}
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
		return client.CacheReply{Entry: &v, Exists: true, Position: sess.Position}, nil
	})
}

func (s *Service) cacheRead(c *call, fn func(*domain.Session, string, time.Time) (any, error)) (any, error) {
	var req client.CacheRequest
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
func (c *call) cacheChange(id string, m client.Mutation, ops []domain.CacheOp, ttls []int64, expect []*uint64, strict bool) (client.CacheBatchReply, error) {
	meta, err := c.meta(m)
	if err != nil {
		return client.CacheBatchReply{}, err
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
		return client.CacheBatchReply{}, err
	}
	reply := client.CacheBatchReply{Entries: []client.CacheEntryView{}, Position: res.Position, Replayed: res.Replayed}
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
	var req client.CachePutRequest
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
	out := client.CacheReply{Exists: true, Position: r.Position, Replayed: r.Replayed}
	if len(r.Entries) == 1 {
		out.Entry = &r.Entries[0]
	}
	return out, nil
}

func (s *Service) cacheDelete(c *call) (any, error) {
	var req client.CacheRequest
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
	return client.CacheReply{Position: r.Position, Replayed: r.Replayed}, nil
}

func (s *Service) cacheKeys(c *call) (any, error) {
	var req client.CacheKeysRequest
	id, err := c.decodeSession(&req, &req.Session)
	if err != nil {
		return nil, err
	}
	if req.Limit < 0 || req.Limit > client.MaxCacheKeysLimit {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "limit must be between 0 and %d", client.MaxCacheKeysLimit)
	}
	limit := req.Limit
	if limit == 0 {
		limit = client.DefaultCacheKeysLimit
	}
	sess, now, err := c.cacheState(id, req.At)
	if err != nil {
		return nil, err
	}
	reply := client.CacheKeysReply{Keys: []client.CacheEntryView{}, Position: sess.Position}
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
	var req client.CacheKeysRequest
	id, err := c.decodeSession(&req, &req.Session)
	if err != nil {
		return nil, err
	}
	sess, now, err := c.cacheState(id, req.At)
	if err != nil {
		return nil, err
	}
	reply := client.CacheStatsReply{Position: sess.Position}
	sess.Cache.Keys(req.Prefix, "", now, func(k string, e domain.CacheEntry) bool {
		reply.Keys++
		reply.Bytes += len(k) + len(e.Value)
		return true
	})
	return reply, nil
}

func (s *Service) cacheBatchGet(c *call) (any, error) {
	var req client.CacheBatchRequest
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
	reply := client.CacheBatchReply{Entries: []client.CacheEntryView{}, Position: sess.Position}
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
	var req client.CacheBatchRequest
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
	var req client.CacheBatchRequest
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
	var req client.CacheBatchRequest
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
