package handlers

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/strand-dev/strand/client"
)

// stuckUsage is a usage store whose bytes counter does not answer (its
// stream's leader is being elected) until the caller gives up.
type stuckUsage struct {
	reading   chan time.Duration // the time left to the read's deadline
	bytes     int64
	sessions  int64
	unblocked chan struct{}
}

func (s *stuckUsage) CountSessions(ctx context.Context, tenant string) (int64, error) {
	return s.sessions, nil
}

func (s *stuckUsage) UsageBytes(ctx context.Context, tenant string) (int64, error) {
	left := time.Duration(-1)
	if d, ok := ctx.Deadline(); ok {
		left = time.Until(d)
	}
	s.reading <- left
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-s.unblocked:
		return s.bytes, nil
	}
}

func (s *stuckUsage) AddUsage(ctx context.Context, tenant string, bytes int64) error { return nil }

// TestLimiter_UsageReadDoesNotHoldTheTenant: while one request reads the
// tenant's usage again and the store does not answer (a leader election),
// the read is bounded well inside the request's deadline, and the tenant's
// other requests go on with the last count instead of queueing behind it
// (they waited out the request deadline, 30 s, after a node was killed).
func TestLimiter_UsageReadDoesNotHoldTheTenant(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	store := &stuckUsage{reading: make(chan time.Duration, 1), unblocked: make(chan struct{}), bytes: 10}
	cfg := LimitsConfig{Tenants: map[string]Limits{"acme": {BytesStored: 1 << 20}}}
	l := newLimiter(cfg, store, nil, time.Second, clock, slog.New(slog.DiscardHandler))
	ep := client.FSWrite

	// The first count is read (nothing to fall back on yet).
	go func() { <-store.reading; store.unblocked <- struct{}{} }()
	if err := l.admit(t.Context(), "acme", ep, 1); err != nil {
		t.Fatalf("first write: %v", err)
	}

	now = now.Add(2 * time.Second) // the count is stale: the next request reads it again
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	first := make(chan error, 1)
	go func() { first <- l.admit(ctx, "acme", ep, 1) }()
	left := <-store.reading
	if left < 0 || left > usageReadTimeout {
		t.Errorf("the usage read has %v left, want at most %v (not the request's 30 s)", left, usageReadTimeout)
	}
	// Meanwhile another request of the tenant is admitted on the last count.
	other := make(chan error, 1)
	go func() { other <- l.admit(ctx, "acme", ep, 1) }()
	select {
	case err := <-other:
		if err != nil {
			t.Errorf("a request while the usage is read: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a request of the tenant waited for another's usage read")
	}
	// What is added meanwhile counts on top of what the read finds.
	l.added("acme", 0, 5)
	store.unblocked <- struct{}{}
	if err := <-first; err != nil {
		t.Errorf("the request that read the usage: %v", err)
	}
	if _, stored := l.usage(ctx, "acme", l.tenant("acme")); stored != 15 {
		t.Errorf("bytes counted after the read: %d, want 10 read plus 5 added meanwhile", stored)
	}
}
