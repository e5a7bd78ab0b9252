package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/strand-dev/strand/metrics"
	"github.com/strand-dev/strand/mount"
	"github.com/strand-dev/strand/workcopy"
)

// serveLocalMetrics serves /metrics with cs and the Go runtime's figures on
// addr (a bare port listens on 127.0.0.1) for processes that run on a
// user's machine (strand mount, strand mcp), until ctx ends or stop.
func (m *Main) serveLocalMetrics(ctx context.Context, what, addr string, cs ...prometheus.Collector) (stop func(), err error) {
	reg, err := metrics.Registry(cs...)
	if err != nil {
		return nil, err
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort("127.0.0.1", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, usagef("--metrics %s: %v", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(m.Stderr, "strand %s: metrics: %v\n", what, err)
		}
	}()
	fmt.Fprintf(m.Stderr, "strand %s: metrics on http://%s/metrics\n", what, ln.Addr())
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-done:
		}
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}()
	return func() { close(done) }, nil
}

// mountFigures reads a mount's figures for its collector.
func mountFigures(mt *mount.Mount) func() metrics.MountFigures {
	return func() metrics.MountFigures {
		s := mt.Status()
		f := metrics.MountFigures{Position: s.Position, Pending: s.Pending, Conflicts: len(s.Conflicts), Flushes: s.Flushes,
			CacheHits: s.Cache.Hits, CacheMisses: s.Cache.Misses, FetchedBytes: s.Cache.FetchedBytes,
			CacheBytes: s.Cache.Bytes, CacheMaxBytes: s.Cache.MaxBytes}
		if s.LastFlush != nil {
			f.LastFlush = *s.LastFlush
		}
		return f
	}
}

// workcopyFigures reads this process's working-copy figures.
func workcopyFigures() metrics.WorkcopyFigures {
	f := workcopy.ProcessFigures()
	return metrics.WorkcopyFigures{Checkouts: f.Checkouts, CheckoutFiles: f.CheckoutFiles, CheckoutBytes: f.CheckoutBytes,
		Pushes: f.Pushes, PushChanges: f.PushChanges, PushBytes: f.PushBytes, ChunksUploaded: f.ChunksUploaded,
		ChunksSkipped: f.ChunksSkipped, Pulls: f.Pulls, PullUpdated: f.PullUpdated, PullConflicts: f.PullConflicts,
		Failures: f.Failures}
}
