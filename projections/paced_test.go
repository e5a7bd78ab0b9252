package projections

import (
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/names"
	"github.com/strand-dev/strand/streams/streamstest"
)

// pacedRecorder is what a paced consumer handed over, and its switches.
type pacedRecorder struct {
	mu       sync.Mutex
	seqs     []uint64
	switches []bool
}

func (r *pacedRecorder) handle(msg jetstream.Msg) {
	md, err := msg.Metadata()
	if err != nil {
		panic(err)
	}
	_ = msg.Ack()
	r.mu.Lock()
	r.seqs = append(r.seqs, md.Sequence.Stream)
	r.mu.Unlock()
}

func (r *pacedRecorder) switched(consuming bool) {
	r.mu.Lock()
	r.switches = append(r.switches, consuming)
	r.mu.Unlock()
}

func (r *pacedRecorder) state() ([]uint64, []bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.seqs), slices.Clone(r.switches)
}

// TestPaced: a batch projection's consumer catches up with Consume, then
// pulls in paces and, when nothing comes, waits in one pull (the status's
// waiting pull); a burst that fills a pull sends it back to Consume until
// it has caught up again. Every event is handed over once, in stream
// order. A drain while a pull waits ends at once and withdraws the pull at
// the server; a consumer deleted while a pull waits closes it (the runner
// then joins again).
func TestPaced(t *testing.T) {
	env := streamstest.Start(t)
	ctx := t.Context()
	js := env.Store.JetStream()
	subject := names.EventSubject("paced", "s1")
	spec := newCountingSpec().spec("paced", subject, 30*time.Second)
	cons, err := js.CreateOrUpdateConsumer(ctx, names.EventStream, spec.consumerConfig(0))
	if err != nil {
		t.Fatal(err)
	}
	seqs := publishN(t, js, subject, 2*pullMax+500)

	rec := &pacedRecorder{}
	p := newPaced(cons, rec.handle, liveLinger, 2*time.Second, slog.New(slog.DiscardHandler),
		jetstream.PullMaxMessages(pullMax), jetstream.PullExpiry(2*time.Second))
	p.switched = rec.switched
	go p.run()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			p.Stop()
			<-p.Closed()
		}
	})

	// handed waits until every event of want was handed over and the
	// switches between Consume (true) and pulls (false) alternate, end
	// with pulls and number at least `least` (a burst published more slowly
	// than Consume takes it may go to Consume and back more than once).
	handed := func(what string, want []uint64, least int) {
		t.Helper()
		var got []uint64
		var sw []bool
		if !streamstest.Poll(20*time.Second, func() bool {
			got, sw = rec.state()
			return len(got) >= len(want) && len(sw) >= least && len(sw)%2 == 0
		}) {
			t.Fatalf("%s: handed over %d of %d events; switches %v, want at least %d, back to pulls", what, len(got), len(want), sw, least)
		}
		for i, consuming := range sw {
			if consuming != (i%2 == 0) {
				t.Fatalf("%s: switches %v, want Consume and pulls in turn", what, sw)
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%s: handed over %d events, not the %d published once each in order (first %v)", what, len(got), len(want), got[:min(len(got), 10)])
		}
	}
	waiting := func(what string, want int, within time.Duration) {
		t.Helper()
		var n int
		if !streamstest.Poll(within, func() bool {
			info, err := cons.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			n = info.NumWaiting
			return n == want
		}) {
			t.Fatalf("%s: %d pulls waiting at the server, want %d", what, n, want)
		}
	}

	// The backlog fills the first pull: Consume takes the rest, and once
	// caught up the pulls are paced again, one waiting.
	handed("catch-up", seqs, 2)
	waiting("caught up", 1, 10*time.Second)

	// Events one at a time, apart: each comes through a pull, no switch.
	for range 20 {
		seqs = append(seqs, publishN(t, js, subject, 1)...)
		time.Sleep(3 * time.Millisecond)
	}
	handed("one at a time", seqs, 2)
	if _, sw := rec.state(); len(sw) != 2 {
		t.Fatalf("events one at a time: switches %v, want none after the catch-up", sw)
	}

	// A burst faster than the pulls' pace: a pull comes back full, and
	// Consume takes over until caught up.
	var acks []jetstream.PubAckFuture
	for i := range 3 * pullMax {
		f, err := js.PublishMsgAsync(&nats.Msg{Subject: subject, Data: fmt.Appendf(nil, `{"burst":%d}`, i)})
		if err != nil {
			t.Fatal(err)
		}
		acks = append(acks, f)
	}
	for _, f := range acks {
		select {
		case a := <-f.Ok():
			seqs = append(seqs, a.Sequence)
		case err := <-f.Err():
			t.Fatal(err)
		}
	}
	handed("burst", seqs, 4)
	waiting("after the burst", 1, 10*time.Second)

	// Draining while the pull waits: closed at once, the pull withdrawn.
	begin := time.Now()
	p.Drain()
	select {
	case <-p.Closed():
	case <-time.After(2 * time.Second):
		t.Fatal("drained while a pull waited: not closed after 2 s")
	}
	stopped = true
	t.Logf("closed %v after the drain", time.Since(begin))
	// Within less than the pull's expiry (2 s): the server dropped it.
	waiting("after the drain", 0, time.Second)
	more := publishN(t, js, subject, 5)
	if got, _ := rec.state(); len(got) != len(seqs) {
		t.Fatalf("handed over %d events after the drain, want none", len(got)-len(seqs))
	}

	// A new one takes what came meanwhile; the consumer deleted under its
	// waiting pull closes it.
	rec2 := &pacedRecorder{}
	p2 := pace(cons, rec2.handle, liveLinger, 2*time.Second, slog.New(slog.DiscardHandler))
	defer p2.Stop()
	if !streamstest.Poll(10*time.Second, func() bool {
		got, _ := rec2.state()
		return slices.Equal(got, more)
	}) {
		got, _ := rec2.state()
		t.Fatalf("a new one handed over %v, want %v", got, more)
	}
	waiting("the new one", 1, 10*time.Second)
	if err := js.DeleteConsumer(ctx, names.EventStream, spec.consumerName(0)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p2.Closed():
	case <-time.After(5 * time.Second):
		t.Fatal("the consumer was deleted under a waiting pull: not closed after 5 s")
	}
}
