package projections

import (
	"context"
	crand "crypto/rand"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"

	"github.com/strand-dev/strand/names"
	"github.com/strand-dev/strand/streams/streamstest"
)

// BenchmarkSessions_List pages through 100,000 sessions of one tenant (and
// 10,000 of another) through Sessions.Query, the path session.list takes.
// The views are written straight into the views bucket (what the
// projection writes, without replaying 100,000 events), then an instance's
// index loads them through its watch, as on a restart.
//
//	go test ./projections -run '^$' -bench Sessions_List -benchtime 2000x
func BenchmarkSessions_List(b *testing.B) {
	const n = 100_000
	env := streamstest.Start(b)
	ctx := context.Background()
	js := env.Store.JetStream()
	p, err := OpenSessions(ctx, js, names.EventStream, names.EventFilter("*"), 1, nil)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	entropy := ulid.Monotonic(crand.Reader, 0)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	statuses := []string{"active", "active", "active", "pending_approval", "archived", "archived", "deleted"}
	t0 := time.Now()
	var futures []jetstream.PubAckFuture
	write := func(tenant string, count int) {
		for i := 0; i < count; i++ {
			c := base.Add(time.Duration(i) * time.Second)
			id := ulid.MustNew(ulid.Timestamp(c), entropy).String()
			v := View{ID: id, Tenant: tenant, Status: statuses[rng.IntN(len(statuses))],
				Owner: fmt.Sprintf("user%d", rng.IntN(1000)), CreatedAt: c,
				UpdatedAt: c.Add(time.Duration(rng.IntN(86400*30)) * time.Second),
				Tags:      map[string]string{"team": []string{"red", "blue", "green", "gold"}[rng.IntN(4)], "env": "ci"},
				Position:  uint64(i + 1), Version: uint64(rng.IntN(50) + 1), Root: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}
			if rng.IntN(10) == 0 {
				v.Origin.Parent = "01KPARENT0000000000000000" + fmt.Sprint(rng.IntN(10))
			}
			body, _ := json.Marshal(v)
			f, err := js.PublishAsync("$KV."+names.SessionsBucket+"."+tenant+"."+id, body)
			if err != nil {
				b.Fatal(err)
			}
			futures = append(futures, f)
			if len(futures) >= 4000 {
				for _, f := range futures {
					select {
					case <-f.Ok():
					case err := <-f.Err():
						b.Fatal(err)
					}
				}
				futures = futures[:0]
			}
		}
		for _, f := range futures {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				b.Fatal(err)
			}
		}
		futures = futures[:0]
	}
	write("acme", n)
	write("beta", n/10)
	stored := time.Since(t0)
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	t1 := time.Now()
	if err := p.StartIndex(ctx); err != nil {
		b.Fatal(err)
	}
	defer p.stopWatch()
	<-p.idx.ready
	loaded := time.Since(t1)
	runtime.GC()
	runtime.ReadMemStats(&m1)
	b.Logf("%d views stored in %v; index loaded in %v, heap +%d MB", n+n/10, stored.Round(time.Millisecond),
		loaded.Round(time.Millisecond), (int64(m1.HeapAlloc)-int64(m0.HeapAlloc))>>20)

	// A cursor from the middle of the list, for a deep page.
	mid, err := p.Query(ctx, "acme", ListFilter{Limit: n / 2})
	if err != nil {
		b.Fatal(err)
	}
	since := base.Add(100_000 * time.Second).Add(25 * 24 * time.Hour)
	cases := []struct {
		name string
		f    ListFilter
	}{
		{"first-page", ListFilter{Limit: 100}},
		{"deep-page", ListFilter{Limit: 100, After: mid.Next}},
		{"status-updated-desc", ListFilter{Status: "active", Sort: SortUpdated, Order: OrderDesc, Limit: 100}},
		{"owner", ListFilter{Owner: "user7", Limit: 100}},
		{"tag-broad", ListFilter{Tags: map[string]string{"team": "gold"}, Sort: SortUpdated, Order: OrderDesc, Limit: 100}},
		{"parent", ListFilter{Parent: "01KPARENT00000000000000003", Limit: 100}},
		{"updated-since", ListFilter{UpdatedSince: &since, Sort: SortUpdated, Limit: 100}},
		{"counts", ListFilter{Limit: 100, Counts: true}},
		{"counts-filtered", ListFilter{Tags: map[string]string{"team": "gold"}, Limit: 100, Counts: true}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			var got int
			for b.Loop() {
				page, err := p.Query(ctx, "acme", c.f)
				if err != nil {
					b.Fatal(err)
				}
				// session.list encodes the page: count that too.
				body, _ := json.Marshal(page.Views)
				got = len(page.Views) + len(body)*0
			}
			if got == 0 {
				b.Fatalf("%s: empty page", c.name)
			}
		})
	}
	// What List did before: list every key of the tenant (no values read).
	b.Run("kv-list-keys-baseline", func(b *testing.B) {
		for b.Loop() {
			l, err := p.kv.ListKeysFiltered(ctx, "acme.*")
			if err != nil {
				b.Fatal(err)
			}
			k := 0
			for range l.Keys() {
				k++
			}
			if k != n {
				b.Fatalf("%d keys, want %d", k, n)
			}
		}
	})
}
