package handlers

import (
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

func lockView(l domain.Lock, now time.Time) client.LockView {
	return client.LockView{Path: l.Path, Subtree: l.Subtree, Owner: l.Owner, ExpiresAt: l.Expires, Active: l.Active(now)}
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
	var req client.LockRequest
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
	res, err := c.change(id, client.Mutation{RequestID: req.RequestID, ExpectedPosition: req.ExpectedPosition, Actor: req.Actor}, func(*domain.Session) (domain.Command, error) {
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
	return client.LockReply{Lock: v, Position: res.Position, Replayed: res.Replayed}, nil
}

func (s *Service) lockRenew(c *call) (any, error) {
	var req client.LockRequest
	id, err := c.decodeSession(&req, &req.Session)
	if err != nil {
		return nil, err
	}
	ttl, err := lockTTL(req.TTL)
	if err != nil {
		return nil, err
	}
	res, err := c.change(id, client.Mutation{RequestID: req.RequestID, ExpectedPosition: req.ExpectedPosition, Actor: req.Actor}, func(*domain.Session) (domain.Command, error) {
		return domain.RenewLock{Path: req.Path, Token: req.Token, TTL: ttl}, nil
	})
	if err != nil {
		return nil, err
	}
	l, _ := res.Session.LockAt(res.Event.Lock.Path)
	return client.LockReply{Lock: lockView(l, res.Session.UpdatedAt), Position: res.Position, Replayed: res.Replayed}, nil
}

func (s *Service) lockRelease(c *call) (any, error)      { return s.release(c, false) }
func (s *Service) lockForceRelease(c *call) (any, error) { return s.release(c, true) }

func (s *Service) release(c *call, force bool) (any, error) {
	var req client.LockRequest
	id, err := c.decodeSession(&req, &req.Session)
	if err != nil {
		return nil, err
	}
	var old domain.Lock
	res, err := c.change(id, client.Mutation{RequestID: req.RequestID, ExpectedPosition: req.ExpectedPosition, Actor: req.Actor}, func(sess *domain.Session) (domain.Command, error) {
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
	return client.LockReply{Lock: v, Position: res.Position, Replayed: res.Replayed}, nil
}

func (s *Service) lockList(c *call) (any, error) {
	var req client.LockListRequest
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
	reply := client.LockListReply{Locks: []client.LockView{}, Position: sess.Position}
	for _, l := range sess.LockList() {
		if l.Active(now) { // a lease that ran out no longer counts
			reply.Locks = append(reply.Locks, lockView(l, now))
		}
	}
	return reply, nil
}
