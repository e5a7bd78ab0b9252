package handlers_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/handlers"
	"github.com/strand-dev/strand/streams"
	"github.com/strand-dev/strand/streams/streamstest"
)

// usageStub answers usage.get's figures other than requests.
type usageStub struct{}

func (usageStub) TenantUsage(context.Context, string) (client.UsageReply, error) {
	return client.UsageReply{}, nil
}

// TestUsage_RequestsDeploymentWide runs two instances of the service on one
// server: usage.get counts the requests both answered, from either of
// them, and the counts outlive both.
func TestUsage_RequestsDeploymentWide(t *testing.T) {
	env := streamstest.Start(t)
	ctx := t.Context()
	// No timed flush during the test: it flushes when it means to.
	opts := handlers.Options{Usage: usageStub{}, RequestFlush: time.Hour}
	instance := func() *handlers.Service {
		nc, err := env.Server.Connect()
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		t.Cleanup(nc.Close)
		st, err := streams.Open(ctx, nc, streams.Config{}, nil)
		if err != nil {
			t.Fatalf("open store: %v", err)
		}
		t.Cleanup(st.Close)
		svc := handlers.NewService(st, opts)
		if err := svc.Start(nc); err != nil {
			t.Fatalf("start service: %v", err)
		}
		t.Cleanup(func() { _ = svc.Stop() })
		if err := nc.Flush(); err != nil {
			t.Fatalf("flush: %v", err)
		}
		return svc
	}
	a, b := instance(), instance()
	c := client.NewClient(env.NC, "acme")
	const n = 40
	get := func(k int) {
		for range k {
			// A session that does not exist: the request is counted all
			// the same.
			if _, err := c.GetSession(ctx, "01J0000000000000000000000Z", ""); err == nil {
				t.Fatal("session.get of no session: want not_found")
			}
		}
	}
	requests := func(what string, svc *handlers.Service) uint64 {
		t.Helper()
		r, err := svc.RequestsOf(ctx, "acme")
		if err != nil {
			t.Fatalf("%s: requests: %v", what, err)
		}
		return r["session.get"]
	}
	get(n)

	// Before a flush each instance knows only what it answered; the queue
	// group gave each a share.
	ra, rb := requests("a", a), requests("b", b)
	if ra == 0 || rb == 0 || ra+rb != n {
		t.Fatalf("before a flush: a counted %d, b %d; want both some, %d in all", ra, rb, n)
	}
	for _, svc := range []*handlers.Service{a, b} {
		if err := svc.FlushRequests(ctx); err != nil {
			t.Fatalf("flush request counts: %v", err)
		}
	}
	if ra, rb = requests("a", a), requests("b", b); ra != n || rb != n {
		t.Fatalf("after a flush: a answers %d, b %d; want %d from either", ra, rb, n)
	}
	// Through the endpoint, whichever instance answers.
	for i := range 6 {
		u, err := c.Usage(ctx)
		if err != nil {
			t.Fatalf("usage.get: %v", err)
		}
		if u.Requests["session.get"] != n || u.Requests["usage.get"] == 0 {
			t.Fatalf("usage.get #%d: requests %v, want session.get %d and usage.get counted", i, u.Requests, n)
		}
	}
	if other, err := a.RequestsOf(ctx, "other"); err != nil || len(other) != 0 {
		t.Fatalf("another tenant's requests: %v, %v; want none", other, err)
	}

	// Requests after the last flush are added when the instances stop; a
	// new instance finds every count.
	get(5)
	for _, svc := range []*handlers.Service{a, b} {
		if err := svc.Stop(); err != nil {
			t.Fatalf("stop: %v", err)
		}
	}
	if got := requests("after a restart", instance()); got != n+5 {
		t.Fatalf("after a restart: %d session.get, want %d", got, n+5)
	}
}

// TestUsage_RequestsFlushed: an instance adds its counts on its own, every
// RequestFlush.
func TestUsage_RequestsFlushed(t *testing.T) {
	h := start(t, harnessOptions{service: handlers.Options{Usage: usageStub{}, RequestFlush: 20 * time.Millisecond}})
	for range 3 {
		if _, err := h.c.GetSession(t.Context(), "01J0000000000000000000000Z", ""); err == nil {
			t.Fatal("session.get of no session: want not_found")
		}
	}
	eventually(t, "the counts in the deployment's counters", func() string {
		r, err := h.env.Store.Requests(t.Context(), "acme")
		if err != nil || r["session.get"] != 3 {
			return fmt.Sprintf("%v, %v; want session.get 3", r, err)
		}
		return ""
	})
}
