package domain

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits of the collaboration state.
const (
	MaxCacheKeyBytes   = 512
	MaxCacheValueBytes = 64 * 1024
	MaxCacheOps        = 1000
	MaxCacheBatchBytes = 1 << 20
	MaxXattrName       = 255
	MaxXattrValue      = 64 * 1024
	MaxXattrs          = 64
	MinLockTTL         = time.Second
	MaxLockTTL         = 24 * time.Hour
	DefaultLockTTL     = 5 * time.Minute
	MaxHealthSummary   = 16 * 1024
	MaxHealthDetails   = 64 * 1024
)

// Cache op kinds.
const (
	CachePut          = "put"
	CacheDelete       = "delete"
	CacheDeletePrefix = "delete_prefix"
)

// CacheEntry is one key of a session's knowledge cache.
type CacheEntry struct {
	Value []byte
	// Rev is the version of the session event that last wrote the key:
	// it only grows, so compare-and-set never mistakes one write for another.
	Rev     uint64
	Expires int64 // unix nanoseconds; 0: never
	Updated int64 // unix nanoseconds
}

// Live reports whether the entry exists at time now (unix nanoseconds).
func (e CacheEntry) Live(now int64) bool { return e.Expires == 0 || now < e.Expires }

// Cache is a session's knowledge cache: a persistent ordered map.
type Cache struct{ m pmap[CacheEntry] }

// Get returns a key's entry if it exists at time now.
func (c Cache) Get(key string, now time.Time) (CacheEntry, bool) {
	e, ok := c.m.Get(key)
	if !ok || !e.Live(now.UnixNano()) {
		return CacheEntry{}, false
	}
	return e, true
}

// Keys calls fn for the live keys >= after with the prefix, in order, until fn
// returns false.
func (c Cache) Keys(prefix, after string, now time.Time, fn func(key string, e CacheEntry) bool) {
	from := prefix
	if after >= from {
		from = after + "\x00"
	}
	t := now.UnixNano()
	c.m.Ascend(from, func(k string, e CacheEntry) bool {
		if !strings.HasPrefix(k, prefix) {
			return false
		}
		if !e.Live(t) {
			return true
		}
		return fn(k, e)
	})
}

// Len is the number of stored keys, live or expired.
func (c Cache) Len() int { return c.m.Len() }

// Lock is a lease on a path or a subtree.
type Lock struct {
	Path      string
	Subtree   bool
	TokenHash Hash
	Owner     string
	Expires   time.Time
	Acquired  time.Time
}

// Active reports whether the lease still counts at time now.
func (l Lock) Active(now time.Time) bool { return now.Before(l.Expires) }

// HealthReport is the latest test-run result of a session.
type HealthReport struct {
	HealthData
	Actor    string
	At       time.Time
	Position uint64
}

// CollabState is a session's collaboration state: its knowledge cache,
// leases and latest health report. A snapshot stores the cache as its
// entries and the rest under these keys, so a field added here is kept by
// snapshots without an edit of the store.
type CollabState struct {
	Cache  Cache           `msgpack:"-"`
	Locks  map[string]Lock `msgpack:"locks,omitempty"`
	Health *HealthReport   `msgpack:"health,omitempty"`
}

// ToUTC gives every time of the state in UTC, as events give them.
func (c *CollabState) ToUTC() {
	for p, l := range c.Locks {
		l.Expires, l.Acquired = l.Expires.UTC(), l.Acquired.UTC()
		c.Locks[p] = l
	}
	if c.Health != nil {
		c.Health.At = c.Health.At.UTC()
	}
}

// Collaboration commands.
type (
	// UpdateCache puts and deletes cache keys, all or nothing. Expect, when
	// set for an op, is the revision the key must have (0: absent).
	UpdateCache struct {
		Ops    []CacheOp
		Expect []*uint64
		// Strict makes a delete of an absent key an error.
		Strict bool
	}
	// AcquireLock takes a lease on a path (or a subtree).
	AcquireLock struct {
		Path    string
		Subtree bool
		Token   string
		TTL     time.Duration
	}
	// RenewLock extends a lease held with its token.
	RenewLock struct {
		Path  string
		Token string
		TTL   time.Duration
	}
	// ReleaseLock ends a lease: with its token, or forced by anyone.
	ReleaseLock struct {
		Path  string
		Token string
		Force bool
	}
	// ReportHealth records a test-run result.
	ReportHealth struct{ Data HealthData }
)

func (UpdateCache) command()  {}
func (AcquireLock) command()  {}
func (RenewLock) command()    {}
func (ReleaseLock) command()  {}
func (ReportHealth) command() {}

// TokenHash hashes a lease token.
func TokenHash(token string) Hash { return sha256.Sum256([]byte(token)) }

// LockAt returns the lease recorded for a path.
func (s *Session) LockAt(p string) (Lock, bool) {
	l, ok := s.Locks[p]
	return l, ok
}

// LockList returns the session's leases in path order.
func (s *Session) LockList() []Lock {
	out := make([]Lock, 0, len(s.Locks))
	for _, l := range s.Locks {
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b Lock) int { return ComparePaths(a.Path, b.Path) })
	return out
}

// checkLocks refuses a change of path p (and, when below, of anything under
// it) unless every active lease covering it was taken with token.
func (s *Session) checkLocks(p string, below bool, token string, now time.Time) error {
	if len(s.Locks) == 0 {
		return nil
	}
	th := TokenHash(token)
	for _, l := range s.Locks {
		if !l.Active(now) {
			continue
		}
		covers := p == l.Path || (l.Subtree && isWithin(p, l.Path)) || (below && isWithin(l.Path, p))
		if covers && (token == "" || th != l.TokenHash) {
			return Errorf(CodeLocked, "%q is locked by %s until %s", displayPath(l.Path), l.Owner, l.Expires.Format(time.RFC3339))
		}
	}
	return nil
}

func displayPath(p string) string {
	if p == "" {
		return "/"
	}
	return p
}

func validCacheKey(k string) error {
	if k == "" || len(k) > MaxCacheKeyBytes || !utf8.ValidString(k) || strings.ContainsAny(k, "\x00") {
		return Errorf(CodeInvalidArgument, "cache key must be 1 to %d bytes of UTF-8 without NUL", MaxCacheKeyBytes)
	}
	return nil
}

func decideAcquireLock(s *Session, c AcquireLock, m Meta, _ Past) (*Event, error) {
	if err := s.Writable(); err != nil {
		return nil, err
	}
	p, err := CleanPath(c.Path)
	if err != nil {
		return nil, err
	}
	if p == "" && !c.Subtree {
		return nil, Errorf(CodeInvalidArgument, "locking the root needs subtree")
	}
	if len(c.Token) < 16 {
		return nil, Errorf(CodeInvalidArgument, "a lock token has at least 16 characters")
	}
	ttl, err := lockTTL(c.TTL)
	if err != nil {
		return nil, err
	}
	for _, l := range s.Locks {
		if !l.Active(m.Time) {
			continue
		}
		if l.Path == p || (l.Subtree && isWithin(p, l.Path)) || (c.Subtree && isWithin(l.Path, p)) {
			return nil, Errorf(CodeLocked, "%q is locked by %s until %s", displayPath(l.Path), l.Owner, l.Expires.Format(time.RFC3339))
		}
	}
	e := newEvent(s, LockAcquired, m)
	th := TokenHash(c.Token)
	e.Lock = &LockData{Path: p, Subtree: c.Subtree, TokenHash: th[:], Owner: m.Actor, Expires: m.Time.Add(ttl).UnixNano()}
	return e, nil
}

func decideRenewLock(s *Session, c RenewLock, m Meta, _ Past) (*Event, error) {
	p, err := CleanPath(c.Path)
	if err != nil {
		return nil, err
	}
	l, err := s.heldLock(p, c.Token, m.Time)
	if err != nil {
		return nil, err
	}
	ttl, err := lockTTL(c.TTL)
	if err != nil {
		return nil, err
	}
	e := newEvent(s, LockRenewed, m)
	e.Lock = &LockData{Path: l.Path, Expires: m.Time.Add(ttl).UnixNano()}
	return e, nil
}

func decideReleaseLock(s *Session, c ReleaseLock, m Meta, _ Past) (*Event, error) {
	p, err := CleanPath(c.Path)
	if err != nil {
		return nil, err
	}
	if c.Force {
		if _, ok := s.Locks[p]; !ok {
			return nil, Errorf(CodeNotFound, "no lock on %q", displayPath(p))
		}
	} else if _, err := s.heldLock(p, c.Token, m.Time); err != nil {
		return nil, err
	}
	e := newEvent(s, LockReleased, m)
	e.Lock = &LockData{Path: p, Forced: c.Force}
	return e, nil
}

func decideHealth(s *Session, c ReportHealth, m Meta, _ Past) (*Event, error) {
	d := c.Data
	if d.Passed < 0 || d.Failed < 0 || d.Skipped < 0 {
		return nil, Errorf(CodeInvalidArgument, "counts must not be negative")
	}
	if len(d.Summary) > MaxHealthSummary {
		return nil, Errorf(CodeInvalidArgument, "summary is longer than %d bytes", MaxHealthSummary)
	}
	if len(d.Details) > MaxHealthDetails || (len(d.Details) > 0 && !json.Valid(d.Details)) {
		return nil, Errorf(CodeInvalidArgument, "details must be JSON of at most %d bytes", MaxHealthDetails)
	}
	if err := s.Writable(); err != nil {
		return nil, err
	}
	e := newEvent(s, HealthReported, m)
	e.Health = &d
	return e, nil
}

func lockTTL(ttl time.Duration) (time.Duration, error) {
	if ttl == 0 {
		return DefaultLockTTL, nil
	}
	if ttl < MinLockTTL || ttl > MaxLockTTL {
		return 0, Errorf(CodeInvalidArgument, "lock ttl must be between %s and %s", MinLockTTL, MaxLockTTL)
	}
	return ttl, nil
}

// heldLock returns the active lease on exactly p if token holds it.
func (s *Session) heldLock(p, token string, now time.Time) (Lock, error) {
	l, ok := s.Locks[p]
	if !ok || !l.Active(now) {
		return Lock{}, Errorf(CodeNotFound, "no active lock on %q", displayPath(p))
	}
	if TokenHash(token) != l.TokenHash {
		return Lock{}, Errorf(CodeForbidden, "the token does not hold the lock on %q", displayPath(p))
	}
	return l, nil
}

func decideCache(s *Session, c UpdateCache, m Meta, _ Past) (*Event, error) {
	if err := s.Writable(); err != nil {
		return nil, err
	}
	if len(c.Ops) == 0 {
		return nil, Errorf(CodeInvalidArgument, "no cache operations")
	}
	if len(c.Ops) > MaxCacheOps {
		return nil, Errorf(CodeTooLarge, "at most %d cache operations at once", MaxCacheOps)
	}
	total := 0
	cache := s.Cache
	now := m.Time
	var ops []CacheOp
	for i, op := range c.Ops {
		if err := validCacheKey(op.Key); err != nil && !(op.Op == CacheDeletePrefix && op.Key == "") {
			return nil, err
		}
		if i < len(c.Expect) && c.Expect[i] != nil {
			want := *c.Expect[i]
			cur, ok := cache.Get(op.Key, now)
			got := uint64(0)
			if ok {
				got = cur.Rev
			}
			if got != want {
				return nil, Errorf(CodeConflict, "cache key %q is at revision %d, not %d", op.Key, got, want)
			}
		}
		switch op.Op {
		case CachePut:
			if len(op.Value) > MaxCacheValueBytes {
				return nil, Errorf(CodeTooLarge, "a cache value holds at most %d bytes", MaxCacheValueBytes)
			}
			total += len(op.Key) + len(op.Value)
			if op.Expires != 0 && op.Expires <= now.UnixNano() {
				return nil, Errorf(CodeInvalidArgument, "ttl must be positive")
			}
			cache = Cache{m: cache.m.Set(op.Key, CacheEntry{Value: op.Value, Expires: op.Expires})}
			ops = append(ops, CacheOp{Op: CachePut, Key: op.Key, Value: op.Value, Expires: op.Expires})
		case CacheDelete:
			if _, ok := cache.Get(op.Key, now); !ok {
				if c.Strict {
					return nil, Errorf(CodeNotFound, "cache key %q not found", op.Key)
				}
				continue
			}
			cache = Cache{m: cache.m.Delete(op.Key)}
			ops = append(ops, CacheOp{Op: CacheDelete, Key: op.Key})
		case CacheDeletePrefix:
			n := 0
			cache.Keys(op.Key, "", now, func(string, CacheEntry) bool { n++; return false })
			if n == 0 {
				if c.Strict {
					return nil, Errorf(CodeNotFound, "no cache keys start with %q", op.Key)
				}
				continue
			}
			var keys []string
			cache.m.Ascend(op.Key, func(k string, _ CacheEntry) bool {
				if !strings.HasPrefix(k, op.Key) {
					return false
				}
				keys = append(keys, k)
				return true
			})
			for _, k := range keys {
				cache = Cache{m: cache.m.Delete(k)}
			}
			ops = append(ops, CacheOp{Op: CacheDeletePrefix, Key: op.Key})
		default:
			return nil, Errorf(CodeInvalidArgument, "cache op must be put, delete or delete_prefix")
		}
	}
	if total > MaxCacheBatchBytes {
		return nil, Errorf(CodeTooLarge, "cache changes hold at most %d bytes at once", MaxCacheBatchBytes)
	}
	if len(ops) == 0 {
		return nil, Errorf(CodeNotFound, "no such cache keys")
	}
	e := newEvent(s, CacheUpdated, m)
	e.Cache = ops
	return e, nil
}

func applyCacheUpdated(n *Session, e *Event, _ applying) error {
	c := n.Cache.m
	for _, op := range e.Cache {
		switch op.Op {
		case CachePut:
			c = c.Set(op.Key, CacheEntry{Value: op.Value, Rev: e.Version, Expires: op.Expires, Updated: e.Time})
		case CacheDelete:
			c = c.Delete(op.Key)
		case CacheDeletePrefix:
			var keys []string
			c.Ascend(op.Key, func(k string, _ CacheEntry) bool {
				if !strings.HasPrefix(k, op.Key) {
					return false
				}
				keys = append(keys, k)
				return true
			})
			for _, k := range keys {
				c = c.Delete(k)
			}
		default:
			return Errorf(CodeInternal, "unknown cache op %q", op.Op)
		}
	}
	n.Cache = Cache{m: c}
	return nil
}

// applyLock folds LockAcquired, LockRenewed and LockReleased.
func applyLock(n *Session, e *Event, _ applying) error {
	d := e.Lock
	if d == nil {
		return Errorf(CodeInternal, "%s without payload", e.Type)
	}
	locks := maps.Clone(n.Locks)
	if locks == nil {
		locks = map[string]Lock{}
	}
	switch e.Type {
	case LockAcquired:
		th, _ := HashFromBytes(d.TokenHash)
		locks[d.Path] = Lock{Path: d.Path, Subtree: d.Subtree, TokenHash: th, Owner: d.Owner, Expires: time.Unix(0, d.Expires).UTC(), Acquired: e.At()}
	case LockRenewed:
		l := locks[d.Path]
		l.Expires = time.Unix(0, d.Expires).UTC()
		locks[d.Path] = l
	case LockReleased:
		delete(locks, d.Path)
	}
	// Leases that ran out are dropped as history goes by.
	for p, l := range locks {
		if !l.Active(e.At()) {
			delete(locks, p)
		}
	}
	n.Locks = locks
	return nil
}

func applyHealth(n *Session, e *Event, _ applying) error {
	if e.Health == nil {
		return Errorf(CodeInternal, "%s without payload", e.Type)
	}
	h := &HealthReport{HealthData: *e.Health, Actor: e.Actor, At: e.At()}
	n.Health = h
	n.onStored(func(_ *Session, position uint64) { h.Position = position })
	return nil
}

// withXattrOp returns the node at op's path with one extended attribute
// set or removed.
func withXattrOp(t Tree, op Op) (*Node, error) {
	node := t.Lookup(op.Path)
	if node == nil {
		return nil, Errorf(CodeInternal, "xattr on missing %q in event", op.Path)
	}
	x := maps.Clone(node.Xattrs)
	if x == nil {
		x = map[string][]byte{}
	}
	if op.Kind == OpSetXattr {
		x[strings.Clone(op.Name)] = bytes.Clone(op.Value) // not the event's memory
	} else {
		delete(x, op.Name)
	}
	return node.WithXattrs(x), nil
}

func checkXattr(cur *Node, fo FileOp, p string) error {
	if cur == nil {
		return Errorf(CodeNotFound, "%q not found", p)
	}
	if fo.Name == "" || len(fo.Name) > MaxXattrName || !utf8.ValidString(fo.Name) || strings.ContainsAny(fo.Name, "\x00") {
		return Errorf(CodeInvalidArgument, "xattr name must be 1 to %d bytes of UTF-8 without NUL", MaxXattrName)
	}
	if fo.Kind == OpRemoveXattr {
		if _, ok := cur.Xattrs[fo.Name]; !ok {
			return Errorf(CodeNotFound, "%q has no xattr %q", p, fo.Name)
		}
		return nil
	}
	if len(fo.Value) > MaxXattrValue {
		return Errorf(CodeTooLarge, "an xattr value holds at most %d bytes", MaxXattrValue)
	}
	if _, ok := cur.Xattrs[fo.Name]; !ok && len(cur.Xattrs) >= MaxXattrs {
		return Errorf(CodeTooLarge, "at most %d xattrs per path", MaxXattrs)
	}
	return nil
}

// All calls fn for every stored key, live or expired, in order.
func (c Cache) All(fn func(key string, e CacheEntry) bool) { c.m.Ascend("", fn) }

// NewCache builds a cache from stored entries (for snapshots).
func NewCache(keys []string, entries []CacheEntry) Cache {
	var c Cache
	for i, k := range keys {
		c.m = c.m.Set(k, entries[i])
	}
	return c
}

func describeCacheUpdated(e *Event) string {
	return "cache " + listed(itemsOf(e.Cache, func(op CacheOp) string { return op.Op + " " + text(op.Key) }), ", ")
}

// describeLock shows LockAcquired, LockRenewed and LockReleased.
func describeLock(e *Event) string {
	d := e.Lock
	if d == nil {
		return ""
	}
	s := "lock " + describedPath(d.Path)
	if d.Subtree {
		s += " (subtree)"
	}
	switch e.Type {
	case LockAcquired:
		return s + " by " + text(d.Owner) + " until " + describedTime(d.Expires)
	case LockRenewed:
		return s + " renewed until " + describedTime(d.Expires)
	}
	if d.Forced {
		return s + " released (forced)"
	}
	return s + " released"
}

func describeHealth(e *Event) string {
	h := e.Health
	if h == nil {
		return ""
	}
	state := "failing"
	if h.Passing {
		state = "passing"
	}
	s := "health " + state + ": " + strconv.Itoa(h.Passed) + " passed, " + strconv.Itoa(h.Failed) + " failed, " + strconv.Itoa(h.Skipped) + " skipped"
	if h.Summary != "" {
		s += ": " + text(h.Summary)
	}
	return s
}
