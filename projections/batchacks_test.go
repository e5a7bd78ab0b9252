package projections

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/names"
	"github.com/strand-dev/strand/streams/streamstest"
)

// countingSpec is a batch projection over one subject that records how
// many times each stream sequence was applied, and fails the sequences
// fail says (for as many attempts as it says).
type countingSpec struct {
	mu      sync.Mutex
	applied map[uint64]int
	fail    map[uint64]int
}

func newCountingSpec() *countingSpec {
	return &countingSpec{applied: map[uint64]int{}, fail: map[uint64]int{}}
}

func (c *countingSpec) spec(name, subject string, ackWait time.Duration) Spec {
	apply := func(d Delivery) error {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.fail[d.Seq] > 0 {
			c.fail[d.Seq]--
			return errors.New("not now")
		}
		c.applied[d.Seq]++
		return nil
	}
	return Spec{Name: name, Durable: "strand_proj_" + name + "_test", Filter: subject, AckWait: ackWait,
		Apply: func(_ context.Context, d Delivery) error { return apply(d) },
		ApplyBatch: func(_ context.Context, ds []Delivery) []error {
			errs := make([]error, len(ds))
			for i, d := range ds {
				errs[i] = apply(d)
			}
			return errs
		}}
}

// missing lists the sequences of seqs never applied.
func (c *countingSpec) missing(seqs []uint64) []uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []uint64
	for _, s := range seqs {
		if c.applied[s] == 0 {
			out = append(out, s)
		}
	}
	return out
}

func publishN(t *testing.T, js jetstream.JetStream, subject string, n int) []uint64 {
	t.Helper()
	seqs := make([]uint64, n)
	for i := range seqs {
		ack, err := js.PublishMsg(t.Context(), &nats.Msg{Subject: subject, Data: fmt.Appendf(nil, `{"n":%d}`, i)})
		if err != nil {
			t.Fatal(err)
		}
		seqs[i] = ack.Sequence
	}
	return seqs
}

// TestBatchAcks_AnotherInstanceHoldsEvents: a batch projection's consumer
// acknowledges cumulatively, so an acknowledgement of the runner's last
// event would also cover the events another instance was handed and has
// not applied (it died holding them). The runner starts while such events
// are out (here fetched and never acknowledged, with an ack wait far
// longer than the test): it must apply them itself, read from the stream,
// before it acknowledges past them, and the consumer's floor must reach
// the end without waiting for their redelivery.
func TestBatchAcks_AnotherInstanceHoldsEvents(t *testing.T) {
	env := streamstest.Start(t)
	ctx := t.Context()
	js := env.Store.JetStream()
	subject := names.EventSubject("acks", "held")
	c := newCountingSpec()
	spec := c.spec("held", subject, 10*time.Minute)

	seqs := publishN(t, js, subject, 40)
	cons, err := js.CreateOrUpdateConsumer(ctx, names.EventStream, spec.consumerConfig(0))
	if err != nil {
		t.Fatal(err)
	}
	// The instance that died: it was handed the first 25 events.
	b, err := cons.Fetch(25, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for range b.Messages() {
		got++
	}
	if got != 25 {
		t.Fatalf("fetched %d events, want 25", got)
	}
	seqs = append(seqs, publishN(t, js, subject, 20)...)

	runToEnd(t, js, spec, c, seqs)
}

// runToEnd starts a runner of spec, waits until the consumer's floor is at
// the last of seqs with nothing handed out, and checks that every one of
// seqs was applied.
func runToEnd(t *testing.T, js jetstream.JetStream, spec Spec, c *countingSpec, seqs []uint64) {
	t.Helper()
	r, err := StartRunner(t.Context(), js, names.EventStream, 1, spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	streamstest.Wait(t, 20*time.Second, "the consumer's floor at the last event", func() bool {
		st, err := r.Status(t.Context())
		return err == nil && st.Position == seqs[len(seqs)-1] && st.AckPending == 0
	})
	if m := c.missing(seqs); len(m) > 0 {
		t.Fatalf("acknowledged but never applied: %v", m)
	}
}

// TestBatchAcks_HeldBack: an event whose apply fails is held (applied
// again after a delay) and no acknowledgement covers it meanwhile, though
// the events after it are applied; once it is applied the floor passes it.
// Its instance stopping while it is held leaves it to the next one.
func TestBatchAcks_HeldBack(t *testing.T) {
	env := streamstest.Start(t)
	ctx := t.Context()
	js := env.Store.JetStream()
	subject := names.EventSubject("acks", "back")
	c := newCountingSpec()
	spec := c.spec("back", subject, 6*time.Second)

	seqs := publishN(t, js, subject, 10)
	stuck := seqs[4]
	c.mu.Lock()
	c.fail[stuck] = 1 << 30 // until told otherwise
	c.mu.Unlock()

	r, err := StartRunner(ctx, js, names.EventStream, 1, spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	streamstest.Wait(t, 10*time.Second, "the events after the failing one applied", func() bool {
		return len(c.missing(seqs)) == 1
	})
	time.Sleep(500 * time.Millisecond) // a few attempts
	st, err := r.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Position >= stuck {
		t.Fatalf("position %d while event %d is not applied", st.Position, stuck)
	}
	if st.Position != stuck-1 {
		t.Errorf("position %d, want %d (every event before the failing one)", st.Position, stuck-1)
	}

	// Stopped while holding it: the next instance gets it (its lease is
	// free at once) and applies it.
	r.Stop()
	c.mu.Lock()
	c.fail[stuck] = 0
	c.mu.Unlock()
	runToEnd(t, js, spec, c, seqs)
}

// TestBatchAcks_OneInstanceFolds: of two instances running a batch
// projection, one holds the lease and folds; the other stands by and takes
// over when the first stops (at once: the lease is released) and when it
// dies (after the lease's time to live).
func TestBatchAcks_OneInstanceFolds(t *testing.T) {
	env := streamstest.Start(t)
	ctx := t.Context()
	js := env.Store.JetStream()
	subject := names.EventSubject("acks", "lease")
	counts := map[string]*countingSpec{"a": newCountingSpec(), "b": newCountingSpec()}
	// A lease of 15 s: however slow the machine, a's renewals (every
	// second) keep it; the takeover after a lease's time to live is
	// checked below with leases of 300 ms.
	a, err := StartRunner(ctx, js, names.EventStream, 1, counts["a"].spec("lease", subject, 30*time.Second), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := StartRunner(ctx, js, names.EventStream, 1, counts["b"].spec("lease", subject, 30*time.Second), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Stop()
	if !a.lease.held || b.lease.held {
		t.Fatalf("leases: a %v, b %v; want a's only", a.lease.held, b.lease.held)
	}
	first := publishN(t, js, subject, 20)
	streamstest.Wait(t, 10*time.Second, "a folded the events", func() bool { return len(counts["a"].missing(first)) == 0 })
	if n := len(counts["b"].missing(first)); n != len(first) {
		t.Fatalf("b, standing by, applied %d events", len(first)-n)
	}
	// The status names the folder: a, renewing its lease every second.
	holder := func(r *Runner) string {
		t.Helper()
		st, err := r.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Holder != "" && time.Since(st.Renewed) > 10*time.Second {
			t.Fatalf("status: lease of %s renewed %v ago", st.Holder, time.Since(st.Renewed))
		}
		return st.Holder
	}
	if h := holder(b); h != string(a.lease.id) || !strings.Contains(h, fmt.Sprintf(":%d:", os.Getpid())) {
		t.Fatalf("status names %q as the folder, want a (%q, with this process's id)", h, a.lease.id)
	}

	a.Stop()
	start := time.Now()
	second := publishN(t, js, subject, 20)
	streamstest.Wait(t, 10*time.Second, "b folded the events after a stopped", func() bool { return len(counts["b"].missing(second)) == 0 })
	t.Logf("b took over %v after a stopped", time.Since(start).Round(time.Millisecond))
	streamstest.Wait(t, 10*time.Second, "the status names b as the folder", func() bool { return holder(b) == string(b.lease.id) })
	b.Stop()
	if h := holder(b); h != "" {
		t.Fatalf("after every instance stopped the status names %q as the folder", h)
	}

	// A lease nobody renews passes on after its time to live, measured by
	// the one standing by: here a's lease written by hand and left.
	l := newLease(a.ctrl, names.EventStream, "lease-ttl", 300*time.Millisecond)
	m := newLease(a.ctrl, names.EventStream, "lease-ttl", 300*time.Millisecond)
	if !l.try(ctx) || m.try(ctx) {
		t.Fatal("a free lease: the first try takes it, the second does not")
	}
	if !l.renew(ctx) || m.try(ctx) {
		t.Fatal("a renewed lease stays with its holder")
	}
	time.Sleep(400 * time.Millisecond)
	if !m.try(ctx) {
		t.Fatal("a lease not renewed for its time to live is taken over")
	}
	if l.renew(ctx) || l.held {
		t.Fatal("the holder whose lease was taken over is told so")
	}
	m.release(ctx)
	if !l.try(ctx) {
		t.Fatal("a released lease is taken at once")
	}
}

// TestBatchAcks_MovesFromPerEventConsumer: a deployment upgraded from the
// consumer that acknowledged each event starts the new one after that
// one's floor (the events before it are not folded again), and removes
// the old consumer once no instance pulls from it.
func TestBatchAcks_MovesFromPerEventConsumer(t *testing.T) {
	env := streamstest.Start(t)
	ctx := t.Context()
	js := env.Store.JetStream()
	subject := names.EventSubject("acks", "upgrade")
	c := newCountingSpec()
	spec := c.spec("upgrade", subject, 6*time.Second)

	seqs := publishN(t, js, subject, 30)
	oldCfg := spec.consumerConfig(0)
	oldCfg.Durable, oldCfg.AckPolicy = durableName(spec.Durable, 0), jetstream.AckExplicitPolicy
	old, err := js.CreateOrUpdateConsumer(ctx, names.EventStream, oldCfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := old.Fetch(30, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	for m := range b.Messages() {
		if i < 18 {
			if err := m.DoubleAck(ctx); err != nil {
				t.Fatal(err)
			}
		}
		i++
	}
	if info, err := old.Info(ctx); err != nil || info.AckFloor.Stream != seqs[17] {
		t.Fatalf("the old consumer's floor: %+v %v, want %d", info, err, seqs[17])
	}

	r, err := StartRunner(ctx, js, names.EventStream, 1, spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	streamstest.Wait(t, 20*time.Second, "caught up", func() bool {
		st, err := r.Status(ctx)
		return err == nil && st.Position == seqs[len(seqs)-1]
	})
	if m := c.missing(seqs[18:]); len(m) > 0 {
		t.Errorf("events after the old floor never applied: %v", m)
	}
	if n := len(c.missing(seqs[:18])); n != 18 {
		t.Errorf("%d events the old consumer had acknowledged were folded again", 18-n)
	}
	if _, err := js.Consumer(ctx, names.EventStream, oldCfg.Durable); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Errorf("the old consumer: %v, want it removed", err)
	}
}
