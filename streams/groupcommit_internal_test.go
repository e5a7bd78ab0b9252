package streams

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
)

// TestCommitter_ConcurrentSessions drives two stores (two instances) that
// write to the same sessions at once: appends of different sessions are
// batched, and batches that hold a stale expectation fall back to one
// publish per message. Every acknowledged write must be stored exactly once.
func TestCommitter_ConcurrentSessions(t *testing.T) {
	env := startEnv(t)
	ctx := context.Background()
	a, b := env.open(t), env.open(t)
	var n atomic.Uint64
	id := func() string { return fmt.Sprintf("01J%023d", n.Add(1)) }
	meta := func() domain.Meta {
		return domain.Meta{EventID: id(), Actor: "t", Time: time.Unix(1700000000, 0).UTC()}
	}
	const sessions, writers, writes = 12, 24, 15
	var ids []string
	for i := 0; i < sessions; i++ {
		res, err := a.Create(ctx, meta(), domain.CreateSession{ID: id(), Tenant: "acme"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.Session.ID)
	}
	var acked sync.Map // session -> *atomic.Int64
	for _, s := range ids {
		acked.Store(s, new(atomic.Int64))
	}
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			st := a
			if w%2 == 1 {
				st = b
			}
			for i := 0; i < writes; i++ {
				s := ids[(w+i)%sessions]
				_, err := st.Change(ctx, "acme", s, meta(), func(*domain.Session) (domain.Command, error) {
					return domain.ChangeFiles{Ops: []domain.FileOp{{Kind: domain.OpWrite, Path: fmt.Sprintf("w%d-%d", w, i), Content: domain.Sum(nil)}}}, nil
				})
				switch domain.ErrorCode(err) {
				case "":
					c, _ := acked.Load(s)
					c.(*atomic.Int64).Add(1)
				case domain.CodeConflict:
				default:
					t.Errorf("write: %v", err)
				}
			}
		}(w)
	}
	wg.Wait()
	fresh := env.open(t)
	for _, s := range ids {
		head, err := fresh.Head(ctx, "acme", s)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := acked.Load(s)
		want := c.(*atomic.Int64).Load()
		if int64(head.Tree.Count()) != want || head.Version != uint64(want)+1 {
			t.Fatalf("session %s: %d files at version %d, want %d acknowledged writes", s, head.Tree.Count(), head.Version, want)
		}
	}
	t.Logf("refused batches: %d", a.commit.refused.Load()+b.commit.refused.Load())
	batched := a.commit.batched.Load() + b.commit.batched.Load()
	if batched == 0 {
		t.Fatalf("no append was group-committed")
	}
	// What the stores report: every event stored once, by the store that
	// stored it, the batched ones among them.
	var total int64
	acked.Range(func(_, c any) bool { total += c.(*atomic.Int64).Load(); return true })
	sa, sb := a.AppendStats(), b.AppendStats()
	if got, want := sa.Appended+sb.Appended, uint64(sessions)+uint64(total); got != want {
		t.Errorf("appends reported: %d + %d = %d, want %d (%d creates and %d acknowledged writes)", sa.Appended, sb.Appended, got, want, sessions, total)
	}
	for _, s := range []AppendStats{sa, sb} {
		if s.Batched > s.Appended || (s.Batches == 0) != (s.Batched == 0) || s.Batched < 2*s.Batches {
			t.Errorf("append stats %+v: want batches of two or more, holding at most the appends", s)
		}
	}
	if sa.Batched+sb.Batched != batched {
		t.Errorf("batched appends reported: %d, the committers counted %d", sa.Batched+sb.Batched, batched)
	}
	t.Logf("messages stored in batches: %d; batches refused and retried one by one: %d", batched, a.commit.refused.Load()+b.commit.refused.Load())
}

type testEnv struct {
	srv *Embedded
}

func startEnv(t *testing.T) *testEnv {
	t.Helper()
	srv, err := StartEmbedded(EmbeddedOptions{DataDir: t.TempDir(), Listen: "127.0.0.1:-1", SyncAlways: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	return &testEnv{srv: srv}
}

// open returns a store on its own connection, as another instance would be.
func (e *testEnv) open(t *testing.T) *Store {
	t.Helper()
	nc, err := e.srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := Open(ctx, nc, Config{ForceGroupCommit: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return st
}

// TestCommitter_MinGroup checks GroupCommitMin: a group smaller than it is
// published one message each, a group of at least it as one atomic batch,
// and every append of both gets its own sequence.
func TestCommitter_MinGroup(t *testing.T) {
	env := startEnv(t)
	st := env.open(t)
	c := newCommitter(st.js, 4)
	defer c.close()
	seen := map[uint64]bool{}
	group := func(n int) {
		batch := make([]*appendReq, n)
		for i := range batch {
			m := nats.NewMsg(names.EventSubject("acme", fmt.Sprintf("01J%023d", len(seen)+i)))
			m.Data = []byte("event")
			batch[i] = &appendReq{ctx: context.Background(), msg: m, out: make(chan appendOut, 1)}
		}
		c.flush(batch)
		for _, r := range batch {
			o := <-r.out
			if o.err != nil || o.res.Sequence == 0 || seen[o.res.Sequence] {
				t.Fatalf("group of %d: append answered %+v, %v (sequences so far %v)", n, o.res, o.err, seen)
			}
			seen[o.res.Sequence] = true
		}
	}
	group(3)
	if got := c.batched.Load(); got != 0 {
		t.Fatalf("a group of 3 under a minimum of 4: %d messages batched, want 0", got)
	}
	group(5)
	if got, n := c.batched.Load(), c.batches.Load(); got != 5 || n != 1 {
		t.Fatalf("a group of 5 over a minimum of 4: %d messages batched in %d batches, want 5 in 1", got, n)
	}
}
