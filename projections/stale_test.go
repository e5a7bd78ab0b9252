package projections

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/strand-dev/strand/names"
	"github.com/strand-dev/strand/streams/streamstest"
)

// TestRunner_StaleReset: a rebuild that stopped in its reset keeps
// instances from joining until staleReset has passed on the projection's
// clock; then they join its generation. The test moves the clock instead
// of waiting two minutes.
func TestRunner_StaleReset(t *testing.T) {
	env := streamstest.Start(t)
	ctx := t.Context()
	js := env.Store.JetStream()
	var mu sync.Mutex
	clock := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	advance := func(d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		clock = clock.Add(d)
	}
	spec := Spec{Name: "stale", Durable: "strand_proj_stale_test", Filter: names.EventFilter("*"), Partitions: 1,
		Key:   func(s string) string { return s },
		Apply: func(context.Context, Delivery) error { return nil },
		Now: func() time.Time {
			mu.Lock()
			defer mu.Unlock()
			return clock
		}}
	ctrl, err := openControl(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	key := controlKey(names.EventStream, spec.Name)
	if err := writeControl(ctx, ctrl, key, control{Gen: 1, State: StateResetting, Since: clock}, 0); err != nil {
		t.Fatal(err)
	}
	r := &Runner{js: js, stream: names.EventStream, spec: spec, ctrl: ctrl, log: slog.New(slog.DiscardHandler)}
	defer r.leave()
	for _, d := range []time.Duration{0, staleReset - time.Second} {
		advance(d)
		if err := r.join(ctx); !errors.Is(err, errNotJoinable) {
			t.Fatalf("join %v into a reset: %v, want errNotJoinable", d, err)
		}
	}
	advance(time.Second)
	if err := r.join(ctx); err != nil {
		t.Fatalf("join a reset left for %v: %v, want joined", staleReset, err)
	}
	if r.gen != 1 {
		t.Fatalf("joined generation %d, want 1", r.gen)
	}
}
