package domain_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/strand-dev/strand/domain"
)

func fileNode(s string) *domain.Node {
	h, n := content(s)
	return domain.NewFile(h, n, domain.DefaultFileMode, nil)
}

func TestNode_Hash(t *testing.T) {
	h1, _ := content("one")
	h2, _ := content("two")
	distinct := map[string]*domain.Node{
		"file":          domain.NewFile(h1, 3, 0o644, nil),
		"file content":  domain.NewFile(h2, 3, 0o644, nil),
		"file size":     domain.NewFile(h1, 4, 0o644, nil),
		"file mode":     domain.NewFile(h1, 3, 0o755, nil),
		"file xattr":    domain.NewFile(h1, 3, 0o644, map[string][]byte{"user.a": []byte("1")}),
		"file xattr v":  domain.NewFile(h1, 3, 0o644, map[string][]byte{"user.a": []byte("2")}),
		"file xattr k":  domain.NewFile(h1, 3, 0o644, map[string][]byte{"user.b": []byte("1")}),
		"file xattr kv": domain.NewFile(h1, 3, 0o644, map[string][]byte{"user.a1": []byte("")}),
		"symlink":       domain.NewSymlink("one", nil),
		"symlink 2":     domain.NewSymlink("two", nil),
		"dir":           domain.NewDir(0o755, nil),
		"dir mode":      domain.NewDir(0o700, nil),
	}
	seen := map[domain.Hash]string{}
	for name, n := range distinct {
		if other, ok := seen[n.Hash()]; ok {
			t.Errorf("nodes %q and %q have the same hash %s", name, other, n.Hash())
		}
		seen[n.Hash()] = name
	}

	t.Run("XattrOrderIrrelevant", func(t *testing.T) {
		x1 := map[string][]byte{}
		x2 := map[string][]byte{}
		for i := range 20 {
			x1[fmt.Sprint("k", i)] = []byte{byte(i)}
		}
		for i := 19; i >= 0; i-- {
			x2[fmt.Sprint("k", i)] = []byte{byte(i)}
		}
		if a, b := domain.NewFile(h1, 3, 0o644, x1).Hash(), domain.NewFile(h1, 3, 0o644, x2).Hash(); a != b {
			t.Errorf("same xattrs, different hashes: got %s and %s", a, b)
		}
	})
	t.Run("ModeMasked", func(t *testing.T) {
		if got := domain.NewFile(h1, 3, 0o100644, nil); got.Mode != 0o644 || got.Hash() != distinct["file"].Hash() {
			t.Errorf("NewFile(mode 0o100644): got mode %o hash %s, want mode 644 hash %s", got.Mode, got.Hash(), distinct["file"].Hash())
		}
	})
	t.Run("DirEntryNamesMatter", func(t *testing.T) {
		a := treeOf(t, "x/a")
		b := treeOf(t, "x/b")
		c := treeOf(t, "y/a")
		if a.Hash() == b.Hash() || a.Hash() == c.Hash() || b.Hash() == c.Hash() {
			t.Errorf("trees with different names share a hash: %s %s %s", a.Hash(), b.Hash(), c.Hash())
		}
	})
	t.Run("EmptyTree", func(t *testing.T) {
		var zero domain.Tree
		if zero.Hash() != domain.NewDir(domain.DefaultDirMode, nil).Hash() {
			t.Errorf("zero Tree hash %s, want the hash of an empty directory", zero.Hash())
		}
		if zero.Hash().IsZero() {
			t.Errorf("zero Tree hash is the zero hash")
		}
		if zero.Count() != 0 || zero.Root().Len() != 0 {
			t.Errorf("zero Tree: Count %d Len %d, want 0 0", zero.Count(), zero.Root().Len())
		}
	})
}

// TestTree_CanonicalHash checks that a directory's hash depends only on its
// set of entries: insertion order, deletions on the way, and bulk building
// all give the same Merkle root.
func TestTree_CanonicalHash(t *testing.T) {
	for seed := range uint64(10) {
		t.Run(fmt.Sprint("Seed", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 1))
			n := 1 + r.IntN(300)
			type kv struct {
				path string
				node *domain.Node
			}
			var want []kv
			for i := range n {
				// Flat names in one big directory, plus some nested ones.
				p := fmt.Sprintf("f%04d", r.IntN(10*n))
				if i%7 == 0 {
					p = fmt.Sprintf("d%d/f%d", r.IntN(5), i)
				}
				if !slices.ContainsFunc(want, func(e kv) bool { return e.path == p }) {
					want = append(want, kv{p, fileNode(p)})
				}
			}
			var ref domain.Tree
			for _, e := range want {
				ref = mustPut(t, ref, e.path, e.node)
			}
			extras := []string{"zz", "f", "d9/x", "d0/zzz", "0"}
			for round := range 5 {
				order := slices.Clone(want)
				r.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
				var tr domain.Tree
				for i, e := range order {
					tr = mustPut(t, tr, e.path, e.node)
					if round > 0 && i%5 == 0 {
						// Only names whose parent exists, so that deleting
						// them leaves no directory behind.
						x := extras[r.IntN(len(extras))]
						dir, _, nested := strings.Cut(x, "/")
						if tr.Lookup(x) == nil && (!nested || tr.Lookup(dir) != nil) {
							tr = mustPut(t, tr, x, fileNode("extra"))
							tr = tr.Delete(x)
						}
					}
				}
				if tr.Hash() != ref.Hash() {
					t.Fatalf("round %d: shuffled insertion gives root %s, want %s", round, tr.Hash(), ref.Hash())
				}
				if tr.Count() != ref.Count() {
					t.Fatalf("round %d: Count() = %d, want %d", round, tr.Count(), ref.Count())
				}
			}

			// Delete half in random order, and compare with a tree that never had them.
			r.Shuffle(len(want), func(i, j int) { want[i], want[j] = want[j], want[i] })
			half := len(want) / 2
			tr := ref
			for _, e := range want[:half] {
				tr = tr.Delete(e.path)
			}
			var kept domain.Tree
			for _, e := range want[half:] {
				kept = mustPut(t, kept, e.path, e.node)
			}
			// Deleting files can leave empty directories that kept never had.
			for _, e := range want[:half] {
				if dir, _, ok := strings.Cut(e.path, "/"); ok && kept.Lookup(dir) == nil && tr.Lookup(dir) != nil {
					kept = mustPut(t, kept, dir, domain.NewDir(domain.DefaultDirMode, nil))
				}
			}
			if tr.Hash() != kept.Hash() {
				t.Fatalf("after deleting %d of %d entries: root %s, want %s", half, len(want), tr.Hash(), kept.Hash())
			}
		})
	}
}

func TestTree_Build(t *testing.T) {
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 2))
		tr := randomTree(t, r, r.IntN(200))
		var list []domain.Entry
		tr.Walk("", "", func(e domain.Entry) bool {
			list = append(list, e)
			return true
		})
		built, err := domain.Build(list)
		if err != nil {
			t.Fatalf("seed %d: Build(walk of %d entries): %v", seed, len(list), err)
		}
		if built.Hash() != tr.Hash() {
			t.Fatalf("seed %d: Build gives root %s, want %s (Put one by one)", seed, built.Hash(), tr.Hash())
		}
		if !slices.Equal(paths(built), paths(tr)) {
			t.Fatalf("seed %d: Build walks as %q, want %q", seed, paths(built), paths(tr))
		}
		// The built tree is a normal persistent tree: updates behave the same.
		p := "a/new"
		if tr.Lookup("a") != nil && tr.Lookup("a").Kind != domain.KindDir {
			p = "new"
		}
		t1, t2 := mustPut(t, tr, p, fileNode(p)), mustPut(t, built, p, fileNode(p))
		if t1.Hash() != t2.Hash() {
			t.Fatalf("seed %d: Put(%q) on built tree gives %s, want %s", seed, p, t2.Hash(), t1.Hash())
		}
	}

	t.Run("Empty", func(t *testing.T) {
		got, err := domain.Build(nil)
		if err != nil || got.Hash() != (domain.Tree{}).Hash() {
			t.Errorf("Build(nil) = %s, %v; want the empty tree %s", got.Hash(), err, (domain.Tree{}).Hash())
		}
	})

	dir := domain.NewDir(domain.DefaultDirMode, nil)
	bad := []struct {
		name string
		list []domain.Entry
	}{
		{"OutOfOrder", []domain.Entry{{Path: "b", Node: fileNode("b")}, {Path: "a", Node: fileNode("a")}}},
		{"Duplicate", []domain.Entry{{Path: "a", Node: fileNode("a")}, {Path: "a", Node: fileNode("a")}}},
		{"MissingParent", []domain.Entry{{Path: "a/b", Node: fileNode("a/b")}}},
		{"ParentIsFile", []domain.Entry{{Path: "a", Node: fileNode("a")}, {Path: "a/b", Node: fileNode("a/b")}}},
		{"ParentClosed", []domain.Entry{{Path: "a", Node: dir}, {Path: "b", Node: fileNode("b")}, {Path: "a/c", Node: fileNode("a/c")}}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := domain.Build(tc.list); domain.ErrorCode(err) != domain.CodeInvalidArgument {
				t.Errorf("Build(%v): got %v, want invalid_argument", tc.list, err)
			}
		})
	}
}

func mustPut(t testing.TB, tr domain.Tree, p string, n *domain.Node) domain.Tree {
	t.Helper()
	out, err := tr.Put(p, n)
	if err != nil {
		t.Fatalf("Put(%q): %v", p, err)
	}
	return out
}

func TestTree_Put(t *testing.T) {
	t.Run("CreatesParents", func(t *testing.T) {
		tr := mustPut(t, domain.Tree{}, "a/b/c", fileNode("x"))
		if got := paths(tr); !slices.Equal(got, []string{"a", "a/b", "a/b/c"}) {
			t.Errorf("Put(a/b/c) on empty tree walks as %q, want [a a/b a/b/c]", got)
		}
		if n := tr.Lookup("a/b"); n == nil || n.Kind != domain.KindDir || n.Mode != domain.DefaultDirMode {
			t.Errorf("Lookup(a/b) = %+v, want a directory with the default mode", n)
		}
	})
	t.Run("UnderFile", func(t *testing.T) {
		tr := treeOf(t, "f")
		if _, err := tr.Put("f/x", fileNode("x")); domain.ErrorCode(err) != domain.CodeInvalidArgument {
			t.Errorf("Put(f/x) with f a file: got %v, want invalid_argument", err)
		}
		tr = treeOf(t, "l -> d", "d/")
		if _, err := tr.Put("l/x", fileNode("x")); domain.ErrorCode(err) != domain.CodeInvalidArgument {
			t.Errorf("Put(l/x) with l a symlink: got %v, want invalid_argument (Put follows no links)", err)
		}
	})
	t.Run("RootMustBeDir", func(t *testing.T) {
		if _, err := (domain.Tree{}).Put("", fileNode("x")); domain.ErrorCode(err) != domain.CodeInvalidArgument {
			t.Errorf("Put(\"\", file): got %v, want invalid_argument", err)
		}
	})
	t.Run("Persistent", func(t *testing.T) {
		v1 := treeOf(t, "a/b", "c")
		h1, p1 := v1.Hash(), paths(v1)
		v2 := mustPut(t, v1, "a/d", fileNode("d"))
		v3 := v2.Delete("c")
		if v1.Hash() != h1 || !slices.Equal(paths(v1), p1) {
			t.Errorf("older version changed after Put and Delete: got %s %q, want %s %q", v1.Hash(), paths(v1), h1, p1)
		}
		if got := paths(v3); !slices.Equal(got, []string{"a", "a/b", "a/d"}) {
			t.Errorf("v3 walks as %q, want [a a/b a/d]", got)
		}
		// Untouched subtrees are shared, not copied.
		v4 := mustPut(t, v1, "c", fileNode("other"))
		if v4.Lookup("a") != v1.Lookup("a") {
			t.Errorf("Put(c) copied the untouched directory a")
		}
	})
	t.Run("Replace", func(t *testing.T) {
		tr := treeOf(t, "a/b")
		tr2 := mustPut(t, tr, "a/b", fileNode("new"))
		if tr2.Lookup("a/b").Content != fileNode("new").Content || tr2.Count() != 2 {
			t.Errorf("replacing a/b: got content %s count %d, want %s 2", tr2.Lookup("a/b").Content, tr2.Count(), fileNode("new").Content)
		}
		if mustPut(t, tr2, "a/b", fileNode("a/b")).Hash() != tr.Hash() {
			t.Errorf("putting the old node back does not give the old root")
		}
	})
}

func TestTree_Delete(t *testing.T) {
	tr := treeOf(t, "a/b/c", "a/d", "e", "l -> a")
	for _, p := range []string{"x", "a/x", "a/b/c/d", "e/f", "l/d", "a/b/x/y"} {
		got := tr.Delete(p)
		if got.Hash() != tr.Hash() || got.Root() != tr.Root() {
			t.Errorf("Delete(%q) of a missing path: got root %s, want the same tree %s", p, got.Hash(), tr.Hash())
		}
	}
	if got := paths(tr.Delete("a/b")); !slices.Equal(got, []string{"a", "a/d", "e", "l"}) {
		t.Errorf("Delete(a/b) walks as %q, want [a a/d e l]", got)
	}
	if got := paths(tr.Delete("l")); !slices.Equal(got, []string{"a", "a/b", "a/b/c", "a/d", "e"}) {
		t.Errorf("Delete(l) walks as %q, want the link removed and its target kept", got)
	}
	if got := tr.Delete(""); got.Count() != 0 || got.Hash() != (domain.Tree{}).Hash() {
		t.Errorf("Delete(\"\") gives %d entries, want the empty tree", got.Count())
	}
	if empty := (domain.Tree{}).Delete("a"); empty.Hash() != (domain.Tree{}).Hash() {
		t.Errorf("Delete on the zero tree changed its hash")
	}
}

func TestTree_Lookup(t *testing.T) {
	tr := treeOf(t, "a/b", "l -> a")
	tests := []struct {
		path string
		want domain.Kind // 0: nil
	}{
		{"", domain.KindDir},
		{"a", domain.KindDir},
		{"a/b", domain.KindFile},
		{"a/b/c", 0},
		{"l", domain.KindSymlink},
		{"l/b", 0}, // Lookup follows no links
		{"x", 0},
	}
	for _, tc := range tests {
		n := tr.Lookup(tc.path)
		var got domain.Kind
		if n != nil {
			got = n.Kind
		}
		if got != tc.want {
			t.Errorf("Lookup(%q) kind = %v, want %v", tc.path, got, tc.want)
		}
	}
}

func TestTree_Walk(t *testing.T) {
	t.Run("Order", func(t *testing.T) {
		tr := treeOf(t, "a.txt", "a/b", "a-z", "B", "a/c/d", "a/.x", "é", "z/")
		want := []string{"B", "a", "a/.x", "a/b", "a/c", "a/c/d", "a-z", "a.txt", "z", "é"}
		if got := paths(tr); !slices.Equal(got, want) {
			t.Errorf("Walk = %q, want %q", got, want)
		}
	})
	t.Run("Base", func(t *testing.T) {
		tr := treeOf(t, "a/b", "a/c/d", "a.txt", "ab/x", "l -> a")
		tests := []struct {
			base string
			want []string
		}{
			{"a", []string{"a/b", "a/c", "a/c/d"}},
			{"a/c", []string{"a/c/d"}},
			{"a/b", nil},   // a file
			{"l", nil},     // a symlink is not followed
			{"none", nil},  // missing
			{"a/c/d", nil}, // a file
		}
		for _, tc := range tests {
			var got []string
			tr.Walk(tc.base, "", func(e domain.Entry) bool {
				got = append(got, e.Path)
				return true
			})
			if !slices.Equal(got, tc.want) {
				t.Errorf("Walk(base %q) = %q, want %q", tc.base, got, tc.want)
			}
		}
	})
	t.Run("After", func(t *testing.T) {
		tr := treeOf(t, "a/b", "a/c/d", "a.txt", "ab/x")
		all := paths(tr) // a a/b a/c a/c/d a.txt ab ab/x
		tests := []struct {
			base, after string
			want        []string
		}{
			{"", "a", all[1:]},
			{"", "a/b", all[2:]},
			{"", "a/c", all[3:]},
			{"", "a/c/d", all[4:]},
			{"", "ab/x", nil},
			{"", "a/bb", all[2:]},  // missing path: continue after where it would be
			{"", "a/c/a", all[3:]}, // missing, inside a directory
			{"", "a/b/x", all[2:]}, // below a file
			{"", "0", all},
			{"", "zzz", nil},
			{"a", "a", []string{"a/b", "a/c", "a/c/d"}},
			{"a", "a/b", []string{"a/c", "a/c/d"}},
			{"a", "a/c/d", nil},
			{"a", "0", []string{"a/b", "a/c", "a/c/d"}}, // before the base
			{"a/c", "a", []string{"a/c/d"}},             // an ancestor of the base
			{"a", "a.txt", nil},                         // after the base
			{"a", "ab", nil},                            // after the base
			{"ab", "a/c/d", []string{"ab/x"}},           // bytewise greater, tree order smaller
			{"ab", "a.txt", []string{"ab/x"}},           // before the base
			{"a/c", "a/b/zzz", []string{"a/c/d"}},       // a sibling before the base
			{"a/c", "a.txt", nil},                       // after the base
			{"a", "a/c", []string{"a/c/d"}},             // a directory: its entries follow it
		}
		for _, tc := range tests {
			var got []string
			tr.Walk(tc.base, tc.after, func(e domain.Entry) bool {
				got = append(got, e.Path)
				return true
			})
			if !slices.Equal(got, tc.want) {
				t.Errorf("Walk(base %q, after %q) = %q, want %q", tc.base, tc.after, got, tc.want)
			}
		}
	})
	t.Run("Stop", func(t *testing.T) {
		tr := treeOf(t, "a/b/c", "a/d", "e")
		var got []string
		tr.Walk("", "", func(e domain.Entry) bool {
			got = append(got, e.Path)
			return len(got) < 3
		})
		if !slices.Equal(got, []string{"a", "a/b", "a/b/c"}) {
			t.Errorf("Walk stopped after 3 visited %q, want [a a/b a/b/c]", got)
		}
	})
	t.Run("RandomPagination", func(t *testing.T) {
		for seed := range uint64(30) {
			r := rand.New(rand.NewPCG(seed, 3))
			tr := randomTree(t, r, r.IntN(150))
			all := paths(tr)
			if len(all) != tr.Count() {
				t.Fatalf("seed %d: Walk visits %d entries, Count() = %d", seed, len(all), tr.Count())
			}
			if !slices.IsSortedFunc(all, domain.ComparePaths) {
				t.Fatalf("seed %d: Walk order %q disagrees with ComparePaths", seed, all)
			}
			for i := 1; i < len(all); i++ {
				if domain.ComparePaths(all[i-1], all[i]) >= 0 {
					t.Fatalf("seed %d: ComparePaths(%q, %q) >= 0 for consecutive walk entries", seed, all[i-1], all[i])
				}
			}
			for _, p := range all {
				if c, err := domain.CleanPath(p); err != nil || c != p {
					t.Fatalf("seed %d: walked path %q is not clean: %q, %v", seed, p, c, err)
				}
			}
			// Every directory (and the root) as base, with every page size.
			bases := []string{""}
			for _, p := range all {
				if tr.Lookup(p).Kind == domain.KindDir {
					bases = append(bases, p)
				}
			}
			for _, base := range bases {
				var want []string
				for _, p := range all {
					if base == "" || strings.HasPrefix(p, base+"/") {
						want = append(want, p)
					}
				}
				for _, size := range []int{1, 2, 3, 7, 1000} {
					got := walkPages(tr, base, size)
					if !slices.Equal(got, want) {
						t.Fatalf("seed %d: paginated Walk(base %q, pages of %d) = %q, want %q", seed, base, size, got, want)
					}
				}
			}
			// after = any path (present or not) gives exactly the entries ordered after it.
			probes := append(slices.Clone(all), "", "0", "zzzz", "a/zz", "a.b/0", "B/B/B")
			for _, after := range probes {
				var got []string
				tr.Walk("", after, func(e domain.Entry) bool {
					got = append(got, e.Path)
					return true
				})
				var want []string
				for _, p := range all {
					if after == "" || domain.ComparePaths(p, after) > 0 {
						want = append(want, p)
					}
				}
				if !slices.Equal(got, want) {
					t.Fatalf("seed %d: Walk(after %q) = %q, want %q", seed, after, got, want)
				}
			}
		}
	})
}

// walkPages walks base in pages of size entries, resuming each page after
// the last path of the one before, as a paginated listing would.
func walkPages(tr domain.Tree, base string, size int) []string {
	var out []string
	after := ""
	for {
		var page []string
		tr.Walk(base, after, func(e domain.Entry) bool {
			page = append(page, e.Path)
			return len(page) < size
		})
		out = append(out, page...)
		if len(page) < size {
			return out
		}
		after = page[len(page)-1]
	}
}

func TestTree_Resolve(t *testing.T) {
	tr := treeOf(t,
		"a/b/f",
		"a/up -> ..",    // a/up = root
		"a/self -> .",   // a/self = a
		"a/sib -> b",    // a/sib = a/b
		"a/abs -> /a/b", // absolute: from the session root
		"a/file -> b/f", // to a file
		"a/dangling -> nowhere/x",
		"a/chain -> sib",    // link to a link
		"a/out -> ../../x",  // leaves the tree
		"a/outabs -> /../x", // leaves the tree from the root
		"a/outvia -> up/..", // leaves via another link
		"loop -> loop",
		"p1 -> p2",
		"p2 -> p1",
		"root -> /",
		"d/s -> x/y",
		"d/x/y/",
		"d/viaup -> s/../f", // s/.. is d/x, not d
		"d/toparent -> s/../../x",
		"d/missingup -> missing/../x",
		"d/x/f2",
		"d/fileup -> x/f2/../y", // ".." of a file is refused
		"bs -> a\\b",
		"ctl -> a\x01b",
		"deep -> "+strings.Repeat("n/", domain.MaxPathDepth-1)+"n",
	)
	good := []struct {
		path       string
		followLast bool
		want       string
	}{
		{"a/b/f", true, "a/b/f"},
		{"a/up", false, "a/up"}, // the last component is not followed
		{"a/up", true, ""},
		{"a/up/a/b/f", false, "a/b/f"},
		{"a/self/b/f", false, "a/b/f"},
		{"a/sib/f", false, "a/b/f"},
		{"a/sib/new", false, "a/b/new"},
		{"a/abs/f", false, "a/b/f"},
		{"a/file", true, "a/b/f"},
		{"a/file", false, "a/file"},
		{"a/dangling", true, "a/nowhere/x"},
		{"a/chain/f", false, "a/b/f"},
		{"a/chain", true, "a/b"},
		{"a/up/a/up/a/sib/f", false, "a/b/f"},
		{"a/b/f/x", false, "a/b/f/x"}, // below a file: nothing to follow
		{"a/missing/x", true, "a/missing/x"},
		{"a/out", false, "a/out"}, // not followed: fine
		{"loop", false, "loop"},   // not followed: fine
		{"root", true, ""},
		{"root/a/b", false, "a/b"},
		{"", true, ""},
		{"d/viaup", true, "d/x/f"},
		{"d/viaup", false, "d/viaup"},
		{"d/toparent", true, "d/x"},
		{"d/toparent/y", false, "d/x/y"},
		{"deep", true, strings.Repeat("n/", domain.MaxPathDepth-1) + "n"},
	}
	for _, tc := range good {
		got, err := tr.Resolve(tc.path, tc.followLast)
		if err != nil || got != tc.want {
			t.Errorf("Resolve(%q, %v) = %q, %v; want %q, nil", tc.path, tc.followLast, got, err, tc.want)
		}
	}
	bad := []struct {
		name, path string
		followLast bool
	}{
		{"OutRelative", "a/out", true},
		{"OutRelativeIntermediate", "a/out/y", false},
		{"OutAbsolute", "a/outabs", true},
		{"OutViaLink", "a/outvia", true},
		{"OutViaLinkIntermediate", "a/outvia/q", false},
		{"SelfLoop", "loop", true},
		{"SelfLoopIntermediate", "loop/x", false},
		{"MutualLoop", "p1", true},
		{"MutualLoopIntermediate", "p2/x", false},
		{"DotDotAfterMissing", "d/missingup", true},
		{"DotDotAfterFile", "d/fileup", true},
		{"Backslash", "bs", true},
		{"ControlChar", "ctl", true},
		{"TooDeep", "deep/x", false},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tr.Resolve(tc.path, tc.followLast)
			if domain.ErrorCode(err) != domain.CodeInvalidArgument {
				t.Errorf("Resolve(%q, %v) = %q, %v; want invalid_argument", tc.path, tc.followLast, got, err)
			}
		})
	}
	t.Run("LongChain", func(t *testing.T) {
		// A chain of MaxSymlinkHops links resolves; one more is a loop.
		var tr domain.Tree
		tr = mustPut(t, tr, "end", fileNode("end"))
		prev := "end"
		for i := range domain.MaxSymlinkHops + 1 {
			name := fmt.Sprintf("l%02d", i)
			tr = mustPut(t, tr, name, domain.NewSymlink(prev, nil))
			prev = name
		}
		last := fmt.Sprintf("l%02d", domain.MaxSymlinkHops-1)
		if got, err := tr.Resolve(last, true); err != nil || got != "end" {
			t.Errorf("Resolve(%s, true) through %d links = %q, %v; want \"end\", nil", last, domain.MaxSymlinkHops, got, err)
		}
		if _, err := tr.Resolve(prev, true); domain.ErrorCode(err) != domain.CodeInvalidArgument {
			t.Errorf("Resolve(%s, true) through %d links: got %v, want invalid_argument", prev, domain.MaxSymlinkHops+1, err)
		}
	})
}

// TestTree_ResolveFilesystem materialises random trees with symlinks on the
// local filesystem and checks that Resolve agrees with the kernel (through
// filepath.EvalSymlinks) wherever the kernel resolves a path.
func TestTree_ResolveFilesystem(t *testing.T) {
	base := []string{"a/b/c/f", "a/c/", "b/a/f", "c/", "f", "a/f", "a.b/f"}
	dirs := []string{"", "a", "a/b", "a/b/c", "a/c", "b", "b/a", "c", "a.b"}
	targetParts := []string{"..", "..", ".", "a", "b", "c", "f", "a.b", "missing", "l0", "l1", "l2", "l3"}
	for seed := range uint64(40) {
		r := rand.New(rand.NewPCG(seed, 4))
		tr := treeOf(t, base...)
		for i := range 12 {
			link := fmt.Sprint("l", i%4)
			if dir := dirs[r.IntN(len(dirs))]; dir != "" {
				link = dir + "/" + link
			}
			if tr.Lookup(link) != nil {
				continue
			}
			var parts []string
			for n := 1 + r.IntN(4); n > 0; n-- {
				parts = append(parts, targetParts[r.IntN(len(targetParts))])
			}
			if r.IntN(8) == 0 {
				parts[0] = "/" + parts[0]
			}
			tr = mustPut(t, tr, link, domain.NewSymlink(strings.Join(parts, "/"), nil))
		}

		root, err := filepath.EvalSymlinks(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		var probes []string
		tr.Walk("", "", func(e domain.Entry) bool {
			full := filepath.Join(root, filepath.FromSlash(e.Path))
			var err error
			switch e.Node.Kind {
			case domain.KindDir:
				err = os.Mkdir(full, 0o755)
			case domain.KindFile:
				err = os.WriteFile(full, nil, 0o644)
			case domain.KindSymlink:
				target := e.Node.Target
				if strings.HasPrefix(target, "/") {
					// On disk, "/" is the temp root, not the machine's.
					target = root + target
				}
				err = os.Symlink(target, full)
				probes = append(probes, e.Path+"/f", e.Path+"/b/c", e.Path+"/l0", e.Path+"/l1/f")
			}
			if err != nil {
				t.Fatal(err)
			}
			probes = append(probes, e.Path)
			return true
		})

		checked := 0
		for _, p := range probes {
			onDisk, fsErr := filepath.EvalSymlinks(filepath.Join(root, filepath.FromSlash(p)))
			if fsErr != nil {
				continue // missing or looping: the tree may answer either way
			}
			got, err := tr.Resolve(p, true)
			rel, _ := filepath.Rel(root, onDisk)
			if rel == ".." || strings.HasPrefix(rel, "../") {
				if domain.ErrorCode(err) != domain.CodeInvalidArgument {
					t.Errorf("seed %d: Resolve(%q) = %q, %v; the kernel leaves the tree (%s), want invalid_argument", seed, p, got, err, rel)
				}
				continue
			}
			if rel == "." {
				rel = ""
			}
			if err != nil || got != filepath.ToSlash(rel) {
				t.Errorf("seed %d: Resolve(%q) = %q, %v; the kernel gives %q", seed, p, got, err, rel)
			}
			checked++
		}
		if checked < len(base) {
			t.Errorf("seed %d: only %d of %d probes resolved on disk", seed, checked, len(probes))
		}
	}
}
