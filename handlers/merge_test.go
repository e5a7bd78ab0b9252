package handlers_test

import (
	"testing"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

// mergeFixture is a parent session and a fork of it, each changed so that
// a merge of the fork into the parent meets every kind of conflict, a line
// merge and changes on one side only.
type mergeFixture struct {
	parent, fork string
}

func (e *srcEnv) batch(t *testing.T, id string, ops ...client.BatchOp) uint64 {
	t.Helper()
	r, err := e.c.Batch(t.Context(), client.BatchRequest{Session: id, Ops: ops})
	if err != nil {
		t.Fatalf("batch: %v", err)
	}
	return r.Position
}

func wr(path, content string) client.BatchOp {
	return client.BatchOp{Op: domain.OpWrite, Path: path, Content: []byte(content)}
}

func rm(path string) client.BatchOp {
	return client.BatchOp{Op: domain.OpRemove, Path: path, Recursive: true}
}

func newMergeFixture(t *testing.T, e *srcEnv) mergeFixture {
	t.Helper()
	p := e.session(t)
	e.batch(t, p,
		wr("both.txt", "one\ntwo\nthree\n"),
		wr("lines.txt", "1\n2\n3\n4\n5\n6\n"),
		wr("moddel.txt", "m\n"),
		wr("kind", "a file\n"),
		wr("same.txt", "s\n"),
		client.BatchOp{Op: domain.OpSymlink, Path: "link", Target: "same.txt"},
	)
	f, err := e.c.Fork(t.Context(), client.ForkRequest{Session: p})
	if err != nil {
		t.Fatal(err)
	}
	fork := f.Session.ID
	// ours: the parent
	e.batch(t, p,
		wr("both.txt", "one\nOURS\nthree\n"),
		wr("lines.txt", "1\nOURS\n3\n4\n5\n6\n"),
		wr("moddel.txt", "modified by ours\n"),
		wr("kind", "ours changed it\n"),
		wr("addadd", "ours\n"),
		rm("link"),
		client.BatchOp{Op: domain.OpSymlink, Path: "link", Target: "lines.txt"},
	)
	// theirs: the fork
	e.batch(t, fork,
		wr("both.txt", "one\nTHEIRS\nthree\n"),
		wr("lines.txt", "1\n2\n3\n4\n5\nTHEIRS\n"),
		rm("moddel.txt"),
		rm("kind"),
		wr("kind/inside", "x\n"),
		wr("addadd", "theirs\n"),
		rm("link"),
		client.BatchOp{Op: domain.OpSymlink, Path: "link", Target: "both.txt"},
		wr("new/from-fork.txt", "new\n"),
	)
	return mergeFixture{parent: p, fork: fork}
}

func TestMerge_ForkIntoParent(t *testing.T) {
	t.Parallel()
	e := startSources(t)

	t.Run("Conflicts", func(t *testing.T) {
		f := newMergeFixture(t, e)
		before := e.env.LastSeq(t)
		r, err := e.c.Merge(t.Context(), client.MergeRequest{From: f.fork, Into: f.parent})
		if err != nil {
			t.Fatalf("merge: %v", err)
		}
		if r.Applied || len(r.Conflicts) != 5 {
			t.Fatalf("merge = %+v, want not applied with 5 conflicts", r)
		}
		kinds := map[string]string{}
		for _, c := range r.Conflicts {
			kinds[c.Path] = c.Kind
		}
		want := map[string]string{"both.txt": "both_modified", "moddel.txt": "modify_delete", "kind": "type_change", "addadd": "add_add", "link": "both_modified"}
		for p, k := range want {
			if kinds[p] != k {
				t.Errorf("conflict at %s = %q, want %q (all: %v)", p, kinds[p], k, kinds)
			}
		}
		if r.Base.Session != f.parent || r.Base.Position == 0 {
			t.Errorf("base = %+v, want the fork point in the parent", r.Base)
		}
		if after := e.env.LastSeq(t); after != before {
			t.Fatalf("a merge with conflicts appended %d event(s)", after-before)
		}
		s, _ := e.c.GetSession(t.Context(), f.parent, "")
		if s.Session.Status != "active" {
			t.Fatalf("status after a refused merge = %s", s.Session.Status)
		}
	})

	t.Run("Theirs", func(t *testing.T) {
		f := newMergeFixture(t, e)
		head, _ := e.c.GetSession(t.Context(), f.parent, "")
		r, err := e.c.Merge(t.Context(), client.MergeRequest{From: f.fork, Into: f.parent, Strategy: "theirs",
			Mutation: client.Mutation{ExpectedPosition: head.Position, RequestID: "merge-1"}})
		if err != nil || !r.Applied || len(r.Resolved) != 5 {
			t.Fatalf("merge = %+v, %v; want applied with 5 resolved", r, err)
		}
		if r.Position != e.env.LastSeq(t) {
			t.Fatalf("position %d is not the last event %d", r.Position, e.env.LastSeq(t))
		}
		got := e.tree(t, f.parent, "")
		want := map[string]string{
			"both.txt": "one\nTHEIRS\nthree\n", "lines.txt": "1\nOURS\n3\n4\n5\nTHEIRS\n", "kind/inside": "x\n",
			"addadd": "theirs\n", "same.txt": "s\n", "new/from-fork.txt": "new\n",
		}
		for p, body := range want {
			if got[p].body != body {
				t.Errorf("%s = %q, want %q", p, got[p].body, body)
			}
		}
		if _, ok := got["moddel.txt"]; ok {
			t.Errorf("moddel.txt kept, want it deleted (theirs)")
		}
		if got["link"].body != "both.txt" {
			t.Errorf("link -> %q, want both.txt", got["link"].body)
		}
		ev, err := e.c.Events(t.Context(), client.EventsRequest{Session: f.parent, From: r.Position})
		if err != nil || len(ev.Events) != 1 || ev.Events[0].Type != string(domain.SessionMerged) {
			t.Fatalf("events = %+v, %v; want one SessionMerged", ev.Events, err)
		}
		// A retry answers the same, and appends nothing.
		again, err := e.c.Merge(t.Context(), client.MergeRequest{From: f.fork, Into: f.parent, Strategy: "theirs",
			Mutation: client.Mutation{ExpectedPosition: head.Position, RequestID: "merge-1"}})
		if err != nil || !again.Replayed || again.Position != r.Position {
			t.Fatalf("retry = %+v, %v", again, err)
		}
		// Merging again: nothing new.
		up, err := e.c.Merge(t.Context(), client.MergeRequest{From: f.fork, Into: f.parent, Strategy: "theirs"})
		if err != nil || up.Applied || !up.UpToDate {
			t.Fatalf("second merge = %+v, %v; want up to date", up, err)
		}
		e.restartFresh(t)
		if after := e.tree(t, f.parent, ""); after["lines.txt"] != got["lines.txt"] || len(after) != len(got) {
			t.Fatalf("replay after restart differs: %v vs %v", after, got)
		}
	})

	t.Run("PerPath", func(t *testing.T) {
		f := newMergeFixture(t, e)
		r, err := e.c.Merge(t.Context(), client.MergeRequest{From: f.fork, Into: f.parent, Strategy: "ours",
			Paths: map[string]string{"/both.txt": "theirs", "kind": "theirs"}})
		if err != nil || !r.Applied {
			t.Fatalf("merge = %+v, %v", r, err)
		}
		got := e.tree(t, f.parent, "")
		if got["both.txt"].body != "one\nTHEIRS\nthree\n" || got["kind/inside"].body != "x\n" ||
			got["addadd"].body != "ours\n" || got["moddel.txt"].body != "modified by ours\n" || got["link"].body != "lines.txt" {
			t.Fatalf("tree = %v", got)
		}
	})

	t.Run("Clean", func(t *testing.T) {
		s, _ := e.c.CreateSession(t.Context(), client.CreateSessionRequest{})
		p := s.Session.ID
		e.batch(t, p, wr("a.go", "package a\n\nfunc A() {}\n\nfunc B() {}\n"), wr("keep", "k\n"))
		f, _ := e.c.Fork(t.Context(), client.ForkRequest{Session: p})
		e.write(t, p, "a.go", "package a\n\nfunc A() { ours() }\n\nfunc B() {}\n")
		e.write(t, f.Session.ID, "a.go", "package a\n\nfunc A() {}\n\nfunc B() { theirs() }\n")
		e.write(t, f.Session.ID, "added", "added\n")
		r, err := e.c.Merge(t.Context(), client.MergeRequest{From: f.Session.ID, Into: p})
		if err != nil || !r.Applied || len(r.Conflicts) != 0 {
			t.Fatalf("merge = %+v, %v", r, err)
		}
		got := e.tree(t, p, "")
		if got["a.go"].body != "package a\n\nfunc A() { ours() }\n\nfunc B() { theirs() }\n" || got["added"].body != "added\n" {
			t.Fatalf("tree = %v", got)
		}
		// Parent into fork: the fork point is the base the other way round.
		back, err := e.c.Merge(t.Context(), client.MergeRequest{From: p, Into: f.Session.ID})
		if err != nil || !back.Applied || back.Base.Session != p {
			t.Fatalf("merge back = %+v, %v", back, err)
		}
		if e.tree(t, f.Session.ID, "")["a.go"] != got["a.go"] {
			t.Fatalf("merge back did not converge")
		}
	})

	t.Run("Locked", func(t *testing.T) {
		s, _ := e.c.CreateSession(t.Context(), client.CreateSessionRequest{})
		p := s.Session.ID
		e.write(t, p, "locked.txt", "base\n")
		f, _ := e.c.Fork(t.Context(), client.ForkRequest{Session: p})
		e.write(t, f.Session.ID, "locked.txt", "theirs\n")
		holder := client.NewClient(e.env.NC, "acme")
		holder.Actor = "holder"
		l, err := holder.Lock(t.Context(), "acquire", client.LockRequest{Session: p, Path: "locked.txt"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.c.Merge(t.Context(), client.MergeRequest{From: f.Session.ID, Into: p}); client.ErrorCode(err) != domain.CodeLocked {
			t.Fatalf("merge over someone else's lease: %v, want locked", err)
		}
		r, err := holder.Merge(t.Context(), client.MergeRequest{From: f.Session.ID, Into: p, Mutation: client.Mutation{Token: l.Lock.Token}})
		if err != nil || !r.Applied {
			t.Fatalf("merge with the lease's token = %+v, %v", r, err)
		}
	})

	t.Run("Refusals", func(t *testing.T) {
		a, _ := e.c.CreateSession(t.Context(), client.CreateSessionRequest{})
		b, _ := e.c.CreateSession(t.Context(), client.CreateSessionRequest{})
		if _, err := e.c.Merge(t.Context(), client.MergeRequest{From: a.Session.ID, Into: b.Session.ID}); client.ErrorCode(err) != domain.CodeInvalidArgument {
			t.Errorf("unrelated sessions: %v, want invalid_argument", err)
		}
		if _, err := e.c.Merge(t.Context(), client.MergeRequest{From: a.Session.ID, Into: a.Session.ID}); client.ErrorCode(err) != domain.CodeInvalidArgument {
			t.Errorf("into itself: %v, want invalid_argument", err)
		}
		f, _ := e.c.Fork(t.Context(), client.ForkRequest{Session: a.Session.ID})
		if _, err := e.c.Merge(t.Context(), client.MergeRequest{From: f.Session.ID, Into: a.Session.ID, Strategy: "mine"}); client.ErrorCode(err) != domain.CodeInvalidArgument {
			t.Errorf("bad strategy: %v, want invalid_argument", err)
		}
		e.write(t, f.Session.ID, "x", "x\n")
		if _, err := e.c.Merge(t.Context(), client.MergeRequest{From: f.Session.ID, Into: a.Session.ID, Mutation: client.Mutation{ExpectedPosition: 1}}); client.ErrorCode(err) != domain.CodeConflict {
			t.Errorf("stale expected_position: %v, want conflict", err)
		}
	})
}

func TestMerge_ApprovalPolicy(t *testing.T) {
	t.Parallel()
	e := startSources(t)
	s, err := e.c.CreateSession(t.Context(), client.CreateSessionRequest{Policy: domain.Policy{domain.ActionMerge: 1}})
	if err != nil {
		t.Fatal(err)
	}
	p := s.Session.ID
	e.write(t, p, "base.txt", "base\n")
	f, _ := e.c.Fork(t.Context(), client.ForkRequest{Session: p})
	e.write(t, f.Session.ID, "new.txt", "new\n")
	before := e.env.LastSeq(t)
	if _, err := e.c.Merge(t.Context(), client.MergeRequest{From: f.Session.ID, Into: p}); client.ErrorCode(err) != domain.CodeApprovalRequired {
		t.Fatalf("merge without approval: %v, want approval_required", err)
	}
	if e.env.LastSeq(t) != before {
		t.Fatal("a refused merge appended an event")
	}
	req, err := e.c.RequestApproval(t.Context(), client.ApprovalRequestRequest{Session: p, Reason: domain.ActionMerge})
	if err != nil {
		t.Fatal(err)
	}
	reviewer := client.NewClient(e.env.NC, "acme")
	reviewer.Actor = "reviewer"
	if _, err := reviewer.Grant(t.Context(), client.DecideRequest{Session: p, Request: req.Request.ID}); err != nil {
		t.Fatal(err)
	}
	r, err := e.c.Merge(t.Context(), client.MergeRequest{From: f.Session.ID, Into: p})
	if err != nil || !r.Applied {
		t.Fatalf("merge with a granted approval = %+v, %v", r, err)
	}
	// The merge records the gate it passed and the approval that met it.
	if r.Gate[domain.ActionMerge] != 1 || len(r.Approvals) != 1 || r.Approvals[0] != req.Request.ID {
		t.Fatalf("merge gate %v, approvals %v; want merge=1 and %s", r.Gate, r.Approvals, req.Request.ID)
	}
	ev, _ := e.c.Events(t.Context(), client.EventsRequest{Session: p, From: r.Position})
	if len(ev.Events) != 1 || ev.Events[0].Type != string(domain.SessionMerged) {
		t.Fatalf("events = %+v", ev.Events)
	}
	// The approval was used: a second merge needs a new one.
	e.write(t, f.Session.ID, "more.txt", "more\n")
	if _, err := e.c.Merge(t.Context(), client.MergeRequest{From: f.Session.ID, Into: p}); client.ErrorCode(err) == "" {
		t.Fatal("a used approval authorised a second merge")
	}
}

// TestMerge_FolderMode: a folder chmodded in a fork (as a mount records
// it) keeps its mode when the fork is merged back, next to an entry the
// parent added to it meanwhile; before the chmod operation the merge kept
// the parent's mode without a word.
func TestMerge_FolderMode(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx := t.Context()
	parent := h.session(t)
	h.write(t, parent, "cfg/a.toml", "a")
	fork, err := h.c.Fork(ctx, client.ForkRequest{Session: parent})
	if err != nil {
		t.Fatal(err)
	}
	mode := uint32(0o700)
	if _, err := h.c.Chmod(ctx, client.ChmodRequest{Session: fork.Session.ID, Path: "cfg", Mode: &mode}); err != nil {
		t.Fatal(err)
	}
	h.write(t, parent, "cfg/b.toml", "b")
	r, err := h.c.Merge(ctx, client.MergeRequest{From: fork.Session.ID, Into: parent})
	if err != nil || !r.Applied {
		t.Fatalf("merge = %+v, %v; want applied", r, err)
	}
	m, err := h.c.Manifest(ctx, client.ManifestRequest{Session: parent})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]uint32{}
	for _, e := range m.Entries {
		got[e.Path] = e.Mode
	}
	if got["cfg"] != 0o700 || got["cfg/a.toml"] == 0 || got["cfg/b.toml"] == 0 {
		t.Errorf("after the merge: %v, want cfg 0700 holding a.toml and b.toml", got)
	}
	evs, err := h.c.Events(ctx, client.EventsRequest{Session: parent, From: r.Position})
	if err != nil || len(evs.Events) != 1 || len(evs.Events[0].Ops) != 1 || evs.Events[0].Ops[0].Op != domain.OpChmod {
		t.Errorf("merge event %s, %v; want one chmod of cfg", asJSON(evs.Events), err)
	}
}
