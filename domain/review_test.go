package domain_test

import (
	"testing"

	"github.com/strand-dev/strand/domain"
)

func TestSession_ApprovalGate(t *testing.T) {
	commitPolicy := domain.Policy{domain.ActionCommit: 1}
	commit := func(id string) domain.CreateCommit {
		return domain.CreateCommit{ID: id, Message: "done", Tenant: commitPolicy}
	}

	t.Run("RequiredThenGranted", func(t *testing.T) {
		l := newLog(t)
		l.create("s")
		l.must("s", one(write("a", "1")))
		_, _, err := l.exec("s", commit("c0"))
		wantCode(t, "commit without approval", err, domain.CodeApprovalRequired)
		s := l.must("s", domain.RequestApproval{ID: "r", Reason: domain.ActionCommit, Group: "leads", Tenant: commitPolicy})
		if s.Status != domain.StatusPendingApproval {
			t.Fatalf("status after request: got %s, want pending_approval", s.Status)
		}
		_, _, err = l.exec("s", commit("c1"))
		wantCode(t, "commit before the grant", err, domain.CodeApprovalRequired)
		s = l.as("s", "rev", domain.GrantApproval{ID: "r"})
		if s.Status != domain.StatusActive || s.Approvals["r"].State() != domain.ApprovalGrantedState {
			t.Fatalf("after grant: status %s, request %s", s.Status, s.Approvals["r"].State())
		}
		s = l.must("s", commit("c2"))
		c := s.Commits[len(s.Commits)-1]
		if c.Root != s.Tree.Hash() || len(c.Approvals) != 1 || c.Approvals[0] != "r" || c.At != s.Position {
			t.Fatalf("commit: %+v", c)
		}
		if s.Approvals["r"].State() != domain.ApprovalUsedState {
			t.Fatalf("approval after use: got %s, want used", s.Approvals["r"].State())
		}
		_, _, err = l.exec("s", commit("c3"))
		wantCode(t, "second commit on a used approval", err, domain.CodeApprovalRequired)
	})

	t.Run("ContentChangeAfterGrantMakesItStale", func(t *testing.T) {
		l := newLog(t)
		l.create("s")
		l.must("s", domain.RequestApproval{ID: "r", Reason: domain.ActionCommit, Tenant: commitPolicy})
		l.as("s", "rev", domain.GrantApproval{ID: "r"})
		l.must("s", one(write("sneaky", "x")))
		_, _, err := l.exec("s", commit("c"))
		wantCode(t, "commit after a change", err, domain.CodeApprovalStale)
		// restoring the old content does not revive a stale approval
		first := l.positions("s")[2]
		s := l.must("s", domain.RestoreSession{To: first})
		if s.Approvals["r"].State() != domain.ApprovalStaleState {
			t.Fatalf("after restore: got %s, want stale", s.Approvals["r"].State())
		}
		_, _, err = l.exec("s", commit("c"))
		wantCode(t, "commit after restore", err, domain.CodeApprovalStale)
	})

	t.Run("StaleBeforeDecision", func(t *testing.T) {
		l := newLog(t)
		l.create("s")
		s := l.must("s", domain.RequestApproval{ID: "r", Reason: domain.ActionMerge})
		if s.Status != domain.StatusPendingApproval {
			t.Fatalf("status: %s", s.Status)
		}
		s = l.must("s", one(write("x", "1")))
		if s.Status != domain.StatusActive || s.Approvals["r"].State() != domain.ApprovalStaleState {
			t.Fatalf("after change: status %s, request %s", s.Status, s.Approvals["r"].State())
		}
		m := l.meta()
		m.Actor = "rev"
		_, _, err := l.execMeta("s", domain.GrantApproval{ID: "r"}, m)
		wantCode(t, "grant of a stale request", err, domain.CodeApprovalStale)
	})

	t.Run("RequesterCannotDecide", func(t *testing.T) {
		l := newLog(t)
		l.create("s")
		l.must("s", domain.RequestApproval{ID: "r", Reason: domain.ActionCommit})
		_, _, err := l.exec("s", domain.GrantApproval{ID: "r"})
		wantCode(t, "self-grant", err, domain.CodeForbidden)
		_, _, err = l.exec("s", domain.DenyApproval{ID: "r"})
		wantCode(t, "self-deny", err, domain.CodeForbidden)
	})

	t.Run("Denied", func(t *testing.T) {
		l := newLog(t)
		l.create("s")
		l.must("s", domain.RequestApproval{ID: "r", Reason: domain.ActionCommit, Tenant: commitPolicy})
		s := l.as("s", "rev", domain.DenyApproval{ID: "r", Comment: "not like this"})
		if s.Approvals["r"].State() != domain.ApprovalDeniedState || s.Status != domain.StatusActive {
			t.Fatalf("after deny: %s %s", s.Approvals["r"].State(), s.Status)
		}
		_, _, err := l.exec("s", commit("c"))
		wantCode(t, "commit after denial", err, domain.CodeApprovalRequired)
		m := l.meta()
		m.Actor = "other"
		_, _, err = l.execMeta("s", domain.GrantApproval{ID: "r"}, m)
		wantCode(t, "grant after denial", err, domain.CodeConflict)
	})

	t.Run("TwoGrants", func(t *testing.T) {
		l := newLog(t)
		two := domain.Policy{domain.ActionCommit: 2}
		l.must("s", domain.CreateSession{ID: "s", Tenant: "acme", Policy: two})
		l.must("s", domain.RequestApproval{ID: "r", Reason: domain.ActionCommit})
		s := l.as("s", "rev1", domain.GrantApproval{ID: "r"})
		if s.Approvals["r"].State() != domain.ApprovalPending || s.Status != domain.StatusPendingApproval {
			t.Fatalf("after one of two grants: %s %s", s.Approvals["r"].State(), s.Status)
		}
		_, _, err := l.exec("s", domain.CreateCommit{ID: "c", Message: "m"})
		wantCode(t, "commit with one of two grants", err, domain.CodeApprovalRequired)
		m := l.meta()
		m.Actor = "rev1"
		_, _, err = l.execMeta("s", domain.GrantApproval{ID: "r"}, m)
		wantCode(t, "the same reviewer twice", err, domain.CodeAlreadyExists)
		l.as("s", "rev2", domain.GrantApproval{ID: "r"})
		l.must("s", domain.CreateCommit{ID: "c", Message: "m"})
	})

	t.Run("PolicyChangeNeedsApproval", func(t *testing.T) {
		l := newLog(t)
		l.create("s")
		_, _, err := l.exec("s", domain.SetPolicy{Policy: domain.Policy{domain.ActionCommit: 0}})
		wantCode(t, "policy change without approval", err, domain.CodeApprovalRequired)
		l.must("s", domain.RequestApproval{ID: "r", Reason: domain.ActionPolicy})
		l.as("s", "rev", domain.GrantApproval{ID: "r"})
		s := l.must("s", domain.SetPolicy{Policy: domain.Policy{domain.ActionDelete: 1}})
		if s.Required(domain.ActionDelete, nil) != 1 {
			t.Fatalf("policy after change: %v", s.Policy)
		}
		_, _, err = l.exec("s", domain.DeleteSession{})
		wantCode(t, "delete under a delete policy", err, domain.CodeApprovalRequired)
	})

	t.Run("ForkInheritsPolicy", func(t *testing.T) {
		l := newLog(t)
		p := l.must("s", domain.CreateSession{ID: "s", Tenant: "acme", Policy: domain.Policy{domain.ActionCommit: 3}})
		f := l.must("f", domain.ForkSession{ID: "f", Parent: p})
		if f.Required(domain.ActionCommit, nil) != 3 {
			t.Fatalf("fork policy: %v", f.Policy)
		}
	})
}

func TestSession_Notes(t *testing.T) {
	l := newLog(t)
	l.create("s")
	l.must("s", one(write("a.go", "package a\n")))
	s := l.must("s", domain.Annotate{ID: "n1", Body: "rename this", Path: "a.go", LineStart: 1, LineEnd: 1})
	if s.NoteOutdated(s.Notes["n1"]) {
		t.Fatalf("fresh note shows outdated")
	}
	s = l.as("s", "bob", domain.Annotate{ID: "n2", Body: "agreed", ReplyTo: "n1"})
	if n := s.Notes["n2"]; n.Path != "a.go" || n.ReplyTo != "n1" || n.Actor != "bob" {
		t.Fatalf("reply: %+v", n)
	}
	s = l.must("s", one(write("a.go", "package b\n")))
	if !s.NoteOutdated(s.Notes["n1"]) {
		t.Fatalf("note on a changed file does not show outdated")
	}
	s = l.must("s", domain.ResolveNote{ID: "n1"})
	if !s.Notes["n1"].Resolved {
		t.Fatalf("not resolved")
	}
	_, _, err := l.exec("s", domain.ResolveNote{ID: "n1"})
	wantCode(t, "resolve twice", err, domain.CodeConflict)
	for _, tc := range []struct {
		name string
		cmd  domain.Annotate
		code domain.Code
	}{
		{"EmptyBody", domain.Annotate{ID: "x1"}, domain.CodeInvalidArgument},
		{"MissingPath", domain.Annotate{ID: "x2", Body: "b", Path: "nope"}, domain.CodeNotFound},
		{"LinesWithoutPath", domain.Annotate{ID: "x3", Body: "b", LineStart: 1, LineEnd: 2}, domain.CodeInvalidArgument},
		{"BackwardsLines", domain.Annotate{ID: "x4", Body: "b", Path: "a.go", LineStart: 3, LineEnd: 2}, domain.CodeInvalidArgument},
		{"UnknownReply", domain.Annotate{ID: "x5", Body: "b", ReplyTo: "zz"}, domain.CodeNotFound},
		{"Duplicate", domain.Annotate{ID: "n1", Body: "b"}, domain.CodeAlreadyExists},
		{"BadPath", domain.Annotate{ID: "x6", Body: "b", Path: "../x"}, domain.CodeInvalidArgument},
	} {
		_, _, err := l.exec("s", tc.cmd)
		wantCode(t, tc.name, err, tc.code)
	}
	if _, err := l.replay(); err != nil {
		t.Fatalf("replay: %v", err)
	}
}

func TestSummarize(t *testing.T) {
	files := map[domain.Hash][]byte{}
	put := func(s string) (domain.Hash, int64) {
		h := domain.Sum([]byte(s))
		files[h] = []byte(s)
		return h, int64(len(s))
	}
	file := func(s string) *domain.Node {
		h, n := put(s)
		return domain.NewFile(h, n, 0o644, nil)
	}
	base := domain.Tree{}
	var err error
	for p, c := range map[string]string{"src/a.go": "a\nb\nc\n", "src/old.go": "x\n", "docs/r.md": "keep\n", "bin/blob": "\x00\x01"} {
		if base, err = base.Put(p, file(c)); err != nil {
			t.Fatal(err)
		}
	}
	head := base
	head, _ = head.Put("src/a.go", file("a\nB\nc\nd\n")) // +2 -1
	head = head.Delete("src/old.go")                     // -1
	head, _ = head.Put("src/new.go", file("n1\nn2\n"))   // +2
	node := base.Lookup("docs/r.md")
	head = head.Delete("docs/r.md")
	head, _ = head.Put("docs/readme.md", node) // rename
	head, _ = head.Put("bin/blob", file("\x00\x02\x03"))
	content := func(h domain.Hash) ([]byte, error) { return files[h], nil }
	got, err := domain.Summarize(domain.Diff(base, head), content)
	if err != nil {
		t.Fatal(err)
	}
	want := domain.Summary{Added: 1, Modified: 2, Deleted: 1, Renamed: 1, LinesAdded: 4, LinesRemoved: 2, SizeDelta: 2 + 6 - 2 + 1, BinaryFiles: 1}
	if got.Added != want.Added || got.Modified != want.Modified || got.Deleted != want.Deleted || got.Renamed != want.Renamed ||
		got.LinesAdded != want.LinesAdded || got.LinesRemoved != want.LinesRemoved || got.SizeDelta != want.SizeDelta || got.BinaryFiles != want.BinaryFiles {
		t.Fatalf("Summarize: got %+v, want %+v", *got, want)
	}
	if len(got.TopDirs) == 0 || got.TopDirs[0].Dir != "src" || got.TopDirs[0].Changes != 3 {
		t.Fatalf("top dirs: %+v", got.TopDirs)
	}
	again, _ := domain.Summarize(domain.Diff(base, head), content)
	if len(again.TopDirs) != len(got.TopDirs) || again.TopDirs[1] != got.TopDirs[1] {
		t.Fatalf("not deterministic: %+v vs %+v", again, got)
	}
}
