package projections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/names"
	"github.com/strand-dev/strand/streams/streamstest"
)

func startStats(t *testing.T, env *streamstest.Env) *Stats {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := OpenStats(ctx, env.Store.JetStream(), names.EventStream, names.EventFilter("*"), 1, nil)
	if err != nil {
		t.Fatalf("open stats: %v", err)
	}
	if err := p.Start(ctx); err != nil {
		t.Fatalf("start stats: %v", err)
	}
	t.Cleanup(p.Stop)
	return p
}

func waitStats(t *testing.T, p *Stats) {
	t.Helper()
	var st Status
	var err error
	if !streamstest.Poll(30*time.Second, func() bool {
		st, err = p.Status(context.Background())
		return err == nil && st.Error == "" && st.Lag == 0 && st.Position == st.StreamLast && st.State == StateRunning
	}) {
		t.Fatalf("stats not caught up: %+v (err %v)", st, err)
	}
}

// expectedStats folds each session's events read from the store, outside
// the projection's machinery, and sums them per tenant.
func expectedStats(t *testing.T, env *streamstest.Env, ws ...*workload) (map[string]SessionStats, map[string]TenantStats) {
	t.Helper()
	ctx := context.Background()
	recs, tenants := map[string]SessionStats{}, map[string]TenantStats{}
	for _, w := range ws {
		blobs := map[string]int64{}
		ts := TenantStats{}
		for _, id := range w.ids {
			var s SessionStats
			evs, err := env.Store.Events(ctx, w.tenant, id, 0, 0, 10000)
			if err != nil {
				t.Fatalf("events of %s: %v", id, err)
			}
			for _, se := range evs {
				foldStats(&s, se.Event)
				s.Version, s.Applied = se.Event.Version, se.Position
				for _, h := range se.Event.Blobs() {
					for _, op := range se.Event.Ops {
						if string(op.Content) == string(h[:]) {
							blobs[h.String()] = op.Size
						}
					}
				}
			}
			s.Tenant, s.Session = w.tenant, id
			recs[statsKey(w.tenant, id)] = s
			ts.Sessions++
			ts.Events += int64(s.Events)
			ts.ContentBytes += s.ContentBytes
			ts.BlobBytesWritten += s.BlobBytesWritten
		}
		for _, n := range blobs {
			ts.Blobs++
			ts.BlobBytes += n
		}
		tenants[w.tenant] = ts
	}
	return recs, tenants
}

func readStats(t *testing.T, p *Stats) map[string]SessionStats {
	t.Helper()
	ctx := context.Background()
	out := map[string]SessionStats{}
	lister, err := p.kv.ListKeysFiltered(ctx, "s.>")
	if err != nil {
		t.Fatal(err)
	}
	for key := range lister.Keys() {
		e, err := p.kv.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		var s SessionStats
		if err := json.Unmarshal(e.Value(), &s); err != nil {
			t.Fatal(err)
		}
		out[key] = s
	}
	return out
}

// same compares records without the event bytes (the store's fold does not
// see messages) and the generation.
func diffStats(t *testing.T, what string, got, want map[string]SessionStats) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d records, want %d", what, len(got), len(want))
	}
	for k, w := range want {
		g := got[k]
		if g.EventBytes <= 0 {
			t.Errorf("%s: %s has %d event bytes", what, k, g.EventBytes)
		}
		g.EventBytes, g.Gen = 0, 0
		if a, b := fmt.Sprintf("%+v", g), fmt.Sprintf("%+v", w); a != b {
			t.Fatalf("%s: record %s:\n got %s\nwant %s", what, k, a, b)
		}
	}
}

// eventBytes sums the stored sizes of the records.
func eventBytes(recs map[string]SessionStats, tenant string) int64 {
	var n int64
	for _, s := range recs {
		if s.Tenant == tenant {
			n += s.EventBytes
		}
	}
	return n
}

func waitTenant(t *testing.T, p *Stats, tenant string, want TenantStats) {
	t.Helper()
	var got TenantStats
	var err error
	if !streamstest.Poll(10*time.Second, func() bool {
		got, err = p.Tenant(context.Background(), tenant)
		return err == nil && got == want
	}) {
		t.Fatalf("tenant %s: got %+v (err %v), want %+v", tenant, got, err, want)
	}
}

// TestStats_Projection: two instances fold two tenants' events into the
// same figures as a fold of each session's history; a redelivered event
// changes nothing, an early one waits, lost totals come back with the
// redelivery, and a rebuild gives the same figures.
func TestStats_Projection(t *testing.T) {
	env := streamstest.Start(t)
	ctx := context.Background()
	acme, beta := newWorkload(t, env, "acme", 3), newWorkload(t, env, "beta", 4)
	a, b := startStats(t, env), startStats(t, env)
	for i := 0; i < 150; i++ {
		acme.step(ctx)
		if i%3 == 0 {
			beta.step(ctx)
		}
	}
	waitStats(t, a)
	want, tenants := expectedStats(t, env, acme, beta)
	got := readStats(t, a)
	diffStats(t, "incremental", got, want)
	for _, w := range []*workload{acme, beta} {
		ts := tenants[w.tenant]
		ts.EventBytes = eventBytes(got, w.tenant)
		tenants[w.tenant] = ts
		waitTenant(t, a, w.tenant, ts)
		waitTenant(t, b, w.tenant, ts)
	}
	if ts, _ := a.Tenant(ctx, "nobody"); ts != (TenantStats{}) {
		t.Errorf("a tenant without events: %+v", ts)
	}

	// Deliver again the last event of a session: nothing changes.
	id := acme.ids[0]
	evs, err := env.Store.Events(ctx, "acme", id, 0, 0, 10000)
	if err != nil || len(evs) < 2 {
		t.Fatalf("events of %s: %d, %v", id, len(evs), err)
	}
	last := evs[len(evs)-1]
	d := Delivery{Seq: last.Position, Subject: names.EventSubject("acme", id), Data: last.Body,
		Header: nats.Header{names.HeaderVersion: []string{fmt.Sprint(last.Event.Version)}}}
	before, _ := a.kv.Get(ctx, statsKey("acme", id))
	if err := a.apply(ctx, d); err != nil {
		t.Fatalf("redelivery: %v", err)
	}
	after, _ := a.kv.Get(ctx, statsKey("acme", id))
	if after.Revision() != before.Revision() {
		t.Errorf("a redelivered event rewrote the record (revision %d -> %d)", before.Revision(), after.Revision())
	}
	// Totals lost after the record was written come back with the
	// redelivery.
	if err := a.kv.Delete(ctx, totalsKey("acme", id)); err != nil {
		t.Fatal(err)
	}
	if err := b.apply(ctx, d); err != nil {
		t.Fatalf("redelivery after lost totals: %v", err)
	}
	waitTenant(t, a, "acme", tenants["acme"])
	// A record behind its session (the events in between went to another
	// instance, or come late) reads the missing events from the stream:
	// folded from nothing with the last event alone, it is the same.
	whole, err := a.kv.Get(ctx, statsKey("acme", id))
	if err != nil {
		t.Fatal(err)
	}
	lastD, err := nextBySubject(ctx, env.Store.JetStream().Conn(), names.EventStream, names.EventSubject("acme", id), last.Position)
	if err != nil || lastD == nil {
		t.Fatalf("read event %d back: %v, %v", last.Position, lastD, err)
	}
	if err := a.kv.Delete(ctx, statsKey("acme", id)); err != nil {
		t.Fatal(err)
	}
	a.cache.Purge()
	if err := a.apply(ctx, *lastD); err != nil {
		t.Fatalf("the last event with none folded before it: %v, want the history read and folded", err)
	}
	refolded, err := a.kv.Get(ctx, statsKey("acme", id))
	if err != nil {
		t.Fatal(err)
	}
	var wantS, gotS SessionStats
	_ = json.Unmarshal(whole.Value(), &wantS)
	_ = json.Unmarshal(refolded.Value(), &gotS)
	if !reflect.DeepEqual(gotS, wantS) {
		t.Errorf("record folded after a gap:\n got %+v\nwant %+v", gotS, wantS)
	}
	// An event whose predecessor is not in the stream waits.
	early := d
	early.Header = nats.Header{names.HeaderVersion: []string{fmt.Sprint(last.Event.Version + 2)}}
	early.Data = nil
	if err := a.apply(ctx, early); !errors.Is(err, ErrGap) {
		t.Errorf("an event two ahead: %v, want ErrGap", err)
	}

	// A rebuild folds the same figures into generation 1.
	rctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	if _, err := Rebuild(rctx, env.Store.JetStream(), names.EventStream, 1, a.Spec(), true, nil); err != nil {
		t.Fatalf("rebuild: %v", err)
	}
	rebuilt := readStats(t, a)
	diffStats(t, "rebuilt", rebuilt, want)
	for k, s := range rebuilt {
		if s.Gen != 1 || s.EventBytes != got[k].EventBytes {
			t.Errorf("%s after the rebuild: generation %d, %d event bytes; want 1, %d", k, s.Gen, s.EventBytes, got[k].EventBytes)
		}
	}
	waitTenant(t, a, "acme", tenants["acme"])
	waitTenant(t, b, "beta", tenants["beta"])

	// ApplyBatch folds the whole history at once into a later generation
	// (as a rebuild's catch-up does) to the same figures; handed the same
	// batch again it writes nothing.
	a.Stop()
	b.Stop()
	js := env.Store.JetStream()
	cons, err := js.OrderedConsumer(ctx, names.EventStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{names.EventFilter("*")}})
	if err != nil {
		t.Fatal(err)
	}
	var ds []Delivery
	for int64(len(ds)) < acme.n.Load()+beta.n.Load() {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			md, _ := m.Metadata()
			ds = append(ds, Delivery{Seq: md.Sequence.Stream, Subject: m.Subject(), Header: m.Headers(), Data: m.Data(), Gen: 7, Delivered: 1})
		}
	}
	for i, err := range a.applyBatch(ctx, ds) {
		if err != nil {
			t.Fatalf("batch: event %d: %v", i, err)
		}
	}
	batched := readStats(t, a)
	diffStats(t, "batched", batched, want)
	for k, s := range batched {
		if s.Gen != 7 || s.EventBytes != got[k].EventBytes {
			t.Errorf("%s after the batch: generation %d, %d event bytes; want 7, %d", k, s.Gen, s.EventBytes, got[k].EventBytes)
		}
	}
	lastSeq := func() uint64 {
		st, err := js.Stream(ctx, "KV_"+names.StatsBucket)
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.LastSeq
	}
	seq0 := lastSeq()
	for i, err := range a.applyBatch(ctx, ds) {
		if err != nil {
			t.Fatalf("batch again: event %d: %v", i, err)
		}
	}
	if seq1 := lastSeq(); seq1 != seq0 {
		t.Errorf("the same batch again wrote %d entries, want none", seq1-seq0)
	}
}
