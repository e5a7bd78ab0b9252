package domain

import (
	"fmt"
	"hash/fnv"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// checkEntries checks the invariants of a treap: names in order, the heap
// order of priorities, sizes, priorities a function of the name, and every
// cached hash equal to the one recomputed from its parts.
func checkEntries(t *testing.T, e *entries, lo, hi string) int {
	t.Helper()
	if e == nil {
		return 0
	}
	if (lo != "" && e.name <= lo) || (hi != "" && e.name >= hi) {
		t.Fatalf("entry %q outside (%q, %q)", e.name, lo, hi)
	}
	if e.prio != priority(e.name) {
		t.Fatalf("entry %q has priority %d, want %d", e.name, e.prio, priority(e.name))
	}
	for _, c := range []*entries{e.left, e.right} {
		if c != nil && above(c, e) {
			t.Fatalf("child %q sits above its parent %q in heap order", c.name, e.name)
		}
	}
	n := 1 + checkEntries(t, e.left, lo, e.name) + checkEntries(t, e.right, e.name, hi)
	if int(e.size) != n {
		t.Fatalf("entry %q has size %d, want %d", e.name, e.size, n)
	}
	if want := mkEntries(e.name, e.child, e.prio, e.left, e.right).digest(); e.digest() != want {
		t.Fatalf("entry %q caches hash %x, want %x", e.name, e.digest(), want)
	}
	return n
}

func names(e *entries) []string {
	var out []string
	e.ascend("", func(name string, _ *Node) bool {
		out = append(out, name)
		return true
	})
	return out
}

// TestEntries: the treap's insert and delete, each as an edit of its own
// (a fresh token: every node on the path copied, as a one-operation edit
// of a tree does), against a model.
func TestEntries(t *testing.T) {
	leaf := NewFile(Sum([]byte("x")), 1, DefaultFileMode, nil)
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 8))
		model := map[string]bool{}
		var e *entries
		for i := range 400 {
			name := fmt.Sprint(r.IntN(150))
			if r.IntN(3) == 0 {
				e = e.deleteIn(&editToken{}, name)
				delete(model, name)
			} else {
				e = e.insertIn(&editToken{}, name, leaf, priority(name))
				model[name] = true
			}
			if i%50 == 0 {
				checkEntries(t, e, "", "")
			}
		}
		checkEntries(t, e, "", "")
		want := slices.Sorted(maps.Keys(model))
		if got := names(e); !slices.Equal(got, want) {
			t.Fatalf("seed %d: entries %q, want %q", seed, got, want)
		}
		if e.len() != len(want) {
			t.Fatalf("seed %d: len %d, want %d", seed, e.len(), len(want))
		}
		for _, name := range want {
			if e.get(name) != leaf {
				t.Fatalf("seed %d: get(%q) = nil, want the leaf", seed, name)
			}
		}
		if e.get("missing") != nil {
			t.Fatalf("seed %d: get(missing) found something", seed)
		}

		// Bulk build gives the same shape, so the same hash.
		children := make([]*Node, len(want))
		for i := range children {
			children[i] = leaf
		}
		b := buildEntries(want, children)
		checkEntries(t, b, "", "")
		if e.len() > 0 && b.digest() != e.digest() {
			t.Fatalf("seed %d: buildEntries hash %x, want %x", seed, b.digest(), e.digest())
		}

		// Deleting a missing name returns the same treap, not a copy.
		if e != nil && e.deleteIn(&editToken{}, "missing") != e {
			t.Fatalf("seed %d: delete(missing) copied the treap", seed)
		}

		// ascend from a name starts at the first name >= it.
		for _, from := range []string{"", "0", "5", "50", "99", "999", ":"} {
			var got []string
			e.ascend(from, func(name string, _ *Node) bool {
				got = append(got, name)
				return true
			})
			var wantFrom []string
			for _, n := range want {
				if n >= from {
					wantFrom = append(wantFrom, n)
				}
			}
			if !slices.Equal(got, wantFrom) {
				t.Fatalf("seed %d: ascend(%q) = %q, want %q", seed, from, got, wantFrom)
			}
		}
	}
}

func TestEntries_EqualPriorities(t *testing.T) {
	// Names whose priorities collide still give one shape per set: ties
	// are broken by name. Force a collision by building entries by hand.
	leaf := NewFile(Sum([]byte("x")), 1, DefaultFileMode, nil)
	var a, b *entries
	for _, n := range []string{"a", "b", "c", "d"} {
		a = a.insertIn(&editToken{}, n, leaf, 7)
	}
	for _, n := range []string{"d", "b", "a", "c"} {
		b = b.insertIn(&editToken{}, n, leaf, 7)
	}
	if a.digest() != b.digest() {
		t.Errorf("same names with equal priorities in two orders: hashes %x and %x", a.digest(), b.digest())
	}
}

// TestPriority_FNV1a checks that priority is hash/fnv's 64-bit FNV-1a:
// priorities decide every treap's shape, hence every Merkle root recorded.
func TestPriority_FNV1a(t *testing.T) {
	for _, name := range []string{"", "a", "file13.go", "ünïcödé", strings.Repeat("long name ", 40), "\x00\xff"} {
		h := fnv.New64a()
		h.Write([]byte(name))
		if got, want := priority(name), h.Sum64(); got != want {
			t.Errorf("priority(%q) = %d, want %d", name, got, want)
		}
	}
}
