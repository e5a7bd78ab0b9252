package workers

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
	"github.com/strand-dev/strand/streams"
	"github.com/strand-dev/strand/streams/streamstest"
)

// fakeClock is a clock that moves only when the test moves it.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeWaiter
}

type fakeWaiter struct {
	at time.Time
	c  chan time.Time
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) After(d time.Duration) <-chan time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := make(chan time.Time, 1)
	if d <= 0 {
		c <- f.now
		return c
	}
	f.waiters = append(f.waiters, fakeWaiter{at: f.now.Add(d), c: c})
	return c
}

// advance moves the clock and fires the waits that are due.
func (f *fakeClock) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	kept := f.waiters[:0]
	for _, w := range f.waiters {
		if w.at.After(f.now) {
			kept = append(kept, w)
			continue
		}
		w.c <- f.now
	}
	f.waiters = kept
}

// waiting reports whether a schedule waits on the clock.
func (f *fakeClock) waiting() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.waiters)
}

// TestEvery_OncePerInterval: two schedulers of the same job enqueue it
// once per interval of their clock, whatever their number.
func TestEvery_OncePerInterval(t *testing.T) {
	env := streamstest.Start(t)
	js := env.Store.JetStream()
	ctx, cancel := context.WithCancel(t.Context())
	clk := &fakeClock{now: time.Date(2026, 1, 1, 12, 0, 30, 0, time.UTC)}
	subject := names.WorkSubject("acme", "gc")
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { schedule(ctx, js, subject, time.Minute, func() []byte { return nil }, nil, clk) })
	}
	defer func() { cancel(); wg.Wait() }()
	// From 12:00:30 on a one-minute interval: an item at once, one at
	// 12:01 and none at 12:01:30 (no wait is due, so nothing runs), one at
	// 12:02.
	for _, step := range []struct {
		advance time.Duration
		want    uint64
	}{{0, 1}, {30 * time.Second, 2}, {30 * time.Second, 2}, {30 * time.Second, 3}} {
		clk.advance(step.advance)
		// Both schedulers enqueued what was due and wait again.
		waitFor(t, "both schedulers waiting", 10*time.Second, func() bool { return clk.waiting() == 2 })
		if n := workLeft(t, js); n != step.want {
			t.Fatalf("at %v: %d items, want %d", clk.Now().Format("15:04:05"), n, step.want)
		}
	}
}

// TestSummaries_ComputedAtFromClock: a summary is stamped by the cache's
// clock.
func TestSummaries_ComputedAtFromClock(t *testing.T) {
	env := streamstest.Start(t)
	ctx := t.Context()
	kv, err := streams.EnsureBucket(ctx, env.Store.JetStream(), SummaryBucketConfig(1))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	sums := &Summaries{kv: kv, Now: func() time.Time { return at }}
	meta := domain.Meta{EventID: "01J00000000000000000000001", Actor: "t", Time: at}
	res, err := env.Store.Create(ctx, meta, domain.CreateSession{ID: "01J0000000000000000000000S", Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	s := res.Session
	body, _ := json.Marshal(reviewItem{Kind: "summary", Tenant: "acme", Session: s.ID, Position: s.Position, Root: s.Tree.Hash().String()})
	if err := sums.SummaryHandler(env.Store)(ctx, &Item{Tenant: "acme", Data: body}); err != nil {
		t.Fatal(err)
	}
	got, err := sums.Get(ctx, "acme", s.ID, s.Tree.Hash().String())
	if err != nil || got == nil || !got.ComputedAt.Equal(at) {
		t.Fatalf("cached summary %+v, %v; want computed at %v", got, err, at)
	}
}
