package domain_test

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/strand-dev/strand/domain"
)

func TestExecute_CreateSession(t *testing.T) {
	t.Run("Empty", func(t *testing.T) {
		l := newLog(t)
		tags := map[string]string{"team": "core"}
		m := l.meta()
		m.RequestID = "req-1"
		s, e, err := l.execMeta("s1", domain.CreateSession{ID: "s1", Tenant: "acme", Owner: "ann", Tags: tags, Origin: domain.Origin{Source: "base", Revision: 3}}, m)
		if err != nil {
			t.Fatalf("Execute(CreateSession): %v", err)
		}
		if e.Type != domain.SessionCreated || e.Version != 1 || len(e.Prev) != 0 || e.Session != "s1" || e.Tenant != "acme" {
			t.Errorf("event = %s v%d prev %x session %q tenant %q; want SessionCreated v1, no prev, s1, acme", e.Type, e.Version, e.Prev, e.Session, e.Tenant)
		}
		if e.ID != m.EventID || e.Actor != m.Actor || e.RequestID != "req-1" || !e.At().Equal(m.Time) {
			t.Errorf("event meta = %q %q %q %v; want %q %q req-1 %v", e.ID, e.Actor, e.RequestID, e.At(), m.EventID, m.Actor, m.Time)
		}
		empty := (domain.Tree{}).Hash()
		if root, _ := domain.HashFromBytes(e.Root); root != empty {
			t.Errorf("event root = %x, want the empty tree %s", e.Root, empty)
		}
		if s.ID != "s1" || s.Tenant != "acme" || s.Owner != "ann" || s.Status != domain.StatusActive || s.Version != 1 {
			t.Errorf("state = %+v; want s1/acme/ann, active, version 1", s)
		}
		if s.Position != 1 || s.Start != 1 || s.Origin.Source != "base" || s.Origin.Revision != 3 {
			t.Errorf("state position %d start %d origin %+v; want 1 1 base@3", s.Position, s.Start, s.Origin)
		}
		if !s.CreatedAt.Equal(m.Time) || !s.UpdatedAt.Equal(m.Time) {
			t.Errorf("state times %v %v, want %v", s.CreatedAt, s.UpdatedAt, m.Time)
		}
		if pos, ok := s.RequestPosition("req-1"); !ok || pos != 1 {
			t.Errorf("RequestPosition(req-1) = %d, %v; want 1, true", pos, ok)
		}
		tags["team"] = "changed"
		if s.Tags["team"] != "core" || e.Created.Tags["team"] != "core" {
			t.Errorf("changing the command's tags changed the state or event: %v %v", s.Tags, e.Created.Tags)
		}
	})
	t.Run("FromBase", func(t *testing.T) {
		l := newLog(t)
		base := treeOf(t, "a/b", "c")
		s, e, err := l.exec("s1", domain.CreateSession{ID: "s1", Tenant: "acme", Base: base})
		if err != nil {
			t.Fatalf("Execute(CreateSession with base): %v", err)
		}
		if s.Tree.Hash() != base.Hash() {
			t.Errorf("tree = %s, want the base %s", s.Tree.Hash(), base.Hash())
		}
		// A loader replays the first event of a session made from a base on
		// a state that holds only the base tree.
		body, _ := e.Encode()
		ev, _ := domain.DecodeEvent(body)
		if _, err := domain.Evolve(&domain.Session{Tree: base}, ev, 1, domain.Sum(body), nil); err != nil {
			t.Errorf("Evolve(base state, SessionCreated): %v", err)
		}
		if _, err := domain.Evolve(nil, ev, 1, domain.Sum(body), nil); err == nil {
			t.Errorf("Evolve(nil, SessionCreated with a base root): got nil error, want a root mismatch")
		}
	})
	bad := []struct {
		name string
		cmd  domain.CreateSession
	}{
		{"NoTenant", domain.CreateSession{ID: "s1"}},
		{"TenantUpper", domain.CreateSession{ID: "s1", Tenant: "Acme"}},
		{"TenantDot", domain.CreateSession{ID: "s1", Tenant: "a.b"}},
		{"TenantWildcard", domain.CreateSession{ID: "s1", Tenant: "a*"}},
		{"TenantLeadingDash", domain.CreateSession{ID: "s1", Tenant: "-a"}},
		{"TenantTooLong", domain.CreateSession{ID: "s1", Tenant: strings.Repeat("a", 65)}},
		{"NoID", domain.CreateSession{Tenant: "acme"}},
		{"IDWithDot", domain.CreateSession{ID: "s.1", Tenant: "acme"}},
		{"IDWithWildcard", domain.CreateSession{ID: ">", Tenant: "acme"}},
		{"BadTagKey", domain.CreateSession{ID: "s1", Tenant: "acme", Tags: map[string]string{"-x": "1"}}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			l := newLog(t)
			_, _, err := l.exec("s1", tc.cmd)
			wantCode(t, fmt.Sprintf("Execute(%+v)", tc.cmd), err, domain.CodeInvalidArgument)
		})
	}
	t.Run("TenantLimits", func(t *testing.T) {
		for _, tenant := range []string{"a", "0", "a_b-c", strings.Repeat("a", 64)} {
			if err := domain.ValidTenant(tenant); err != nil {
				t.Errorf("ValidTenant(%q) = %v, want nil", tenant, err)
			}
		}
	})
	t.Run("ActorTooLong", func(t *testing.T) {
		l := newLog(t)
		m := l.meta()
		m.Actor = strings.Repeat("x", domain.MaxActorBytes+1)
		_, _, err := l.execMeta("s1", domain.CreateSession{ID: "s1", Tenant: "acme"}, m)
		wantCode(t, "Execute with a long actor", err, domain.CodeInvalidArgument)
	})
}

func TestExecute_ForkSession(t *testing.T) {
	l := newLog(t)
	l.create("p")
	l.must("p", one(write("a/f", "v1")))
	l.must("p", domain.SetTags{Set: map[string]string{"k": "v"}})
	atFork := l.must("p", one(write("a/g", "v1")))
	l.must("p", one(write("a/f", "v2")))

	f, e, err := l.exec("f", domain.ForkSession{ID: "f", Owner: "bob", Tags: map[string]string{"fork": "yes"}, Parent: atFork})
	if err != nil {
		t.Fatalf("Execute(ForkSession): %v", err)
	}
	if e.Type != domain.SessionForked || e.Version != 1 || e.Tenant != "acme" {
		t.Errorf("event %s v%d tenant %q; want SessionForked v1 acme", e.Type, e.Version, e.Tenant)
	}
	if prev, _ := domain.HashFromBytes(e.Prev); prev != atFork.LastHash {
		t.Errorf("fork event prev = %x, want the parent's event hash at the fork %s", e.Prev, atFork.LastHash)
	}
	if f.Origin != (domain.Origin{Parent: "p", Position: atFork.Position}) {
		t.Errorf("fork origin = %+v, want p@%d", f.Origin, atFork.Position)
	}
	if f.Tree.Hash() != atFork.Tree.Hash() || f.Tree.Root() != atFork.Tree.Root() {
		t.Errorf("fork tree %s, want the parent's tree at the fork %s, shared", f.Tree.Hash(), atFork.Tree.Hash())
	}
	if f.Start != f.Position || f.Version != 1 || f.Owner != "bob" || f.Tags["fork"] != "yes" || f.Tags["k"] != "" {
		t.Errorf("fork state start %d position %d version %d owner %q tags %v; want start = position, v1, bob, only fork=yes", f.Start, f.Position, f.Version, f.Owner, f.Tags)
	}

	t.Run("Independent", func(t *testing.T) {
		parentHead := l.sessions["p"].head.Tree.Hash()
		l.must("f", one(write("a/f", "fork")))
		if got := l.sessions["p"].head.Tree.Hash(); got != parentHead {
			t.Errorf("a write in the fork changed the parent: got %s, want %s", got, parentHead)
		}
		forkHead := l.sessions["f"].head.Tree.Hash()
		l.must("p", one(remove("a", true)))
		if got := l.sessions["f"].head.Tree.Hash(); got != forkHead {
			t.Errorf("a remove in the parent changed the fork: got %s, want %s", got, forkHead)
		}
	})
	t.Run("RestoreIntoParentHistory", func(t *testing.T) {
		// A fork's history includes its parent's up to the fork point.
		first := l.positions("p")[1]
		s := l.must("f", domain.RestoreSession{To: first})
		want := l.sessions["p"].roots[first]
		if s.Tree.Hash() != want {
			t.Errorf("fork restored to parent position %d: tree %s, want %s", first, s.Tree.Hash(), want)
		}
		after := l.sessions["p"].head.Position
		_, _, err := l.exec("f", domain.RestoreSession{To: after})
		wantCode(t, fmt.Sprintf("fork restore to parent position %d after the fork", after), err, domain.CodeNotFound)
	})
	t.Run("Replay", func(t *testing.T) {
		checkReplay(t, l)
	})
	t.Run("ArchivedParent", func(t *testing.T) {
		l := newLog(t)
		l.create("p")
		p := l.must("p", domain.ArchiveSession{})
		if _, _, err := l.exec("f", domain.ForkSession{ID: "f", Parent: p}); err != nil {
			t.Errorf("fork of an archived session: %v, want nil", err)
		}
		if s := l.sessions["f"].head; s.Status != domain.StatusActive {
			t.Errorf("fork of an archived session has status %q, want active", s.Status)
		}
	})
	t.Run("DeletedParent", func(t *testing.T) {
		l := newLog(t)
		l.create("p")
		p := l.must("p", domain.DeleteSession{})
		_, _, err := l.exec("f", domain.ForkSession{ID: "f", Parent: p})
		wantCode(t, "fork of a deleted session", err, domain.CodeNotFound)
	})
	t.Run("NoParent", func(t *testing.T) {
		l := newLog(t)
		_, _, err := l.exec("f", domain.ForkSession{ID: "f"})
		wantCode(t, "fork without a parent", err, domain.CodeNotFound)
	})
	t.Run("BadID", func(t *testing.T) {
		_, _, err := l.exec("", domain.ForkSession{Parent: atFork})
		wantCode(t, "fork without an id", err, domain.CodeInvalidArgument)
	})
	t.Run("BadTags", func(t *testing.T) {
		_, _, err := l.exec("g", domain.ForkSession{ID: "g", Parent: atFork, Tags: map[string]string{"": "x"}})
		wantCode(t, "fork with an empty tag key", err, domain.CodeInvalidArgument)
	})
}

// session returns a log with one session s1 holding the tree of spec.
func session(t *testing.T, spec ...string) *eventLog {
	t.Helper()
	l := newLog(t)
	l.must("s1", domain.CreateSession{ID: "s1", Tenant: "acme", Base: treeOf(t, spec...)})
	return l
}

// modeIs checks that p has mode want and that other, below or at p, is
// still there with its content.
func modeIs(p string, want uint32, other string) func(domain.Tree) string {
	return func(tr domain.Tree) string {
		n := tr.Lookup(p)
		if n == nil || n.Mode != want {
			return fmt.Sprintf("%s: node %+v, want mode %#o", p, n, want)
		}
		if o := tr.Lookup(other); o == nil || (o.Kind == domain.KindFile && o.Content.IsZero()) {
			return fmt.Sprintf("%s lost after chmod of %s", other, p)
		}
		return ""
	}
}

func TestExecute_ChangeFiles(t *testing.T) {
	spec := []string{
		"dir/file", "dir/sub/deep", "empty/", "top",
		"in -> dir", "out -> ../x", "outdir -> ../../etc", "selfloop -> selfloop",
		"tofile -> top", "dangling -> dir/new",
	}
	h := func(s string) string { c, _ := content(s); return c.String() }
	valid := []struct {
		name      string
		op        domain.FileOp
		wantType  domain.EventType
		wantOp    domain.Op       // Content is ignored
		wantPaths map[string]bool // path -> present after
		check     func(domain.Tree) string
	}{
		{"WriteNew", write("/new//file.txt", "x"), domain.FileWritten,
			domain.Op{Kind: domain.OpWrite, Path: "new/file.txt", Size: 1, Mode: domain.DefaultFileMode},
			map[string]bool{"new": true, "new/file.txt": true}, nil},
		{"WriteOverwrite", write("top", "new content"), domain.FileWritten,
			domain.Op{Kind: domain.OpWrite, Path: "top", Size: 11, Mode: domain.DefaultFileMode},
			map[string]bool{"top": true}, func(tr domain.Tree) string {
				if c, _ := content("new content"); tr.Lookup("top").Content != c {
					return "content not replaced"
				}
				return ""
			}},
		{"WriteMode", domain.FileOp{Kind: domain.OpWrite, Path: "x", Mode: 0o100755}, domain.FileWritten,
			domain.Op{Kind: domain.OpWrite, Path: "x", Mode: 0o755}, map[string]bool{"x": true}, nil},
		{"WriteThroughDirLink", write("in/new", "x"), domain.FileWritten,
			domain.Op{Kind: domain.OpWrite, Path: "dir/new", Size: 1, Mode: domain.DefaultFileMode},
			map[string]bool{"dir/new": true, "in/new": false}, nil},
		{"WriteThroughFileLink", write("tofile", "x"), domain.FileWritten,
			domain.Op{Kind: domain.OpWrite, Path: "top", Size: 1, Mode: domain.DefaultFileMode},
			map[string]bool{"tofile": true, "top": true}, func(tr domain.Tree) string {
				if tr.Lookup("tofile").Kind != domain.KindSymlink {
					return "the link was replaced"
				}
				return ""
			}},
		{"WriteThroughDanglingLink", write("dangling", "x"), domain.FileWritten,
			domain.Op{Kind: domain.OpWrite, Path: "dir/new", Size: 1, Mode: domain.DefaultFileMode},
			map[string]bool{"dir/new": true}, nil},
		{"WriteExpectHash", domain.FileOp{Kind: domain.OpWrite, Path: "top", Expect: h("top")}, domain.FileWritten,
			domain.Op{Kind: domain.OpWrite, Path: "top", Mode: domain.DefaultFileMode}, map[string]bool{"top": true}, nil},
		{"WriteExpectAbsent", domain.FileOp{Kind: domain.OpWrite, Path: "fresh", Expect: domain.ExpectAbsent}, domain.FileWritten,
			domain.Op{Kind: domain.OpWrite, Path: "fresh", Mode: domain.DefaultFileMode}, map[string]bool{"fresh": true}, nil},
		{"Mkdir", mkdir("a/b/c"), domain.DirectoryMade,
			domain.Op{Kind: domain.OpMkdir, Path: "a/b/c", Mode: domain.DefaultDirMode},
			map[string]bool{"a": true, "a/b": true, "a/b/c": true}, nil},
		{"MkdirMode", domain.FileOp{Kind: domain.OpMkdir, Path: "m", Mode: 0o700}, domain.DirectoryMade,
			domain.Op{Kind: domain.OpMkdir, Path: "m", Mode: 0o700}, map[string]bool{"m": true}, nil},
		{"MkdirThroughLink", mkdir("in/made"), domain.DirectoryMade,
			domain.Op{Kind: domain.OpMkdir, Path: "dir/made", Mode: domain.DefaultDirMode}, map[string]bool{"dir/made": true}, nil},
		{"RemoveFile", remove("top", false), domain.PathRemoved,
			domain.Op{Kind: domain.OpRemove, Path: "top"}, map[string]bool{"top": false, "tofile": true}, nil},
		{"RemoveEmptyDir", remove("empty", false), domain.PathRemoved,
			domain.Op{Kind: domain.OpRemove, Path: "empty"}, map[string]bool{"empty": false}, nil},
		{"RemoveRecursive", remove("dir", true), domain.PathRemoved,
			domain.Op{Kind: domain.OpRemove, Path: "dir", Recursive: true},
			map[string]bool{"dir": false, "dir/sub/deep": false, "in": true}, nil},
		{"RemoveFileRecursiveFlag", remove("top", true), domain.PathRemoved,
			domain.Op{Kind: domain.OpRemove, Path: "top"}, map[string]bool{"top": false}, nil},
		{"RemoveLinkNotTarget", remove("in", false), domain.PathRemoved,
			domain.Op{Kind: domain.OpRemove, Path: "in"}, map[string]bool{"in": false, "dir/file": true}, nil},
		{"RemoveLoopingLink", remove("selfloop", false), domain.PathRemoved,
			domain.Op{Kind: domain.OpRemove, Path: "selfloop"}, map[string]bool{"selfloop": false}, nil},
		{"RenameFile", rename("top", "dir/sub/top2"), domain.PathRenamed,
			domain.Op{Kind: domain.OpRename, Path: "top", To: "dir/sub/top2"},
			map[string]bool{"top": false, "dir/sub/top2": true}, nil},
		{"RenameDir", rename("dir", "new/place"), domain.PathRenamed,
			domain.Op{Kind: domain.OpRename, Path: "dir", To: "new/place"},
			map[string]bool{"dir": false, "new/place/sub/deep": true, "new/place/file": true}, nil},
		{"RenameLink", rename("in", "in2"), domain.PathRenamed,
			domain.Op{Kind: domain.OpRename, Path: "in", To: "in2"},
			map[string]bool{"in": false, "in2": true, "dir": true}, nil},
		{"RenameIntoLinkedDir", rename("top", "in/top"), domain.PathRenamed,
			domain.Op{Kind: domain.OpRename, Path: "top", To: "dir/top"},
			map[string]bool{"top": false, "dir/top": true}, nil},
		{"Symlink", symlink("l", "dir/file"), domain.SymlinkCreated,
			domain.Op{Kind: domain.OpSymlink, Path: "l", Target: "dir/file"}, map[string]bool{"l": true}, nil},
		{"SymlinkOutward", symlink("l", "../../outside"), domain.SymlinkCreated, // stored as is; using it is refused
			domain.Op{Kind: domain.OpSymlink, Path: "l", Target: "../../outside"}, map[string]bool{"l": true}, nil},
		{"ChmodFileToNothing", domain.FileOp{Kind: domain.OpChmod, Path: "top", Mode: 0}, domain.ModeChanged,
			domain.Op{Kind: domain.OpChmod, Path: "top"}, map[string]bool{"top": true}, modeIs("top", 0, "top")},
		{"ChmodFileSetID", domain.FileOp{Kind: domain.OpChmod, Path: "top", Mode: 0o4755}, domain.ModeChanged,
			domain.Op{Kind: domain.OpChmod, Path: "top", Mode: 0o4755}, map[string]bool{"top": true}, modeIs("top", 0o4755, "top")},
		{"ChmodDirKeepsEntries", domain.FileOp{Kind: domain.OpChmod, Path: "dir", Mode: 0o700}, domain.ModeChanged,
			domain.Op{Kind: domain.OpChmod, Path: "dir", Mode: 0o700}, map[string]bool{"dir/file": true, "dir/sub/deep": true}, modeIs("dir", 0o700, "dir/file")},
		{"ChmodThroughLink", domain.FileOp{Kind: domain.OpChmod, Path: "tofile", Mode: 0o600}, domain.ModeChanged,
			domain.Op{Kind: domain.OpChmod, Path: "top", Mode: 0o600}, map[string]bool{"tofile": true}, modeIs("top", 0o600, "top")},
	}
	for _, tc := range valid {
		t.Run(tc.name, func(t *testing.T) {
			l := session(t, spec...)
			before := l.sessions["s1"].head
			s, e, err := l.exec("s1", one(tc.op))
			if err != nil {
				t.Fatalf("Execute(%+v): %v", tc.op, err)
			}
			if e.Type != tc.wantType || len(e.Ops) != 1 {
				t.Fatalf("Execute(%+v): event %s with %d ops, want %s with 1", tc.op, e.Type, len(e.Ops), tc.wantType)
			}
			got := e.Ops[0]
			got.Content = nil
			if !equalOp(got, tc.wantOp) {
				t.Errorf("Execute(%+v): op %+v, want %+v", tc.op, got, tc.wantOp)
			}
			if tc.op.Kind == domain.OpWrite {
				if c, _ := domain.HashFromBytes(e.Ops[0].Content); c != tc.op.Content || s.Tree.Lookup(e.Ops[0].Path).Content != tc.op.Content {
					t.Errorf("Execute(%+v): op content %x, file content %s; want %s", tc.op, e.Ops[0].Content, s.Tree.Lookup(e.Ops[0].Path).Content, tc.op.Content)
				}
			}
			for p, want := range tc.wantPaths {
				if got := s.Tree.Lookup(p) != nil; got != want {
					t.Errorf("Execute(%+v): %q present = %v, want %v", tc.op, p, got, want)
				}
			}
			if tc.check != nil {
				if msg := tc.check(s.Tree); msg != "" {
					t.Errorf("Execute(%+v): %s", tc.op, msg)
				}
			}
			if root, _ := domain.HashFromBytes(e.Root); root != s.Tree.Hash() {
				t.Errorf("event root %x, want the new tree's %s", e.Root, s.Tree.Hash())
			}
			if s.Version != before.Version+1 || !equalHashBytes(e.Prev, before.LastHash) {
				t.Errorf("event v%d prev %x; want v%d prev %s", e.Version, e.Prev, before.Version+1, before.LastHash)
			}
			checkReplay(t, l)
		})
	}

	t.Run("RenameKeepsSubtree", func(t *testing.T) {
		l := session(t, spec...)
		old := l.sessions["s1"].head.Tree.Lookup("dir")
		s := l.must("s1", one(rename("dir", "z/moved")))
		if got := s.Tree.Lookup("z/moved"); got != old {
			t.Errorf("rename copied the subtree: got node %p hash %s, want %p %s", got, got.Hash(), old, old.Hash())
		}
	})
	t.Run("KeepsModeAndXattrs", func(t *testing.T) {
		x := map[string][]byte{"user.k": []byte("v")}
		base := mustPut(t, domain.Tree{}, "f", domain.NewFile(domain.Sum(nil), 0, 0o600, x))
		l := newLog(t)
		l.must("s1", domain.CreateSession{ID: "s1", Tenant: "acme", Base: base})
		s := l.must("s1", one(write("f", "new")))
		if n := s.Tree.Lookup("f"); n.Mode != 0o600 || string(n.Xattrs["user.k"]) != "v" {
			t.Errorf("overwrite: mode %o xattrs %v, want 600 and the old xattrs", n.Mode, n.Xattrs)
		}
	})

	refused := []struct {
		name string
		ops  []domain.FileOp
		want domain.Code
	}{
		{"NoOps", nil, domain.CodeInvalidArgument},
		{"BadPath", []domain.FileOp{write("a/../b", "x")}, domain.CodeInvalidArgument},
		{"Root", []domain.FileOp{write("/", "x")}, domain.CodeInvalidArgument},
		{"RootViaLink", []domain.FileOp{symlink("r", "/"), write("r", "x")}, domain.CodeInvalidArgument},
		{"UnknownKind", []domain.FileOp{{Kind: "chown", Path: "top"}}, domain.CodeInvalidArgument},
		{"ChmodMissing", []domain.FileOp{{Kind: domain.OpChmod, Path: "nope", Mode: 0o644}}, domain.CodeNotFound},
		{"ChmodDanglingLink", []domain.FileOp{{Kind: domain.OpChmod, Path: "dangling", Mode: 0o644}}, domain.CodeNotFound},
		{"ChmodFileType", []domain.FileOp{{Kind: domain.OpChmod, Path: "top", Mode: 0o100644}}, domain.CodeInvalidArgument},
		{"ChmodRoot", []domain.FileOp{{Kind: domain.OpChmod, Path: "/", Mode: 0o700}}, domain.CodeInvalidArgument},
		{"ChmodUnderFile", []domain.FileOp{{Kind: domain.OpChmod, Path: "top/x", Mode: 0o700}}, domain.CodeInvalidArgument},
		{"WriteUnderFile", []domain.FileOp{write("top/x", "x")}, domain.CodeInvalidArgument},
		{"WriteDeepUnderFile", []domain.FileOp{write("dir/file/a/b", "x")}, domain.CodeInvalidArgument},
		{"WriteOnDir", []domain.FileOp{write("dir", "x")}, domain.CodeInvalidArgument},
		{"WriteOnDirViaLink", []domain.FileOp{write("in", "x")}, domain.CodeInvalidArgument},
		{"WriteNegativeSize", []domain.FileOp{{Kind: domain.OpWrite, Path: "n", Size: -1}}, domain.CodeInvalidArgument},
		{"WriteThroughLinkOut", []domain.FileOp{write("out", "x")}, domain.CodeInvalidArgument},
		{"WriteBelowLinkOut", []domain.FileOp{write("outdir/passwd", "x")}, domain.CodeInvalidArgument},
		{"WriteThroughLoop", []domain.FileOp{write("selfloop", "x")}, domain.CodeInvalidArgument},
		{"WriteThroughLinkToBadName", []domain.FileOp{symlink("bs", `a\b`), write("bs", "x")}, domain.CodeInvalidArgument},
		{"WriteThroughLinkTooDeep", []domain.FileOp{symlink("deep", strings.Repeat("d/", 63)+"d"), write("deep/x", "x")}, domain.CodeInvalidArgument},
		{"MkdirUnderLinkOut", []domain.FileOp{mkdir("outdir/x")}, domain.CodeInvalidArgument},
		{"MkdirExisting", []domain.FileOp{mkdir("dir")}, domain.CodeAlreadyExists},
		{"MkdirOnFile", []domain.FileOp{mkdir("top")}, domain.CodeAlreadyExists},
		{"MkdirOnLink", []domain.FileOp{mkdir("in")}, domain.CodeAlreadyExists},
		{"MkdirUnderFile", []domain.FileOp{mkdir("top/d")}, domain.CodeInvalidArgument},
		{"RemoveMissing", []domain.FileOp{remove("nope", false)}, domain.CodeNotFound},
		{"RemoveNonEmpty", []domain.FileOp{remove("dir", false)}, domain.CodeInvalidArgument},
		{"RemoveUnderFile", []domain.FileOp{remove("top/x", false)}, domain.CodeInvalidArgument},
		{"RenameMissing", []domain.FileOp{rename("nope", "x")}, domain.CodeNotFound},
		{"RenameIntoItself", []domain.FileOp{rename("dir", "dir/sub/x")}, domain.CodeInvalidArgument},
		{"RenameIntoItselfViaLink", []domain.FileOp{rename("dir", "in/x")}, domain.CodeInvalidArgument},
		{"RenameOntoItself", []domain.FileOp{rename("top", "/top/")}, domain.CodeInvalidArgument},
		{"RenameOntoExisting", []domain.FileOp{rename("top", "dir/file")}, domain.CodeAlreadyExists},
		{"RenameOntoDir", []domain.FileOp{rename("top", "empty")}, domain.CodeAlreadyExists},
		{"RenameOntoAncestor", []domain.FileOp{rename("dir/sub", "dir")}, domain.CodeAlreadyExists},
		{"RenameUnderFile", []domain.FileOp{rename("dir/file", "top/x")}, domain.CodeInvalidArgument},
		{"RenameToRoot", []domain.FileOp{rename("top", "/")}, domain.CodeInvalidArgument},
		{"RenameToBadPath", []domain.FileOp{rename("top", "../x")}, domain.CodeInvalidArgument},
		{"RenameThroughLinkOut", []domain.FileOp{rename("top", "outdir/x")}, domain.CodeInvalidArgument},
		{"SymlinkExisting", []domain.FileOp{symlink("top", "dir")}, domain.CodeAlreadyExists},
		{"SymlinkEmptyTarget", []domain.FileOp{symlink("l", "")}, domain.CodeInvalidArgument},
		{"SymlinkNULTarget", []domain.FileOp{symlink("l", "a\x00b")}, domain.CodeInvalidArgument},
		{"SymlinkLongTarget", []domain.FileOp{symlink("l", strings.Repeat("a", domain.MaxTargetBytes+1))}, domain.CodeInvalidArgument},
		{"ExpectMismatch", []domain.FileOp{{Kind: domain.OpWrite, Path: "top", Expect: h("other")}}, domain.CodeConflict},
		{"ExpectOnMissing", []domain.FileOp{{Kind: domain.OpWrite, Path: "nope", Expect: h("top")}}, domain.CodeConflict},
		{"ExpectAbsentOnFile", []domain.FileOp{{Kind: domain.OpWrite, Path: "top", Expect: domain.ExpectAbsent}}, domain.CodeConflict},
		{"ExpectAbsentViaLink", []domain.FileOp{{Kind: domain.OpWrite, Path: "tofile", Expect: domain.ExpectAbsent}}, domain.CodeConflict},
		{"ExpectAbsentMkdir", []domain.FileOp{{Kind: domain.OpMkdir, Path: "dir", Expect: domain.ExpectAbsent}}, domain.CodeConflict},
		{"ExpectOnRemove", []domain.FileOp{{Kind: domain.OpRemove, Path: "top", Expect: h("old")}}, domain.CodeConflict},
		{"ExpectOnRename", []domain.FileOp{{Kind: domain.OpRename, Path: "top", To: "x", Expect: h("old")}}, domain.CodeConflict},
		{"ExpectNotHex", []domain.FileOp{{Kind: domain.OpWrite, Path: "top", Expect: "zz"}}, domain.CodeInvalidArgument},
		{"ExpectShortHex", []domain.FileOp{{Kind: domain.OpWrite, Path: "top", Expect: "abcd"}}, domain.CodeInvalidArgument},
		{"ExpectUpperHexWrongFile", []domain.FileOp{{Kind: domain.OpWrite, Path: "top", Expect: strings.Repeat("A", 64)}}, domain.CodeConflict},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			l := session(t, spec...)
			cmd := domain.ChangeFiles{Ops: tc.ops, Batch: len(tc.ops) > 1}
			_, _, err := l.exec("s1", cmd)
			wantCode(t, fmt.Sprintf("Execute(%+v)", tc.ops), err, tc.want)
			if n := len(l.sessions["s1"].events); n != 1 {
				t.Errorf("a refused change appended: %d events, want 1", n)
			}
		})
	}

	t.Run("ExpectDirAndLinkHash", func(t *testing.T) {
		l := session(t, spec...)
		tr := l.sessions["s1"].head.Tree
		ops := []domain.FileOp{
			{Kind: domain.OpRemove, Path: "empty", Expect: tr.Lookup("empty").Hash().String()},
			{Kind: domain.OpRemove, Path: "in", Expect: tr.Lookup("in").Hash().String()},
			{Kind: domain.OpRename, Path: "dir", To: "dir2", Expect: tr.Lookup("dir").Hash().String()},
		}
		if _, _, err := l.exec("s1", batch(ops...)); err != nil {
			t.Errorf("Execute(expectations on a dir and a link by Merkle hash): %v", err)
		}
	})

	t.Run("Archived", func(t *testing.T) {
		l := session(t, spec...)
		l.must("s1", domain.ArchiveSession{})
		_, _, err := l.exec("s1", one(write("x", "x")))
		wantCode(t, "write to an archived session", err, domain.CodeConflict)
	})
	t.Run("Deleted", func(t *testing.T) {
		l := session(t, spec...)
		l.must("s1", domain.DeleteSession{})
		_, _, err := l.exec("s1", one(write("x", "x")))
		wantCode(t, "write to a deleted session", err, domain.CodeNotFound)
		if !errors.Is(err, domain.ErrNotFound) {
			t.Errorf("errors.Is(%v, ErrNotFound) = false, want true", err)
		}
	})
	t.Run("NoSession", func(t *testing.T) {
		l := newLog(t)
		_, _, err := l.exec("nope", one(write("x", "x")))
		if !errors.Is(err, domain.ErrSessionNotFound) {
			t.Errorf("write to no session: got %v, want ErrSessionNotFound", err)
		}
	})
	t.Run("SingleWithTwoOps", func(t *testing.T) {
		l := session(t, spec...)
		_, _, err := l.exec("s1", domain.ChangeFiles{Ops: []domain.FileOp{write("a", "1"), write("b", "2")}})
		wantCode(t, "a single change of two operations", err, domain.CodeInvalidArgument)
	})
}

func equalOp(a, b domain.Op) bool {
	return a.Kind == b.Kind && a.Path == b.Path && a.To == b.To && a.Target == b.Target &&
		a.Size == b.Size && a.Mode == b.Mode && a.Recursive == b.Recursive && string(a.Content) == string(b.Content)
}

func equalHashBytes(b []byte, h domain.Hash) bool {
	got, ok := domain.HashFromBytes(b)
	return ok && got == h
}

func TestExecute_Batch(t *testing.T) {
	spec := []string{"dir/file", "top", "out -> ../x"}
	t.Run("SeesEarlierOps", func(t *testing.T) {
		l := session(t, spec...)
		s, e, err := l.exec("s1", batch(
			mkdir("new"),
			write("new/a", "a"),
			rename("new", "moved"),
			write("new/b", "b"), // new was moved away: this recreates it
			symlink("link", "moved"),
			write("link/c", "c"), // through a link made in the same batch
			remove("top", false),
			write("top", "again"),
		))
		if err != nil {
			t.Fatalf("Execute(batch): %v", err)
		}
		if e.Type != domain.BatchApplied || len(e.Ops) != 8 {
			t.Fatalf("event %s with %d ops, want BatchApplied with 8", e.Type, len(e.Ops))
		}
		if e.Ops[5].Path != "moved/c" {
			t.Errorf("op 5 recorded at %q, want the resolved moved/c", e.Ops[5].Path)
		}
		want := []string{"dir", "dir/file", "link", "moved", "moved/a", "moved/c", "new", "new/b", "out", "top"}
		if got := paths(s.Tree); !slices.Equal(got, want) {
			t.Errorf("tree after batch = %q, want %q", got, want)
		}
		checkReplay(t, l)
	})
	t.Run("FailureInTheMiddle", func(t *testing.T) {
		l := session(t, spec...)
		before := l.sessions["s1"].head
		_, _, err := l.exec("s1", batch(
			write("a", "1"),
			mkdir("d"),
			mkdir("dir"), // exists
			write("b", "2"),
			remove("top", false),
		))
		wantCode(t, "batch whose op 2 fails", err, domain.CodeAlreadyExists)
		if msg := domain.ErrorMessage(err); !strings.HasPrefix(msg, "operation 2: ") {
			t.Errorf("batch error message %q, want it to name operation 2", msg)
		}
		head := l.sessions["s1"].head
		if head != before || head.Tree.Hash() != before.Tree.Hash() || len(l.sessions["s1"].events) != 1 {
			t.Errorf("a failed batch changed the session: %d events, root %s, want 1 and %s", len(l.sessions["s1"].events), head.Tree.Hash(), before.Tree.Hash())
		}
		if head.Tree.Lookup("a") != nil || head.Tree.Lookup("d") != nil {
			t.Errorf("ops before the failing one left a trace")
		}
	})
	t.Run("LaterOpRefusedByEarlier", func(t *testing.T) {
		l := session(t, spec...)
		_, _, err := l.exec("s1", batch(write("a", "1"), mkdir("a")))
		wantCode(t, "mkdir over a file written earlier in the batch", err, domain.CodeAlreadyExists)
	})
	t.Run("TooLarge", func(t *testing.T) {
		l := session(t, spec...)
		ops := make([]domain.FileOp, domain.MaxBatchOps+1)
		for i := range ops {
			ops[i] = write(fmt.Sprint("f", i), "x")
		}
		_, _, err := l.exec("s1", batch(ops...))
		wantCode(t, fmt.Sprintf("batch of %d ops", len(ops)), err, domain.CodeTooLarge)
		s, _, err := l.exec("s1", batch(ops[:domain.MaxBatchOps]...))
		if err != nil {
			t.Fatalf("batch of %d ops: %v, want nil", domain.MaxBatchOps, err)
		}
		if got, want := s.Tree.Count(), domain.MaxBatchOps+4; got != want {
			t.Errorf("after a batch of %d writes: Count() = %d, want %d", domain.MaxBatchOps, got, want)
		}
	})
	t.Run("Empty", func(t *testing.T) {
		l := session(t, spec...)
		_, _, err := l.exec("s1", domain.ChangeFiles{Batch: true})
		wantCode(t, "empty batch", err, domain.CodeInvalidArgument)
	})
	t.Run("OneOpIsABatch", func(t *testing.T) {
		l := session(t, spec...)
		_, e, err := l.exec("s1", batch(write("x", "1")))
		if err != nil || e.Type != domain.BatchApplied {
			t.Errorf("batch of one: %v, %v; want BatchApplied", e, err)
		}
	})
}

func TestExecute_SetTags(t *testing.T) {
	l := newLog(t)
	l.must("s1", domain.CreateSession{ID: "s1", Tenant: "acme", Tags: map[string]string{"a": "1", "b": "2"}})
	s1 := l.sessions["s1"].head
	s2, e, err := l.exec("s1", domain.SetTags{Set: map[string]string{"c": "3", "a": "one"}, Remove: []string{"b", "missing"}})
	if err != nil {
		t.Fatalf("SetTags: %v", err)
	}
	if e.Type != domain.TagsSet {
		t.Errorf("event type %s, want TagsSet", e.Type)
	}
	if want := map[string]string{"a": "one", "c": "3"}; !maps.Equal(s2.Tags, want) {
		t.Errorf("tags = %v, want %v", s2.Tags, want)
	}
	if want := map[string]string{"a": "1", "b": "2"}; !maps.Equal(s1.Tags, want) {
		t.Errorf("the earlier state's tags changed to %v, want %v", s1.Tags, want)
	}
	// Setting and removing the same key: set wins.
	s3 := l.must("s1", domain.SetTags{Set: map[string]string{"x": "1"}, Remove: []string{"x"}})
	if s3.Tags["x"] != "1" {
		t.Errorf("set and remove of x: tags %v, want x=1", s3.Tags)
	}
	// Tags can change on an archived session.
	l.must("s1", domain.ArchiveSession{})
	l.must("s1", domain.SetTags{Set: map[string]string{"archived": "yes"}})
	checkReplay(t, l)

	many := map[string]string{}
	for i := range domain.MaxTags + 1 {
		many[fmt.Sprint("k", i)] = "v"
	}
	bad := []struct {
		name string
		cmd  domain.SetTags
	}{
		{"Nothing", domain.SetTags{}},
		{"EmptyKey", domain.SetTags{Set: map[string]string{"": "v"}}},
		{"KeyLeadingDot", domain.SetTags{Set: map[string]string{".k": "v"}}},
		{"KeySpace", domain.SetTags{Set: map[string]string{"a b": "v"}}},
		{"KeyEquals", domain.SetTags{Set: map[string]string{"a=b": "v"}}},
		{"KeyTooLong", domain.SetTags{Set: map[string]string{strings.Repeat("k", domain.MaxTagKeyBytes+1): "v"}}},
		{"ValueTooLong", domain.SetTags{Set: map[string]string{"k": strings.Repeat("v", domain.MaxTagValBytes+1)}}},
		{"ValueNUL", domain.SetTags{Set: map[string]string{"k": "a\x00"}}},
		{"TooMany", domain.SetTags{Set: many}},
		{"BadRemoveKey", domain.SetTags{Remove: []string{"bad key"}}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := l.exec("s1", tc.cmd)
			wantCode(t, fmt.Sprintf("SetTags(%.80v)", tc.cmd), err, domain.CodeInvalidArgument)
		})
	}
	t.Run("Limits", func(t *testing.T) {
		ok := map[string]string{strings.Repeat("k", domain.MaxTagKeyBytes): strings.Repeat("v", domain.MaxTagValBytes), "a.b:c/d-e_f": ""}
		if _, _, err := l.exec("s1", domain.SetTags{Set: ok}); err != nil {
			t.Errorf("SetTags at the limits: %v, want nil", err)
		}
	})
}

func TestExecute_ArchiveSession(t *testing.T) {
	l := session(t, "f")
	s, e, err := l.exec("s1", domain.ArchiveSession{})
	if err != nil || e.Type != domain.SessionArchived || s.Status != domain.StatusArchived {
		t.Fatalf("ArchiveSession = %v, %v; want SessionArchived and status archived", e, err)
	}
	if err := s.Writable(); domain.ErrorCode(err) != domain.CodeConflict {
		t.Errorf("Writable() of an archived session = %v, want conflict", err)
	}
	_, _, err = l.exec("s1", domain.ArchiveSession{})
	wantCode(t, "archive twice", err, domain.CodeConflict)
	_, _, err = l.exec("s1", domain.RestoreSession{To: 1})
	wantCode(t, "restore of an archived session", err, domain.CodeConflict)
	l.must("s1", domain.CreateCheckpoint{Name: "final"})
	l.must("s1", domain.DeleteSession{})
	checkReplay(t, l)
}

func TestExecute_DeleteSession(t *testing.T) {
	l := session(t, "f")
	l.must("s1", domain.CreateCheckpoint{Name: "cp"})
	s, e, err := l.exec("s1", domain.DeleteSession{})
	if err != nil || e.Type != domain.SessionDeleted || s.Status != domain.StatusDeleted {
		t.Fatalf("DeleteSession = %v, %v; want SessionDeleted and status deleted", e, err)
	}
	if err := s.Writable(); !errors.Is(err, domain.ErrSessionDeleted) {
		t.Errorf("Writable() of a deleted session = %v, want ErrSessionDeleted", err)
	}
	cmds := []domain.Command{
		one(write("x", "x")), domain.SetTags{Set: map[string]string{"a": "b"}}, domain.ArchiveSession{},
		domain.DeleteSession{}, domain.CreateCheckpoint{Name: "c2"}, domain.DeleteCheckpoint{Name: "cp"},
		domain.RestoreSession{To: 1}, domain.ForkSession{ID: "f", Parent: s},
	}
	for _, cmd := range cmds {
		id := "s1"
		if _, ok := cmd.(domain.ForkSession); ok {
			id = "f"
		}
		_, _, err := l.exec(id, cmd)
		wantCode(t, fmt.Sprintf("%T on a deleted session", cmd), err, domain.CodeNotFound)
	}
	checkReplay(t, l)
}

func TestExecute_CreateCheckpoint(t *testing.T) {
	l := session(t, "f")
	first := l.sessions["s1"].head.Position
	l.must("s1", one(write("g", "1")))
	head := l.sessions["s1"].head.Position

	s, e, err := l.exec("s1", domain.CreateCheckpoint{Name: "v1.0-rc_1", Note: "first"})
	if err != nil {
		t.Fatalf("CreateCheckpoint: %v", err)
	}
	cp := cpNamed(s, "v1.0-rc_1")
	if e.Type != domain.CheckpointCreated || cp.Position != head || cp.At != s.Position || cp.Note != "first" || cp.Actor != "tester" {
		t.Errorf("checkpoint = %+v (event %s); want position %d at %d note first actor tester", cp, e.Type, head, s.Position)
	}
	s, _, err = l.exec("s1", domain.CreateCheckpoint{Name: "start", Position: first})
	if err != nil || cpNamed(s, "start").Position != first {
		t.Fatalf("CreateCheckpoint at %d = %+v, %v; want position %d", first, cpNamed(s, "start"), err, first)
	}
	if s.Checkpoints.Len() != 2 {
		t.Errorf("checkpoints = %v, want 2", s.Checkpoints)
	}
	checkReplay(t, l)

	bad := []struct {
		name string
		cmd  domain.CreateCheckpoint
		want domain.Code
	}{
		{"Exists", domain.CreateCheckpoint{Name: "start"}, domain.CodeAlreadyExists},
		{"Empty", domain.CreateCheckpoint{Name: ""}, domain.CodeInvalidArgument},
		{"AllDigits", domain.CreateCheckpoint{Name: "123"}, domain.CodeInvalidArgument},
		{"Zero", domain.CreateCheckpoint{Name: "0"}, domain.CodeInvalidArgument},
		{"LeadingDash", domain.CreateCheckpoint{Name: "-a"}, domain.CodeInvalidArgument},
		{"LeadingDot", domain.CreateCheckpoint{Name: ".a"}, domain.CodeInvalidArgument},
		{"Slash", domain.CreateCheckpoint{Name: "a/b"}, domain.CodeInvalidArgument},
		{"Space", domain.CreateCheckpoint{Name: "a b"}, domain.CodeInvalidArgument},
		{"At", domain.CreateCheckpoint{Name: "a@b"}, domain.CodeInvalidArgument},
		{"Unicode", domain.CreateCheckpoint{Name: "é"}, domain.CodeInvalidArgument},
		{"TooLong", domain.CreateCheckpoint{Name: strings.Repeat("a", domain.MaxNameBytes+1)}, domain.CodeInvalidArgument},
		{"NoteTooLong", domain.CreateCheckpoint{Name: "n", Note: strings.Repeat("x", domain.MaxNoteBytes+1)}, domain.CodeInvalidArgument},
		{"UnknownPosition", domain.CreateCheckpoint{Name: "u", Position: first + 1000}, domain.CodeNotFound},
		{"FuturePosition", domain.CreateCheckpoint{Name: "u", Position: l.sessions["s1"].head.Position + 1}, domain.CodeNotFound},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := l.exec("s1", tc.cmd)
			wantCode(t, fmt.Sprintf("CreateCheckpoint(%.60q at %d)", tc.cmd.Name, tc.cmd.Position), err, tc.want)
		})
	}
	t.Run("FuturePositionThatPastKnows", func(t *testing.T) {
		// A Past that answers for any position (as a loader that reads "the
		// state as of p" would) must not let a name point into the future.
		s := l.sessions["s1"].head
		anyPast := func(uint64) (*domain.Session, error) { return s, nil }
		_, _, err := domain.Execute(s, domain.CreateCheckpoint{Name: "later", Position: s.Position + 5}, l.meta(), anyPast)
		wantCode(t, "CreateCheckpoint at a future position", err, domain.CodeNotFound)
	})
	t.Run("ValidNames", func(t *testing.T) {
		for _, name := range []string{"a", "1a", "a1", "1.0", "v_1-2.3", "0x", strings.Repeat("a", domain.MaxNameBytes)} {
			if err := domain.ValidCheckpointName(name); err != nil {
				t.Errorf("ValidCheckpointName(%.40q) = %v, want nil", name, err)
			}
		}
	})
	t.Run("SameNameAfterDelete", func(t *testing.T) {
		l.must("s1", domain.DeleteCheckpoint{Name: "start"})
		s := l.must("s1", domain.CreateCheckpoint{Name: "start"})
		if cp := cpNamed(s, "start"); cp.Position != s.Position-1 || cp.At != s.Position {
			t.Errorf("re-created checkpoint = %+v, want position %d at %d", cp, s.Position-1, s.Position)
		}
		checkReplay(t, l)
	})
}

func TestExecute_DeleteCheckpoint(t *testing.T) {
	l := session(t, "f")
	l.must("s1", domain.CreateCheckpoint{Name: "a"})
	l.must("s1", domain.CreateCheckpoint{Name: "b"})
	s, e, err := l.exec("s1", domain.DeleteCheckpoint{Name: "a"})
	if err != nil || e.Type != domain.CheckpointDeleted {
		t.Fatalf("DeleteCheckpoint = %v, %v; want CheckpointDeleted", e, err)
	}
	if _, ok := s.Checkpoints.Get("a"); ok || s.Checkpoints.Len() != 1 {
		t.Errorf("checkpoints after delete = %v, want only b", s.Checkpoints)
	}
	if _, ok := l.sessions["s1"].states[s.Position-1].Checkpoints.Get("a"); !ok {
		t.Errorf("deleting a checkpoint changed the earlier state")
	}
	_, _, err = l.exec("s1", domain.DeleteCheckpoint{Name: "a"})
	wantCode(t, "DeleteCheckpoint of a deleted name", err, domain.CodeNotFound)
	_, _, err = l.exec("s1", domain.DeleteCheckpoint{Name: "never"})
	wantCode(t, "DeleteCheckpoint of an unknown name", err, domain.CodeNotFound)
	checkReplay(t, l)
}

func TestExecute_RestoreSession(t *testing.T) {
	l := session(t, "f")
	p1 := l.sessions["s1"].head.Position
	l.must("s1", one(write("g", "1")))
	l.must("other", domain.CreateSession{ID: "other", Tenant: "acme"}) // interleaved in the stream
	p2 := l.must("s1", one(write("h", "1"))).Position
	l.must("s1", one(remove("f", false)))
	head := l.sessions["s1"].head

	s, e, err := l.exec("s1", domain.RestoreSession{To: p1})
	if err != nil {
		t.Fatalf("RestoreSession(%d): %v", p1, err)
	}
	if e.Type != domain.SessionRestored || e.Restore.To != p1 {
		t.Errorf("event %s %+v, want SessionRestored to %d", e.Type, e.Restore, p1)
	}
	if s.Tree.Hash() != l.sessions["s1"].roots[p1] {
		t.Errorf("tree after restore to %d = %s, want %s", p1, s.Tree.Hash(), l.sessions["s1"].roots[p1])
	}
	// Undo the restore.
	s = l.must("s1", domain.RestoreSession{To: head.Position})
	if s.Tree.Hash() != head.Tree.Hash() {
		t.Errorf("restore back to %d: tree %s, want %s", head.Position, s.Tree.Hash(), head.Tree.Hash())
	}
	// Restoring to the head is allowed and changes nothing.
	s = l.must("s1", domain.RestoreSession{To: s.Position})
	if s.Tree.Hash() != head.Tree.Hash() {
		t.Errorf("restore to the head changed the tree")
	}
	if s = l.must("s1", domain.RestoreSession{To: p2}); s.Tree.Lookup("h") == nil || s.Tree.Lookup("f") == nil {
		t.Errorf("restore to %d: walks as %q, want f g h", p2, paths(s.Tree))
	}
	checkReplay(t, l)

	otherPos := l.sessions["other"].head.Position
	bad := []struct {
		name string
		to   uint64
	}{
		{"Zero", 0},
		{"Future", l.sessions["s1"].head.Position + 1},
		{"Far", 1 << 60},
		{"OtherSession", otherPos},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := l.exec("s1", domain.RestoreSession{To: tc.to})
			wantCode(t, fmt.Sprintf("RestoreSession(%d)", tc.to), err, domain.CodeNotFound)
		})
	}
	t.Run("NoPast", func(t *testing.T) {
		s := l.sessions["s1"].head
		_, _, err := domain.Execute(s, domain.RestoreSession{To: p1}, l.meta(), nil)
		wantCode(t, "RestoreSession without a Past", err, domain.CodeInternal)
	})
}

func TestSession_RequestPosition(t *testing.T) {
	l := session(t)
	for i := range domain.RecentRequests*2 + 10 {
		m := l.meta()
		m.RequestID = fmt.Sprint("r", i)
		if _, _, err := l.execMeta("s1", domain.SetTags{Set: map[string]string{"i": fmt.Sprint(i)}}, m); err != nil {
			t.Fatal(err)
		}
	}
	s := l.sessions["s1"].head
	newest := domain.RecentRequests*2 + 9
	if pos, ok := s.RequestPosition(fmt.Sprint("r", newest)); !ok || pos != s.Position {
		t.Errorf("RequestPosition(newest) = %d, %v; want %d, true", pos, ok, s.Position)
	}
	oldestKept := newest - domain.RecentRequests + 1
	if _, ok := s.RequestPosition(fmt.Sprint("r", oldestKept)); !ok {
		t.Errorf("RequestPosition(r%d) forgotten; the last %d should be kept", oldestKept, domain.RecentRequests)
	}
	if _, ok := s.RequestPosition(fmt.Sprint("r", oldestKept-1)); ok {
		t.Errorf("RequestPosition(r%d) remembered; only the last %d should be kept", oldestKept-1, domain.RecentRequests)
	}
	if _, ok := s.RequestPosition(""); ok {
		t.Errorf("RequestPosition(\"\") = true, want false")
	}
	ids, pos := s.RecentRequestList()
	if len(ids) != domain.RecentRequests || ids[0] != fmt.Sprint("r", newest) {
		t.Fatalf("RecentRequestList: %d ids starting %q, want %d starting r%d", len(ids), ids[0], domain.RecentRequests, newest)
	}
	var restored domain.Session
	restored.RestoreRecentRequests(ids, pos)
	ids2, pos2 := restored.RecentRequestList()
	if !slices.Equal(ids, ids2) || !slices.Equal(pos, pos2) {
		t.Errorf("RestoreRecentRequests(RecentRequestList()) = %v, want %v", ids2, ids)
	}
	// Replay remembers the same.
	replayed, err := l.replay()
	if err != nil {
		t.Fatal(err)
	}
	ids3, _ := replayed["s1"][s.Position].RecentRequestList()
	if !slices.Equal(ids, ids3) {
		t.Errorf("replayed request ids differ from the written ones")
	}
	// An earlier state shares the older ids with the head but knows none
	// of the later ones.
	p300, ok := s.RequestPosition("r300")
	if !ok {
		t.Fatal("RequestPosition(r300) forgotten")
	}
	mid := replayed["s1"][p300]
	if pos, ok := mid.RequestPosition("r300"); !ok || pos != p300 {
		t.Errorf("state at r300: RequestPosition(r300) = %d, %v; want %d, true", pos, ok, p300)
	}
	if _, ok := mid.RequestPosition("r301"); ok {
		t.Errorf("state at r300 remembers r301, written after it")
	}
	if _, ok := mid.RequestPosition("r45"); !ok {
		t.Errorf("state at r300 forgot r45, one of its last %d", domain.RecentRequests)
	}
}

// checkReplay replays the whole log and compares every state with the one
// recorded when it was written.
func checkReplay(t *testing.T, l *eventLog) {
	t.Helper()
	replayed, err := l.replay()
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	for _, id := range l.order {
		h := l.sessions[id]
		for pos, want := range h.states {
			got := replayed[id][pos]
			if msg := diffState(got, want); msg != "" {
				t.Fatalf("replay of %s at %d: %s", id, pos, msg)
			}
			if want.Tree.Hash() != h.roots[pos] {
				t.Fatalf("state of %s at %d changed after it was recorded: root %s, want %s", id, pos, want.Tree.Hash(), h.roots[pos])
			}
		}
	}
}

func diffState(got, want *domain.Session) string {
	switch {
	case got == nil:
		return "no state"
	case got.Tree.Hash() != want.Tree.Hash():
		return fmt.Sprintf("root %s, want %s", got.Tree.Hash(), want.Tree.Hash())
	case got.Tree.Count() != want.Tree.Count():
		return fmt.Sprintf("count %d, want %d", got.Tree.Count(), want.Tree.Count())
	case got.ID != want.ID || got.Tenant != want.Tenant || got.Owner != want.Owner || got.Origin != want.Origin:
		return fmt.Sprintf("identity %s/%s/%s/%+v, want %s/%s/%s/%+v", got.ID, got.Tenant, got.Owner, got.Origin, want.ID, want.Tenant, want.Owner, want.Origin)
	case got.Status != want.Status:
		return fmt.Sprintf("status %s, want %s", got.Status, want.Status)
	case got.Position != want.Position || got.Start != want.Start || got.Version != want.Version || got.LastHash != want.LastHash:
		return fmt.Sprintf("position/start/version/hash %d/%d/%d/%s, want %d/%d/%d/%s", got.Position, got.Start, got.Version, got.LastHash, want.Position, want.Start, want.Version, want.LastHash)
	case !got.CreatedAt.Equal(want.CreatedAt) || !got.UpdatedAt.Equal(want.UpdatedAt):
		return fmt.Sprintf("times %v/%v, want %v/%v", got.CreatedAt, got.UpdatedAt, want.CreatedAt, want.UpdatedAt)
	case !maps.Equal(got.Tags, want.Tags):
		return fmt.Sprintf("tags %v, want %v", got.Tags, want.Tags)
	case !slices.Equal(slices.Collect(got.Checkpoints.All()), slices.Collect(want.Checkpoints.All())):
		return fmt.Sprintf("checkpoints %v, want %v", got.Checkpoints, want.Checkpoints)
	}
	gi, gp := got.RecentRequestList()
	wi, wp := want.RecentRequestList()
	if !slices.Equal(gi, wi) || !slices.Equal(gp, wp) {
		return fmt.Sprintf("recent requests %v, want %v", gi, wi)
	}
	return ""
}

func TestExecute_ExpectedPosition(t *testing.T) {
	l := session(t, "f")
	head := l.sessions["s1"].head.Position
	cmds := []domain.Command{
		one(write("g", "1")), domain.SetTags{Set: map[string]string{"a": "b"}},
		domain.CreateCheckpoint{Name: "cp"}, domain.RestoreSession{To: head}, domain.ArchiveSession{},
	}
	for _, cmd := range cmds {
		m := l.meta()
		m.ExpectedPosition = head + 100
		_, _, err := l.execMeta("s1", cmd, m)
		wantCode(t, fmt.Sprintf("%T expecting position %d at %d", cmd, head+100, head), err, domain.CodeConflict)
	}
	for _, cmd := range cmds {
		m := l.meta()
		m.ExpectedPosition = l.sessions["s1"].head.Position
		if _, _, err := l.execMeta("s1", cmd, m); err != nil {
			t.Errorf("%T expecting the head position: %v, want nil", cmd, err)
		}
	}
	if _, _, err := l.exec("s1", domain.DeleteCheckpoint{Name: "cp"}); err != nil {
		t.Errorf("DeleteCheckpoint without an expectation: %v, want nil", err)
	}
	checkReplay(t, l)
}

// cpNamed returns a session's checkpoint called name (zero when none).
func cpNamed(s *domain.Session, name string) domain.Checkpoint {
	cp, _ := s.Checkpoints.Get(name)
	return cp
}

// TestExecute_BatchTreeAsReplayed: the state Execute returns for a batch
// takes the tree its decision built op by op; a replay of the stored event
// builds it from the ops at once. Both must be the same tree, also when
// later ops of the batch depend on earlier ones.
func TestExecute_BatchTreeAsReplayed(t *testing.T) {
	l := newLog(t)
	s := l.create("s1")
	s = l.must("s1", domain.ChangeFiles{Ops: []domain.FileOp{writeOp("keep/a.txt", "a"), writeOp("old/b.txt", "b")}, Batch: true})
	ops := []domain.FileOp{
		{Kind: domain.OpMkdir, Path: "new"},
		writeOp("new/c.txt", "c"),
		{Kind: domain.OpRename, Path: "old/b.txt", To: "new/b.txt"},
		{Kind: domain.OpRemove, Path: "old", Recursive: true},
		{Kind: domain.OpSymlink, Path: "new/link", Target: "c.txt"},
		writeOp("new/link", "through the link"),
		writeOp("keep/a.txt", "a again"),
	}
	n, e, err := l.exec("s1", domain.ChangeFiles{Ops: ops, Batch: true})
	if err != nil {
		t.Fatalf("Execute(batch): %v", err)
	}
	body, err := e.Encode()
	if err != nil {
		t.Fatal(err)
	}
	ev, err := domain.DecodeEvent(body)
	if err != nil {
		t.Fatal(err)
	}
	r, err := domain.Evolve(s, ev, n.Position, domain.Sum(body), nil)
	if err != nil {
		t.Fatalf("Evolve(the batch's event): %v", err)
	}
	if r.Tree.Hash() != n.Tree.Hash() {
		t.Errorf("replayed tree %s, want the executed %s", r.Tree.Hash(), n.Tree.Hash())
	}
	for _, p := range []string{"keep/a.txt", "new/b.txt", "new/c.txt", "new/link"} {
		if (r.Tree.Lookup(p) == nil) != (n.Tree.Lookup(p) == nil) || n.Tree.Lookup(p) == nil {
			t.Errorf("%s: executed %v, replayed %v; want both present", p, n.Tree.Lookup(p) != nil, r.Tree.Lookup(p) != nil)
		}
	}
}

// writeOp writes text as inline content.
func writeOp(p, text string) domain.FileOp {
	data := []byte(text)
	return domain.FileOp{Kind: domain.OpWrite, Path: p, Content: domain.Sum(data), Size: int64(len(data)), Data: data}
}
