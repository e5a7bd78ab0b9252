package streams

import (
	"context"
	"testing"
	"time"

	"github.com/strand-dev/strand/domain"
)

// TestChange_RefusalOnStaleCache: an instance whose cached head of a
// session is behind (another instance appended since, and this one never
// lost a race, so it does not follow the live tail) must not refuse a
// command that the current head allows: before it refuses, it decides
// again on the leader's head. Here the other instance wrote the path that
// the command removes; the stale head would say not_found.
func TestChange_RefusalOnStaleCache(t *testing.T) {
	env := startEnv(t)
	ctx := context.Background()
	a, b := env.open(t), env.open(t)
	meta := func(id string) domain.Meta {
		return domain.Meta{EventID: id, Actor: "t", Time: time.Unix(1700000000, 0).UTC()}
	}
	res, err := a.Create(ctx, meta("01J00000000000000000000001"), domain.CreateSession{ID: "01J0000000000000000000000S", Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	id := res.Session.ID
	if _, err := b.Change(ctx, "acme", id, meta("01J00000000000000000000002"), func(*domain.Session) (domain.Command, error) {
		return domain.ChangeFiles{Ops: []domain.FileOp{{Kind: domain.OpWrite, Path: "x", Content: domain.Sum(nil)}}}, nil
	}); err != nil {
		t.Fatal(err)
	}
	got, err := a.Change(ctx, "acme", id, meta("01J00000000000000000000003"), func(*domain.Session) (domain.Command, error) {
		return domain.ChangeFiles{Ops: []domain.FileOp{{Kind: domain.OpRemove, Path: "x"}}}, nil
	})
	if err != nil {
		t.Fatalf("remove x on the instance with a stale cache: %v, want it decided on the current head", err)
	}
	if got.Session.Version != 3 || got.Session.Tree.Lookup("x") != nil {
		t.Fatalf("after the remove: version %d, x %v; want version 3 without x", got.Session.Version, got.Session.Tree.Lookup("x"))
	}
	// A refusal the current head confirms is still a refusal.
	if _, err := a.Change(ctx, "acme", id, meta("01J00000000000000000000004"), func(*domain.Session) (domain.Command, error) {
		return domain.ChangeFiles{Ops: []domain.FileOp{{Kind: domain.OpRemove, Path: "x"}}}, nil
	}); domain.ErrorCode(err) != domain.CodeNotFound {
		t.Fatalf("remove x again: %v, want not_found", err)
	}
}
