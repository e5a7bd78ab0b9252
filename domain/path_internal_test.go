package domain

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// TestCleanPath_FastPath: CleanPath answers exactly as the general
// cleanPath for paths made of the pieces that matter to either (slashes,
// dots, control bytes, backslashes, non-ASCII, components and paths at and
// past their limits), and the fast path takes the clean ones.
func TestCleanPath_FastPath(t *testing.T) {
	pieces := []string{"a", "bc", "/", "/", "//", ".", "..", "...", ".a", "\x00", "\x1f", "\x7f", "\\", "\u00e9", "\xff", " ", "~",
		strings.Repeat("x", MaxComponentBytes), strings.Repeat("y", MaxComponentBytes+1)}
	rng := rand.New(rand.NewPCG(1, 2))
	fast := 0
	check := func(p string) {
		t.Helper()
		got, gerr := CleanPath(p)
		want, werr := cleanPath(p)
		if got != want || (gerr == nil) != (werr == nil) {
			t.Fatalf("CleanPath(%q) = %q, %v; cleanPath = %q, %v", p, got, gerr, want, werr)
		}
		if isCleanASCII(p) {
			fast++
			if werr != nil || want != p {
				t.Fatalf("%q taken as clean; cleanPath = %q, %v", p, want, werr)
			}
		}
	}
	for range 200000 {
		var b strings.Builder
		for range rng.IntN(12) {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		check(b.String())
	}
	deep := strings.TrimSuffix(strings.Repeat("d/", MaxPathDepth), "/")
	long := strings.Repeat(strings.Repeat("y", 63)+"/", MaxPathDepth)
	for _, p := range []string{"", "a", deep, deep + "/e", long[:MaxPathBytes-1] + "z", long[:MaxPathBytes] + "z", "src/main.go", "/src/main.go"} {
		check(p)
	}
	if fast < 1000 {
		t.Fatalf("only %d clean paths took the fast path", fast)
	}
}

// BenchmarkCleanPath: a path as clients send it, through the fast path and
// through the general one.
func BenchmarkCleanPath(b *testing.B) {
	const p = "src/internal/store/segment_0042.go"
	b.Run("fast", func(b *testing.B) {
		for b.Loop() {
			if _, err := CleanPath(p); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("general", func(b *testing.B) {
		for b.Loop() {
			if _, err := cleanPath(p); err != nil {
				b.Fatal(err)
			}
		}
	})
}
