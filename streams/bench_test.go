package streams_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/streams"
	"github.com/strand-dev/strand/streams/streamstest"
)

// longSession appends n events (writes over a 1,000-file working set) to a
// new session and returns it with its head position.
func longSession(b *testing.B, env *streamstest.Env, g *ids, n int) *domain.Session {
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
