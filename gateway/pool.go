package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// Credential is who an HTTP request says it is: a user and password (basic
// auth), a token (bearer), or nothing.
type Credential struct {
	User, Password string
	Token          string
}

// Anonymous reports whether the credential names nobody.
func (c Credential) Anonymous() bool { return c.User == "" && c.Password == "" && c.Token == "" }

// key identifies the credential's connection in the pool without keeping
// the secret itself as a map key.
func (c Credential) key() string {
	h := sha256.Sum256([]byte(c.User + "\x00" + c.Password + "\x00" + c.Token))
	return hex.EncodeToString(h[:])
}

// options are the NATS options that authenticate as the credential.
func (c Credential) options() []nats.Option {
	switch {
	case c.Token != "":
		return []nats.Option{nats.Token(c.Token)}
	case c.User != "":
		return []nats.Option{nats.UserInfo(c.User, c.Password)}
	}
	return nil
}

// errRefused is a credential that the NATS server did not accept.
var errRefused = errors.New("credentials refused by the NATS server")

// pooled is one credential's connection.
type pooled struct {
	nc *nats.Conn
	mu sync.Mutex
	// inUse counts requests holding the connection; lastUsed is when the
	// last one let go (or was handed out).
	inUse    int
	lastUsed time.Time
	// inflight are the requests waiting for a reply, by subject prefix, so that
	// a permission violation (which NATS reports asynchronously, without
	// the request it belongs to) fails them at once instead of leaving
	// them to time out.
	inflight map[string]map[*context.CancelCauseFunc]struct{}
}

// pool keeps one NATS connection per credential, closing those idle for
// longer than idle and the least recently used beyond max.
type pool struct {
	urls string
	opts []nats.Option
	idle time.Duration
	max  int
	now  func() time.Time

	mu    sync.Mutex
	conns map[string]*pooled
	// dialing serialises connects of one credential so that a burst of
	// requests opens one connection.
	dialing map[string]*sync.Mutex
	closed  bool
}

func newPool(urls string, opts []nats.Option, idle time.Duration, max int) *pool {
	return &pool{urls: urls, opts: opts, idle: idle, max: max, now: time.Now,
		conns: map[string]*pooled{}, dialing: map[string]*sync.Mutex{}}
}

// acquire returns the credential's connection, connecting when there is
// none; release it when done.
func (p *pool) acquire(c Credential) (*pooled, error) {
	k := c.key()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, errors.New("gateway closed")
	}
	if pc := p.conns[k]; pc != nil && !pc.nc.IsClosed() {
		pc.hold(p.now())
		p.mu.Unlock()
		return pc, nil
	}
	dm := p.dialing[k]
	if dm == nil {
		dm = &sync.Mutex{}
		p.dialing[k] = dm
	}
	p.mu.Unlock()

	dm.Lock()
	defer dm.Unlock()
	p.mu.Lock()
	if pc := p.conns[k]; pc != nil && !pc.nc.IsClosed() {
		pc.hold(p.now())
		p.mu.Unlock()
		return pc, nil
	}
	p.mu.Unlock()
	pc, err := p.dial(c)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		pc.nc.Close()
		return nil, errors.New("gateway closed")
	}
	delete(p.dialing, k)
	p.conns[k] = pc
	pc.hold(p.now())
	p.evictLocked()
	return pc, nil
}

func (p *pool) dial(c Credential) (*pooled, error) {
	pc := &pooled{inflight: map[string]map[*context.CancelCauseFunc]struct{}{}}
	opts := append([]nats.Option{nats.Name("strand-gateway"), nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond), nats.ErrorHandler(pc.asyncError)}, p.opts...)
	nc, err := nats.Connect(p.urls, append(opts, c.options()...)...)
	if err != nil {
		if errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) || errors.Is(err, nats.ErrAuthRevoked) {
			return nil, errRefused
		}
		return nil, err
	}
	pc.nc = nc
	return pc, nil
}

func (pc *pooled) hold(now time.Time) {
	pc.mu.Lock()
	pc.inUse++
	pc.lastUsed = now
	pc.mu.Unlock()
}

// release lets go of a connection that acquire returned.
func (p *pool) release(pc *pooled) {
	pc.mu.Lock()
	pc.inUse--
	pc.lastUsed = p.now()
	pc.mu.Unlock()
}

// evictLocked closes the least recently used idle connections beyond max.
func (p *pool) evictLocked() {
	for len(p.conns) > p.max {
		var oldest string
		var when time.Time
		for k, pc := range p.conns {
			pc.mu.Lock()
			idle, last := pc.inUse == 0, pc.lastUsed
			pc.mu.Unlock()
			if idle && (oldest == "" || last.Before(when)) {
				oldest, when = k, last
			}
		}
		if oldest == "" {
			return // all busy: over the bound until some let go
		}
		p.conns[oldest].nc.Close()
		delete(p.conns, oldest)
	}
}

// reap closes the connections idle for longer than the idle bound.
func (p *pool) reap() {
	p.mu.Lock()
	defer p.mu.Unlock()
	cutoff := p.now().Add(-p.idle)
	for k, pc := range p.conns {
		pc.mu.Lock()
		idle := pc.inUse == 0 && pc.lastUsed.Before(cutoff)
		pc.mu.Unlock()
		if idle || pc.nc.IsClosed() {
			pc.nc.Close()
			delete(p.conns, k)
		}
	}
}

// size is the number of open connections.
func (p *pool) size() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

func (p *pool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for k, pc := range p.conns {
		pc.nc.Close()
		delete(p.conns, k)
	}
}

// watch registers a request to subjects starting with prefix (a whole
// subject, or a tenant's prefix for a call that makes several requests) so
// that a permission violation for one of them cancels ctx with
// errPermission; call the returned function when the request is over.
func (pc *pooled) watch(ctx context.Context, prefix string) (context.Context, func()) {
	subject := prefix
	ctx, cancel := context.WithCancelCause(ctx)
	pc.mu.Lock()
	set := pc.inflight[subject]
	if set == nil {
		set = map[*context.CancelCauseFunc]struct{}{}
		pc.inflight[subject] = set
	}
	set[&cancel] = struct{}{}
	pc.mu.Unlock()
	return ctx, func() {
		pc.mu.Lock()
		delete(set, &cancel)
		if len(set) == 0 {
			delete(pc.inflight, subject)
		}
		pc.mu.Unlock()
		cancel(nil)
	}
}

// errPermission is a publish that the NATS server refused for the
// credential: the subject is outside what its account may address.
var errPermission = errors.New("permission violation")

// asyncError fails the requests whose subject the server refused. nats.go
// reports a permission violation only as an asynchronous error whose text
// names the subject (there is no code), so the subject is found in it.
func (pc *pooled) asyncError(_ *nats.Conn, _ *nats.Subscription, err error) {
	if !errors.Is(err, nats.ErrPermissionViolation) {
		return
	}
	msg := err.Error()
	pc.mu.Lock()
	defer pc.mu.Unlock()
	for prefix, set := range pc.inflight {
		if strings.Contains(msg, `"`+prefix) {
			for cancel := range set {
				(*cancel)(errPermission)
			}
		}
	}
}
