package projections

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/strand-dev/strand/names"
	"github.com/strand-dev/strand/streams/streamstest"
)

// TestRunner_LiveLinger: a live batch projection applies an event that
// comes after a quiet spell on its own, and while events keep coming
// (one every 2 ms here, each applied in far less) it gathers what comes
// within liveLinger into one batch instead of applying each alone, so a
// read model entry is written once per batch, not once per event.
func TestRunner_LiveLinger(t *testing.T) {
	env := streamstest.Start(t)
	ctx := t.Context()
	js := env.Store.JetStream()
	var mu sync.Mutex
	var batches []int
	applied := 0
	record := func(n int) {
		mu.Lock()
		defer mu.Unlock()
		batches = append(batches, n)
		applied += n
	}
	subject := names.EventSubject("linger", "s1")
	spec := Spec{Name: "linger", Durable: "strand_proj_linger_test", Filter: subject,
		Apply: func(context.Context, Delivery) error { record(1); return nil },
		ApplyBatch: func(_ context.Context, ds []Delivery) []error {
			record(len(ds))
			return make([]error, len(ds))
		}}
	r, err := StartRunner(ctx, js, names.EventStream, 1, spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	publish := func() {
		t.Helper()
		if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: subject, Data: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
	}
	waitApplied := func(n int) {
		t.Helper()
		streamstest.Wait(t, 10*time.Second, "events applied", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return applied >= n
		})
	}

	// A quiet projection: one event, a batch of its own.
	publish()
	waitApplied(1)
	time.Sleep(2 * liveBusy)
	publish()
	waitApplied(2)
	mu.Lock()
	if len(batches) != 2 || batches[0] != 1 || batches[1] != 1 {
		t.Fatalf("two events apart: batches %v, want [1 1]", batches)
	}
	batches = nil
	mu.Unlock()

	// A steady flow.
	const flow = 300
	for range flow {
		publish()
		time.Sleep(2 * time.Millisecond)
	}
	waitApplied(2 + flow)
	mu.Lock()
	defer mu.Unlock()
	if len(batches) > flow/2 {
		t.Fatalf("%d events one every 2 ms: %d batches, want at most %d (sizes %v)", flow, len(batches), flow/2, batches)
	}
	t.Logf("%d events in %d batches", flow, len(batches))
}
