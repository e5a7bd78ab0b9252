package domain

import (
	"fmt"
	"strings"
	"testing"
)

// mtTree builds a tree from path -> spec: "dir", "link:TARGET", "x:CONTENT"
// (an executable file) or the content of a 0644 file. Contents are kept in
// store by hash for line merges.
func mtTree(t *testing.T, store map[Hash][]byte, spec map[string]string) Tree {
	t.Helper()
	var tr Tree
	var err error
	for _, p := range sortedKeys(spec) {
		v := spec[p]
		var n *Node
		switch {
		case v == "dir":
			n = NewDir(DefaultDirMode, nil)
		case strings.HasPrefix(v, "link:"):
			n = NewSymlink(strings.TrimPrefix(v, "link:"), nil)
		default:
			mode := uint32(0o644)
			if c, ok := strings.CutPrefix(v, "x:"); ok {
				v, mode = c, 0o755
			}
			h := Sum([]byte(v))
			store[h] = []byte(v)
			n = NewFile(h, int64(len(v)), mode, nil)
		}
		if tr, err = tr.Put(p, n); err != nil {
			t.Fatalf("put %s: %v", p, err)
		}
	}
	return tr
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if ComparePaths(out[j], out[i]) < 0 {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// mtDump describes a tree as path -> spec, the inverse of mtTree.
func mtDump(tr Tree, store map[Hash][]byte) map[string]string {
	out := map[string]string{}
	tr.Walk("", "", func(e Entry) bool {
		n := e.Node
		switch n.Kind {
		case KindDir:
			out[e.Path] = "dir"
		case KindSymlink:
			out[e.Path] = "link:" + n.Target
		default:
			v := string(store[n.Content])
			if n.Mode&0o111 != 0 {
				v = "x:" + v
			}
			out[e.Path] = v
		}
		return true
	})
	return out
}

func mtMerge(t *testing.T, base, ours, theirs map[string]string, strategy string, paths map[string]string) (MergeOutcome, map[Hash][]byte) {
	t.Helper()
	store := map[Hash][]byte{}
	in := MergeInput{
		Base: mtTree(t, store, base), Ours: mtTree(t, store, ours), Theirs: mtTree(t, store, theirs),
		Strategy: strategy, Paths: paths,
		Content: func(h Hash) ([]byte, error) {
			b, ok := store[h]
			if !ok {
				return nil, fmt.Errorf("no content %s", h)
			}
			return b, nil
		},
	}
	out, err := Merge(in)
	if err != nil {
		t.Fatalf("merge: %v", err)
	}
	for h, b := range out.Content {
		store[h] = b
	}
	if len(out.Conflicts) == 0 {
		got, err := applyOps(in.Ours, out.Ops)
		if err != nil || got.Hash() != out.Tree.Hash() {
			t.Fatalf("ops do not rebuild the merged tree: %v", err)
		}
	}
	return out, store
}

func TestMerge3(t *testing.T) {
	base := "a\nb\nc\nd\ne\n"
	tests := []struct {
		name, ours, theirs, want string
		ok                       bool
	}{
		{"Disjoint", "A\nb\nc\nd\ne\n", "a\nb\nc\nd\nE\n", "A\nb\nc\nd\nE\n", true},
		{"InsertBoth", "a\nx\nb\nc\nd\ne\n", "a\nb\nc\nd\ne\ny\n", "a\nx\nb\nc\nd\ne\ny\n", true},
		{"Same", "a\nB\nc\nd\ne\n", "a\nB\nc\nd\ne\n", "a\nB\nc\nd\ne\n", true},
		{"OneSide", base, "a\nb\nC\nd\ne\n", "a\nb\nC\nd\ne\n", true},
		{"Overlap", "a\nB1\nc\nd\ne\n", "a\nB2\nc\nd\ne\n", "", false},
		{"Adjacent", "a\nB\nc\nd\ne\n", "a\nb\nC\nd\ne\n", "", false},
		{"DeleteAndEdit", "a\nc\nd\ne\n", "a\nB\nc\nd\ne\n", "", false},
		{"NoFinalNewline", "A\nb\nc\nd\ne\n", "a\nb\nc\nd\ne", "A\nb\nc\nd\ne", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := Merge3([]byte(base), []byte(tc.ours), []byte(tc.theirs))
			if ok != tc.ok || (ok && string(got) != tc.want) {
				t.Fatalf("Merge3(%q, %q) = %q, %v; want %q, %v", tc.ours, tc.theirs, got, ok, tc.want, tc.ok)
			}
		})
	}
}

// mtConflictBase has one path for every kind of conflict and a few that
// merge cleanly.
var (
	mtBase = map[string]string{
		"both.txt":   "one\ntwo\nthree\n",
		"lines.txt":  "1\n2\n3\n4\n5\n6\n",
		"moddel.txt": "keep me\n",
		"delmod.txt": "keep me too\n",
		"kind":       "a file\n",
		"gone/a":     "a\n",
		"gone/b":     "b\n",
		"link":       "link:both.txt",
		"same.txt":   "same\n",
		"mode.sh":    "echo\n",
	}
	mtOurs = map[string]string{
		"both.txt":   "one\nOURS\nthree\n",
		"lines.txt":  "1\nOURS\n3\n4\n5\n6\n",
		"moddel.txt": "modified by ours\n",
		"kind":       "ours changed the file\n",
		"gone/a":     "a\n",
		"gone/b":     "b\n",
		"gone/new":   "ours added below a dir theirs deleted\n",
		"link":       "link:lines.txt",
		"same.txt":   "same change\n",
		"mode.sh":    "echo\n",
		"addadd":     "ours\n",
		"ours-only":  "o\n",
	}
	mtTheirs = map[string]string{
		"both.txt":    "one\nTHEIRS\nthree\n",
		"lines.txt":   "1\n2\n3\n4\n5\nTHEIRS\n",
		"delmod.txt":  "modified by theirs\n",
		"kind":        "dir",
		"kind/inside": "x\n",
		"link":        "link:same.txt",
		"same.txt":    "same change\n",
		"mode.sh":     "x:echo\n",
		"addadd":      "theirs\n",
		"theirs-only": "t\n",
	}
)

func TestMerge_Conflicts(t *testing.T) {
	out, _ := mtMerge(t, mtBase, mtOurs, mtTheirs, "", nil)
	want := map[string]string{
		"both.txt":   ConflictBothModified,
		"moddel.txt": ConflictModifyDelete,
		"delmod.txt": ConflictModifyDelete,
		"kind":       ConflictTypeChange,
		"link":       ConflictBothModified,
		"addadd":     ConflictAddAdd,
	}
	got := map[string]string{}
	for _, c := range out.Conflicts {
		got[c.Path] = c.Kind
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("conflicts = %v\nwant %v", got, want)
	}
	if len(out.Ops) != 0 {
		t.Fatalf("a merge with conflicts has ops: %v", out.Ops)
	}
	for _, c := range out.Conflicts {
		if c.Path == "moddel.txt" && (c.Ours != "modified" || c.Theirs != "deleted") {
			t.Errorf("moddel.txt: ours %s theirs %s, want modified and deleted", c.Ours, c.Theirs)
		}
	}
}

func TestMerge_Strategies(t *testing.T) {
	common := map[string]string{
		// clean parts of the merge, whatever the strategy
		"lines.txt":   "1\nOURS\n3\n4\n5\nTHEIRS\n",
		"gone/new":    "ours added below a dir theirs deleted\n",
		"gone":        "dir",
		"same.txt":    "same change\n",
		"mode.sh":     "x:echo\n",
		"ours-only":   "o\n",
		"theirs-only": "t\n",
	}
	t.Run("Theirs", func(t *testing.T) {
		out, store := mtMerge(t, mtBase, mtOurs, mtTheirs, StrategyTheirs, nil)
		if len(out.Conflicts) != 0 || len(out.Resolved) != 6 {
			t.Fatalf("conflicts %v, resolved %d; want none and 6", out.Conflicts, len(out.Resolved))
		}
		want := map[string]string{
			"both.txt": "one\nTHEIRS\nthree\n", "delmod.txt": "modified by theirs\n",
			"kind": "dir", "kind/inside": "x\n", "link": "link:same.txt", "addadd": "theirs\n",
		}
		for k, v := range common {
			want[k] = v
		}
		if got := mtDump(out.Tree, store); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("tree = %v\nwant %v", got, want)
		}
	})
	t.Run("Ours", func(t *testing.T) {
		out, store := mtMerge(t, mtBase, mtOurs, mtTheirs, StrategyOurs, nil)
		want := map[string]string{
			"both.txt": "one\nOURS\nthree\n", "moddel.txt": "modified by ours\n",
			"kind": "ours changed the file\n", "link": "link:lines.txt", "addadd": "ours\n",
		}
		for k, v := range common {
			want[k] = v
		}
		if got := mtDump(out.Tree, store); len(out.Conflicts) != 0 || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("conflicts %v, tree = %v\nwant %v", out.Conflicts, got, want)
		}
	})
	t.Run("PerPath", func(t *testing.T) {
		paths := map[string]string{"both.txt": StrategyTheirs, "kind": StrategyTheirs}
		out, store := mtMerge(t, mtBase, mtOurs, mtTheirs, StrategyOurs, paths)
		got := mtDump(out.Tree, store)
		if got["both.txt"] != "one\nTHEIRS\nthree\n" || got["kind/inside"] != "x\n" || got["addadd"] != "ours\n" || got["moddel.txt"] != "modified by ours\n" {
			t.Fatalf("per-path strategies not applied: %v", got)
		}
	})
	t.Run("PartlyResolved", func(t *testing.T) {
		out, _ := mtMerge(t, mtBase, mtOurs, mtTheirs, "", map[string]string{"both.txt": StrategyOurs})
		if len(out.Conflicts) != 5 || len(out.Resolved) != 1 {
			t.Fatalf("got %d conflicts and %d resolved, want 5 and 1", len(out.Conflicts), len(out.Resolved))
		}
	})
}

func TestMerge_Clean(t *testing.T) {
	base := map[string]string{"src/a.go": "package a\n\nfunc A() {}\n\nfunc B() {}\n", "old.txt": "old\n", "d": "dir"}
	ours := map[string]string{"src/a.go": "package a\n\nfunc A() { ours() }\n\nfunc B() {}\n", "old.txt": "old\n", "d": "dir", "o": "o\n"}
	theirs := map[string]string{"src/a.go": "package a\n\nfunc A() {}\n\nfunc B() { theirs() }\n", "src/new.go": "new\n", "moved.txt": "old\n"}
	out, store := mtMerge(t, base, ours, theirs, "", nil)
	if len(out.Conflicts) != 0 {
		t.Fatalf("conflicts: %v", out.Conflicts)
	}
	want := map[string]string{
		"src": "dir", "src/a.go": "package a\n\nfunc A() { ours() }\n\nfunc B() { theirs() }\n", "src/new.go": "new\n",
		"moved.txt": "old\n", "o": "o\n",
	}
	if got := mtDump(out.Tree, store); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("tree = %v\nwant %v", got, want)
	}
	results := map[string]string{}
	for _, p := range out.Paths {
		results[p.Path] = p.Result
	}
	if results["src/a.go"] != MergeLines || results["src/new.go"] != MergeTheirs {
		t.Fatalf("path results = %v", results)
	}
	if len(out.Content) != 1 {
		t.Fatalf("line merge content: %d blobs, want 1", len(out.Content))
	}
}

func TestMerge_UpToDate(t *testing.T) {
	base := map[string]string{"a": "a\n"}
	ours := map[string]string{"a": "a\n", "b": "b\n"}
	out, _ := mtMerge(t, base, ours, base, "", nil)
	if len(out.Ops) != 0 || len(out.Conflicts) != 0 {
		t.Fatalf("merging an unchanged side: ops %v conflicts %v", out.Ops, out.Conflicts)
	}
}

func TestCommonBase(t *testing.T) {
	parent := Lineage{{Session: "P", Position: 50}}
	fork := Lineage{{Session: "F", Position: 70}, {Session: "P", Position: 10}}
	forkOfFork := Lineage{{Session: "G", Position: 90}, {Session: "F", Position: 30}, {Session: "P", Position: 10}}
	sibling := Lineage{{Session: "S", Position: 80}, {Session: "P", Position: 20}}
	fromSource := Lineage{{Session: "X", Position: 5}, {Source: "s", Revision: 2}}
	fromSource2 := Lineage{{Session: "Y", Position: 6}, {Source: "s", Revision: 2}}
	tests := []struct {
		name string
		a, b Lineage
		want LineageStep
		ok   bool
	}{
		{"ForkIntoParent", fork, parent, LineageStep{Session: "P", Position: 10}, true},
		{"ParentIntoFork", parent, fork, LineageStep{Session: "P", Position: 10}, true},
		{"ForkOfFork", forkOfFork, parent, LineageStep{Session: "P", Position: 10}, true},
		{"ForkOfForkIntoFork", forkOfFork, fork, LineageStep{Session: "F", Position: 30}, true},
		{"Siblings", sibling, fork, LineageStep{Session: "P", Position: 10}, true},
		{"SameSource", fromSource, fromSource2, LineageStep{Source: "s", Revision: 2}, true},
		{"Unrelated", fromSource, parent, LineageStep{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := CommonBase(tc.a, tc.b)
			if ok != tc.ok || got != tc.want {
				t.Fatalf("CommonBase = %+v, %v; want %+v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestDiffOps(t *testing.T) {
	store := map[Hash][]byte{}
	a := mtTree(t, store, map[string]string{"f": "f\n", "d": "dir", "d/x": "x\n", "l": "link:f", "k": "k\n", "m": "dir", "m/y": "y\n"})
	b := mtTree(t, store, map[string]string{"f": "x:f2\n", "d": "d is a file now\n", "l": "link:k", "k": "dir", "k/z": "z\n", "n/deep/w": "w\n", "m2/y": "y\n"})
	ops := DiffOps(a, b, true)
	got, err := applyOps(a, ops)
	if err != nil || got.Hash() != b.Hash() {
		t.Fatalf("DiffOps does not rebuild the tree: %v\nops %+v", err, ops)
	}
	if ops := DiffOps(a, a, true); len(ops) != 0 {
		t.Fatalf("DiffOps of equal trees: %v", ops)
	}
}

// TestMerge_DirectoryModes: a directory's own mode or xattrs changed on one
// side are merged (a chmod and xattr operations in the merge's ops), with
// the entries below merging on their own; changed on both sides
// differently, the target's stay.
func TestMerge_DirectoryModes(t *testing.T) {
	store := map[Hash][]byte{}
	base := mtTree(t, store, map[string]string{"d": "dir", "d/a": "a\n", "e": "dir", "e/b": "b\n", "f": "dir"})
	with := func(tr Tree, p string, mode uint32, x map[string][]byte) Tree {
		t.Helper()
		n := tr.Lookup(p).WithMode(mode).WithXattrs(x)
		out, err := tr.Put(p, n)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	put := func(tr Tree, p, content string) Tree {
		t.Helper()
		h := Sum([]byte(content))
		store[h] = []byte(content)
		out, err := tr.Put(p, NewFile(h, int64(len(content)), 0o644, nil))
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	// Ours: a file added in d, f's mode changed. Theirs: d chmodded, e
	// given an xattr, f's mode changed otherwise.
	ours := with(put(base, "d/ours", "o\n"), "f", 0o750, nil)
	theirs := with(with(with(base, "d", 0o700, nil), "e", DefaultDirMode, map[string][]byte{"user.k": []byte("v")}), "f", 0o711, nil)
	out, err := Merge(MergeInput{Base: base, Ours: ours, Theirs: theirs, Content: func(h Hash) ([]byte, error) { return store[h], nil }})
	if err != nil || len(out.Conflicts) != 0 {
		t.Fatalf("merge: %v, conflicts %v", err, out.Conflicts)
	}
	got, err := applyOps(ours, out.Ops)
	if err != nil || got.Hash() != out.Tree.Hash() {
		t.Fatalf("the ops %+v do not rebuild the merged tree: %v", out.Ops, err)
	}
	if d := got.Lookup("d"); d.Mode != 0o700 || got.Lookup("d/ours") == nil || got.Lookup("d/a") == nil {
		t.Errorf("d: mode %o, entries ours %v a %v; want theirs' 0700 and both entries", d.Mode, got.Lookup("d/ours") != nil, got.Lookup("d/a") != nil)
	}
	if e := got.Lookup("e"); string(e.Xattrs["user.k"]) != "v" || got.Lookup("e/b") == nil {
		t.Errorf("e: xattrs %v, want theirs' user.k with e/b kept", e.Xattrs)
	}
	if f := got.Lookup("f"); f.Mode != 0o750 {
		t.Errorf("f, changed on both sides: mode %o, want the target's 0750", f.Mode)
	}
	chmods := 0
	for _, op := range out.Ops {
		if op.Kind == OpChmod {
			chmods++
			if op.Path != "d" || op.Mode != 0o700 {
				t.Errorf("chmod op %+v, want d to 0700", op)
			}
		}
	}
	if chmods != 1 {
		t.Errorf("%d chmod ops in %+v, want one", chmods, out.Ops)
	}
}
