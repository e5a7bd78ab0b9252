package handlers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/strand-dev/strand/domain"
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

func lockView(l domain.Lock, now time.Time) LockView {
	return LockView{Path: l.Path, Subtree: l.Subtree, Owner: l.Owner, ExpiresAt: l.Expires, Active: l.Active(now)}
}

func lockTTL(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, domain.Errorf(domain.CodeInvalidArgument, "ttl must be a duration like 30s or 5m")
	}
	return d, nil
}

func newToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *Service) lockAcquire(c *call) (any, error) {
	var req LockRequest
	id, err := c.decodeSession(&req, &req.Session)
	if err != nil {
		return nil, err
	}
	ttl, err := lockTTL(req.TTL)
	if err != nil {
		return nil, err
	}
	token := req.Token
	if token == "" {
		token = newToken()
	}
	res, err := c.change(id, Mutation{RequestID: req.RequestID, ExpectedPosition: req.ExpectedPosition, Actor: req.Actor}, func(*domain.Session) (domain.Command, error) {
		return domain.AcquireLock{Path: req.Path, Subtree: req.Subtree, Token: token, TTL: ttl}, nil
	})
	if err != nil {
		return nil, err
	}
	l, _ := res.Session.LockAt(res.Event.Lock.Path)
	v := lockView(l, res.Session.UpdatedAt)
	if !res.Replayed || req.Token != "" {
		v.Token = token
	}
	return LockReply{Lock: v, Position: res.Position, Replayed: res.Replayed}, nil
}

func (s *Service) lockRenew(c *call) (any, error) {
	var req LockRequest
	id, err := c.decodeSession(&req, &req.Session)
	if err != nil {
		return nil, err
	}
	ttl, err := lockTTL(req.TTL)
	if err != nil {
		return nil, err
	}
	res, err := c.change(id, Mutation{RequestID: req.RequestID, ExpectedPosition: req.ExpectedPosition, Actor: req.Actor}, func(*domain.Session) (domain.Command, error) {
		return domain.RenewLock{Path: req.Path, Token: req.Token, TTL: ttl}, nil
	})
	if err != nil {
		return nil, err
	}
	l, _ := res.Session.LockAt(res.Event.Lock.Path)
	return LockReply{Lock: lockView(l, res.Session.UpdatedAt), Position: res.Position, Replayed: res.Replayed}, nil
}

func (s *Service) lockRelease(c *call) (any, error)      { return s.release(c, false) }
func (s *Service) lockForceRelease(c *call) (any, error) { return s.release(c, true) }

func (s *Service) release(c *call, force bool) (any, error) {
	var req LockRequest
	id, err := c.decodeSession(&req, &req.Session)
	if err != nil {
		return nil, err
	}
	var old domain.Lock
	res, err := c.change(id, Mutation{RequestID: req.RequestID, ExpectedPosition: req.ExpectedPosition, Actor: req.Actor}, func(sess *domain.Session) (domain.Command, error) {
		if p, err := domain.CleanPath(req.Path); err == nil {
			old, _ = sess.LockAt(p)
		}
		return domain.ReleaseLock{Path: req.Path, Token: req.Token, Force: force}, nil
	})
	if err != nil {
		return nil, err
	}
	v := lockView(old, res.Session.UpdatedAt)
	v.Path = res.Event.Lock.Path
	return LockReply{Lock: v, Position: res.Position, Replayed: res.Replayed}, nil
}

func (s *Service) lockList(c *call) (any, error) {
	var req LockListRequest
	id, err := c.decodeSession(&req, &req.Session)
	if err != nil {
		return nil, err
	}
	sess, err := s.store.Head(c.ctx, c.tenant, id)
	if err != nil {
		return nil, err
	}
	if err := readable(sess); err != nil {
		return nil, err
	}
	now := s.opts.Now()
	reply := LockListReply{Locks: []LockView{}, Position: sess.Position}
	for _, l := range sess.LockList() {
		if l.Active(now) { // a lease that ran out no longer counts
			reply.Locks = append(reply.Locks, lockView(l, now))
		}
	}
	return reply, nil
}

// Lock runs lock.acquire, renew, release or force_release.
func (c *Client) Lock(ctx context.Context, verb string, req LockRequest) (LockReply, error) {
	var r LockReply
	return r, c.Request(ctx, "lock", verb, req, &r)
}

// Locks lists a session's leases.
func (c *Client) Locks(ctx context.Context, req LockListRequest) (LockListReply, error) {
	var r LockListReply
	return r, c.Request(ctx, "lock", "list", req, &r)
}
