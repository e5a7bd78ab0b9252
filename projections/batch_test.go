package projections

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
	"github.com/strand-dev/strand/streams/streamstest"
)

// TestSessions_ApplyBatch folds a whole history in batches and checks that
// the views equal the event store's, that each view is written once per
// batch, that redelivered events change nothing, and that an event after a
// gap folds the session's missing events, read from the stream, first.
func TestSessions_ApplyBatch(t *testing.T) {
	t.Run("OneRequestEach", func(t *testing.T) { testSessionsApplyBatch(t, false) })
	// The views, commit-index entries and review items of a batch as
	// atomic batches (ShareSyncs).
	t.Run("SharedSyncs", func(t *testing.T) { testSessionsApplyBatch(t, true) })
}

func testSessionsApplyBatch(t *testing.T, share bool) {
	env := streamstest.Start(t)
	ctx := context.Background()
	w := newWorkload(t, env, "acme", 11)
	for range 400 {
		w.step(ctx)
	}
	// Commits: their commit-index entries travel in the views' batches (a
	// bare nats.Msg among them once made the atomic publish panic).
	var commits []string
	for _, id := range w.ids {
		c := ulid.Make().String()
		if _, err := env.Store.Change(ctx, "acme", id, w.meta("alice"), func(*domain.Session) (domain.Command, error) {
			return domain.CreateCommit{ID: c, Message: "reviewed"}, nil
		}); err == nil {
			w.n.Add(1)
			commits = append(commits, c)
		}
	}
	if len(commits) == 0 {
		t.Fatal("no session took a commit")
	}
	p, err := OpenSessions(ctx, env.Store.JetStream(), names.EventStream, names.EventFilter("*"), 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.EmitWork(WorkConfig{Stream: names.WorkStream, Subject: names.WorkSubject})
	if share {
		p.ShareSyncs()
		p.atomic = allowAtomic(ctx, p.js, "KV_"+names.SessionsBucket, p.log)
		p.work.atomic = allowAtomic(ctx, p.js, names.WorkStream, p.log)
		if !p.atomic || !p.work.atomic {
			t.Fatalf("atomic batches: views %v, work items %v; want both", p.atomic, p.work.atomic)
		}
	}
	js := env.Store.JetStream()
	cons, err := js.OrderedConsumer(ctx, names.EventStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{names.EventFilter("acme")}})
	if err != nil {
		t.Fatal(err)
	}
	var ds []Delivery
	for int64(len(ds)) < w.n.Load() {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			md, _ := m.Metadata()
			ds = append(ds, Delivery{Seq: md.Sequence.Stream, Subject: m.Subject(), Header: m.Headers(), Data: m.Data(), Gen: 0, Delivered: 1})
		}
	}
	kvSeq := func() uint64 {
		st, err := p.kv.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		s, err := js.Stream(ctx, "KV_"+st.Bucket())
		if err != nil {
			t.Fatal(err)
		}
		return s.CachedInfo().State.LastSeq
	}
	sessionsIn := func(ds []Delivery) int {
		seen := map[string]bool{}
		for _, d := range ds {
			seen[d.Subject] = true
		}
		return len(seen)
	}

	half := len(ds) / 2
	first, second := ds[:half], ds[half:]
	t.Run("Gap", func(t *testing.T) {
		// The second half before the first: every session already begun
		// in the first half has a gap, which it fills by reading the
		// session's missing events from the stream; nothing waits for
		// a redelivery, and the first half then changes nothing.
		second := second[:min(len(second), MaxBatch)]
		for i, err := range p.applyBatch(ctx, second) {
			if err != nil {
				t.Fatalf("event %d after a gap: %v, want it folded", second[i].Seq, err)
			}
		}
		got, err := p.readViews(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range second {
			ev, tenant, id, version, _ := eventOf(d)
			if v := got[tenant+"."+id]; ev != nil && v.Version < version {
				t.Fatalf("view %s at version %d after event %d was folded", id, v.Version, version)
			}
		}
	})
	for _, part := range [][]Delivery{first, second} {
		for len(part) > 0 {
			n := min(len(part), MaxBatch)
			before := kvSeq()
			for i, err := range p.applyBatch(ctx, part[:n]) {
				if err != nil {
					t.Fatalf("event %d: %v", part[i].Seq, err)
				}
			}
			if writes, most := kvSeq()-before, uint64(sessionsIn(part[:n])); writes > most {
				t.Fatalf("%d events of %d sessions: %d view writes, want at most one per session", n, most, writes)
			}
			part = part[n:]
		}
	}
	before := kvSeq()
	for i, err := range p.applyBatch(ctx, ds[:min(len(ds), MaxBatch)]) {
		if err != nil {
			t.Fatalf("redelivered event %d: %v", ds[i].Seq, err)
		}
	}
	if after := kvSeq(); after != before {
		t.Fatalf("redelivery wrote %d views, want none", after-before)
	}
	got, err := p.readViews(ctx)
	if err != nil {
		t.Fatal(err)
	}
	diffViews(t, "batched", got, w.expected(ctx))
	for _, c := range commits {
		if e, err := p.kv.Get(ctx, commitKey("acme", c)); err != nil {
			t.Errorf("commit %s: no commit-index entry: %v", c, err)
		} else if len(e.Value()) == 0 {
			t.Errorf("commit %s: empty commit-index entry", c)
		}
	}
	if n := p.atomicViews.Load(); share && n == 0 {
		t.Errorf("no view was written in an atomic batch, want the batches' views to be")
	}
}

// TestSessions_CrashMidBatch folds a history in one batch that stops
// half-way through its writes, as a crash would (some views written, none
// of the events acknowledged), then lets a fresh instance take the
// redelivered events: the views equal the event store's and the review
// queue holds each open request's items once.
func TestSessions_CrashMidBatch(t *testing.T) {
	t.Run("OneRequestEach", func(t *testing.T) { testSessionsCrashMidBatch(t, false) })
	t.Run("SharedSyncs", func(t *testing.T) { testSessionsCrashMidBatch(t, true) })
}

func testSessionsCrashMidBatch(t *testing.T, share bool) {
	env := streamstest.Start(t)
	ctx := context.Background()
	w := newWorkload(t, env, "acme", 13)
	for range 300 {
		w.step(ctx)
	}
	crashed, err := OpenSessions(ctx, env.Store.JetStream(), names.EventStream, names.EventFilter("*"), 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	crashed.EmitWork(WorkConfig{Stream: names.WorkStream, Subject: names.WorkSubject})
	if share {
		crashed.ShareSyncs()
		crashed.atomic = allowAtomic(ctx, crashed.js, "KV_"+names.SessionsBucket, crashed.log)
		crashed.work.atomic = allowAtomic(ctx, crashed.js, names.WorkStream, crashed.log)
	}
	var writes, views int
	var mu sync.Mutex // the writes of a batch run concurrently
	crashed.writeHook = func(subject string) error {
		mu.Lock()
		defer mu.Unlock()
		if writes++; writes > 7 {
			return errors.New("crashed")
		}
		if !strings.HasPrefix(subject, "$KV."+names.SessionsBucket+"._") {
			views++
		}
		return nil
	}
	// As the instances below will have it.
	crashed.ackWait = 2 * time.Second
	cons, err := env.Store.JetStream().CreateOrUpdateConsumer(ctx, names.EventStream, crashed.Spec().consumerConfig(0))
	if err != nil {
		t.Fatal(err)
	}
	var ds []Delivery
	for int64(len(ds)) < w.n.Load() {
		batch, err := cons.Fetch(int(w.n.Load())-len(ds), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			md, _ := m.Metadata()
			ds = append(ds, Delivery{Seq: md.Sequence.Stream, Subject: m.Subject(), Header: m.Headers(), Data: m.Data(), Delivered: 1})
		}
	}
	failed := 0
	for _, err := range crashed.applyBatch(ctx, ds) {
		if err != nil {
			failed++
		}
	}
	written, err := crashed.readViews(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if failed == 0 || len(written) == 0 || len(written) != views {
		t.Fatalf("crashed batch: %d of %d events failed, %d views written (%d let through), want some of each", failed, len(ds), len(written), views)
	}

	// Nothing was acknowledged: after AckWait a fresh instance gets every
	// event again, and the views written already skip what they have.
	p := startViews(t, env)
	waitCaughtUp(t, p)
	got, err := p.readViews(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := w.expected(ctx)
	diffViews(t, "after the crash", got, want)
	var open int
	for _, v := range want {
		open += len(v.Pending)
	}
	if n := countItems(t, env); n != 2*open {
		t.Errorf("work items: %d, want %d (2 per open request)", n, 2*open)
	}
}

// TestActivity_ApplyBatch puts a history of two tenants on the feed in
// batches (chunks of up to FeedChunk entries per tenant, one message
// each), then delivers it again cut differently, as a redelivery after a
// crash would: each tenant's feed lists every event once, newest first.
func TestActivity_ApplyBatch(t *testing.T) {
	t.Run("OneRequestEach", func(t *testing.T) { testActivityApplyBatch(t, false) })
	t.Run("SharedSyncs", func(t *testing.T) {
		// A batch's few chunks here go as atomic batches too.
		defer func(n int) { minAtomicViews = n }(minAtomicViews)
		minAtomicViews = 2
		testActivityApplyBatch(t, true)
	})
}

func testActivityApplyBatch(t *testing.T, share bool) {
	env := streamstest.Start(t)
	ctx := context.Background()
	a := OpenActivity(env.Store.JetStream(), names.EventStream, names.EventFilter("*"), 1,
		FeedConfig{Stream: names.FeedStream, Subject: names.FeedSubject}, nil)
	if share {
		a.ShareSyncs()
		if a.atomic = allowAtomic(ctx, a.js, names.FeedStream, a.log); !a.atomic {
			t.Fatal("the feed's stream refused atomic batches")
		}
	}
	w, other := newWorkload(t, env, "acme", 21), newWorkload(t, env, "beta", 22)
	for range 150 {
		w.step(ctx)
		other.step(ctx)
	}
	js := env.Store.JetStream()
	cons, err := js.OrderedConsumer(ctx, names.EventStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{names.EventFilter("*")}})
	if err != nil {
		t.Fatal(err)
	}
	total := int(w.n.Load() + other.n.Load())
	var ds []Delivery
	for len(ds) < total {
		batch, err := cons.Fetch(total-len(ds), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			md, _ := m.Metadata()
			ds = append(ds, Delivery{Seq: md.Sequence.Stream, Subject: m.Subject(), Header: m.Headers(), Data: m.Data(), Delivered: 1})
		}
	}
	feedMsgs := func() uint64 {
		s, err := js.Stream(ctx, names.FeedStream)
		if err != nil {
			t.Fatal(err)
		}
		return s.CachedInfo().State.Msgs
	}
	// Two batches, then all again cut elsewhere.
	half, third := len(ds)/2, len(ds)/3
	for _, cut := range [][2]int{{0, half}, {half, len(ds)}, {0, third}, {third, len(ds)}} {
		for i, err := range a.applyBatch(ctx, ds[cut[0]:cut[1]]) {
			if err != nil {
				t.Fatalf("event %d: %v", ds[cut[0]+i].Seq, err)
			}
		}
		if cut[0] == half {
			// Per batch and tenant, a chunk per FeedChunk entries.
			if n, most := feedMsgs(), uint64(2*2*((half+FeedChunk-1)/FeedChunk+1)); n > most {
				t.Errorf("%d events in %d feed messages, want at most %d", len(ds), n, most)
			}
		}
	}
	for tenant, wl := range map[string]*workload{"acme": w, "beta": other} {
		var all []FeedEntry
		var before uint64
		for {
			page, err := a.List(ctx, tenant, 40, before)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, page.Entries...)
			if page.Before == 0 {
				break
			}
			before = page.Before
		}
		if len(all) != int(wl.n.Load()) {
			t.Fatalf("feed of %s lists %d entries, want %d", tenant, len(all), wl.n.Load())
		}
		if n := a.atomicChunks.Load(); share && n == 0 {
			t.Errorf("no chunk was stored in an atomic batch, want the batches' chunks to be")
		}
		for i, e := range all {
			if i > 0 && e.Position >= all[i-1].Position {
				t.Fatalf("%s entry %d at %d after %d: want each once, newest first", tenant, i, e.Position, all[i-1].Position)
			}
			if !slices.Contains(wl.ids, e.Session) {
				t.Fatalf("entry %+v is not a session of %s", e, tenant)
			}
		}
	}
}
