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
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	c := streamstest.StartCluster(t, streamstest.ClusterOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cfg := streams.Config{Replicas: 3}
	boot, err := streams.Open(ctx, c.Connect(t, 0), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	boot.Close()
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
