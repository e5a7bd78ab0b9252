package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
)

// DefaultAddr is where `strand serve` and `strand gateway` listen for HTTP.
const DefaultAddr = "127.0.0.1:8080"

// Options configure a Gateway.
type Options struct {
	// URLs are the NATS servers (comma-separated), as for nats.Connect.
	URLs string
	// NATSOptions are added to every connection (TLS, timeouts); the
	// credentials of each request are added after them.
	NATSOptions []nats.Option
	// RequireAuth refuses requests without credentials with 401 before
	// any connection is made. Without it an anonymous request connects
	// without credentials, which a server with accounts refuses itself.
	RequireAuth bool
	// Tenant is the tenant of a request that names none (web pages).
	Tenant string
	// Timeout bounds one request to the service (default 30s).
	Timeout time.Duration
	// IdleConns bounds the pooled connections (default 256); IdleTimeout
	// closes one unused for that long (default 5 minutes).
	IdleConns   int
	IdleTimeout time.Duration
	// SecureCookies marks cookies Secure even when the request came over
	// plain HTTP (behind a proxy that terminates TLS).
	SecureCookies bool
	// TrustedOrigins may make state-changing requests across origins
	// (scheme://host[:port]), for a front end served elsewhere.
	TrustedOrigins []string
	// Registry receives the gateway's metrics; Gatherer serves /metrics
	// (nil: a registry of the gateway's own with the Go and process
	// collectors).
	Registry prometheus.Registerer
	Gatherer prometheus.Gatherer
	Log      *slog.Logger
}

// Gateway is the HTTP front. It is an http.Handler.
type Gateway struct {
	opts     Options
	pool     *pool
	mux      *http.ServeMux
	handler  http.Handler
	logins   *logins
	metrics  *metrics
	mu       sync.Mutex
	root     http.Handler
	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

// New returns a gateway that reaches the service through opts.URLs.
func New(opts Options) (*Gateway, error) {
	if opts.URLs == "" {
		return nil, errors.New("gateway: no NATS server to connect to")
	}
	if opts.Tenant == "" {
		opts.Tenant = "default"
	}
	if err := domain.ValidTenant(opts.Tenant); err != nil {
		return nil, fmt.Errorf("gateway tenant: %w", err)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.IdleConns <= 0 {
		opts.IdleConns = 256
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 5 * time.Minute
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Registry == nil {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		opts.Registry, opts.Gatherer = reg, reg
	}
	g := &Gateway{
		opts:   opts,
		pool:   newPool(opts.URLs, opts.NATSOptions, opts.IdleTimeout, opts.IdleConns),
		mux:    http.NewServeMux(),
		logins: newLogins(),
		stop:   make(chan struct{}),
	}
	m, err := newMetrics(opts.Registry, g.pool)
	if err != nil {
		return nil, err
	}
	g.metrics = m
	g.routes()
	cop := http.NewCrossOriginProtection()
	for _, o := range opts.TrustedOrigins {
		if err := cop.AddTrustedOrigin(o); err != nil {
			return nil, fmt.Errorf("trusted origin: %w", err)
		}
	}
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, domain.Errorf(domain.CodeForbidden, "cross-origin request refused"))
	}))
	g.handler = cop.Handler(g.mux)
	g.wg.Add(1)
	go g.reaper()
	return g, nil
}

// ServeHTTP serves the API, /metrics and the mounted handler.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) { g.handler.ServeHTTP(w, r) }

// Mount serves h for every path the gateway does not own (/v1/ and
// /metrics are the gateway's): the web app goes here.
func (g *Gateway) Mount(h http.Handler) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.root = h
}

func (g *Gateway) serveRoot(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	h := g.root
	g.mu.Unlock()
	if h == nil {
		if r.URL.Path == "/" {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			fmt.Fprintln(w, "strand: the HTTP API is under /v1/ (document: /v1/openapi.json); metrics at /metrics")
			return
		}
		http.NotFound(w, r)
		return
	}
	h.ServeHTTP(w, r)
}

// Close closes every pooled connection.
func (g *Gateway) Close() error {
	g.stopOnce.Do(func() { close(g.stop) })
	g.wg.Wait()
	g.pool.close()
	return nil
}

func (g *Gateway) reaper() {
	defer g.wg.Done()
	t := time.NewTicker(g.opts.IdleTimeout / 2)
	defer t.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-t.C:
			g.pool.reap()
			g.logins.expire(time.Now())
		}
	}
}

// CredentialOf returns the credentials of a request: basic auth, a bearer
// token, or the login its session cookie names.
func (g *Gateway) CredentialOf(r *http.Request) Credential {
	if user, pw, ok := r.BasicAuth(); ok {
		return Credential{User: user, Password: pw}
	}
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return Credential{Token: strings.TrimSpace(tok)}
	}
	if l, ok := g.logins.of(r); ok {
		return l.cred
	}
	return Credential{}
}

// TenantOf returns the tenant a request addresses: the {tenant} of its
// path, else the Strand-Tenant header, else its login's tenant, else the
// gateway's default tenant.
func (g *Gateway) TenantOf(r *http.Request) (string, error) {
	t := r.PathValue("tenant")
	if t == "" {
		t = r.Header.Get(HeaderTenant)
	}
	if t == "" {
		if l, ok := g.logins.of(r); ok {
			t = l.tenant
		}
	}
	if t == "" {
		t = g.opts.Tenant
	}
	// A tenant is a subject token: a dot or a wildcard in it would address
	// another subject than the one meant.
	if err := domain.ValidTenant(t); err != nil {
		return "", err
	}
	return t, nil
}

// HeaderTenant names the tenant of a request whose path does not.
const HeaderTenant = names.HeaderTenant

// ClientFor returns a Go client that acts for the request's credentials
// and tenant, for handlers mounted on the gateway (the web app). Its
// connection is pooled: do not close it.
func (g *Gateway) ClientFor(r *http.Request) (*client.Client, error) {
	tenant, err := g.TenantOf(r)
	if err != nil {
		return nil, err
	}
	pc, err := g.connFor(r)
	if err != nil {
		return nil, err
	}
	// The pool counts holders; a client handed out lives as long as its
	// caller wants, so it is counted as used now and idle from now on.
	g.pool.release(pc)
	c := client.NewClient(pc.nc, tenant)
	c.Timeout = g.opts.Timeout
	c.Actor = r.Header.Get(names.HeaderActor)
	if c.Actor == "" {
		// Without NATS accounts the service records the actor a caller
		// names: the signed-in user is the person acting, so pages record
		// who did what and "no self-approval" holds between people. With
		// accounts the service takes the authenticated user, the same name.
		c.Actor = g.CredentialOf(r).User
	}
	return c, nil
}

// connFor acquires the connection of a request's credentials.
func (g *Gateway) connFor(r *http.Request) (*pooled, error) {
	cred := g.CredentialOf(r)
	if cred.Anonymous() && g.opts.RequireAuth {
		return nil, ErrUnauthenticated
	}
	pc, err := g.pool.acquire(cred)
	switch {
	case errors.Is(err, errRefused):
		return nil, ErrUnauthenticated
	case err != nil:
		g.opts.Log.Warn("gateway connect", "err", err)
		return nil, domain.Errorf(domain.CodeUnavailable, "cannot reach the NATS server")
	}
	return pc, nil
}

// ErrUnauthenticated is the error of a request without credentials, or
// with credentials that NATS refused: the gateway answers it with 401 and
// a Basic challenge; ClientFor returns it as it is, for a mounted app to do
// the same. Its code is forbidden (the closed set has no other).
var ErrUnauthenticated = domain.Errorf(domain.CodeForbidden, "authentication required: basic auth, a bearer token, or a login")

// writeError answers with the JSON error body and the status of its code.
func writeError(w http.ResponseWriter, err error) {
	status := client.StatusOf(client.ErrorCode(err))
	var ce *client.Error
	var de *domain.Error
	switch {
	case errors.As(err, &ce) && ce.RetryAfter > 0:
		setRetryAfter(w, ce.RetryAfter)
	case errors.As(err, &de) && de.RetryAfter > 0:
		setRetryAfter(w, de.RetryAfter)
	}
	if errors.Is(err, ErrUnauthenticated) {
		status = http.StatusUnauthorized
		w.Header().Set("WWW-Authenticate", `Basic realm="strand", charset="UTF-8"`)
	}
	writeStatus(w, status, err)
}

// setRetryAfter sets the retry hint of an unavailable answer: HTTP's
// Retry-After in whole seconds (rounded up), and Strand-Retry-After in
// milliseconds as the NATS service sends it.
func setRetryAfter(w http.ResponseWriter, d time.Duration) {
	w.Header().Set("Retry-After", strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10))
	w.Header().Set(names.HeaderRetryAfter, strconv.FormatInt(max(d.Milliseconds(), 1), 10))
}

// writeStatus answers with err's JSON error body and the given status.
func writeStatus(w http.ResponseWriter, status int, err error) {
	body, _ := json.Marshal(errorBodyOf(err))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// requestContext bounds a request to the service.
func (g *Gateway) requestContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), g.opts.Timeout)
}
