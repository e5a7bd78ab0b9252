package streams_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
	"github.com/strand-dev/strand/streams"
	"github.com/strand-dev/strand/streams/streamstest"
)

// startR3 starts a three-node cluster with the store's streams made (R3)
// and returns it, a context for the test and the stores' configuration.
func startR3(t *testing.T) (*streamstest.Cluster, context.Context, streams.Config) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	c := streamstest.StartCluster(t, streamstest.ClusterOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	cfg := streams.Config{Replicas: 3}
	boot, err := streams.Open(ctx, c.Connect(t, 0), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	boot.Close()
	return c, ctx, cfg
}

// TestStore_ReadYourWritesOnAFollower runs two stores on a three-node
// cluster: the writer connected to the event stream's leader, the reader to
// a follower. Right after each acknowledged write, the reader reads the head
// and writes with expected_position set to the position it was just told:
// a read answered late by the follower would show an old head or refuse
// that write with a false conflict. The writer, whose cache is then stale,
// must see a real conflict and decide again on the fresh head.
//
// A control counts how often a direct get (which any replica answers) of
// the session's last event, made by the reader right after a write, is
// stale: it shows that the follower does lag, so the test can tell.
func TestStore_ReadYourWritesOnAFollower(t *testing.T) {
	c, ctx, cfg := startR3(t)
	leader := c.StreamLeader(t, names.EventStream)
	writer, err := streams.Open(ctx, c.Connect(t, leader), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()
	// One reader on each follower: only one of them needs to be in the
	// quorum that acknowledged a write.
	var readers []*streams.Store
	var directs []jetstream.Stream
	var followers []int
	for _, f := range []int{(leader + 1) % 3, (leader + 2) % 3} {
		nc := c.Connect(t, f)
		r, err := streams.Open(ctx, nc, cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if r.DirectReads() {
			t.Fatal("a store on a replicated event stream reads heads with direct gets, which a lagging follower may answer")
		}
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := js.Stream(ctx, names.EventStream)
		if err != nil {
			t.Fatal(err)
		}
		readers, directs, followers = append(readers, r), append(directs, ev), append(followers, f)
	}

	g := &ids{}
	s := create(t, writer, g, "acme")
	change := func(st *streams.Store, expected uint64, path string) (streams.Result, error) {
		m := meta(g, "test")
		m.ExpectedPosition = expected
		return st.Change(ctx, "acme", s.ID, m, func(*domain.Session) (domain.Command, error) {
			return domain.ChangeFiles{Ops: []domain.FileOp{{Kind: domain.OpWrite, Path: path, Content: domain.Sum([]byte(path)), Size: int64(len(path))}}}, nil
		})
	}

	const rounds = 100
	staleDirect := make([]int, len(readers))
	var last uint64
	for i := range rounds {
		k := i % len(readers)
		reader := readers[k]
		w, err := change(writer, 0, fmt.Sprintf("w%d", i))
		if err != nil {
			t.Fatalf("round %d: writer: %v", i, err)
		}
		if w.Position <= last {
			t.Fatalf("round %d: writer got position %d after %d", i, w.Position, last)
		}
		for j, ev := range directs {
			if m, err := ev.GetLastMsgForSubject(ctx, names.EventSubject("acme", s.ID)); err != nil || m.Sequence != w.Position {
				staleDirect[j]++
			}
		}
		head, err := reader.Head(ctx, "acme", s.ID)
		if err != nil {
			t.Fatalf("round %d: reader head: %v", i, err)
		}
		if head.Position != w.Position {
			t.Fatalf("round %d: reader head at %d right after a write acknowledged at %d: a stale read", i, head.Position, w.Position)
		}
		r, err := change(reader, w.Position, fmt.Sprintf("r%d", i))
		if err != nil {
			t.Fatalf("round %d: reader write expecting %d (the head it was just told): %v", i, w.Position, err)
		}
		last = r.Position
	}
	for j, f := range followers {
		t.Logf("control: %d of %d direct gets through follower n%d right after a write were stale", staleDirect[j], rounds, f+1)
	}

	// Every write is in the history, once, in order: replay on a fresh
	// store (no cache) checks the chain of every event and the head's
	// recorded root.
	fresh, err := streams.Open(ctx, c.Connect(t, followers[0]), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	head, err := fresh.Head(ctx, "acme", s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if head.Position != last || head.Version != 1+2*rounds {
		t.Fatalf("head at %d version %d, want %d version %d", head.Position, head.Version, last, 1+2*rounds)
	}
	for i := range rounds {
		for _, p := range []string{fmt.Sprintf("w%d", i), fmt.Sprintf("r%d", i)} {
			if head.Tree.Lookup(p) == nil {
				t.Errorf("%s missing from the head", p)
			}
		}
	}
}

// TestStore_WaitsForAWriteInFlight: two instances write to one session (and
// then one source) of an R3 stream while its leader cannot reach a quorum
// (both followers stopped). The first write stays in flight; the leader
// refuses the second one's expectation with "wrong last sequence" (10164)
// for as long as it is. That is not a lost race: the second writer must
// wait for the first write rather than spend its attempts and answer that
// the session "is changing too fast" (as it did, in CI under load, after a
// quarter of a second), and both writes land once the followers are back.
// The second store has not read the session before: its load creates a
// replay consumer, a request to the meta leader, which the lost quorum may
// leave unanswered; it must be sent again (it waited out the caller's
// deadline, three minutes here, before).
func TestStore_WaitsForAWriteInFlight(t *testing.T) {
	c, ctx, cfg := startR3(t)
	// race opens two stores on the node leading stream, prepares with the
	// first, stops both followers, runs write on the first store, then on
	// the second while the first is in flight, waits for both to land, and
	// returns the stores.
	race := func(t *testing.T, stream string, prepare func(st *streams.Store), write func(st *streams.Store, name string) (uint64, error)) []*streams.Store {
		t.Helper()
		leader := c.StreamLeader(t, stream)
		var stores []*streams.Store
		for range 2 {
			st, err := streams.Open(ctx, c.Connect(t, leader), cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(st.Close)
			stores = append(stores, st)
		}
		prepare(stores[0])
		followers := []int{(leader + 1) % 3, (leader + 2) % 3}
		for _, f := range followers {
			c.Stop(f)
		}
		type answer struct {
			pos uint64
			err error
		}
		start := func(st *streams.Store, name string) <-chan answer {
			out := make(chan answer, 1)
			go func() {
				pos, err := write(st, name)
				out <- answer{pos, err}
			}()
			return out
		}
		first := start(stores[0], "first")
		time.Sleep(300 * time.Millisecond)
		second := start(stores[1], "second")
		// Longer than every pause of a command's attempts together.
		select {
		case a := <-first:
			t.Fatalf("the first write answered without a quorum: %d, %v", a.pos, a.err)
		case a := <-second:
			t.Fatalf("the second write answered while the first was in flight: %d, %v", a.pos, a.err)
		case <-time.After(time.Second):
		}
		for _, f := range followers {
			c.Start(t, f)
		}
		var got [2]uint64
		for i, ch := range []<-chan answer{first, second} {
			select {
			case a := <-ch:
				if a.err != nil {
					t.Fatalf("a write failed: %v", a.err)
				}
				got[i] = a.pos
			case <-time.After(time.Minute):
				t.Fatal("no answer a minute after the followers came back")
			}
		}
		if got[0] == got[1] {
			t.Fatalf("both writes at position %d", got[0])
		}
		return stores
	}

	g := &ids{}
	t.Run("Session", func(t *testing.T) {
		var s *domain.Session
		stores := race(t, names.EventStream, func(st *streams.Store) { s = create(t, st, g, "acme") }, func(st *streams.Store, path string) (uint64, error) {
			res, err := st.Change(ctx, "acme", s.ID, meta(g, "test"), func(*domain.Session) (domain.Command, error) {
				return domain.ChangeFiles{Ops: []domain.FileOp{{Kind: domain.OpWrite, Path: path, Content: domain.Sum([]byte(path)), Size: int64(len(path))}}}, nil
			})
			return res.Position, err
		})
		head, err := stores[0].Head(ctx, "acme", s.ID)
		if err != nil {
			t.Fatal(err)
		}
		if head.Version != 3 || head.Tree.Lookup("first") == nil || head.Tree.Lookup("second") == nil {
			t.Fatalf("head version %d (want 3, both writes once), first %v, second %v", head.Version, head.Tree.Lookup("first") != nil, head.Tree.Lookup("second") != nil)
		}
	})
	t.Run("Source", func(t *testing.T) {
		at := time.Unix(1700000000, 0).UTC().UnixNano()
		empty := domain.Tree{}.Hash().Bytes()
		create := func(st *streams.Store) {
			if _, err := st.CreateSource(ctx, domain.SourceEvent{Type: domain.SourceCreated, Tenant: "acme", Source: "base", Actor: "t", Time: at}); err != nil {
				t.Fatal(err)
			}
		}
		stores := race(t, names.SourceStream, create, func(st *streams.Store, rid string) (uint64, error) {
			res, err := st.ChangeSource(ctx, "acme", "base", rid, func(s *domain.Source) (*domain.SourceEvent, error) {
				return &domain.SourceEvent{Type: domain.RevisionAdded, Actor: "t", Time: at, RequestID: rid,
					Revision: &domain.Revision{Number: uint64(len(s.Revisions)) + 1, Root: empty, Tree: empty, Origin: domain.RevisionOrigin{Kind: domain.OriginBlank}}}, nil
			})
			return res.Sequence, err
		})
		src, err := stores[0].Source(ctx, "acme", "base")
		if err != nil {
			t.Fatal(err)
		}
		if len(src.Revisions) != 2 {
			t.Fatalf("%d revisions, want 2 (both changes once)", len(src.Revisions))
		}
	})
}
