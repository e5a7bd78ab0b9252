package streams_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/streams"
	"github.com/strand-dev/strand/streams/streamstest"
)

// longSession appends n events (writes over a 1,000-file working set) to a
// new session and returns it with its head position.
func longSession(b testing.TB, env *streamstest.Env, g *ids, n int) *domain.Session {
	b.Helper()
	s := create(b, env.Store, g, "bench")
	ctx := context.Background()
	var res streams.Result
	var err error
	for i := 1; i < n; i++ {
		p := fmt.Sprintf("dir%02d/file%03d.txt", i%20, i%50)
		res, err = env.Store.Change(ctx, "bench", s.ID, meta(g, "bench"), func(*domain.Session) (domain.Command, error) {
			return domain.ChangeFiles{Ops: []domain.FileOp{{Kind: domain.OpWrite, Path: p, Content: domain.Sum([]byte(p + fmt.Sprint(i))), Size: int64(i)}}}, nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return res.Session
}

// BenchmarkStore_LoadCold measures loading the head of a session with
// 100,000 events into a store that has nothing cached: with snapshots (the
// newest snapshot plus at most SnapshotEvery events) and without (a replay
// of the whole history).
func BenchmarkStore_LoadCold(b *testing.B) {
	for _, tc := range []struct {
		name  string
		every uint64
	}{{"snapshots", 500}, {"no_snapshots", 1 << 62}} {
		b.Run(tc.name, func(b *testing.B) {
			env := streamstest.Start(b, streamstest.Options{Config: streams.Config{SnapshotEvery: tc.every}})
			g := &ids{}
			s := longSession(b, env, g, 100_000)
			env.Store.Close() // wait for the snapshot writer
			ctx := context.Background()
			b.ResetTimer()
			for b.Loop() {
				b.StopTimer()
				cold, err := streams.Open(ctx, env.NC, streams.Config{SnapshotEvery: tc.every}, nil)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				got, err := cold.Head(ctx, "bench", s.ID)
				if err != nil || got.Tree.Hash() != s.Tree.Hash() {
					b.Fatalf("load: %v", err)
				}
				b.StopTimer()
				cold.Close()
				b.StartTimer()
			}
		})
	}
}

// BenchmarkStore_Fork measures forking at the head of a parent with 1,000
// and with 100,000 events. Forking names the parent's position and copies
// nothing, so the two should cost the same.
func BenchmarkStore_Fork(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("parent_events=%d", n), func(b *testing.B) {
			env := streamstest.Start(b)
			g := &ids{}
			parent := longSession(b, env, g, n)
			ctx := context.Background()
			b.ResetTimer()
			for b.Loop() {
				if _, err := env.Store.Fork(ctx, "bench", parent.ID, 0, meta(g, "bench"), domain.ForkSession{ID: g.next()}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkStore_LoadForkOfFork measures a cold load of a fork of a fork of
// a session with 100,000 events: the chain is followed through the parents'
// snapshots, not replayed from their beginnings.
func BenchmarkStore_LoadForkOfFork(b *testing.B) {
	env := streamstest.Start(b)
	g := &ids{}
	ctx := context.Background()
	parent := longSession(b, env, g, 100_000)
	f1, err := env.Store.Fork(ctx, "bench", parent.ID, 0, meta(g, "bench"), domain.ForkSession{ID: g.next()})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		write(b, env.Store, g, f1.Session, fmt.Sprintf("f1/%d", i), "x")
	}
	f2, err := env.Store.Fork(ctx, "bench", f1.Session.ID, 0, meta(g, "bench"), domain.ForkSession{ID: g.next()})
	if err != nil {
		b.Fatal(err)
	}
	want := write(b, env.Store, g, f2.Session, "f2/x", "y").Session.Tree.Hash()
	env.Store.Close()
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		cold, err := streams.Open(ctx, env.NC, streams.Config{}, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		got, err := cold.Head(ctx, "bench", f2.Session.ID)
		if err != nil || got.Tree.Hash() != want {
			b.Fatalf("load: %v", err)
		}
		b.StopTimer()
		cold.Close()
		b.StartTimer()
	}
}

// BenchmarkStore_Restore measures restoring a session with 10,000 events to
// a position 5,000 events back, then forward again (so every iteration
// restores the same distance).
func BenchmarkStore_Restore(b *testing.B) {
	env := streamstest.Start(b)
	g := &ids{}
	ctx := context.Background()
	s := longSession(b, env, g, 5_000)
	mid := s.Position
	s = longSessionMore(b, env, g, s, 5_000)
	i := 0
	for b.Loop() {
		i++
		to := mid
		if i%2 == 0 {
			to = s.Position
		}
		if _, err := env.Store.Change(ctx, "bench", s.ID, meta(g, "bench"), func(*domain.Session) (domain.Command, error) {
			return domain.RestoreSession{To: to}, nil
		}); err != nil {
			b.Fatal(err)
		}
	}
}

func longSessionMore(b *testing.B, env *streamstest.Env, g *ids, s *domain.Session, n int) *domain.Session {
	b.Helper()
	var res streams.Result
	for i := 0; i < n; i++ {
		res = write(b, env.Store, g, s, fmt.Sprintf("more/%d", i%100), fmt.Sprint(i))
	}
	return res.Session
}

// BenchmarkStore_ChangeRequestID measures one write with and without a
// request id: with one, the write first asks the request index whether the
// id was applied (docs/api.md 1.8).
func BenchmarkStore_ChangeRequestID(b *testing.B) {
	env := streamstest.Start(b)
	g := &ids{}
	s := create(b, env.Store, g, "bench")
	ctx := context.Background()
	for _, withID := range []bool{false, true} {
		b.Run(fmt.Sprintf("request_id=%v", withID), func(b *testing.B) {
			n := 0
			for b.Loop() {
				n++
				m := meta(g, "bench")
				if withID {
					m.RequestID = fmt.Sprintf("r%d", n)
				}
				p := fmt.Sprintf("f%d", n%100)
				if _, err := env.Store.Change(ctx, "bench", s.ID, m, func(*domain.Session) (domain.Command, error) {
					return domain.ChangeFiles{Ops: []domain.FileOp{{Kind: domain.OpWrite, Path: p, Content: domain.Sum([]byte(p)), Size: 1}}}, nil
				}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkStore_HeadCached measures a read at the head of a cached
// session (Store.Head: one request that finds no event after the cached
// head) on one server, with a direct get and through the stream leader's
// API (as on a replicated stream), next to a core NATS request to an
// echoing subscriber on the same connection: the floor of one request.
// Design record 0021.
func BenchmarkStore_HeadCached(b *testing.B) {
	env := streamstest.Start(b)
	ctx := context.Background()
	g := &ids{}
	s := longSession(b, env, g, 10)
	sub, err := env.NC.Subscribe("bench.echo", func(m *nats.Msg) { _ = m.Respond(nil) })
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Unsubscribe() //nolint:errcheck // the test's own subject
	b.Run("echo", func(b *testing.B) {
		for b.Loop() {
			if _, err := env.NC.Request("bench.echo", nil, time.Second); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, direct := range []bool{true, false} {
		b.Run(fmt.Sprintf("direct=%v", direct), func(b *testing.B) {
			st := openOther(b, env)
			if !direct {
				streams.LeaderReads(st)
			}
			if _, err := st.Head(ctx, "bench", s.ID); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				h, err := st.Head(ctx, "bench", s.ID)
				if err != nil || h.Position != s.Position {
					b.Fatalf("head %v, %v; want at %d", h, err, s.Position)
				}
			}
		})
	}
}
