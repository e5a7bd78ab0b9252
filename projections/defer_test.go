package projections

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
	"github.com/strand-dev/strand/streams/streamstest"
)

// TestSessions_DeferredItems: in a catch-up's batch (events still pending
// after it), a request that entered the queue in the batch gets no work
// items there and one of its view's events is handed back (ErrRevisit).
// A request decided in the next batch never gets items (nothing published
// to be deleted); one still open gets them when the handed-back event
// comes again: in a batch, alone (apply), or to a fresh instance after a
// crash. A batch that is not a catch-up's publishes at once.
func TestSessions_DeferredItems(t *testing.T) {
	env := streamstest.Start(t)
	ctx := context.Background()
	w := newWorkload(t, env, "acme", 5)
	st := env.Store
	change := func(id, actor string, cmd domain.Command) {
		t.Helper()
		if _, err := st.Change(ctx, "acme", id, w.meta(actor), func(*domain.Session) (domain.Command, error) { return cmd, nil }); err != nil {
			t.Fatal(err)
		}
	}
	create := func() string {
		t.Helper()
		id := ulid.Make().String()
		if _, err := st.Create(ctx, w.meta("alice"), domain.CreateSession{ID: id, Tenant: "acme", Owner: "alice"}); err != nil {
			t.Fatal(err)
		}
		return id
	}
	// a: a request decided after the first batch; b, c, d: requests that
	// stay open and whose sessions have no event after the first batch.
	a, b, c, d := create(), create(), create(), create()
	for _, id := range []string{a, b, c, d} {
		change(id, "alice", domain.RequestApproval{ID: "r-" + id, Reason: "commit", Group: "default"})
	}
	change(a, "bob", domain.GrantApproval{ID: "r-" + a})

	js := st.JetStream()
	cons, err := js.OrderedConsumer(ctx, names.EventStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{names.EventFilter("acme")}})
	if err != nil {
		t.Fatal(err)
	}
	ds := fetchDeliveries(t, cons, 9)
	open := func() *Sessions {
		p, err := OpenSessions(ctx, js, names.EventStream, names.EventFilter("*"), 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		p.EmitWork(WorkConfig{Stream: names.WorkStream, Subject: names.WorkSubject})
		return p
	}
	published := func() uint64 {
		t.Helper()
		s, err := js.Stream(ctx, names.WorkStream)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.LastSeq
	}
	items := func(p *Sessions, id string) (uint64, uint64) {
		t.Helper()
		v, _, err := p.load(ctx, "acme."+id, false)
		if err != nil {
			t.Fatal(err)
		}
		if len(v.Pending) != 1 {
			t.Fatalf("view %s: %d open requests, want 1", id, len(v.Pending))
		}
		return v.Pending[0].Item, v.Pending[0].SummaryItem
	}
	p := open()

	// Batch 1: the creates and the four requests, with the grant still
	// pending after it.
	first := ds[:8]
	if first[7].Pending == 0 {
		t.Fatalf("the last event of the first batch has nothing pending after it")
	}
	revisit := map[string]Delivery{}
	for i, err := range p.applyBatch(ctx, first) {
		switch {
		case errors.Is(err, ErrRevisit):
			_, _, id, _, _ := eventOf(first[i])
			revisit[id] = first[i]
		case err != nil:
			t.Fatalf("event %d: %v", first[i].Seq, err)
		}
	}
	if len(revisit) != 4 {
		t.Fatalf("%d views handed an event back, want 4 (one per new request)", len(revisit))
	}
	if n := published(); n != 0 {
		t.Fatalf("a catch-up's batch published %d work items for requests new in it, want none yet", n)
	}
	if it, sit := items(p, b); it != 0 || sit != 0 {
		t.Fatalf("deferred request recorded items %d, %d", it, sit)
	}

	// Batch 2, the last (nothing pending): a's grant, and the events
	// handed back for a and b. a's request is decided: it never gets
	// items; b's gets them.
	last := ds[8]
	if last.Pending != 0 {
		t.Fatalf("the grant has %d events pending after it, want 0", last.Pending)
	}
	again := func(d Delivery) Delivery { d.Delivered++; d.Pending = 0; return d }
	second := []Delivery{again(revisit[a]), again(revisit[b]), last}
	for i, err := range p.applyBatch(ctx, second) {
		if err != nil {
			t.Fatalf("event %d of the second batch: %v", second[i].Seq, err)
		}
	}
	if n := published(); n != 2 {
		t.Fatalf("%d work items published after the second batch, want 2 (b's request; a's was decided)", n)
	}
	if it, sit := items(p, b); it == 0 || sit == 0 {
		t.Fatalf("b's view records items %d, %d; want both", it, sit)
	}

	// c's event handed back comes alone (Apply): its items go out.
	if err := p.apply(ctx, again(revisit[c])); err != nil {
		t.Fatal(err)
	}
	if it, sit := items(p, c); it == 0 || sit == 0 || published() != 4 {
		t.Fatalf("c's items after its event came again alone: %d, %d (%d published)", it, sit, published())
	}

	// d's comes again after a crash, to a fresh instance: the same.
	fresh := open()
	if errs := fresh.applyBatch(ctx, []Delivery{again(revisit[d]), again(revisit[c])}); errs[0] != nil || errs[1] != nil {
		t.Fatalf("after a crash: %v", errs)
	}
	if it, sit := items(fresh, d); it == 0 || sit == 0 || published() != 6 {
		t.Fatalf("d's items after a crash: %d, %d (%d published)", it, sit, published())
	}
	// And once more changes nothing: c's items were published already.
	if n := countItems(t, env); n != 6 {
		t.Fatalf("%d work items, want 6 (b, c and d's)", n)
	}

	// Not a catch-up: a request new in the batch gets its items at once.
	e := create()
	change(e, "alice", domain.RequestApproval{ID: "r-" + e, Reason: "commit", Group: "default"})
	live := fetchDeliveries(t, cons, 2)
	for i, err := range fresh.applyBatch(ctx, live) {
		if err != nil {
			t.Fatalf("live event %d: %v", live[i].Seq, err)
		}
	}
	if it, sit := items(fresh, e); it == 0 || sit == 0 || published() != 8 {
		t.Fatalf("a live batch's request: items %d, %d (%d published), want them at once", it, sit, published())
	}
}

// fetchDeliveries takes the next n events of a consumer as deliveries, with
// what the consumer still had pending after each.
func fetchDeliveries(t *testing.T, cons jetstream.Consumer, n int) []Delivery {
	t.Helper()
	var ds []Delivery
	for len(ds) < n {
		batch, err := cons.Fetch(n-len(ds), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			md, _ := m.Metadata()
			ds = append(ds, Delivery{Seq: md.Sequence.Stream, Subject: m.Subject(), Header: m.Headers(), Data: m.Data(), Delivered: 1, Pending: md.NumPending})
		}
	}
	return ds
}
