package projections

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
	"github.com/strand-dev/strand/streams/streamstest"
)

// workload appends a random mix of events to a tenant's sessions through
// the store, the way the service does.
type workload struct {
	t      testing.TB
	env    *streamstest.Env
	tenant string
	rng    *rand.Rand
	ids    []string
	blob   domain.Hash
	n      atomic.Int64
	mu     sync.Mutex
	clock  time.Time
}

func newWorkload(t testing.TB, env *streamstest.Env, tenant string, seed uint64) *workload {
	h, err := env.Store.Blobs.Put(context.Background(), []byte("hello\n"))
	if err != nil {
		t.Fatalf("put blob: %v", err)
	}
	return &workload{t: t, env: env, tenant: tenant, rng: rand.New(rand.NewPCG(seed, 7)), blob: h,
		clock: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (w *workload) meta(actor string) domain.Meta {
	w.clock = w.clock.Add(time.Second)
	return domain.Meta{EventID: ulid.Make().String(), Actor: actor, Time: w.clock}
}

// step appends one event; refusals (a grant of a stale request) are fine.
func (w *workload) step(ctx context.Context) {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := w.env.Store
	if len(w.ids) < 5 || w.rng.IntN(8) == 0 {
		id := ulid.Make().String()
		tags := map[string]string{"team": []string{"red", "blue"}[w.rng.IntN(2)]}
		if _, err := st.Create(ctx, w.meta("alice"), domain.CreateSession{ID: id, Tenant: w.tenant, Owner: []string{"alice", "carol"}[w.rng.IntN(2)], Tags: tags}); err != nil {
			w.t.Errorf("create: %v", err)
			return
		}
		w.ids = append(w.ids, id)
		w.n.Add(1)
		return
	}
	id := w.ids[w.rng.IntN(len(w.ids))]
	var cmd domain.Command
	actor := "alice"
	switch k := w.rng.IntN(10); {
	case k < 4:
		cmd = domain.ChangeFiles{Ops: []domain.FileOp{{Kind: domain.OpWrite, Path: fmt.Sprintf("f%d.txt", w.rng.IntN(5)), Content: w.blob, Size: 6}}}
		if w.rng.IntN(2) == 0 {
			cmd = domain.ChangeFiles{Ops: []domain.FileOp{{Kind: domain.OpMkdir, Path: fmt.Sprintf("d%d", w.rng.IntN(50))}}}
		}
	case k < 5:
		cmd = domain.SetTags{Set: map[string]string{"stage": fmt.Sprint(w.rng.IntN(3))}}
	case k < 7:
		cmd = domain.RequestApproval{ID: ulid.Make().String(), Reason: "commit", Group: []string{"default", "legal"}[w.rng.IntN(2)]}
	case k < 9:
		head, err := st.Head(ctx, w.tenant, id)
		if err != nil {
			w.t.Errorf("head: %v", err)
			return
		}
		var open []string
		for _, r := range head.ApprovalList() {
			if r.State() == domain.ApprovalPending {
				open = append(open, r.ID)
			}
		}
		if len(open) == 0 {
			return
		}
		actor = "bob"
		cmd = domain.GrantApproval{ID: open[w.rng.IntN(len(open))]}
		if w.rng.IntN(3) == 0 {
			cmd = domain.DenyApproval{ID: open[w.rng.IntN(len(open))]}
		}
	default:
		if w.rng.IntN(3) == 0 {
			cmd = domain.ArchiveSession{}
		} else {
			cmd = domain.CreateCheckpoint{Name: fmt.Sprintf("cp%d", w.rng.IntN(1000))}
		}
	}
	if _, err := st.Change(ctx, w.tenant, id, w.meta(actor), func(*domain.Session) (domain.Command, error) { return cmd, nil }); err == nil {
		w.n.Add(1)
	}
}

// expected folds each session from the event store, independently of the
// projection.
func (w *workload) expected(ctx context.Context) map[string]View {
	out := map[string]View{}
	for _, id := range w.ids {
		s, err := w.env.Store.Head(ctx, w.tenant, id)
		if err != nil {
			w.t.Fatalf("head %s: %v", id, err)
		}
		v := View{ID: id, Tenant: w.tenant, Status: string(s.Status), Owner: s.Owner, Tags: s.Tags,
			CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt, Position: s.Position, Start: s.Start, Version: s.Version,
			Root: s.Tree.Hash().String(), Origin: s.Origin}
		for _, r := range s.ApprovalList() {
			if r.State() == domain.ApprovalPending {
				v.Pending = append(v.Pending, PendingRef{ID: r.ID, Group: r.Group, Grants: len(r.Grants)})
			}
		}
		out[w.tenant+"."+id] = v
	}
	return out
}

// stripped strips what the event store does not know (bookkeeping of
// the projection) so that views can be compared.
func stripped(v View) View {
	v.Applied, v.Gen = 0, 0
	if len(v.Tags) == 0 {
		v.Tags = nil
	}
	var ps []PendingRef
	for _, p := range v.Pending {
		ps = append(ps, PendingRef{ID: p.ID, Group: p.Group, Grants: p.Grants})
	}
	v.Pending = ps
	v.CreatedAt, v.UpdatedAt = v.CreatedAt.UTC(), v.UpdatedAt.UTC()
	return v
}

func diffViews(t *testing.T, what string, got, want map[string]View) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d views, want %d", what, len(got), len(want))
	}
	bad := 0
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("%s: view %s missing", what, k)
			bad++
		} else if a, b := fmt.Sprintf("%+v", stripped(g)), fmt.Sprintf("%+v", stripped(w)); a != b {
			t.Errorf("%s: view %s:\n got %s\nwant %s", what, k, a, b)
			bad++
		}
		if bad > 3 {
			t.Fatalf("%s: too many differences", what)
		}
	}
}

func startViews(t *testing.T, env *streamstest.Env) *Sessions {
	t.Helper()
	return startViewsOn(t, env, env.Store.JetStream())
}

// startViewsOn runs the projection on its own connection's JetStream.
func startViewsOn(t *testing.T, env *streamstest.Env, js jetstream.JetStream) *Sessions {
	t.Helper()
	ctx0, cancel0 := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel0()
	p, err := OpenSessions(ctx0, js, names.EventStream, names.EventFilter("*"), 1, nil)
	if err != nil {
		t.Fatalf("open sessions: %v", err)
	}
	p.EmitWork(WorkConfig{Stream: names.WorkStream, Subject: names.WorkSubject})
	p.ackWait = 2 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Start(ctx); err != nil {
		t.Fatalf("start sessions: %v", err)
	}
	t.Cleanup(p.Stop)
	return p
}

// waitCaughtUp waits until the projection folded every event.
func waitCaughtUp(t *testing.T, p *Sessions) Status {
	t.Helper()
	var st Status
	var err error
	if !streamstest.Poll(30*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		st, err = p.Status(ctx)
		return err == nil && st.Error == "" && st.Lag == 0 && st.Position == st.StreamLast
	}) {
		t.Fatalf("projection not caught up: %+v (err %v)", st, err)
	}
	return st
}

func TestSessions_RestartMidStream(t *testing.T) {
	env := streamstest.Start(t)
	ctx := context.Background()
	w := newWorkload(t, env, "acme", 1)

	// Three instances share the consumer from the start: one stops while
	// events keep coming, one dies (its connection drops with events in
	// hand), and a fourth joins later.
	a := startViews(t, env)
	b := startViews(t, env)
	nck, err := env.Server.Connect()
	if err != nil {
		t.Fatal(err)
	}
	jsk, _ := jetstream.New(nck)
	k := startViewsOn(t, env, jsk)
	// The workload says when it has appended 120, 180 and 240 events.
	marks := []int64{120, 180, 240}
	at := make([]chan struct{}, len(marks))
	for i := range at {
		at[i] = make(chan struct{})
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		next := 0
		for i := 0; i < 400; i++ {
			w.step(ctx)
			for next < len(marks) && w.n.Load() >= marks[next] {
				close(at[next])
				next++
			}
		}
	}()
	reach := func(i int) {
		select {
		case <-at[i]:
		case <-done:
			select {
			case <-at[i]:
			default:
				t.Fatalf("the workload ended at %d events, short of %d", w.n.Load(), marks[i])
			}
		}
	}
	reach(0)
	a.Stop()
	reach(1)
	nck.Close()
	k.Stop()
	reach(2)
	c := startViews(t, env)
	<-done
	st := waitCaughtUp(t, c)
	// Idle, the folding instance waits in a pull (caught up a moment ago,
	// it may still be between two paced pulls), and the status names it.
	if !streamstest.Poll(5*time.Second, func() bool {
		var err error
		st, err = c.Status(ctx)
		return err == nil && st.Waiting > 0 && st.Holder != ""
	}) {
		t.Errorf("status %+v: no waiting pull request or no folder, want the running instance", st)
	}
	got, err := c.readViews(ctx)
	if err != nil {
		t.Fatal(err)
	}
	diffViews(t, "after restart", got, w.expected(ctx))

	// The index of every running instance shows the same views.
	for name, p := range map[string]*Sessions{"b": b, "c": c} {
		var all map[string]View
		if !streamstest.Poll(10*time.Second, func() bool {
			all = map[string]View{}
			for _, s := range []string{"active", "pending_approval", "archived"} {
				pg, err := p.Query(ctx, "acme", ListFilter{Status: s, Limit: 1000})
				if err != nil {
					t.Fatal(err)
				}
				for _, v := range pg.Views {
					all["acme."+v.ID] = v
				}
			}
			return len(all) == len(got) && fmt.Sprint(viewsSorted(all)) == fmt.Sprint(viewsSorted(got))
		}) {
			diffViews(t, "index of "+name, all, got)
		}
	}
}

func viewsSorted(m map[string]View) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+fmt.Sprintf("%+v", stripped(v)))
	}
	slices.Sort(out)
	return out
}

func TestSessions_RebuildEqualsIncremental(t *testing.T) {
	env := streamstest.Start(t)
	ctx := context.Background()
	w := newWorkload(t, env, "acme", 2)
	p := startViews(t, env)
	for i := 0; i < 250; i++ {
		w.step(ctx)
	}
	waitCaughtUp(t, p)
	before, err := p.readViews(ctx)
	if err != nil {
		t.Fatal(err)
	}
	diffViews(t, "incremental", before, w.expected(ctx))
	openItems := countItems(t, env)

	// Rebuild while the instance keeps running and events keep coming.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 300; i++ {
			select {
			case <-stop:
				return
			default:
				w.step(ctx)
			}
		}
	}()
	rctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	t0 := time.Now()
	st, err := Rebuild(rctx, env.Store.JetStream(), names.EventStream, 1, p.Spec(), true, func(s Status) {
		if testing.Verbose() && time.Now().UnixMilli()%500 < 100 {
			t.Logf("%v rebuild: %+v", time.Since(t0), s)
		}
	})
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("rebuild: %v (status %+v)", err, st)
	}
	if st.Generation != 1 || st.State != StateRunning || st.Consumer != names.SessionsConsumer+"_g1_ackall" {
		t.Errorf("after rebuild: %+v, want generation 1, running, consumer %s_g1_ackall", st, names.SessionsConsumer)
	}
	waitCaughtUp(t, p)
	after, err := p.readViews(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := w.expected(ctx)
	diffViews(t, "rebuilt", after, want)
	for k, v := range after {
		if v.Gen != 1 {
			t.Errorf("view %s has generation %d after the rebuild, want 1", k, v.Gen)
		}
	}

	// A second, quiet rebuild gives exactly the same entries.
	if _, err := Rebuild(rctx, env.Store.JetStream(), names.EventStream, 1, p.Spec(), true, nil); err != nil {
		t.Fatalf("second rebuild: %v", err)
	}
	again, err := p.readViews(ctx)
	if err != nil {
		t.Fatal(err)
	}
	diffViews(t, "rebuilt twice", again, after)

	// The work queue holds one review item per open request, as before.
	var open int
	for _, v := range want {
		open += len(v.Pending)
	}
	if n := countItems(t, env); n != 2*open {
		t.Errorf("work items after rebuilds: %d, want %d (2 per open request; %d before)", n, 2*open, openItems)
	}
}

// countItems counts the review and summary items on the work stream.
func countItems(t *testing.T, env *streamstest.Env) int {
	t.Helper()
	s, err := env.Store.JetStream().Stream(context.Background(), names.WorkStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return int(info.State.Msgs)
}

func TestActivity_List(t *testing.T) {
	env := streamstest.Start(t)
	ctx := context.Background()
	a := OpenActivity(env.Store.JetStream(), names.EventStream, names.EventFilter("*"), 1,
		FeedConfig{Stream: names.FeedStream, Subject: names.FeedSubject}, nil)
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Stop)
	w := newWorkload(t, env, "acme", 3)
	other := newWorkload(t, env, "beta", 4)
	for i := 0; i < 60; i++ {
		w.step(ctx)
		other.step(ctx)
	}
	total := int(w.n.Load())
	var all []FeedEntry
	streamstest.Poll(10*time.Second, func() bool {
		all = nil
		var before uint64
		for {
			page, err := a.List(ctx, "acme", 7, before)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, page.Entries...)
			if page.Before == 0 {
				break
			}
			before = page.Before
		}
		return len(all) == total
	})
	if len(all) != total {
		t.Fatalf("feed of acme has %d entries, want %d", len(all), total)
	}
	for i, e := range all {
		if i > 0 && e.Position >= all[i-1].Position {
			t.Fatalf("entry %d at %d after %d: want newest first", i, e.Position, all[i-1].Position)
		}
		if e.Session == "" || e.Actor == "" || e.Type == "" {
			t.Fatalf("entry %+v lacks session, actor or type", e)
		}
		if !slices.Contains(w.ids, e.Session) {
			t.Fatalf("entry %+v is not a session of acme", e)
		}
	}
}

// TestIndex_Query checks paging, sorting, filters and counts against a
// brute-force answer over random views.
func TestIndex_Query(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	x := newIndex()
	x.markReady()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	statuses := []string{"active", "pending_approval", "archived", "deleted", "conflict"}
	var all []*View
	for i := 0; i < 3000; i++ {
		c := base.Add(time.Duration(rng.IntN(5000)) * time.Second)
		v := &View{ID: fmt.Sprintf("S%05d", i), Tenant: "acme", Status: statuses[rng.IntN(len(statuses))],
			Owner: fmt.Sprintf("o%d", rng.IntN(30)), CreatedAt: c, UpdatedAt: c.Add(time.Duration(rng.IntN(5000)) * time.Second),
			Tags: map[string]string{"team": fmt.Sprint(rng.IntN(3))}}
		if rng.IntN(4) == 0 {
			v.Origin.Parent = fmt.Sprintf("P%d", rng.IntN(5))
		}
		if rng.IntN(5) == 0 {
			v.Tags["hot"] = ""
		}
		x.put(v)
		all = append(all, v)
	}
	// Replace some views (a status or update-time change moves them).
	for i := 0; i < 500; i++ {
		old := all[rng.IntN(len(all))]
		nv := *old
		nv.Status = statuses[rng.IntN(len(statuses))]
		nv.UpdatedAt = nv.UpdatedAt.Add(time.Duration(rng.IntN(9000)) * time.Second)
		nv.Tags = maps.Clone(old.Tags)
		nv.Tags["team"] = fmt.Sprint(rng.IntN(3))
		x.put(&nv)
		for j := range all {
			if all[j].ID == nv.ID {
				all[j] = &nv
			}
		}
	}
	since := base.Add(4000 * time.Second)
	filters := []ListFilter{
		{},
		{Status: "active"},
		{Status: "deleted", Sort: SortUpdated, Order: OrderDesc},
		{Sort: SortUpdated},
		{Order: OrderDesc},
		{Owner: "o3"},
		{Owner: "o3", Status: "archived", Sort: SortUpdated, Order: OrderDesc},
		{Tags: map[string]string{"team": "1"}, Sort: SortUpdated},
		{Tags: map[string]string{"hot": ""}, Order: OrderDesc},
		{Parent: "P2"},
		{UpdatedSince: &since, Sort: SortUpdated},
		{UpdatedSince: &since, Sort: SortUpdated, Order: OrderDesc},
		{UpdatedSince: &since, Status: "active"},
		{Tags: map[string]string{"team": "2"}, UpdatedSince: &since, Sort: SortUpdated, Order: OrderDesc},
	}
	for i, f := range filters {
		for _, limit := range []int{1, 7, 100, 5000} {
			t.Run(fmt.Sprintf("%d/limit%d", i, limit), func(t *testing.T) {
				f := f
				f.Limit, f.Counts = limit, true
				if err := f.normalize(); err != nil {
					t.Fatal(err)
				}
				var want []string
				wantCounts := map[string]int{}
				for _, v := range all {
					if matchOthers(v, &f) {
						wantCounts[v.Status]++
						if (f.Status == "" && v.Status != "deleted") || v.Status == f.Status {
							want = append(want, v.ID)
						}
					}
				}
				keys := map[string]sortKey{}
				for _, v := range all {
					keys[v.ID] = sortKey{v.CreatedAt.UnixNano(), v.ID}
					if f.Sort == SortUpdated {
						keys[v.ID] = sortKey{v.UpdatedAt.UnixNano(), v.ID}
					}
				}
				key := func(id string) sortKey { return keys[id] }
				slices.SortFunc(want, func(a, b string) int {
					ka, kb := key(a), key(b)
					if ka.less(kb) != (f.Order == OrderDesc) {
						return -1
					}
					return 1
				})
				var got []string
				for pages := 0; ; pages++ {
					page, err := x.query("acme", f)
					if err != nil {
						t.Fatal(err)
					}
					if pages == 0 && fmt.Sprint(page.Counts) != fmt.Sprint(wantCounts) {
						t.Errorf("counts %v, want %v", page.Counts, wantCounts)
					}
					if len(page.Views) > limit {
						t.Fatalf("page of %d views, limit %d", len(page.Views), limit)
					}
					for _, v := range page.Views {
						got = append(got, v.ID)
					}
					if page.Next == "" {
						break
					}
					f.After, f.Counts = page.Next, false
					if pages > 4000 {
						t.Fatal("paging does not end")
					}
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("filter %+v: got %d views, want %d\n got %.200v\nwant %.200v", f, len(got), len(want), got, want)
				}
			})
		}
	}
	t.Run("BadCursor", func(t *testing.T) {
		f := ListFilter{Sort: SortUpdated, After: encodeCursor(SortCreated, OrderAsc, sortKey{1, "x"})}
		_ = f.normalize()
		if _, err := x.query("acme", f); domain.ErrorCode(err) != domain.CodeInvalidArgument {
			t.Errorf("cursor of another sort: err %v, want invalid_argument", err)
		}
	})
}
