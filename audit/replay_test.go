package audit_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/strand-dev/strand/audit"
	"github.com/strand-dev/strand/domain"
)

func TestReader_State(t *testing.T) {
	f := newFixture(t)
	r := f.reader(t, audit.Streams{})
	ctx := context.Background()
	tenantOf := map[string]string{f.A: "acme", f.B: "acme", f.C: "acme", f.D: "other", f.E: "other"}
	t.Run("EveryPosition", func(t *testing.T) {
		for pos, want := range f.states {
			got, err := r.State(ctx, tenantOf[want.ID], want.ID, pos)
			if err != nil {
				t.Fatalf("state of %s at %d: %v", want.ID, pos, err)
			}
			if got.Tree.Hash() != want.Tree.Hash() || got.Version != want.Version || got.LastHash != want.LastHash {
				t.Fatalf("state of %s at %d: root %s v%d, want %s v%d", want.ID, pos, got.Tree.Hash(), got.Version, want.Tree.Hash(), want.Version)
			}
		}
	})
	t.Run("RebuiltStates", func(t *testing.T) {
		// With room for one past state, restores and forks rebuild theirs
		// by replaying again, folding too; the answers are the same.
		small := f.reader(t, audit.Streams{})
		small.PastStates = 1
		for _, last := range []string{"A.after", "B.b", "C.chmod"} {
			want := f.states[f.pos[last]]
			id := want.ID
			got, err := small.State(ctx, "acme", id, 0)
			if err != nil || got.Tree.Hash() != want.Tree.Hash() || got.Version != want.Version {
				t.Fatalf("head of %s with one past state: %v; want root %s v%d", id, err, want.Tree.Hash(), want.Version)
			}
		}
	})
	t.Run("Names", func(t *testing.T) {
		cp, err := r.StateAt(ctx, "acme", f.A, "cp1")
		if err != nil || cp.Position != f.pos["A.cp1.at"] {
			t.Fatalf("at cp1: %v, %v; want position %d", cp, err, f.pos["A.cp1.at"])
		}
		head, err := r.StateAt(ctx, "acme", f.A, "")
		if err != nil || head.Position != f.pos["A.after"] {
			t.Fatalf("head: %v; want position %d", err, f.pos["A.after"])
		}
	})
	t.Run("Refusals", func(t *testing.T) {
		for _, tc := range []struct {
			session, at string
			want        domain.Code
		}{
			{f.A, "0", domain.CodeInvalidArgument},
			{f.A, "nope", domain.CodeNotFound},
			{f.A, "999999", domain.CodeNotFound},
			{"missing", "", domain.CodeNotFound},
		} {
			if _, err := r.StateAt(ctx, "acme", tc.session, tc.at); domain.ErrorCode(err) != tc.want {
				t.Errorf("StateAt(%s, %q): got %v, want %s", tc.session, tc.at, err, tc.want)
			}
		}
		// A position of another session is not one of A's.
		if _, err := r.State(ctx, "acme", f.A, f.pos["B.b"]); !errors.Is(err, domain.ErrPositionUnknown) {
			t.Errorf("A at B's position: got %v, want position unknown", err)
		}
	})
	t.Run("Broken", func(t *testing.T) {
		copyStream(t, f.env.NC, "STRAND_EVENTS", "BROKEN_EVENTS", nil)
		deleteMsg(t, f.env.NC, "BROKEN_EVENTS", f.pos["A.mkdir"])
		br := f.reader(t, audit.Streams{Events: "BROKEN_EVENTS"})
		var be *audit.BrokenError
		if _, err := br.State(ctx, "acme", f.A, 0); !errors.As(err, &be) || be.Finding.Position != f.pos["A.link"] {
			t.Fatalf("got %v, want broken at %d", err, f.pos["A.link"])
		}
		// Before the damage the history is still good.
		if _, err := br.State(ctx, "acme", f.A, f.pos["A.big"]); err != nil {
			t.Fatalf("before the damage: %v", err)
		}
	})
	t.Run("WrongRoot", func(t *testing.T) {
		// A replay compares the root of the state it hands out, not of
		// every event: a head whose recorded root was altered (no later
		// event names its hash) is refused, the states before it are not.
		at := f.pos["A.after"]
		root := f.states[at].Tree.Hash()
		copyStream(t, f.env.NC, "STRAND_EVENTS", "WRONGROOT_EVENTS", func(seq uint64, m *nats.Msg) []*nats.Msg {
			if seq == at {
				m.Data = flip(t, m.Data, string(root[:]))
			}
			return []*nats.Msg{m}
		})
		br := f.reader(t, audit.Streams{Events: "WRONGROOT_EVENTS"})
		var be *audit.BrokenError
		_, err := br.State(ctx, "acme", f.A, 0)
		if !errors.As(err, &be) || be.Finding.Position != at || be.Finding.Kind != audit.KindRoot {
			t.Fatalf("head with an altered root: got %v, want broken at %d (root)", err, at)
		}
		if got, err := br.StateAt(ctx, "acme", f.A, strconv.FormatUint(f.pos["A.batch"], 10)); err != nil || got.Tree.Hash() != f.states[f.pos["A.batch"]].Tree.Hash() {
			t.Fatalf("before the altered head: %v, %v", got, err)
		}
	})
}

// compareDir checks that dir holds exactly the tree: kinds, permission
// bits, bytes, symlink targets.
func compareDir(t *testing.T, r *audit.Reader, tree domain.Tree, dir string) {
	t.Helper()
	want := map[string]*domain.Node{}
	tree.Walk("", "", func(e domain.Entry) bool { want[e.Path] = e.Node; return true })
	seen := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		n := want[rel]
		if n == nil {
			t.Errorf("%s is not in the tree", rel)
			return nil
		}
		seen++
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch n.Kind {
		case domain.KindDir:
			if !info.IsDir() || uint32(info.Mode().Perm()) != n.Mode&0o777 {
				t.Errorf("%s: got %v, want dir %o", rel, info.Mode(), n.Mode)
			}
		case domain.KindFile:
			if !info.Mode().IsRegular() || uint32(info.Mode().Perm()) != n.Mode&0o777 {
				t.Errorf("%s: got %v, want file %o", rel, info.Mode(), n.Mode)
			}
			got, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			var content bytes.Buffer
			if _, err := r.CopyBlob(context.Background(), n.Content, &content); err != nil {
				return err
			}
			if !bytes.Equal(got, content.Bytes()) || domain.Sum(got) != n.Content {
				t.Errorf("%s: %d bytes on disk differ from blob %s", rel, len(got), n.Content)
			}
		case domain.KindSymlink:
			target, err := os.Readlink(p)
			if err != nil || info.Mode()&fs.ModeSymlink == 0 {
				t.Errorf("%s: not a symlink (%v)", rel, err)
				return nil
			}
			wantTarget := n.Target
			if strings.HasPrefix(wantTarget, "/") {
				// the session root, relative to the link
				wantTarget = strings.Repeat("../", strings.Count(rel, "/")) + strings.TrimPrefix(wantTarget, "/")
			}
			if target != wantTarget {
				t.Errorf("%s: target %q, want %q", rel, target, wantTarget)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen != len(want) {
		t.Errorf("%d entries on disk, %d in the tree", seen, len(want))
	}
}

func TestReader_WriteTree(t *testing.T) {
	f := newFixture(t)
	r := f.reader(t, audit.Streams{})
	ctx := context.Background()
	s, err := r.StateAt(ctx, "acme", f.A, "cp1")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("AsItWas", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "out")
		st, err := r.WriteTree(ctx, s.Tree, dir, audit.WriteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// src/main.go, docs/big.bin (chunked), bin/run.sh; src, docs, empty, bin; link, docs/top
		if st.Files != 3 || st.Dirs != 4 || st.Symlinks != 2 {
			t.Fatalf("wrote %+v", st)
		}
		compareDir(t, r, s.Tree, dir)
		// docs/top -> /src means the session's src: it must resolve there.
		if got, err := os.ReadFile(filepath.Join(dir, "docs/top/main.go")); err != nil || string(got) != "package main // v1\n" {
			t.Fatalf("through docs/top: %q %v", got, err)
		}
	})
	t.Run("NotEmpty", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "keep"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := r.WriteTree(ctx, s.Tree, dir, audit.WriteOptions{}); !errors.Is(err, audit.ErrNotEmpty) {
			t.Fatalf("got %v, want ErrNotEmpty", err)
		}
		if _, err := os.Stat(filepath.Join(dir, "keep")); err != nil {
			t.Fatalf("a refused replay touched the directory: %v", err)
		}
	})
	t.Run("ForceEmptiesFirst", func(t *testing.T) {
		dir := t.TempDir()
		outside := t.TempDir()
		// A planted link must not carry writes outside: "src" pointing
		// away would otherwise receive src/main.go.
		if err := os.Symlink(outside, filepath.Join(dir, "src")); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "junk"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := r.WriteTree(ctx, s.Tree, dir, audit.WriteOptions{Force: true}); err != nil {
			t.Fatal(err)
		}
		compareDir(t, r, s.Tree, dir)
		if names, _ := os.ReadDir(outside); len(names) != 0 {
			t.Fatalf("wrote outside the directory: %v", names)
		}
	})
	t.Run("Unsafe", func(t *testing.T) {
		build := func(entries ...domain.Entry) domain.Tree {
			var tr domain.Tree
			for _, e := range entries {
				var err error
				if tr, err = tr.Put(e.Path, e.Node); err != nil {
					t.Fatal(err)
				}
			}
			return tr
		}
		link := func(p, target string) domain.Entry {
			return domain.Entry{Path: p, Node: domain.NewSymlink(target, nil)}
		}
		dir := func(p string) domain.Entry { return domain.Entry{Path: p, Node: domain.NewDir(0o755, nil)} }
		for _, tc := range []struct {
			name string
			tree domain.Tree
			ok   bool
		}{
			{"UpAndOut", build(link("l", "../../etc")), false},
			{"RootParent", build(link("l", "/..")), false},
			{"Chained", build(dir("x"), link("x/l", ".."), link("y", "x/l/..")), false},
			{"ThroughMissing", build(link("l", "nothing/../../x")), false},
			{"DotDotName", build(dir("a"), domain.Entry{Path: "a/../b", Node: domain.NewDir(0o755, nil)}), false},
			{"Inside", build(dir("x/y"), link("x/y/l", "../../x"), link("abs", "/x/y")), true},
			{"Loop", build(link("a", "b"), link("b", "a")), true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				out := filepath.Join(t.TempDir(), "out")
				_, err := r.WriteTree(ctx, tc.tree, out, audit.WriteOptions{})
				if (err == nil) != tc.ok {
					t.Fatalf("got %v, want ok %v", err, tc.ok)
				}
				if !tc.ok {
					if _, err := os.Stat(out); !os.IsNotExist(err) {
						t.Fatalf("a refused tree created %s (%v)", out, err)
					}
					return
				}
				compareDir(t, r, tc.tree, out)
			})
		}
	})
}

func TestReader_Log(t *testing.T) {
	f := newFixture(t)
	r := f.reader(t, audit.Streams{})
	ctx := context.Background()
	p := f.pos
	logged := func(tenant string, flt audit.Filter) []uint64 {
		t.Helper()
		var out []uint64
		err := r.Log(ctx, tenant, flt, func(e audit.Entry) error {
			if e.Hash == "" || e.Type == "" || e.Error != "" || e.Summary == "" {
				t.Errorf("incomplete entry %+v", e)
			}
			out = append(out, e.Position)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	byMinute := func(name string) int {
		// meta gives the n-th id the time t0 + n minutes
		return int(f.states[p[name]].UpdatedAt.Sub(t0).Minutes())
	}
	for _, tc := range []struct {
		name   string
		tenant string
		filter audit.Filter
		want   []uint64
	}{
		{"Session", "acme", audit.Filter{Session: f.B}, []uint64{p["B.fork"], p["B.b"]}},
		{"Tenant", "other", audit.Filter{}, []uint64{p["D.create"], p["D.x"], p["E.create"], p["E.y"]}},
		{"Actor", "acme", audit.Filter{Actor: "bob"}, []uint64{p["A.rename"], p["A.main2"], p["A.rmbin"]}},
		{"Type", "acme", audit.Filter{Types: []domain.EventType{domain.SessionRestored, domain.SessionForked}}, []uint64{p["A.restore"], p["B.fork"], p["C.fork"]}},
		{"Path", "acme", audit.Filter{Path: "src/main.go"}, []uint64{p["A.main1"], p["A.main2"], p["A.batch"]}},
		{"PathBelowDir", "acme", audit.Filter{Path: "bin"}, []uint64{p["A.run"], p["A.rmbin"]}},
		{"Window", "acme", audit.Filter{
			Since: t0.Add(time.Duration(byMinute("A.mkdir")) * time.Minute),
			Until: t0.Add(time.Duration(byMinute("A.abs")) * time.Minute),
		}, []uint64{p["A.mkdir"], p["A.link"]}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := logged(tc.tenant, tc.filter); !slices.Equal(got, tc.want) {
				t.Fatalf("got positions %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("All", func(t *testing.T) {
		got := logged("acme", audit.Filter{})
		if len(got) != int(f.env.LastSeq(t))-4 || !slices.IsSorted(got) {
			t.Fatalf("got %d positions %v, want every acme event in order", len(got), got)
		}
	})
	t.Run("Payloads", func(t *testing.T) {
		var rest audit.Entry
		r.Log(ctx, "acme", audit.Filter{Types: []domain.EventType{domain.SessionRestored}}, func(e audit.Entry) error { rest = e; return nil })
		if rest.RestoredTo != p["A.cp1.at"] || rest.Actor != "carol" || rest.Prev == "" || rest.Root == "" {
			t.Fatalf("restore entry %+v", rest)
		}
		// The timeline's line is the event's summary, as the API shows it.
		if want := "restored to " + strconv.FormatUint(p["A.cp1.at"], 10); rest.Summary != want {
			t.Errorf("restore entry summary %q, want %q", rest.Summary, want)
		}
	})
}

func TestReader_Blame(t *testing.T) {
	f := newFixture(t)
	r := f.reader(t, audit.Streams{})
	p := f.pos
	type change struct {
		pos  uint64
		kind string
	}
	for _, tc := range []struct {
		session, path string
		want          []change
	}{
		{f.A, "src/main.go", []change{{p["A.main1"], audit.ChangeWrite}, {p["A.main2"], audit.ChangeWrite}, {p["A.restore"], audit.ChangeRestore}, {p["A.batch"], audit.ChangeRenameOut}}},
		{f.A, "cmd/main.go", []change{{p["A.batch"], audit.ChangeRenameIn}}},
		{f.A, "docs/big.bin", []change{{p["A.big"], audit.ChangeWrite}, {p["A.rename"], audit.ChangeRenameOut}, {p["A.restore"], audit.ChangeRestore}}},
		{f.A, "docs/big2.bin", []change{{p["A.rename"], audit.ChangeRenameIn}, {p["A.restore"], audit.ChangeRestore}}},
		{f.A, "bin", []change{{p["A.run"], audit.ChangeWrite}, {p["A.rmbin"], audit.ChangeRemove}, {p["A.restore"], audit.ChangeRestore}}},
		{f.A, "empty", []change{{p["A.mkdir"], audit.ChangeMkdir}}},
		{f.C, "empty", []change{{p["A.mkdir"], audit.ChangeMkdir}, {p["C.chmod"], audit.ChangeMode}}},
		{f.C, "link", []change{{p["A.link"], audit.ChangeSymlink}, {p["C.unlink"], audit.ChangeRemove}}},
		{f.C, "b.txt", []change{{p["B.b"], audit.ChangeWrite}}},
		{f.A, "never", nil},
	} {
		t.Run(tc.path, func(t *testing.T) {
			got, err := r.Blame(context.Background(), "acme", tc.session, tc.path)
			if err != nil {
				t.Fatal(err)
			}
			var kinds []change
			for _, c := range got {
				kinds = append(kinds, change{c.Position, c.Kind})
			}
			if !slices.Equal(kinds, tc.want) {
				t.Fatalf("blame %s: got %v, want %v", tc.path, kinds, tc.want)
			}
			for _, c := range got {
				if c.Kind == audit.ChangeRestore && c.RestoredTo != p["A.cp1.at"] {
					t.Errorf("restore went back to %d, want %d", c.RestoredTo, p["A.cp1.at"])
				}
			}
		})
	}
	t.Run("Details", func(t *testing.T) {
		got, err := r.Blame(context.Background(), "acme", f.A, "src/main.go")
		if err != nil {
			t.Fatal(err)
		}
		last := got[len(got)-1]
		if last.From != "src/main.go" || last.To != "cmd/main.go" || last.Actor != "carol" || last.After.Kind != "" {
			t.Fatalf("rename-out: %+v", last)
		}
		if first := got[0]; first.After.Kind != "file" || first.After.Size != int64(len("package main // v1\n")) || first.Actor != "alice" {
			t.Fatalf("write: %+v", first)
		}
		inC, err := r.Blame(context.Background(), "acme", f.C, "link")
		if err != nil || inC[0].Session != f.A {
			t.Fatalf("the ancestor's change is named with its session: %+v %v", inC, err)
		}
	})
}
