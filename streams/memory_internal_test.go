package streams

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/strand-dev/strand/domain"
)

// TestStore_StateMemory: the caches give back a quarter of their entries
// per trim down to their minimums, a state dropped is loaded again with
// the same answer, and a store whose budget the live heap exceeds trims
// by itself.
func TestStore_StateMemory(t *testing.T) {
	env := startEnv(t)
	ctx := context.Background()
	st := env.open(t)
	n := 0
	meta := func() domain.Meta {
		n++
		return domain.Meta{EventID: fmt.Sprintf("01J%023d", n), Actor: "t", Time: time.Unix(1700000000, 0).UTC()}
	}
	const sessions = 120
	var ids []string
	for i := range sessions {
		res, err := st.Create(ctx, meta(), domain.CreateSession{ID: fmt.Sprintf("01J1%022d", i), Tenant: "acme"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.Session.ID)
		for _, p := range []string{"a", "b"} {
			if _, err := st.Change(ctx, "acme", res.Session.ID, meta(), func(*domain.Session) (domain.Command, error) {
				return domain.ChangeFiles{Ops: []domain.FileOp{{Kind: domain.OpWrite, Path: p, Content: domain.Sum([]byte(p)), Size: 1}}}, nil
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	before := st.CacheStats()
	if before.Heads != sessions || before.Past != 3*sessions {
		t.Fatalf("before a trim: %+v, want %d heads and %d past states", before, sessions, 3*sessions)
	}
	st.trimCaches()
	got := st.CacheStats()
	if want := sessions - sessions/4; got.Heads != want {
		t.Errorf("heads after one trim: %d, want %d", got.Heads, want)
	}
	if want := 3*sessions - 3*sessions/4; got.Past != want {
		t.Errorf("past states after one trim: %d, want %d", got.Past, want)
	}
	for range 20 {
		st.trimCaches()
	}
	if got := st.CacheStats(); got.Heads != minHeads || got.Past != 0 || got.Trims != 21 {
		t.Errorf("after 21 trims: %+v, want %d heads, no past states, 21 trims", got, minHeads)
	}
	for _, id := range ids {
		s, err := st.Head(ctx, "acme", id)
		if err != nil || s.Version != 3 || s.Tree.Lookup("b") == nil {
			t.Fatalf("head of %s after the trims: %v, %v; want version 3 with a and b", id, s, err)
		}
	}

	// A budget the heap is over: the store trims by itself.
	env2 := startEnv(t)
	nc, err := env2.srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	tiny, err := Open(ctx, nc, Config{StateMemory: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tiny.Close)
	deadline := time.Now().Add(30 * time.Second)
	for tiny.CacheStats().Trims == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("a store with a budget of 1 byte did not trim its caches in 30 s: %+v", tiny.CacheStats())
		}
		runtime.GC()
		time.Sleep(50 * time.Millisecond)
	}
}

// TestStore_StateIdle: a cached state left unused for Config.StateIdle is
// dropped (heads, past states, frames alike) while one in use stays, a
// dropped state loads again with the same answer, and a negative
// StateIdle keeps everything.
func TestStore_StateIdle(t *testing.T) {
	env := startEnv(t)
	ctx := context.Background()
	open := func(idle time.Duration) *Store {
		nc, err := env.srv.Connect()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		st, err := Open(ctx, nc, Config{StateIdle: idle}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(st.Close)
		return st
	}
	const idle = 2 * time.Second
	st := open(idle)
	n := 0
	meta := func() domain.Meta {
		n++
		return domain.Meta{EventID: fmt.Sprintf("01J%023d", n), Actor: "t", Time: time.Unix(1700000000, 0).UTC()}
	}
	var ids []string
	for i := range 4 {
		res, err := st.Create(ctx, meta(), domain.CreateSession{ID: fmt.Sprintf("01J2%022d", i), Tenant: "acme"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.Session.ID)
		for v := range frameEvery {
			p := fmt.Sprintf("f%d", v)
			if _, err := st.Change(ctx, "acme", res.Session.ID, meta(), func(*domain.Session) (domain.Command, error) {
				return domain.ChangeFiles{Ops: []domain.FileOp{{Kind: domain.OpWrite, Path: p, Content: domain.Sum([]byte(p)), Size: 1}}}, nil
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	busy, busyKey := ids[0], sessionKey("acme", ids[0])
	if got := st.CacheStats(); got.Heads != len(ids) || got.Past == 0 || got.Frames != len(ids) {
		t.Fatalf("before: %+v, want %d heads, past states and every session's frames", got, len(ids))
	}
	// Keep one session in use; the others sit idle.
	deadline := time.Now().Add(30 * time.Second)
	for st.CacheStats().Heads > 1 {
		if time.Now().After(deadline) {
			t.Fatalf("idle states not dropped within 30 s (idle time %s): %+v", idle, st.CacheStats())
		}
		if _, err := st.Head(ctx, "acme", busy); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	got := st.CacheStats()
	if _, ok := st.heads.Peek(busyKey); !ok || got.Heads != 1 {
		t.Errorf("after the idle time: %+v; the head in use cached: %v, want it alone", got, ok)
	}
	if got.Frames > 1 || got.Expired == 0 {
		t.Errorf("after the idle time: %+v, want only the busy session's frames and expired entries counted", got)
	}
	if _, ok := st.frames.Peek(sessionKey("acme", ids[1])); ok {
		t.Errorf("frames of an idle session still cached")
	}
	for _, id := range ids {
		s, err := st.Head(ctx, "acme", id)
		if err != nil || s.Version != frameEvery+1 || s.Tree.Lookup(fmt.Sprintf("f%d", frameEvery-1)) == nil {
			t.Fatalf("head of %s after its state expired: %v, %v", id, s, err)
		}
	}

	// Off: nothing is dropped for idleness.
	keep := open(-1)
	if _, err := keep.Head(ctx, "acme", ids[1]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(idle + 2*memoryEvery)
	if got := keep.CacheStats(); got.Heads != 1 || got.Expired != 0 {
		t.Errorf("with StateIdle off: %+v, want the head kept", got)
	}
}
