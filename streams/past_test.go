package streams_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/streams"
	"github.com/strand-dev/strand/streams/streamstest"
)

// pastHistory appends n events to session id of st: writes, removes,
// renames, directories, checkpoints and, every 23rd event, a restore to a
// position 10 events back. It returns the positions of the events.
func pastHistory(t *testing.T, st *streams.Store, g *ids, id string, n int, rng *rand.Rand) []uint64 {
	t.Helper()
	ctx := context.Background()
	var positions []uint64
	for i := 0; i < n; i++ {
		res, err := st.Change(ctx, "acme", id, meta(g, "test"), func(s *domain.Session) (domain.Command, error) {
			if i%23 == 22 && len(positions) > 10 {
				return domain.RestoreSession{To: positions[len(positions)-10]}, nil
			}
			if i%19 == 18 {
				return domain.CreateCheckpoint{Name: fmt.Sprintf("cp%d", s.Version)}, nil
			}
			p := fmt.Sprintf("d%d/f%d", rng.IntN(3), rng.IntN(6))
			exists := s.Tree.Lookup(p) != nil
			switch k := rng.IntN(6); {
			case k == 0 && exists:
				return domain.ChangeFiles{Ops: []domain.FileOp{{Kind: domain.OpRemove, Path: p}}}, nil
			case k == 1 && exists:
				to := fmt.Sprintf("r%d/g%d", rng.IntN(2), i)
				return domain.ChangeFiles{Ops: []domain.FileOp{{Kind: domain.OpRename, Path: p, To: to}}}, nil
			case k == 2 && s.Tree.Lookup("r0") != nil:
				return domain.ChangeFiles{Ops: []domain.FileOp{{Kind: domain.OpRemove, Path: "r0", Recursive: true}}}, nil
			default:
				c := fmt.Sprint("content ", i)
				return domain.ChangeFiles{Ops: []domain.FileOp{{Kind: domain.OpWrite, Path: p, Content: domain.Sum([]byte(c)), Size: int64(len(c))}}}, nil
			}
		})
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		positions = append(positions, res.Position)
	}
	return positions
}

// foldHistory folds a session's stored events one after the other into a
// map from position to state: the reference every read at a position must
// equal. parent holds the states of the session a fork starts from.
func foldHistory(t *testing.T, st *streams.Store, id string, parent map[uint64]*domain.Session) map[uint64]*domain.Session {
	t.Helper()
	events, err := st.Events(context.Background(), "acme", id, 1, 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	ref := map[uint64]*domain.Session{}
	past := func(p uint64) (*domain.Session, error) {
		if s, ok := ref[p]; ok {
			return s, nil
		}
		return nil, fmt.Errorf("no state at %d", p)
	}
	var s *domain.Session
	for _, se := range events {
		prev := s
		if se.Event.Type == domain.SessionForked {
			prev = parent[se.Event.Created.Origin.Position]
		}
		n, err := domain.Fold(prev, se.Event, se.Position, se.Hash, past)
		if err != nil {
			t.Fatalf("fold %s at %d: %v", se.Event.Type, se.Position, err)
		}
		ref[se.Position], s = n, n
	}
	return ref
}

// TestStore_AtEveryPosition reads a session and a fork of it (each with
// writes, removes, renames, restores, checkpoints; the parent also merges
// the fork) at every position of their histories, in random order, through
// stores in different states: one that wrote them, a cold one that finds
// snapshots, and one that finds no snapshot and so starts every replay
// from its frames or from the first event. Every state read must equal the
// fold of the history up to its position: the same tree, version and last
// event.
func TestStore_AtEveryPosition(t *testing.T) {
	env := streamstest.Start(t)
	ctx := context.Background()
	cfg := streams.Config{SnapshotEvery: 10}
	w, err := streams.Open(ctx, env.NC, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	g := &ids{}
	rng := rand.New(rand.NewPCG(17, 6))
	s := create(t, w, g, "acme")
	pos := pastHistory(t, w, g, s.ID, 90, rng)
	at, err := w.At(ctx, "acme", s.ID, pos[44])
	if err != nil {
		t.Fatal(err)
	}
	f, err := w.Fork(ctx, "acme", s.ID, pos[44], meta(g, "test"), domain.ForkSession{ID: g.next(), Owner: "test", Parent: at})
	if err != nil {
		t.Fatal(err)
	}
	pastHistory(t, w, g, f.Session.ID, 60, rng)
	fork, err := w.Head(ctx, "acme", f.Session.ID)
	if err != nil {
		t.Fatal(err)
	}
	mc := "merged"
	if _, err := w.Change(ctx, "acme", s.ID, meta(g, "test"), func(*domain.Session) (domain.Command, error) {
		h := domain.Sum([]byte(mc))
		return domain.MergeSession{
			Data: domain.MergeData{From: fork.ID, FromPosition: fork.Position, BaseSession: s.ID, BasePosition: pos[44]},
			Ops:  []domain.Op{{Kind: domain.OpWrite, Path: "merged.txt", Content: h[:], Size: int64(len(mc)), Mode: 0o644}},
		}, nil
	}); err != nil {
		t.Fatal(err)
	}
	pastHistory(t, w, g, s.ID, 40, rng)

	parent := foldHistory(t, w, s.ID, nil)
	child := foldHistory(t, w, fork.ID, parent)
	seen := map[domain.EventType]int{}
	for _, ref := range []map[uint64]*domain.Session{parent, child} {
		for p := range ref {
			se, err := w.EventAt(ctx, "acme", ref[p].ID, p)
			if err != nil {
				t.Fatal(err)
			}
			seen[se.Event.Type]++
		}
	}
	for _, typ := range []domain.EventType{domain.FileWritten, domain.PathRemoved, domain.PathRenamed, domain.SessionRestored, domain.CheckpointCreated, domain.SessionForked, domain.SessionMerged} {
		if seen[typ] == 0 {
			t.Fatalf("the history has no %s event: %v", typ, seen)
		}
	}
	cold, err := streams.Open(ctx, env.NC, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cold.Close()
	noSnaps, err := streams.Open(ctx, env.NC, streams.Config{SnapshotEvery: 1 << 40}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer noSnaps.Close()
	for _, reader := range []struct {
		name string
		st   *streams.Store
	}{{"writer", w}, {"cold", cold}, {"no snapshots", noSnaps}} {
		t.Run(reader.name, func(t *testing.T) {
			for _, h := range []struct {
				id  string
				ref map[uint64]*domain.Session
			}{{fork.ID, child}, {s.ID, parent}} {
				positions := make([]uint64, 0, len(h.ref))
				for p := range h.ref {
					positions = append(positions, p)
				}
				rng.Shuffle(len(positions), func(i, j int) { positions[i], positions[j] = positions[j], positions[i] })
				for _, p := range positions {
					got, err := reader.st.At(ctx, "acme", h.id, p)
					if err != nil {
						t.Fatalf("%s at %d: %v", h.id, p, err)
					}
					want := h.ref[p]
					if got.Position != p || got.Version != want.Version || got.LastHash != want.LastHash || got.Tree.Hash() != want.Tree.Hash() {
						t.Fatalf("%s at %d: version %d, last %s, root %s; the fold gives version %d, last %s, root %s",
							h.id, p, got.Version, got.LastHash, got.Tree.Hash(), want.Version, want.LastHash, want.Tree.Hash())
					}
				}
			}
		})
	}
}

// TestStore_AtStartsFromFrames checks that once a stretch of a session's
// past has been replayed, a read at a position inside it starts from the
// nearest frame kept on the way and reads the few events after it with one
// batched direct get: no consumer, no snapshot.
func TestStore_AtStartsFromFrames(t *testing.T) {
	env := streamstest.Start(t)
	ctx := context.Background()
	g := &ids{}
	s := create(t, env.Store, g, "acme")
	var pos []uint64
	for i := 0; i < 120; i++ {
		pos = append(pos, write(t, env.Store, g, s, fmt.Sprintf("f%d", i%7), fmt.Sprint(i)).Position)
	}
	reader, err := streams.Open(ctx, env.NC, streams.Config{SnapshotEvery: 1 << 40}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	creates, err := env.NC.SubscribeSync("$JS.API.CONSUMER.CREATE.>")
	if err != nil {
		t.Fatal(err)
	}
	gets := watchEventGets(t, env)
	// Consumers created, and batched direct gets of the event stream (a
	// read at a position also reads the event there to check it belongs
	// to the session: a single get, not counted).
	batches := 0
	count := func() (int, int) {
		batches += len(gets.drain().batched)
		c, _, _ := creates.Pending()
		return c, batches
	}
	if _, err := reader.At(ctx, "acme", s.ID, pos[110]); err != nil {
		t.Fatal(err)
	}
	c0, d0 := count()
	if c0 == 0 {
		t.Fatal("the first read created no consumer; want a replay from the first event")
	}
	for _, i := range []int{50, 95, 17, 70} {
		got, err := reader.At(ctx, "acme", s.ID, pos[i])
		if err != nil {
			t.Fatal(err)
		}
		want, err := env.Store.At(ctx, "acme", s.ID, pos[i])
		if err != nil {
			t.Fatal(err)
		}
		if got.Tree.Hash() != want.Tree.Hash() || got.Version != want.Version {
			t.Fatalf("at %d: version %d root %s; want %d %s", pos[i], got.Version, got.Tree.Hash(), want.Version, want.Tree.Hash())
		}
	}
	c1, d1 := count()
	if c1 != c0 || d1-d0 != 4 {
		t.Fatalf("4 reads inside the replayed stretch: %d consumers, %d direct gets; want 0, 4", c1-c0, d1-d0)
	}
}

// TestStore_AtLargeReplay checks that a replay whose events exceed what one
// direct get returns (directMaxBytes) reads the rest through a consumer and
// ends in the writer's state.
func TestStore_AtLargeReplay(t *testing.T) {
	env := streamstest.Start(t)
	ctx := context.Background()
	g := &ids{}
	s := create(t, env.Store, g, "acme")
	var res streams.Result
	var pos []uint64
	for i := 0; i < 60; i++ {
		var err error
		res, err = env.Store.Change(ctx, "acme", s.ID, meta(g, "test"), func(*domain.Session) (domain.Command, error) {
			var ops []domain.FileOp
			for f := 0; f < domain.MaxInlineEventBytes/domain.MaxInlineBytes; f++ {
				data := make([]byte, domain.MaxInlineBytes)
				copy(data, fmt.Sprint(i, "/", f))
				ops = append(ops, domain.FileOp{Kind: domain.OpWrite, Path: fmt.Sprintf("f%d", f), Content: domain.Sum(data), Size: int64(len(data)), Data: data})
			}
			return domain.ChangeFiles{Ops: ops, Batch: true}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		pos = append(pos, res.Position)
	}
	reader, err := streams.Open(ctx, env.NC, streams.Config{SnapshotEvery: 1 << 40}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	if _, err := reader.At(ctx, "acme", s.ID, pos[14]); err != nil { // version 16: a frame
		t.Fatal(err)
	}
	got, err := reader.At(ctx, "acme", s.ID, pos[58]) // 44 events of ~256 KiB after it
	if err != nil {
		t.Fatal(err)
	}
	want, err := env.Store.At(ctx, "acme", s.ID, pos[58])
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != want.Version || got.Tree.Hash() != want.Tree.Hash() {
		t.Fatalf("read version %d root %s; want %d %s", got.Version, got.Tree.Hash(), want.Version, want.Tree.Hash())
	}
}
