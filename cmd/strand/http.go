package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/gateway"
	"github.com/strand-dev/strand/metrics"
	"github.com/strand-dev/strand/names"
	"github.com/strand-dev/strand/web"
)

// httpFlags are the flags of the HTTP front, shared by serve and gateway.
type httpFlags struct {
	addr           string
	tenant         string
	requireAuth    bool
	secureCookies  bool
	trustedOrigins string
}

func (h *httpFlags) declare(fs *flag.FlagSet, m *Main) {
	fs.StringVar(&h.addr, "http", m.env("STRAND_HTTP", gateway.DefaultAddr), `HTTP address of the API, /metrics and the web app ("" turns HTTP off)`)
	fs.StringVar(&h.tenant, "http-tenant", m.env("STRAND_TENANT", "default"), "tenant of web pages that name none")
	fs.BoolVar(&h.requireAuth, "http-require-auth", false, "refuse HTTP requests without credentials (on by itself when the embedded server has accounts)")
	fs.BoolVar(&h.secureCookies, "http-secure-cookies", false, "mark cookies Secure even over plain HTTP (behind a TLS-terminating proxy)")
	fs.StringVar(&h.trustedOrigins, "http-trusted-origins", "", "origins (scheme://host[:port], comma-separated) allowed to make cross-origin state-changing requests")
}

// options turn the flags into gateway options for the NATS servers at urls.
func (h *httpFlags) options(urls string, log *slog.Logger) gateway.Options {
	o := gateway.Options{URLs: urls, Tenant: h.tenant, RequireAuth: h.requireAuth, SecureCookies: h.secureCookies, Log: log}
	for _, s := range strings.Split(h.trustedOrigins, ",") {
		if s = strings.TrimSpace(s); s != "" {
			o.TrustedOrigins = append(o.TrustedOrigins, s)
		}
	}
	return o
}

// httpServer is a running HTTP front.
type httpServer struct {
	gw   *gateway.Gateway
	srv  *http.Server
	ln   net.Listener
	done chan error
	once sync.Once
}

// startHTTP listens on addr and serves gw there.
func startHTTP(addr string, gw *gateway.Gateway, log *slog.Logger) (*httpServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--http %s: %w", addr, err)
	}
	h := &httpServer{gw: gw, ln: ln, done: make(chan error, 1),
		srv: &http.Server{Handler: gw, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}}
	go func() { h.done <- h.srv.Serve(ln) }()
	return h, nil
}

// URL is where the server listens.
func (h *httpServer) URL() string { return "http://" + h.ln.Addr().String() }

// stop shuts the server down, letting requests in flight finish for a few
// seconds (server-sent-event streams are cut).
func (h *httpServer) stop() { h.once.Do(h.shutdown) }

func (h *httpServer) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.srv.Shutdown(ctx); err != nil {
		_ = h.srv.Close()
	}
	if err := <-h.done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		slog.Default().Warn("http server", "err", err)
	}
	_ = h.gw.Close()
}

// startFront makes the gateway, mounts the apps that live on its port and
// serves it on addr.
func startFront(addr string, o gateway.Options, log *slog.Logger) (*httpServer, error) {
	gw, err := gateway.New(o)
	if err != nil {
		return nil, err
	}
	if err := mountApps(gw, o.TrustedOrigins, log); err != nil {
		_ = gw.Close()
		return nil, err
	}
	h, err := startHTTP(addr, gw, log)
	if err != nil {
		_ = gw.Close()
		return nil, err
	}
	return h, nil
}

// mountApps mounts what is served at / on the gateway's port: the web
// review app, acting through the gateway's per-credential clients and
// logins.
func mountApps(gw *gateway.Gateway, trusted []string, log *slog.Logger) error {
	app, err := web.New(web.Options{
		ClientFor:      gw.ClientFor,
		Log:            log,
		TrustedOrigins: trusted,
		Login: func(w http.ResponseWriter, r *http.Request, c web.Credentials) error {
			return gw.Login(w, r, gateway.LoginRequest{User: c.User, Password: c.Password, Token: c.Token, Tenant: c.Tenant})
		},
		Logout:          gw.Logout,
		Unauthenticated: func(err error) bool { return errors.Is(err, gateway.ErrUnauthenticated) },
	})
	if err != nil {
		return fmt.Errorf("web app: %w", err)
	}
	gw.Mount(app)
	return nil
}

// runGateway runs the HTTP front alone, as a client of a NATS cluster on
// which `strand serve --nats` instances answer.
func (m *Main) runGateway(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	natsURLs := fs.String("nats", m.env("STRAND_NATS", m.env("STRAND_SERVER", "")), "NATS servers to reach the service through (comma-separated)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	var hf httpFlags
	hf.declare(fs, m)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("gateway takes no arguments")
	}
	if *natsURLs == "" {
		return usagef("gateway needs --nats URLS (or STRAND_NATS)")
	}
	if hf.addr == "" {
		return usagef("gateway needs an --http address")
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return usagef("--log-level: %v", err)
	}
	log := slog.New(slog.NewTextHandler(m.Stderr, &slog.HandlerOptions{Level: level}))
	front, err := startFront(hf.addr, hf.options(*natsURLs, log), log)
	if err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "strand: HTTP on %s (gateway to %s)\n", front.URL(), redactURLs(*natsURLs))
	if m.ReadyHTTP != nil {
		m.ReadyHTTP(front.URL())
	}
	<-ctx.Done()
	front.stop()
	return nil
}

// deploymentMetrics is the registry of /metrics: the Go runtime's and the
// process's figures and the deployment's (streams, consumers, dead
// letters, projections), read from JetStream at each scrape.
func deploymentMetrics(js jetstream.JetStream, projs func(context.Context) ([]client.ProjectionStatus, error), log *slog.Logger) (*prometheus.Registry, error) {
	return metrics.Registry(metrics.New(metrics.Options{
		JetStream: js, WorkStream: names.WorkStream, DeadStream: names.DeadStream, Projections: projs, Log: log,
	}))
}
