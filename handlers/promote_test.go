package handlers_test

import (
	"testing"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

// TestSource_PromotionChain: a session's tree becomes a revision, a new
// session starts from it, changes, and is promoted again; every session
// from a revision sees exactly that revision's tree.
func TestSource_PromotionChain(t *testing.T) {
	t.Parallel()
	e := startSources(t)
	if _, err := e.c.CreateSource(t.Context(), client.SourceCreateRequest{Name: "base", Blank: true}); err != nil {
		t.Fatal(err)
	}
	s1, err := e.c.CreateSession(t.Context(), client.CreateSessionRequest{Source: "base"})
	if err != nil || s1.Session.Origin.Revision != 1 {
		t.Fatalf("session from the blank revision: %+v, %v", s1, err)
	}
	e.batch(t, s1.Session.ID, wr("a.txt", "a1\n"), client.BatchOp{Op: domain.OpWrite, Path: "run.sh", Content: []byte("#!/bin/sh\n"), Mode: 0o755})
	p1, err := e.c.Promote(t.Context(), client.PromoteRequest{Name: "base", Session: s1.Session.ID, Mutation: client.Mutation{RequestID: "promote-1"}})
	if err != nil || p1.Revision != 2 {
		t.Fatalf("promote = %+v, %v; want revision 2", p1, err)
	}
	retry, err := e.c.Promote(t.Context(), client.PromoteRequest{Name: "base", Session: s1.Session.ID, Mutation: client.Mutation{RequestID: "promote-1"}})
	if err != nil || !retry.Replayed || retry.Revision != 2 || retry.Source.Latest != 2 {
		t.Fatalf("retried promote = %+v, %v; want revision 2 replayed", retry, err)
	}
	e.write(t, s1.Session.ID, "a.txt", "after promotion\n")

	s2, err := e.c.CreateSession(t.Context(), client.CreateSessionRequest{Source: "base"})
	if err != nil || s2.Session.Origin.Revision != 2 || s2.Session.Root != p1.Source.Revisions[1].Root {
		t.Fatalf("session from revision 2 = %+v, %v", s2.Session, err)
	}
	checkTree(t, e.tree(t, s2.Session.ID, ""), []srcFile{{"a.txt", "file", "a1\n", 0o644}, {"run.sh", "file", "#!/bin/sh\n", 0o755}})
	e.write(t, s2.Session.ID, "b.txt", "b\n")
	p2, err := e.c.Promote(t.Context(), client.PromoteRequest{Name: "base", Session: s2.Session.ID})
	if err != nil || p2.Revision != 3 {
		t.Fatalf("second promote = %+v, %v", p2, err)
	}
	s3, _ := e.c.CreateSession(t.Context(), client.CreateSessionRequest{Source: "base"})
	checkTree(t, e.tree(t, s3.Session.ID, ""), []srcFile{{"a.txt", "file", "a1\n", 0o644}, {"run.sh", "file", "#!/bin/sh\n", 0o755}, {"b.txt", "file", "b\n", 0o644}})
	// Promoting a past position: the tree as it was there.
	p3, err := e.c.Promote(t.Context(), client.PromoteRequest{Name: "base", Session: s1.Session.ID, At: client.AtPosition(p1.Source.Revisions[1].Origin.Position)})
	if err != nil || p3.Source.Revisions[3].Root != p1.Source.Revisions[1].Root {
		t.Fatalf("promote at a past position = %+v, %v", p3, err)
	}
	// Sessions of every revision still replay from scratch.
	e.restartFresh(t)
	checkTree(t, e.tree(t, s2.Session.ID, ""), []srcFile{{"a.txt", "file", "a1\n", 0o644}, {"run.sh", "file", "#!/bin/sh\n", 0o755}, {"b.txt", "file", "b\n", 0o644}})
	old, err := e.c.CreateSession(t.Context(), client.CreateSessionRequest{Source: "base", Revision: 1})
	if err != nil || old.Session.Root != (domain.Tree{}).Hash().String() {
		t.Fatalf("session from revision 1 = %+v, %v", old, err)
	}
	if _, err := e.c.CreateSession(t.Context(), client.CreateSessionRequest{Source: "base", Revision: 9}); client.ErrorCode(err) != domain.CodeNotFound {
		t.Fatalf("unknown revision: %v, want not_found", err)
	}
}

// TestSource_PromoteApproval: with a promote policy, the approval must be
// for exactly the promoted tree.
func TestSource_PromoteApproval(t *testing.T) {
	t.Parallel()
	e := startSources(t)
	e.createSource(t, "gated")
	s, err := e.c.CreateSession(t.Context(), client.CreateSessionRequest{Policy: domain.Policy{domain.ActionPromote: 1}})
	if err != nil {
		t.Fatal(err)
	}
	id := s.Session.ID
	e.write(t, id, "f", "reviewed\n")
	if _, err := e.c.Promote(t.Context(), client.PromoteRequest{Name: "gated", Session: id}); client.ErrorCode(err) != domain.CodeApprovalRequired {
		t.Fatalf("promote without approval: %v, want approval_required", err)
	}
	req, err := e.c.RequestApproval(t.Context(), client.ApprovalRequestRequest{Session: id, Reason: domain.ActionPromote})
	if err != nil {
		t.Fatal(err)
	}
	reviewer := client.NewClient(e.env.NC, "acme")
	reviewer.Actor = "reviewer"
	g, err := reviewer.Grant(t.Context(), client.DecideRequest{Session: id, Request: req.Request.ID})
	if err != nil {
		t.Fatal(err)
	}
	granted := g.Position
	// The content moves on after the grant.
	e.write(t, id, "f", "changed after review\n")
	if _, err := e.c.Promote(t.Context(), client.PromoteRequest{Name: "gated", Session: id}); client.ErrorCode(err) != domain.CodeApprovalStale {
		t.Fatalf("promote of new content: %v, want approval_stale", err)
	}
	// The reviewed content, named by the position of the grant, passes.
	r, err := e.c.Promote(t.Context(), client.PromoteRequest{Name: "gated", Session: id, At: client.AtPosition(granted)})
	if err != nil || r.Revision != 1 || len(r.Source.Revisions[0].Uses) != 1 {
		t.Fatalf("promote of the reviewed position = %+v, %v", r, err)
	}
	if gate := r.Source.Revisions[0].Gate; gate[domain.ActionPromote] < 1 {
		t.Fatalf("revision gate = %v, want the promote requirement recorded", gate)
	}
	s2, _ := e.c.CreateSession(t.Context(), client.CreateSessionRequest{Source: "gated"})
	if got := e.tree(t, s2.Session.ID, "")["f"].body; got != "reviewed\n" {
		t.Fatalf("promoted content = %q, want the reviewed one", got)
	}
}
