package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
)

// Limits bound what one tenant may use. In a configuration a zero field
// takes the value of the level above (tenant <- default <- DefaultLimits)
// and -1 means unlimited.
type Limits struct {
	// Sessions bounds the tenant's sessions that are not deleted;
	// session.create and session.fork are refused with too_large at the
	// limit.
	Sessions int64 `json:"sessions,omitempty"`
	// BytesStored bounds the file content written into the tenant's
	// sessions (see docs/security.md for how it is counted); requests that
	// add content are refused with too_large once it is reached.
	BytesStored int64 `json:"bytes_stored,omitempty"`
	// RequestBytes bounds one request body (too_large).
	RequestBytes int64 `json:"request_bytes,omitempty"`
	// RequestsPerSecond is the tenant's sustained request rate on each
	// instance; beyond it and its Burst, requests are refused with
	// unavailable ("rate limited").
	RequestsPerSecond float64 `json:"requests_per_second,omitempty"`
	// Burst is how many requests may arrive at once (0: twice the rate).
	Burst int `json:"burst,omitempty"`
}

// DefaultLimits apply to every tenant that a limits configuration does not
// say otherwise about (`strand serve` without --limits).
var DefaultLimits = Limits{
	Sessions:          100_000,
	BytesStored:       100 << 30,
	RequestBytes:      domain.DefaultMaxPayload,
	RequestsPerSecond: 1000,
	Burst:             2000,
}

// DefaultUsageRefresh is how old a tenant's counted usage may grow before
// an instance reads it again.
const DefaultUsageRefresh = 2 * time.Second

// LimitsConfig is the content of `strand serve --limits FILE`: defaults
// for every tenant, and tenants that differ.
type LimitsConfig struct {
	Default Limits            `json:"default"`
	Tenants map[string]Limits `json:"tenants,omitempty"`
}

// ParseLimits reads a limits configuration (JSON, unknown fields refused).
func ParseLimits(data []byte) (LimitsConfig, error) {
	var lc LimitsConfig
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&lc); err != nil {
		return LimitsConfig{}, fmt.Errorf("limits: %s", jsonProblem(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return LimitsConfig{}, fmt.Errorf("limits: trailing data after the JSON object")
	}
	return lc, lc.Validate()
}

// Validate checks the values of a configuration.
func (lc LimitsConfig) Validate() error {
	if err := lc.Default.validate(); err != nil {
		return fmt.Errorf("limits: default: %w", err)
	}
	for t, l := range lc.Tenants {
		if err := domain.ValidTenant(t); err != nil {
			return fmt.Errorf("limits: tenant %q: %s", t, domain.ErrorMessage(err))
		}
		if err := l.validate(); err != nil {
			return fmt.Errorf("limits: tenant %s: %w", t, err)
		}
	}
	return nil
}

func (l Limits) validate() error {
	for _, f := range []struct {
		name string
		v    int64
	}{{"sessions", l.Sessions}, {"bytes_stored", l.BytesStored}, {"request_bytes", l.RequestBytes}, {"burst", int64(l.Burst)}} {
		if f.v < -1 {
			return fmt.Errorf("%s must be -1 (unlimited), 0 (inherit) or positive", f.name)
		}
	}
	if math.IsNaN(l.RequestsPerSecond) || math.IsInf(l.RequestsPerSecond, 0) || (l.RequestsPerSecond < 0 && l.RequestsPerSecond != -1) {
		return fmt.Errorf("requests_per_second must be -1 (unlimited), 0 (inherit) or positive")
	}
	return nil
}

// For returns the limits of a tenant: DefaultLimits, overridden by the
// configuration's default, overridden by the tenant's own.
func (lc LimitsConfig) For(tenant string) Limits {
	l := DefaultLimits.over(lc.Default)
	if t, ok := lc.Tenants[tenant]; ok {
		l = l.over(t)
	}
	return l
}

// over returns l with the non-zero fields of o.
func (l Limits) over(o Limits) Limits {
	if o.Sessions != 0 {
		l.Sessions = o.Sessions
	}
	if o.BytesStored != 0 {
		l.BytesStored = o.BytesStored
	}
	if o.RequestBytes != 0 {
		l.RequestBytes = o.RequestBytes
	}
	if o.RequestsPerSecond != 0 {
		l.RequestsPerSecond = o.RequestsPerSecond
	}
	if o.Burst != 0 {
		l.Burst = o.Burst
	}
	return l
}

// SessionCounter counts a tenant's sessions that are not deleted, for the
// session quota. The count may lag behind the event stream (a read model).
type SessionCounter interface {
	SessionCount(ctx context.Context, tenant string) (int64, error)
}

// limiter enforces a LimitsConfig for one service instance.
type limiter struct {
	cfg      LimitsConfig
	store    domain.UsageStore
	sessions SessionCounter
	refresh  time.Duration
	log      *slog.Logger
	now      func() time.Time

	tenants *lru.Cache[string, *tenantState]
	mu      sync.Mutex // guards tenants' Get-or-Add

}

// tenantState is a tenant's token bucket and last counted usage on this
// instance.
type tenantState struct {
	limits Limits
	bucket *rate.Limiter // nil: unlimited

	mu      sync.Mutex
	counted time.Time // when sessions and bytes were read
	// refreshing is set while one request reads them again; added* is
	// what this instance added meanwhile.
	refreshing                bool
	addedSessions, addedBytes int64
	sessions                  int64 // counted, plus what this instance added since
	bytes                     int64
}

// newLimiter returns a limiter on the service's clock: the token buckets
// and the usage refresh both read it.
func newLimiter(cfg LimitsConfig, store domain.UsageStore, sessions SessionCounter, refresh time.Duration, now func() time.Time, log *slog.Logger) *limiter {
	if refresh <= 0 {
		refresh = DefaultUsageRefresh
	}
	cache, _ := lru.New[string, *tenantState](8192)
	return &limiter{cfg: cfg, store: store, sessions: sessions, refresh: refresh, log: log, now: now, tenants: cache}
}

func (l *limiter) tenant(name string) *tenantState {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ts, ok := l.tenants.Get(name); ok {
		return ts
	}
	lim := l.cfg.For(name)
	ts := &tenantState{limits: lim}
	if lim.RequestsPerSecond > 0 {
		burst := lim.Burst
		if burst <= 0 {
			burst = max(1, int(2*lim.RequestsPerSecond))
		}
		ts.bucket = rate.NewLimiter(rate.Limit(lim.RequestsPerSecond), burst)
	}
	l.tenants.Add(name, ts)
	return ts
}

// admit checks a request against the tenant's rate, size and quotas before
// any work is done, so a refused request changes nothing.
// The quotas apply to the endpoints whose Effect (in the endpoint table)
// adds sessions or content.
func (l *limiter) admit(ctx context.Context, tenant string, ep *client.Endpoint, size int) error {
	ts := l.tenant(tenant)
	lim := ts.limits
	if ts.bucket != nil {
		// Reserve rather than Allow: a refusal says when a token will be
		// there, and the reply tells the client (Strand-Retry-After).
		now := l.now()
		r := ts.bucket.ReserveN(now, 1)
		if d := r.DelayFrom(now); d > 0 {
			r.CancelAt(now)
			return &rateLimited{
				err:   domain.Errorf(domain.CodeUnavailable, "rate limited: tenant %s is over %g requests per second on this instance; retry later", tenant, lim.RequestsPerSecond),
				after: min(d, time.Minute),
			}
		}
	}
	if lim.RequestBytes > 0 && int64(size) > lim.RequestBytes {
		return domain.Errorf(domain.CodeTooLarge, "request body is larger than the %d bytes tenant %s may send", lim.RequestBytes, tenant)
	}
	checkSessions := ep.Effect == client.AddsSession && lim.Sessions > 0
	checkBytes := ep.Effect == client.WritesContent && lim.BytesStored > 0
	if !checkSessions && !checkBytes {
		return nil
	}
	sessions, stored := l.usage(ctx, tenant, ts)
	if checkSessions && sessions >= lim.Sessions {
		return domain.Errorf(domain.CodeTooLarge, "tenant %s has %d sessions, its limit is %d: delete some first", tenant, sessions, lim.Sessions)
	}
	if checkBytes && stored >= lim.BytesStored {
		return domain.Errorf(domain.CodeTooLarge, "tenant %s has stored %d bytes, its limit is %d", tenant, stored, lim.BytesStored)
	}
	return nil
}

// usage returns the tenant's counted sessions and bytes, reading them again
// when the last count is older than the refresh interval. A count that
// cannot be read keeps the last one: limits fail open, and say so in the
// log. One request at a time reads (the tenant's lock is not held while it
// does, and the others use the last count meanwhile), and the read is
// bounded by usageReadTimeout: while a stream leader is being elected it
// would otherwise wait out the request's deadline, and every request of the
// tenant behind it (measured: writes stalled 30-33 s after a node was
// killed, where the election took 6 s).
func (l *limiter) usage(ctx context.Context, tenant string, ts *tenantState) (int64, int64) {
	ts.mu.Lock()
	if ts.refreshing || l.now().Sub(ts.counted) < l.refresh {
		sessions, stored := ts.sessions, ts.bytes
		ts.mu.Unlock()
		return sessions, stored
	}
	ts.refreshing, ts.addedSessions, ts.addedBytes = true, 0, 0
	ts.mu.Unlock()

	rctx, cancel := context.WithTimeout(ctx, usageReadTimeout)
	defer cancel()
	sessions, serr := l.countSessions(rctx, tenant)
	if serr != nil {
		l.log.Warn("count sessions for limits", "tenant", tenant, "err", serr)
	}
	stored, berr := l.readBytes(rctx, tenant)
	if berr != nil {
		l.log.Warn("read bytes stored for limits", "tenant", tenant, "err", berr)
	}

	ts.mu.Lock()
	defer ts.mu.Unlock()
	// What this instance added while it read may be missing from the
	// read: counted on top (the count errs on the strict side).
	if serr == nil {
		ts.sessions = sessions + ts.addedSessions
	}
	if berr == nil {
		ts.bytes = stored + ts.addedBytes
	}
	ts.counted, ts.refreshing = l.now(), false
	return ts.sessions, ts.bytes
}

// usageReadTimeout bounds one refresh of a tenant's usage: past it the
// request goes on with the last count.
const usageReadTimeout = 2 * time.Second

func (l *limiter) countSessions(ctx context.Context, tenant string) (int64, error) {
	if l.sessions != nil {
		return l.sessions.SessionCount(ctx, tenant)
	}
	// Without a read model: counted on the event stream.
	return l.store.CountSessions(ctx, tenant)
}

func (l *limiter) readBytes(ctx context.Context, tenant string) (int64, error) {
	return l.store.UsageBytes(ctx, tenant)
}

// added records what an accepted request added: sessions at once in this
// instance's count, content bytes also in the tenant's shared counter.
func (l *limiter) added(tenant string, sessions, bytes int64) {
	if sessions == 0 && bytes == 0 {
		return
	}
	ts := l.tenant(tenant)
	ts.mu.Lock()
	ts.sessions += sessions
	ts.bytes += bytes
	if ts.refreshing {
		ts.addedSessions += sessions
		ts.addedBytes += bytes
	}
	ts.mu.Unlock()
	if bytes == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Fire and forget (see streams.Store.AddUsage): an increment lost in a
	// crash makes the count low, never high.
	if err := l.store.AddUsage(ctx, tenant, bytes); err != nil {
		l.log.Warn("count bytes stored", "tenant", tenant, "err", err)
	}
}

// contentBytes is the file content an event adds: the sizes of the files
// it writes.
func contentBytes(e *domain.Event) int64 {
	if e == nil {
		return 0
	}
	var n int64
	for _, op := range e.Ops {
		if op.Kind == domain.OpWrite && op.Size > 0 {
			n += op.Size
		}
	}
	return n
}

// charge counts the content an accepted change added against the tenant's
// bytes-stored limit (a retried request was counted the first time).
func (s *Service) charge(tenant string, res domain.Result) {
	if s.limits == nil || res.Replayed {
		return
	}
	s.limits.added(tenant, 0, contentBytes(res.Event))
}

// endpointOf returns "<area>.<verb>" of a request subject.
func endpointOf(subject string) string {
	rest := strings.TrimPrefix(subject, names.SubjectPrefix)
	_, path, _ := strings.Cut(rest, ".")
	return path
}

// rateLimited is a refusal by the rate limit and when to come back.
type rateLimited struct {
	err   error
	after time.Duration
}

func (e *rateLimited) Error() string { return e.err.Error() }
func (e *rateLimited) Unwrap() error { return e.err }
