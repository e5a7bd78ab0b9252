package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/mcp"
	"github.com/strand-dev/strand/metrics"
)

// cmdMCP runs the MCP server: over stdio (the default, for an agent that
// starts it) or streamable HTTP (--http, loopback unless an address says
// otherwise).
func (m *Main) cmdMCP(ctx context.Context, args []string) error {
	var session, fork, httpAddr, metricsAddr string
	var allowRun bool
	var secrets multiFlag
	var cf cacheFlags
	var runTimeout time.Duration
	g, pos, err := m.parseArgs("mcp", args, func(fs *flag.FlagSet) {
		fs.StringVar(&session, "session", "", "pin the server to this session: its tools reach no other")
		fs.StringVar(&fork, "fork", "", "fork this session first and pin the server to the fork")
		fs.StringVar(&httpAddr, "http", "", "serve streamable HTTP on this address (a bare port listens on 127.0.0.1) instead of stdio")
		fs.StringVar(&metricsAddr, "metrics", "", "serve Prometheus metrics (the working copies of run_command) on this address")
		fs.BoolVar(&allowRun, "allow-run", false, "offer the run_command tool: the model may run commands on this machine in working copies of its sessions")
		fs.Var(&secrets, "secret", "with --allow-run: give commands secret NAME as environment variable ENV (default NAME); repeatable; values are cut out of what the model sees")
		fs.DurationVar(&runTimeout, "run-timeout", 10*time.Minute, "with --allow-run: the longest a command may run")
		m.declareCache(fs, &cf)
	})
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("usage: strand mcp [--session S | --fork S] [--http ADDR] [--allow-run [--secret NAME[=ENV]]...]")
	}
	if session != "" && fork != "" {
		return usagef("give --session or --fork, not both")
	}
	if !allowRun && len(secrets) > 0 {
		return usagef("--secret needs --allow-run: secrets go to the commands run_command runs")
	}
	var run *mcp.RunConfig
	if allowRun {
		run = &mcp.RunConfig{MaxTimeout: runTimeout}
		for _, spec := range secrets {
			name, env, err := secretSpec(spec)
			if err != nil {
				return err
			}
			run.Secrets = append(run.Secrets, mcp.SecretEnv{Name: name, Env: env})
		}
		if run.Cache, err = cf.open(); err != nil {
			return err
		}
	}
	if err := g.dial(); err != nil {
		return err
	}
	defer g.close()
	log := slog.New(slog.NewTextHandler(m.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if run != nil {
		run.Server = g.server
	}
	opts := mcp.Options{Session: session, Actor: g.actor, Log: log, Run: run,
		// With credentials the service may enforce identity: then it
		// records the authenticated user, and a client name would be
		// refused as a claim of someone else.
		ServerActor: g.actor == "" && (g.user != "" || g.creds != "")}
	if fork != "" {
		f, err := g.client.Fork(ctx, client.ForkRequest{Session: fork, Tags: map[string]string{"via": "mcp"}})
		if err != nil {
			return err
		}
		opts.Session = f.Session.ID
		fmt.Fprintf(m.Stderr, "strand mcp: forked %s into %s\n", fork, f.Session.ID)
	}
	srv, err := mcp.New(ctx, g.client, opts)
	if err != nil {
		return err
	}
	if metricsAddr != "" {
		stop, err := m.serveLocalMetrics(ctx, "mcp", metricsAddr, metrics.NewWorkcopyCollector(workcopyFigures))
		if err != nil {
			return err
		}
		defer stop()
	}
	if httpAddr == "" {
		in, out := m.Stdin, m.Stdout
		err := srv.Run(ctx, &sdk.IOTransport{Reader: io.NopCloser(in), Writer: nopWriteCloser{out}})
		if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, io.EOF) {
			return nil
		}
		return err
	}
	return m.serveMCPHTTP(ctx, srv, httpAddr)
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// serveMCPHTTP serves streamable HTTP until ctx ends.
func (m *Main) serveMCPHTTP(ctx context.Context, srv *mcp.Server, addr string) error {
	addr = loopbackDefault(addr)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := srv.Follow(ctx); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	hs := &http.Server{Handler: srv.HTTPHandler(), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(m.Stdout, "strand mcp: streamable HTTP on http://%s/", ln.Addr())
	if s := srv.Session(); s != "" {
		fmt.Fprintf(m.Stdout, " (session %s)", s)
	}
	fmt.Fprintln(m.Stdout)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// Requests in flight get a moment to finish; a client's open event
	// stream (the standalone SSE GET) never does, so it is then closed.
	shut, done := context.WithTimeout(context.Background(), time.Second)
	defer done()
	if err := hs.Shutdown(shut); err != nil {
		_ = hs.Close()
	}
	return nil
}

// loopbackDefault gives an address without a host (a bare port, or
// ":PORT") the loopback host: the server is reachable from elsewhere only
// when an address says so (0.0.0.0:PORT).
func loopbackDefault(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return net.JoinHostPort("127.0.0.1", addr)
	}
	if host == "" {
		return net.JoinHostPort("127.0.0.1", port)
	}
	return addr
}
