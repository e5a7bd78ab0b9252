package domain_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/strand-dev/strand/domain"
)

// putNode returns tr with node at p, failing the test on a refusal.
func putNode(t testing.TB, tr domain.Tree, p string, n *domain.Node) domain.Tree {
	t.Helper()
	out, err := tr.Put(p, n)
	if err != nil {
		t.Fatalf("Put(%q): %v", p, err)
	}
	return out
}

func textFile(data string, mode uint32) *domain.Node {
	h, n := content(data)
	return domain.NewFile(h, n, mode, nil)
}

// changeLines renders changes one per line: "A path", "M path", "D path",
// "R from -> to", in the order of the lists.
func changeLines(c domain.Changes) []string {
	out := []string{}
	for _, ch := range c.Added {
		out = append(out, "A "+ch.Path)
	}
	for _, ch := range c.Modified {
		out = append(out, "M "+ch.Path)
	}
	for _, ch := range c.Deleted {
		out = append(out, "D "+ch.Path)
	}
	for _, r := range c.Renamed {
		out = append(out, "R "+r.From+" -> "+r.To)
	}
	return out
}

func TestDiff(t *testing.T) {
	base := func(t *testing.T) domain.Tree {
		return treeOf(t, "README", "src/", "src/main.go", "src/util/", "src/util/strings.go", "docs/", "docs/guide.md", "link -> README")
	}
	tests := []struct {
		name string
		a, b func(t *testing.T) domain.Tree
		want []string
	}{
		{"EqualTrees", base, base, []string{}},
		{"EmptyTrees", func(*testing.T) domain.Tree { return domain.Tree{} }, func(*testing.T) domain.Tree { return domain.Tree{} }, []string{}},
		{"AddedFile", base, func(t *testing.T) domain.Tree {
			return putNode(t, base(t), "src/util/bytes.go", textFile("package util", 0o644))
		}, []string{"A src/util/bytes.go"}},
		{"DeletedFile", base, func(t *testing.T) domain.Tree {
			return base(t).Delete("src/main.go")
		}, []string{"D src/main.go"}},
		{"ModifiedContent", base, func(t *testing.T) domain.Tree {
			return putNode(t, base(t), "src/main.go", textFile("package main // v2", 0o644))
		}, []string{"M src/main.go"}},
		{"ModeOnly", base, func(t *testing.T) domain.Tree {
			return putNode(t, base(t), "README", textFile("README", 0o755))
		}, []string{"M README"}},
		{"XattrsOnly", base, func(t *testing.T) domain.Tree {
			h, n := content("README")
			return putNode(t, base(t), "README", domain.NewFile(h, n, 0o644, map[string][]byte{"user.k": []byte("v")}))
		}, []string{"M README"}},
		{"SymlinkTarget", base, func(t *testing.T) domain.Tree {
			return putNode(t, base(t), "link", domain.NewSymlink("docs/guide.md", nil))
		}, []string{"M link"}},
		{"FileToSymlink", base, func(t *testing.T) domain.Tree {
			return putNode(t, base(t), "README", domain.NewSymlink("docs/guide.md", nil))
		}, []string{"M README"}},
		{"FileToDir", base, func(t *testing.T) domain.Tree {
			tr := putNode(t, base(t).Delete("README"), "README", domain.NewDir(0o755, nil))
			return putNode(t, tr, "README/en", textFile("hello", 0o644))
		}, []string{"A README/en", "M README"}},
		{"DirToFile", base, func(t *testing.T) domain.Tree {
			return putNode(t, base(t).Delete("src"), "src", textFile("src", 0o644))
		}, []string{"M src", "D src/main.go", "D src/util", "D src/util/strings.go"}},
		{"DirAdded", base, func(t *testing.T) domain.Tree {
			tr := putNode(t, base(t), "lib/x/one.go", textFile("one", 0o644))
			tr = putNode(t, tr, "lib/two.go", textFile("two", 0o644))
			return putNode(t, tr, "lib/empty", domain.NewDir(0o755, nil))
		}, []string{"A lib", "A lib/empty", "A lib/two.go", "A lib/x", "A lib/x/one.go"}},
		{"DirDeleted", base, func(t *testing.T) domain.Tree {
			return base(t).Delete("src")
		}, []string{"D src", "D src/main.go", "D src/util", "D src/util/strings.go"}},
		{"DirModeOnly", base, func(t *testing.T) domain.Tree {
			var list []domain.Entry
			base(t).Walk("", "", func(e domain.Entry) bool {
				if e.Path == "docs" {
					e.Node = domain.NewDir(0o700, nil)
				}
				list = append(list, e)
				return true
			})
			tr, err := domain.Build(list)
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			return tr
		}, []string{"M docs"}},
		{"DirReplacedByEmptyDir", base, func(t *testing.T) domain.Tree {
			return putNode(t, base(t), "docs", domain.NewDir(0o700, nil))
		}, []string{"M docs", "D docs/guide.md"}},
		{"RootMode", func(*testing.T) domain.Tree { return domain.Tree{} }, func(t *testing.T) domain.Tree {
			return putNode(t, domain.Tree{}, "", domain.NewDir(0o700, nil))
		}, []string{"M "}},
		{"Rename", base, func(t *testing.T) domain.Tree {
			b := base(t)
			return putNode(t, b.Delete("docs/guide.md"), "docs/manual.md", b.Lookup("docs/guide.md"))
		}, []string{"R docs/guide.md -> docs/manual.md"}},
		{"RenameWithModeChange", base, func(t *testing.T) domain.Tree {
			return putNode(t, base(t).Delete("README"), "README.md", textFile("README", 0o600))
		}, []string{"R README -> README.md"}},
		{"RenameSymlink", base, func(t *testing.T) domain.Tree {
			return putNode(t, base(t).Delete("link"), "readme-link", domain.NewSymlink("README", nil))
		}, []string{"R link -> readme-link"}},
		{"DirMoved", base, func(t *testing.T) domain.Tree {
			b := base(t)
			return putNode(t, b.Delete("src"), "lib", b.Lookup("src"))
		}, []string{"A lib", "A lib/util", "D src", "D src/util", "R src/main.go -> lib/main.go", "R src/util/strings.go -> lib/util/strings.go"}},
		{"RenameAndModify", base, func(t *testing.T) domain.Tree {
			return putNode(t, base(t).Delete("README"), "README.md", textFile("README, edited", 0o644))
		}, []string{"A README.md", "D README"}},
		{"EmptyFilesNotRenamed", func(t *testing.T) domain.Tree {
			return putNode(t, domain.Tree{}, "a", textFile("", 0o644))
		}, func(t *testing.T) domain.Tree {
			return putNode(t, domain.Tree{}, "b", textFile("", 0o644))
		}, []string{"A b", "D a"}},
		{"RenamesPreferSameBaseName", func(t *testing.T) domain.Tree {
			tr := putNode(t, domain.Tree{}, "p/one", textFile("same", 0o644))
			return putNode(t, tr, "q/two", textFile("same", 0o644))
		}, func(t *testing.T) domain.Tree {
			tr := putNode(t, domain.Tree{}, "r/two", textFile("same", 0o644))
			return putNode(t, tr, "s/one", textFile("same", 0o644))
		}, []string{"A r", "A s", "D p", "D q", "R q/two -> r/two", "R p/one -> s/one"}},
		{"RenamesInTreeOrder", func(t *testing.T) domain.Tree {
			tr := putNode(t, domain.Tree{}, "x1", textFile("same", 0o644))
			return putNode(t, tr, "x2", textFile("same", 0o644))
		}, func(t *testing.T) domain.Tree {
			tr := putNode(t, domain.Tree{}, "y1", textFile("same", 0o644))
			tr = putNode(t, tr, "y2", textFile("same", 0o644))
			return putNode(t, tr, "y3", textFile("same", 0o644))
		}, []string{"A y3", "R x1 -> y1", "R x2 -> y2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := tc.a(t), tc.b(t)
			got := domain.Diff(a, b)
			if lines := changeLines(got); !slices.Equal(lines, tc.want) {
				t.Errorf("Diff:\n got %q\nwant %q", lines, tc.want)
			}
			if (got.Len() == 0) != (a.Hash() == b.Hash()) {
				t.Errorf("Diff has %d changes for trees %s and %s", got.Len(), a.Hash(), b.Hash())
			}
		})
	}
}

func TestDiff_Details(t *testing.T) {
	a := treeOf(t, "f", "d/", "d/g")
	t.Run("ModeChange", func(t *testing.T) {
		b := putNode(t, a, "f", textFile("f", 0o755))
		got := domain.Diff(a, b)
		if len(got.Modified) != 1 {
			t.Fatalf("Diff: got %q, want one modified path", changeLines(got))
		}
		m := got.Modified[0]
		if m.Old.Mode != 0o644 || m.New.Mode != 0o755 || m.Old.Content != m.New.Content || m.Old.Size != 1 {
			t.Errorf("modified f: got old mode %o new mode %o (same content: %v, size %d), want 644 -> 755, same content, size 1",
				m.Old.Mode, m.New.Mode, m.Old.Content == m.New.Content, m.Old.Size)
		}
	})
	t.Run("KindChange", func(t *testing.T) {
		b := putNode(t, a.Delete("d"), "d", domain.NewSymlink("f", nil))
		got := domain.Diff(a, b)
		if len(got.Modified) != 1 || got.Modified[0].Old.Kind != domain.KindDir || got.Modified[0].New.Kind != domain.KindSymlink {
			t.Fatalf("Diff: got %q, want d modified from dir to symlink", changeLines(got))
		}
		if want := []string{"M d", "D d/g"}; !slices.Equal(changeLines(got), want) {
			t.Errorf("Diff: got %q, want %q", changeLines(got), want)
		}
	})
	t.Run("AddedAndDeletedNodes", func(t *testing.T) {
		b := putNode(t, a.Delete("f"), "h", textFile("h", 0o644))
		got := domain.Diff(a, b)
		if len(got.Added) != 1 || got.Added[0].Old != nil || got.Added[0].New != b.Lookup("h") {
			t.Errorf("added: got %+v, want h with only New set", got.Added)
		}
		if len(got.Deleted) != 1 || got.Deleted[0].New != nil || got.Deleted[0].Old != a.Lookup("f") {
			t.Errorf("deleted: got %+v, want f with only Old set", got.Deleted)
		}
	})
	t.Run("Reverse", func(t *testing.T) {
		b := putNode(t, putNode(t, a.Delete("d/g"), "e/g", a.Lookup("d/g")), "n", textFile("new", 0o644))
		fwd, back := domain.Diff(a, b), domain.Diff(b, a)
		if len(fwd.Added) != len(back.Deleted) || len(fwd.Deleted) != len(back.Added) || len(fwd.Renamed) != len(back.Renamed) {
			t.Errorf("Diff(a, b) = %q but Diff(b, a) = %q: want the mirror image", changeLines(fwd), changeLines(back))
		}
	})
}

// naiveChanges computes what Diff must find from full walks of both trees:
// paths only in b (added, renames included), only in a (deleted), and in
// both with a change of their own (modified).
func naiveChanges(a, b domain.Tree) (added, modified, deleted []string) {
	index := func(tr domain.Tree) map[string]*domain.Node {
		m := map[string]*domain.Node{}
		tr.Walk("", "", func(e domain.Entry) bool { m[e.Path] = e.Node; return true })
		return m
	}
	ma, mb := index(a), index(b)
	for p, y := range mb {
		x, ok := ma[p]
		switch {
		case !ok:
			added = append(added, p)
		case x.Hash() == y.Hash():
		case x.Kind != domain.KindDir || y.Kind != domain.KindDir || x.Mode != y.Mode || len(x.Xattrs)+len(y.Xattrs) > 0:
			modified = append(modified, p)
		}
	}
	for p := range ma {
		if _, ok := mb[p]; !ok {
			deleted = append(deleted, p)
		}
	}
	for _, l := range [][]string{added, modified, deleted} {
		slices.SortFunc(l, domain.ComparePaths)
	}
	return added, modified, deleted
}

// mutateTree returns tr after n random changes: writes, deletes, moves, mode
// changes and new directories.
func mutateTree(t testing.TB, r *rand.Rand, tr domain.Tree, n int) domain.Tree {
	t.Helper()
	for range n {
		all := paths(tr)
		var dirs []string
		for _, p := range all {
			if tr.Lookup(p).Kind == domain.KindDir {
				dirs = append(dirs, p)
			}
		}
		pick := func(l []string) string {
			if len(l) == 0 {
				return ""
			}
			return l[r.IntN(len(l))]
		}
		under := func() string {
			d, name := pick(dirs), randomName(r)
			if d == "" || r.IntN(4) == 0 {
				return name
			}
			return d + "/" + name
		}
		var err error
		switch op := r.IntN(6); {
		case op == 0 && len(all) > 0: // delete
			tr = tr.Delete(pick(all))
		case op == 1 && len(all) > 0: // move
			from, to := pick(all), under()
			if tr.Lookup(to) == nil && !strings.HasPrefix(to+"/", from+"/") {
				node := tr.Lookup(from)
				if next, perr := tr.Delete(from).Put(to, node); perr == nil {
					tr = next
				}
			}
		case op == 2 && len(all) > 0: // chmod
			p := pick(all)
			if n := tr.Lookup(p); n.Kind == domain.KindFile {
				tr, err = tr.Put(p, domain.NewFile(n.Content, n.Size, n.Mode^0o111, nil))
			}
		case op == 3:
			if p := under(); tr.Lookup(p) == nil {
				tr, err = tr.Put(p, domain.NewDir(domain.DefaultDirMode, nil))
			}
		default: // write, new or existing
			p := under()
			if n := tr.Lookup(p); n == nil || n.Kind == domain.KindFile {
				tr, err = tr.Put(p, textFile(fmt.Sprint(r.IntN(20)), domain.DefaultFileMode))
			}
		}
		if err != nil {
			t.Fatalf("mutate: %v", err)
		}
	}
	return tr
}

func TestDiff_MatchesFullWalk(t *testing.T) {
	for seed := range uint64(200) {
		r := rand.New(rand.NewPCG(seed, 7))
		a := randomTree(t, r, 20+r.IntN(300))
		b := mutateTree(t, r, a, r.IntN(12))
		got := domain.Diff(a, b)

		added, modified, deleted := naiveChanges(a, b)
		var gotAdded, gotModified, gotDeleted []string
		for _, ch := range got.Added {
			gotAdded = append(gotAdded, ch.Path)
		}
		for _, ch := range got.Modified {
			gotModified = append(gotModified, ch.Path)
		}
		for _, ch := range got.Deleted {
			gotDeleted = append(gotDeleted, ch.Path)
		}
		for _, l := range [][]string{gotAdded, gotModified, gotDeleted} {
			if !slices.IsSortedFunc(l, domain.ComparePaths) {
				t.Fatalf("seed %d: list not in tree order: %q", seed, l)
			}
		}
		if !slices.IsSortedFunc(got.Renamed, func(x, y domain.Rename) int { return domain.ComparePaths(x.To, y.To) }) {
			t.Fatalf("seed %d: renames not in the tree order of To: %q", seed, changeLines(got))
		}
		for _, rn := range got.Renamed {
			if rn.Old.Kind != rn.New.Kind || rn.Old.Content != rn.New.Content || rn.Old.Target != rn.New.Target {
				t.Fatalf("seed %d: rename %s -> %s pairs different content", seed, rn.From, rn.To)
			}
			gotAdded = append(gotAdded, rn.To)
			gotDeleted = append(gotDeleted, rn.From)
		}
		for _, l := range [][]string{gotAdded, gotDeleted} {
			slices.SortFunc(l, domain.ComparePaths)
		}
		if !slices.Equal(gotAdded, added) || !slices.Equal(gotModified, modified) || !slices.Equal(gotDeleted, deleted) {
			t.Fatalf("seed %d: Diff gives\n added %q\n modified %q\n deleted %q\nfull walk gives\n added %q\n modified %q\n deleted %q",
				seed, gotAdded, gotModified, gotDeleted, added, modified, deleted)
		}
		if (got.Len() == 0) != (a.Hash() == b.Hash()) {
			t.Fatalf("seed %d: %d changes between trees %s and %s", seed, got.Len(), a.Hash(), b.Hash())
		}
	}
}

// bigTree builds dirs directories of files files each with Build.
func bigTree(t testing.TB, dirs, files int) domain.Tree {
	t.Helper()
	list := make([]domain.Entry, 0, dirs*(files+1))
	for d := range dirs {
		dir := fmt.Sprintf("d%04d", d)
		list = append(list, domain.Entry{Path: dir, Node: domain.NewDir(domain.DefaultDirMode, nil)})
		for f := range files {
			p := fmt.Sprintf("%s/f%05d.txt", dir, f)
			list = append(list, domain.Entry{Path: p, Node: textFile(p, domain.DefaultFileMode)})
		}
	}
	tr, err := domain.Build(list)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return tr
}

// TestDiff_SkipsEqualSubtrees proves that the cost of Diff follows the
// number of changes, not the size of the tree: it counts the nodes visited.
func TestDiff_SkipsEqualSubtrees(t *testing.T) {
	const limit = 2000 // visits allowed for about ten changes
	tests := []struct {
		name        string
		dirs, files int
	}{
		{"100x1000", 100, 1000},
		{"Flat100000", 1, 100_000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := bigTree(t, tc.dirs, tc.files)
			size := a.Count()
			if _, visits := domain.DiffCounted(a, a); visits != 1 {
				t.Errorf("Diff of a tree with itself visited %d nodes, want 1", visits)
			}
			r := rand.New(rand.NewPCG(1, 2))
			file := func() string {
				return fmt.Sprintf("d%04d/f%05d.txt", r.IntN(tc.dirs), r.IntN(tc.files))
			}
			t.Run("TenModified", func(t *testing.T) {
				b := a
				want := map[string]bool{}
				for len(want) < 10 {
					p := file()
					want[p] = true
					b = putNode(t, b, p, textFile("changed "+p, domain.DefaultFileMode))
				}
				got, visits := domain.DiffCounted(a, b)
				if len(got.Modified) != 10 || got.Len() != 10 {
					t.Fatalf("Diff: got %q, want 10 modified files", changeLines(got))
				}
				if visits > limit {
					t.Errorf("Diff of 10 changes in a tree of %d entries visited %d nodes, want at most %d", size, visits, limit)
				}
				t.Logf("%d entries, 10 changed: %d visits", size, visits)
			})
			t.Run("AddedDeletedRenamed", func(t *testing.T) {
				b := a
				for i := range 4 {
					b = b.Delete(file())
					b = putNode(t, b, fmt.Sprintf("d%04d/new%d.txt", r.IntN(tc.dirs), i), textFile(fmt.Sprint("new ", i), domain.DefaultFileMode))
				}
				from := file()
				b = putNode(t, b.Delete(from), from+".moved", a.Lookup(from))
				b = putNode(t, b, "zz-new-dir/x", textFile("x", domain.DefaultFileMode))
				got, visits := domain.DiffCounted(a, b)
				if n := got.Len(); n < 10 || n > 11 {
					t.Fatalf("Diff: got %q, want 4 deleted, 6 added, 1 rename", changeLines(got))
				}
				if len(got.Renamed) != 1 || got.Renamed[0].From != from {
					t.Errorf("renamed: got %q, want %s -> %s.moved", changeLines(got), from, from)
				}
				if visits > limit {
					t.Errorf("Diff of 11 changes in a tree of %d entries visited %d nodes, want at most %d", size, visits, limit)
				}
				t.Logf("%d entries, 11 changes: %d visits", size, visits)
			})
		})
	}
}

func BenchmarkDiff(b *testing.B) {
	for _, size := range []int{1_000, 100_000} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			a := bigTree(b, size/100, 100)
			r := rand.New(rand.NewPCG(1, 2))
			t2 := a
			for range 10 {
				p := fmt.Sprintf("d%04d/f%05d.txt", r.IntN(size/100), r.IntN(100))
				t2 = putNode(b, t2, p, textFile("changed "+p, domain.DefaultFileMode))
			}
			b.ResetTimer()
			for b.Loop() {
				domain.Diff(a, t2)
			}
		})
	}
}
