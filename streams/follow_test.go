package streams_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/streams"
	"github.com/strand-dev/strand/streams/streamstest"
)

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	streamstest.Wait(t, 10*time.Second, what, cond)
}

// TestStore_FollowsOtherWriters checks that a store whose sessions another
// store writes starts following the event stream's live tail after its first
// lost race, and from then on decides its writes on the head the notices
// brought up to date: no lost race, no request to the stream for the events
// it missed (one or several), the same state as the other writer's.
func TestStore_FollowsOtherWriters(t *testing.T) {
	env := streamstest.Start(t)
	ctx := context.Background()
	other := openOther(t, env)
	g := &ids{}
	s := create(t, env.Store, g, "acme")
	write(t, env.Store, g, s, "a.txt", "a")
	if _, err := other.Head(ctx, "acme", s.ID); err != nil {
		t.Fatal(err)
	}
	if other.Following() {
		t.Fatal("following before any lost race; want not")
	}
	write(t, env.Store, g, s, "b.txt", "b")
	write(t, other, g, s, "c.txt", "c")
	if lost, _ := other.Races(); lost != 1 || !other.Following() {
		t.Fatalf("after a stale write: %d lost races, following %v; want 1, true", lost, other.Following())
	}
	gets := watchEventGets(t, env)
	for _, behind := range []int{1, 2, 5} {
		t.Run(fmt.Sprintf("%d behind", behind), func(t *testing.T) {
			var last streams.Result
			for i := 0; i < behind; i++ {
				last = write(t, env.Store, g, s, fmt.Sprintf("f%d.txt", i), fmt.Sprint(behind, i))
			}
			waitFor(t, "the notices", func() bool { return streams.Noticed(other, "acme", s.ID) == last.Position })
			gets.drain()
			lost0, followed0 := other.Races()
			res := write(t, other, g, s, "mine.txt", fmt.Sprint(behind))
			lost, followed := other.Races()
			read := gets.drain()
			if n := len(read.direct) + len(read.batched) + len(read.leader); lost != lost0 || followed != followed0+1 || n != 0 {
				t.Fatalf("write %d events behind: %d lost races, %d followed, %d gets of the event stream; want 0, 1, 0", behind, lost-lost0, followed-followed0, n)
			}
			if res.Session.Version != last.Session.Version+1 {
				t.Fatalf("written at %d v%d after %d v%d", res.Position, res.Session.Version, last.Position, last.Session.Version)
			}
			want, err := env.Store.Head(ctx, "acme", s.ID)
			if err != nil {
				t.Fatal(err)
			}
			if want.Position != res.Position || want.Tree.Hash() != res.Session.Tree.Hash() || want.LastHash != res.Session.LastHash {
				t.Fatalf("writer's head %d %s, the other store's %d %s", res.Position, res.Session.Tree.Hash(), want.Position, want.Tree.Hash())
			}
		})
	}
}

// TestStore_FollowingWritersTakeTurns checks that two stores on one
// connection writing a session strictly in turn lose no race once both
// follow the live tail, without waiting for anything between the writes:
// the notice of an append reaches the connection before its
// acknowledgement, and a write keeps every notice received before it
// decides (drainNotices).
func TestStore_FollowingWritersTakeTurns(t *testing.T) {
	env := streamstest.Start(t)
	other := openOther(t, env)
	g := &ids{}
	s := create(t, env.Store, g, "acme")
	stores := []*streams.Store{env.Store, other}
	// Each store loses its first race, and follows from then on.
	for i := 0; !env.Store.Following() || !other.Following(); i++ {
		if i == 10 {
			t.Fatalf("after %d writes in turn: following %v, %v; want both", i, env.Store.Following(), other.Following())
		}
		write(t, stores[i%2], g, s, fmt.Sprintf("warm%d.txt", i), "w")
	}
	lostA, _ := env.Store.Races()
	lostB, followedB := other.Races()
	const turns = 40
	for i := 0; i < turns; i++ {
		write(t, stores[i%2], g, s, fmt.Sprintf("f%d.txt", i%7), fmt.Sprint(i))
	}
	la, _ := env.Store.Races()
	lb, fb := other.Races()
	if la != lostA || lb != lostB || fb-followedB != turns/2 {
		t.Fatalf("%d writes in turn: %d and %d lost races, %d of the other store's writes followed; want 0, 0, %d", turns, la-lostA, lb-lostB, fb-followedB, turns/2)
	}
}

// TestStore_FollowStopsWhenIdle checks that a store stops following the
// live tail once FollowIdle passed without a sign of another writer.
func TestStore_FollowStopsWhenIdle(t *testing.T) {
	env := streamstest.Start(t)
	ctx := context.Background()
	other, err := streams.Open(ctx, env.NC, streams.Config{FollowIdle: 20 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	g := &ids{}
	s := create(t, env.Store, g, "acme")
	if _, err := other.Head(ctx, "acme", s.ID); err != nil {
		t.Fatal(err)
	}
	write(t, env.Store, g, s, "a.txt", "a")
	if _, err := other.Change(ctx, "acme", s.ID, meta(g, "test"), func(*domain.Session) (domain.Command, error) {
		return domain.ChangeFiles{Ops: []domain.FileOp{{Kind: domain.OpWrite, Path: "b.txt", Content: domain.Sum([]byte("b")), Size: 1}}}, nil
	}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the store to stop following", func() bool { return !other.Following() })
	if lost, _ := other.Races(); lost != 1 {
		t.Fatalf("%d lost races; want 1", lost)
	}
}
