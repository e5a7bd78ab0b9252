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
