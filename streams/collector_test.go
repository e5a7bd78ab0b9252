package streams_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
	"github.com/strand-dev/strand/streams"
	"github.com/strand-dev/strand/streams/streamstest"
)

func gcEnv(t *testing.T) *streamstest.Env {
	return streamstest.Start(t, streamstest.Options{Config: streams.Config{ChunkSize: 1024, SnapshotEvery: 4}})
}

func newSession(t *testing.T, st *streams.Store, tenant string) string {
	t.Helper()
	id := ulid.Make().String()
	if _, err := st.Create(context.Background(), domain.Meta{EventID: ulid.Make().String(), Actor: "w", Time: time.Now()},
		domain.CreateSession{ID: id, Tenant: tenant, Owner: "w"}); err != nil {
		t.Fatal(err)
	}
	return id
}

// writeFile stores content and names it in an event, as fs.write does.
func writeFile(ctx context.Context, st *streams.Store, tenant, id, path string, data []byte) error {
	h, err := st.Blobs.Put(ctx, data)
	if err != nil {
		return err
	}
	_, err = st.Change(ctx, tenant, id, domain.Meta{EventID: ulid.Make().String(), Actor: "w", Time: time.Now()},
		func(*domain.Session) (domain.Command, error) {
			return domain.ChangeFiles{Ops: []domain.FileOp{{Kind: domain.OpWrite, Path: path, Content: h, Size: int64(len(data))}}}, nil
		})
	return err
}

// checkNamed reads back every blob that an event or snapshot names: none
// may be missing.
func checkNamed(t *testing.T, env *streamstest.Env) int {
	t.Helper()
	ctx := context.Background()
	js := env.Store.JetStream()
	s, err := js.Stream(ctx, names.EventStream)
	if err != nil {
		t.Fatal(err)
	}
	named := map[domain.Hash]bool{}
	if err := streams.ScanStream(ctx, s, "", false, func(m jetstream.Msg, _ *jetstream.MsgMetadata) error {
		ev, err := domain.DecodeEvent(m.Data())
		if err != nil {
			return err
		}
		for _, h := range ev.Blobs() {
			named[h] = true
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	kv, _ := js.KeyValue(ctx, names.SnapshotBucket)
	if w, err := kv.WatchAll(ctx); err == nil {
		for e := range w.Updates() {
			if e == nil {
				break
			}
			if h, ok := streams.SnapshotBlob(e.Value()); ok {
				named[h] = true
			}
		}
		_ = w.Stop()
	}
	for h := range named {
		if _, err := env.Store.Blobs.Get(ctx, h); err != nil {
			t.Errorf("blob %s is named but unreadable: %v", h, err)
		}
	}
	return len(named)
}

// gcClock is the collectors' clock in these tests: the wall clock plus a
// skew that a test moves forward to let a grace period pass without
// waiting for it. It moves only while no writer is between storing content
// and naming it (see GCConfig.Now).
type gcClock struct{ skew atomic.Int64 }

func (c *gcClock) now() time.Time          { return time.Now().Add(time.Duration(c.skew.Load())) }
func (c *gcClock) advance(d time.Duration) { c.skew.Add(int64(d)) }

// TestCollector_ConcurrentWriters runs collections back to back while
// writers keep storing and naming content, much of it content the
// collector has found unnamed (old orphans, condemned, even deleted) and
// big enough to be chunked. The grace is real time while writers run (a
// writer names what it stored well within it), and they go on until the
// collector has deleted while they ran and run once more after that. No
// named blob may go missing, and orphans nobody names again are deleted.
func TestCollector_ConcurrentWriters(t *testing.T) {
	env := gcEnv(t)
	ctx := context.Background()
	st := env.Store
	const grace = 500 * time.Millisecond

	// Orphans: stored, never named (a failed request, an unused upload).
	var orphans, lonely [][]byte
	for i := 0; i < 160; i++ {
		data := make([]byte, 200+i*20) // most above the 1 KiB chunk size: 2 to 4 chunks
		_, _ = rand.Read(data)
		if _, err := st.Blobs.Put(ctx, data); err != nil {
			t.Fatal(err)
		}
		if i%4 == 0 {
			lonely = append(lonely, data) // never written again: must go
		} else {
			orphans = append(orphans, data)
		}
	}
	// The orphans are old: the first collection runs a grace ahead, before
	// any writer starts, and condemns them. Then the clock is the wall
	// clock again, so that content a writer stores is young while it names
	// it. (A clock that goes back only delays deletes: the records carry
	// the later time.)
	var clock gcClock
	c := streams.NewCollector(st, streams.GCConfig{Grace: grace, Now: clock.now})
	clock.advance(grace + time.Millisecond)
	first, err := c.Run(ctx)
	if err != nil || first.Condemned < len(orphans)+len(lonely) {
		t.Fatalf("first run: %+v %v, want every orphan condemned", first, err)
	}
	clock.advance(-grace - time.Millisecond)
	runs := []streams.GCReport{first}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var writes, reuses atomic.Int32
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := mrand.New(mrand.NewPCG(uint64(w), 9))
			id := newSession(t, st, "acme")
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var data []byte
				reuse := rng.IntN(2) == 0
				if reuse {
					// Reuse of an unnamed, old blob (condemned, maybe deleted).
					data = orphans[rng.IntN(len(orphans))]
				} else {
					data = make([]byte, 100+rng.IntN(3000))
					_, _ = rand.Read(data)
				}
				if err := writeFile(ctx, st, "acme", id, fmt.Sprintf("f%d", i%7), data); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				writes.Add(1)
				if reuse {
					reuses.Add(1)
				}
			}
		}(w)
	}
	// Condemned orphans are deleted a grace after the first run, in real
	// time: on a loaded machine the writers might not have named any by
	// then, and the run would find nothing to spare. The test is about a
	// collection that meets both, so the runs start once some are named.
	waitFor(t, "writers to reuse 10 condemned orphans", func() bool { return reuses.Load() >= 10 })
	deadline := time.Now().Add(time.Minute)
	afterDelete := -1 // runs since the first one that deleted
	for afterDelete < 1 {
		rep, err := c.Run(ctx)
		if err != nil {
			t.Fatalf("collect: %v", err)
		}
		runs = append(runs, rep)
		if afterDelete >= 0 || rep.Deleted > 0 {
			afterDelete++
		}
		if time.Now().After(deadline) {
			close(stop)
			wg.Wait()
			t.Fatalf("no run deleted anything within a minute of writes: %+v", runs)
		}
	}
	close(stop)
	wg.Wait()
	// Collections after the writers stopped finish what was condemned: a
	// grace apart, until one finds nothing to condemn, wait for or delete.
	for i := 0; ; i++ {
		clock.advance(grace)
		rep, err := c.Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, rep)
		if rep.Condemned+rep.Waiting+rep.Deleted == 0 {
			break
		}
		if i == 5 {
			t.Fatalf("still collecting after %d runs without writers: %+v", i+1, rep)
		}
	}
	var deleted, condemned, kept int
	for _, r := range runs {
		deleted += r.Deleted
		condemned += r.Condemned
		kept += r.Kept
		if r.Fenced != "" {
			t.Errorf("run fenced: %s", r.Fenced)
		}
	}
	named := checkNamed(t, env)
	t.Logf("%d writes (%d reuses), %d runs, %d named blobs; condemned %d, kept %d, deleted %d", writes.Load(), reuses.Load(), len(runs), named, condemned, kept, deleted)
	// A reused orphan is stored again by the writer's Put (Blobs.keep),
	// which drops its condemnation: the collector then counts it named, or
	// kept when it met the record first. Which of the two is a race, so the
	// test asserts what must hold either way: orphans were deleted, and the
	// condemned orphans the writers named (at least 10, waited for above)
	// are readable, as every named blob is (checkNamed).
	survivors := 0
	for _, data := range orphans {
		if _, err := st.Blobs.Get(ctx, domain.Sum(data)); err == nil {
			survivors++
		}
	}
	if deleted == 0 || survivors == 0 {
		t.Errorf("deleted %d, %d reused orphans readable: want both", deleted, survivors)
	}
	for _, data := range lonely {
		if _, err := st.Blobs.Get(ctx, domain.Sum(data)); domain.ErrorCode(err) != domain.CodeNotFound {
			t.Errorf("orphan %s never named: err %v, want not_found (collected)", domain.Sum(data), err)
		}
	}
}

// TestCollector_Grace follows one orphan through the injected clock: young,
// condemned once older than the grace, waiting until its condemnation is a
// grace old, then deleted; and a dry run only reports.
func TestCollector_Grace(t *testing.T) {
	env := gcEnv(t)
	ctx := context.Background()
	st := env.Store
	// An hour of grace, so the seconds a loaded machine takes between
	// runs never add up to a step of the clock.
	const grace = time.Hour
	var clock gcClock
	c := streams.NewCollector(st, streams.GCConfig{Grace: grace, Now: clock.now})
	dry := streams.NewCollector(st, streams.GCConfig{Grace: grace, Now: clock.now, DryRun: true})
	data := []byte("an orphan\n")
	if _, err := st.Blobs.Put(ctx, data); err != nil {
		t.Fatal(err)
	}
	run := func(c *streams.Collector, step string) streams.GCReport {
		t.Helper()
		rep, err := c.Run(ctx)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		return rep
	}
	type counts struct{ young, condemned, waiting, deleted int }
	for _, s := range []struct {
		step    string
		advance time.Duration
		c       *streams.Collector
		want    counts
	}{
		{"just stored", 0, c, counts{young: 1}},
		{"a minute short of the grace", grace - time.Minute, c, counts{young: 1}},
		{"dry, older than the grace", 2 * time.Minute, dry, counts{condemned: 1}},
		{"older than the grace", 0, c, counts{condemned: 1}},
		{"condemned a minute short of a grace ago", grace - time.Minute, c, counts{waiting: 1}},
		{"dry, condemned a grace ago", time.Minute, dry, counts{deleted: 1}},
		{"condemned a grace ago", 0, c, counts{deleted: 1}},
	} {
		clock.advance(s.advance)
		rep := run(s.c, s.step)
		if got := (counts{rep.Young, rep.Condemned, rep.Waiting, rep.Deleted}); got != s.want {
			t.Errorf("%s: got %+v, want %+v", s.step, got, s.want)
		}
		_, err := st.Blobs.Get(ctx, domain.Sum(data))
		if gone := domain.ErrorCode(err) == domain.CodeNotFound; gone != (s.want.deleted == 1 && s.c == c) {
			t.Errorf("%s: read gives %v, want it gone only after the delete", s.step, err)
		}
	}
}

// TestCollector_ReuseDuringSweep puts a writer exactly in the window
// between a collection's mark and its sweep: it stores content that the
// collector condemned earlier (the put finds it and stores nothing) and
// names it in an event, after the mark read the events. The sweep must not
// delete it.
func TestCollector_ReuseDuringSweep(t *testing.T) {
	env := gcEnv(t)
	ctx := context.Background()
	st := env.Store
	const grace = time.Hour
	var clock gcClock
	small := []byte("condemned, then written again\n")
	big := bytes.Repeat([]byte("chunked and condemned "), 200) // chunked
	for _, d := range [][]byte{small, big} {
		if _, err := st.Blobs.Put(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	clock.advance(grace + time.Second)
	c := streams.NewCollector(st, streams.GCConfig{Grace: grace, Now: clock.now})
	rep, err := c.Run(ctx)
	if err != nil || rep.Condemned == 0 {
		t.Fatalf("first run: %+v %v, want the orphans condemned", rep, err)
	}
	clock.advance(grace + time.Second)
	id := newSession(t, st, "acme")
	c.SetBeforeSweep(func() {
		for i, d := range [][]byte{small, big} {
			if err := writeFile(ctx, st, "acme", id, fmt.Sprint("f", i), d); err != nil {
				t.Error(err)
			}
		}
	})
	if rep, err = c.Run(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("second run: %+v", rep)
	c.SetBeforeSweep(nil)
	for _, d := range [][]byte{small, big} {
		if got, err := st.Blobs.Get(ctx, domain.Sum(d)); err != nil || !bytes.Equal(got, d) {
			t.Errorf("content named during the sweep is gone: %v", err)
		}
	}
	for i := 0; i < 2; i++ {
		clock.advance(grace + time.Second)
		if _, err := c.Run(ctx); err != nil {
			t.Fatal(err)
		}
	}
	checkNamed(t, env)
}

// TestCollector_ReuseAfterDelete: content that was collected is simply
// stored again by the next writer, and a chunked blob whose chunks were
// collected comes back whole.
func TestCollector_ReuseAfterDelete(t *testing.T) {
	env := gcEnv(t)
	ctx := context.Background()
	st := env.Store
	const grace = time.Hour
	var clock gcClock
	big := bytes.Repeat([]byte("0123456789abcdef"), 300) // 4.8 KiB: chunked
	small := []byte("small orphan\n")
	for _, d := range [][]byte{big, small} {
		if _, err := st.Blobs.Put(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	c := streams.NewCollector(st, streams.GCConfig{Grace: grace, Now: clock.now})
	for i := 0; i < 3; i++ {
		clock.advance(grace + time.Second)
		if _, err := c.Run(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range [][]byte{big, small} {
		if _, err := st.Blobs.Get(ctx, domain.Sum(d)); domain.ErrorCode(err) != domain.CodeNotFound {
			t.Fatalf("orphan still readable after collections (err %v)", err)
		}
	}
	id := newSession(t, st, "acme")
	for i, d := range [][]byte{big, small} {
		if err := writeFile(ctx, st, "acme", id, fmt.Sprint("f", i), d); err != nil {
			t.Fatal(err)
		}
		got, err := st.Blobs.Get(ctx, domain.Sum(d))
		if err != nil || !bytes.Equal(got, d) {
			t.Fatalf("content written after its collection: err %v", err)
		}
	}
	clock.advance(grace + time.Second)
	if rep, err := streams.NewCollector(st, streams.GCConfig{Grace: grace, Now: clock.now, DryRun: true}).Run(ctx); err != nil || rep.Deleted+rep.Condemned != 0 {
		t.Errorf("dry run after the writes: %+v %v, want nothing to condemn or delete", rep, err)
	}
	checkNamed(t, env)
}

// TestCollector_ReuseThroughPutMany: content the collector condemned is
// stored again among many new contents (an fs.batch, a push) and named in
// an event in the window between a collection's mark and its sweep. Its
// atomic batch is refused (the content is there), the contents go one by
// one, and the condemned one is kept as a single put keeps it: the sweep
// must not delete it.
func TestCollector_ReuseThroughPutMany(t *testing.T) {
	env := streamstest.Start(t, streamstest.Options{Config: streams.Config{ChunkSize: 1024, SnapshotEvery: 4, GroupCommitMin: streams.DefaultGroupCommitMin}})
	ctx := context.Background()
	st := env.Store
	const grace = time.Hour
	var clock gcClock
	orphan := []byte("condemned, then stored again with others\n")
	if _, err := st.Blobs.Put(ctx, orphan); err != nil {
		t.Fatal(err)
	}
	clock.advance(grace + time.Second)
	c := streams.NewCollector(st, streams.GCConfig{Grace: grace, Now: clock.now})
	if rep, err := c.Run(ctx); err != nil || rep.Condemned == 0 {
		t.Fatalf("first run: %+v %v, want the orphan condemned", rep, err)
	}
	contents := [][]byte{orphan}
	for i := range 40 {
		contents = append(contents, []byte(fmt.Sprintf("new content %d\n", i)))
	}
	clock.advance(grace + time.Second)
	id := newSession(t, st, "acme")
	before := st.Blobs.BatchStats()
	c.SetBeforeSweep(func() {
		if err := st.Blobs.PutMany(ctx, contents); err != nil {
			t.Error(err)
			return
		}
		var ops []domain.FileOp
		for i, d := range contents {
			ops = append(ops, domain.FileOp{Kind: domain.OpWrite, Path: fmt.Sprint("f", i), Content: domain.Sum(d), Size: int64(len(d))})
		}
		if _, err := st.Change(ctx, "acme", id, domain.Meta{EventID: ulid.Make().String(), Actor: "w", Time: time.Now()},
			func(*domain.Session) (domain.Command, error) { return domain.ChangeFiles{Ops: ops, Batch: true}, nil }); err != nil {
			t.Error(err)
		}
	})
	if _, err := c.Run(ctx); err != nil {
		t.Fatal(err)
	}
	c.SetBeforeSweep(nil)
	if after := st.Blobs.BatchStats(); after.Refused == before.Refused {
		t.Fatalf("batch stats %+v: the batch holding the condemned content was not refused", after)
	}
	for _, d := range contents {
		if got, err := st.Blobs.Get(ctx, domain.Sum(d)); err != nil || !bytes.Equal(got, d) {
			t.Fatalf("content named during the sweep is gone: %v", err)
		}
	}
	for i := 0; i < 2; i++ {
		clock.advance(grace + time.Second)
		if _, err := c.Run(ctx); err != nil {
			t.Fatal(err)
		}
	}
	checkNamed(t, env)
}
