package streams_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/names"
	"github.com/strand-dev/strand/streams/streamstest"
)

// TestStore_DirectReadsOnlyWhereLinearizable checks where a store reads
// the event stream at the head with direct gets (eventget.go): on one
// server, whose one copy of the stream is the only responder, its reads
// at the head are direct gets and none goes to the leader; with a mirror
// of the stream that answers direct gets (mirror_direct), which may
// answer from behind, a store opened then reads through the leader, and
// a store opened before it goes back to the leader once the mirror
// answers one of its reads, every read answered right. (On a replicated
// stream: TestStore_ReadYourWritesOnAFollower.)
func TestStore_DirectReadsOnlyWhereLinearizable(t *testing.T) {
	env := streamstest.Start(t)
	ctx := context.Background()
	g := &ids{}
	s := create(t, env.Store, g, "acme")
	var positions []uint64
	for i := range 20 {
		positions = append(positions, write(t, env.Store, g, s, fmt.Sprintf("f%d", i), fmt.Sprint(i)).Position)
	}
	gets := watchEventGets(t, env)
	reader := openOther(t, env)
	if !reader.DirectReads() {
		t.Fatal("a store on one server reads through the leader; want direct gets")
	}
	for range 3 {
		if _, err := reader.Head(ctx, "acme", s.ID); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := reader.EventAt(ctx, "acme", s.ID, positions[3]); err != nil {
		t.Fatal(err)
	}
	if got := gets.drain(); len(got.leader) != 0 || len(got.direct) == 0 {
		t.Fatalf("reads at the head on one server: %d direct, %d through the leader; want direct only", len(got.direct), len(got.leader))
	}

	js, err := jetstream.New(env.NC)
	if err != nil {
		t.Fatal(err)
	}
	mirror, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "EVENTS_MIRROR", Mirror: &jetstream.StreamSource{Name: names.EventStream},
		AllowDirect: true, MirrorDirect: true})
	if err != nil {
		t.Fatal(err)
	}
	last := env.LastSeq(t)
	streamstest.Wait(t, 10*time.Second, "the mirror caught up", func() bool {
		info, err := mirror.Info(ctx)
		return err == nil && info.State.LastSeq == last
	})
	later := openOther(t, env)
	if later.DirectReads() {
		t.Fatal("a store opened beside a mirror with mirror_direct reads with direct gets; want through the leader")
	}
	gets.drain()
	if _, err := later.Head(ctx, "acme", s.ID); err != nil {
		t.Fatal(err)
	}
	if got := gets.drain(); len(got.direct) != 0 || len(got.leader) == 0 {
		t.Fatalf("reads at the head beside a mirror: %d direct, %d through the leader; want through the leader only", len(got.direct), len(got.leader))
	}

	// The store opened before the mirror: the server hands each direct
	// get to the stream or the mirror at random, so within a few reads
	// the mirror answers one.
	for i := 0; reader.DirectReads(); i++ {
		if i == 200 {
			t.Fatal("200 reads and the store still reads with direct gets beside a mirror that answers them")
		}
		p := positions[i%len(positions)]
		ev, err := reader.EventAt(ctx, "acme", s.ID, p)
		if err != nil || ev.Position != p || ev.Event.Session != s.ID {
			t.Fatalf("event at %d: %d %s, %v", p, ev.Position, ev.Event.Session, err)
		}
	}
	gets.drain()
	if _, err := reader.EventAt(ctx, "acme", s.ID, positions[0]); err != nil {
		t.Fatal(err)
	}
	if got := gets.drain(); len(got.direct) != 0 || len(got.leader) != 1 {
		t.Fatalf("after the mirror answered: %d direct, %d through the leader; want one through the leader", len(got.direct), len(got.leader))
	}
}
