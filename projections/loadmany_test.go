package projections

import (
	"context"
	"testing"

	"github.com/strand-dev/strand/streams/streamstest"
)

// TestSessions_GetMany: the batched read of views gives what reading each
// view alone gives: the view and its revision, nothing for a key without
// one, nothing for a deleted one.
func TestSessions_GetMany(t *testing.T) {
	env := streamstest.Start(t)
	ctx := context.Background()
	w := newWorkload(t, env, "acme", 3)
	for len(w.ids) < minManyViews+4 {
		w.step(ctx)
	}
	p := startViews(t, env)
	waitCaughtUp(t, p)

	deleted := "acme." + w.ids[0]
	if err := p.kv.Delete(ctx, deleted); err != nil {
		t.Fatal(err)
	}
	var chunk []*batchView
	for _, id := range w.ids {
		chunk = append(chunk, &batchView{key: "acme." + id})
	}
	chunk = append(chunk, &batchView{key: "acme.NOSUCHSESSION"}, &batchView{key: "other." + w.ids[1]})
	if err := p.getMany(ctx, "$KV."+p.kv.Bucket()+".", chunk); err != nil {
		t.Fatalf("getMany: %v", err)
	}
	found := 0
	for _, bv := range chunk {
		want, rev, err := p.load(ctx, bv.key, false)
		if err != nil {
			t.Fatal(err)
		}
		if bv.rev != rev || bv.v.Version != want.Version || bv.v.ID != want.ID || bv.v.Position != want.Position {
			t.Errorf("%s: batched read gave version %d position %d rev %d, one read gives version %d position %d rev %d",
				bv.key, bv.v.Version, bv.v.Position, bv.rev, want.Version, want.Position, rev)
		}
		if rev != 0 {
			found++
		}
	}
	if want := len(w.ids) - 1; found != want {
		t.Errorf("views found: %d, want %d (every session but the deleted one)", found, want)
	}
}
