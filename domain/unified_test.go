package domain_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/strand-dev/strand/domain"
)

func numberedLines(from, to int, edit map[int]string) string {
	var b strings.Builder
	for i := from; i <= to; i++ {
		if s, ok := edit[i]; ok {
			b.WriteString(s)
			continue
		}
		b.WriteString(strconv.Itoa(i) + "\n")
	}
	return b.String()
}

func TestUnifiedDiff(t *testing.T) {
	tests := []struct {
		name         string
		pathA, pathB string
		a, b         string
		context      int
		want         string
	}{
		{"Equal", "f", "f", "same\n", "same\n", 3, ""},
		{"BothEmpty", "f", "f", "", "", 3, ""},
		{"OneLineChanged", "f.txt", "f.txt", numberedLines(1, 10, nil), numberedLines(1, 10, map[int]string{5: "five\n"}), 3,
			"--- a/f.txt\n+++ b/f.txt\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8\n"},
		{"TwoHunks", "f", "f", numberedLines(1, 20, nil), numberedLines(1, 20, map[int]string{2: "two\n", 19: "nineteen\n"}), 3,
			"--- a/f\n+++ b/f\n@@ -1,5 +1,5 @@\n 1\n-2\n+two\n 3\n 4\n 5\n@@ -16,5 +16,5 @@\n 16\n 17\n 18\n-19\n+nineteen\n 20\n"},
		{"HunksMergeWithinTwiceTheContext", "f", "f", numberedLines(1, 20, nil), numberedLines(1, 20, map[int]string{5: "five\n", 11: "eleven\n"}), 3,
			"--- a/f\n+++ b/f\n@@ -2,13 +2,13 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8\n 9\n 10\n-11\n+eleven\n 12\n 13\n 14\n"},
		{"HunksMergeAtTwiceTheContext", "f", "f", numberedLines(1, 20, nil), numberedLines(1, 20, map[int]string{5: "five\n", 12: "twelve\n"}), 3,
			"--- a/f\n+++ b/f\n@@ -2,14 +2,14 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8\n 9\n 10\n 11\n-12\n+twelve\n 13\n 14\n 15\n"},
		{"HunksApartBeyondTwiceTheContext", "f", "f", numberedLines(1, 20, nil), numberedLines(1, 20, map[int]string{5: "five\n", 13: "thirteen\n"}), 3,
			"--- a/f\n+++ b/f\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8\n@@ -10,7 +10,7 @@\n 10\n 11\n 12\n-13\n+thirteen\n 14\n 15\n 16\n"},
		{"ZeroContextInsertAtStart", "f", "f", "a\nb\n", "x\na\nb\n", 0,
			"--- a/f\n+++ b/f\n@@ -0,0 +1 @@\n+x\n"},
		{"NegativeContextIsZero", "f", "f", "a\nb\n", "a\nc\n", -1,
			"--- a/f\n+++ b/f\n@@ -2 +2 @@\n-b\n+c\n"},
		{"HugeContextShowsAll", "f", "f", "a\nb\nc\n", "a\nB\nc\n", 1 << 40,
			"--- a/f\n+++ b/f\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n"},
		{"NoNewlineAtEnd", "f", "f", "a\nb", "a\nb\n", 3,
			"--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+b\n"},
		{"NewFile", "", "new", "", "a\nb\n", 3,
			"--- /dev/null\n+++ b/new\n@@ -0,0 +1,2 @@\n+a\n+b\n"},
		{"DeletedFile", "old", "", "a\nb\n", "", 3,
			"--- a/old\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-a\n-b\n"},
		{"Renamed", "old", "new", "a\n", "b\n", 3,
			"--- a/old\n+++ b/new\n@@ -1 +1 @@\n-a\n+b\n"},
		{"Reordered", "f", "f", "a\nb\nc\n", "c\nb\na\n", 3,
			"--- a/f\n+++ b/f\n@@ -1,3 +1,3 @@\n-a\n-b\n c\n+b\n+a\n"},
		{"CRLF", "f", "f", "a\r\nb\r\n", "a\r\nc\r\n", 3,
			"--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n a\r\n-b\r\n+c\r\n"},
		{"BinaryNUL", "img", "img", "PNG\x00\x01", "PNG\x00\x02", 3,
			"--- a/img\n+++ b/img\nBinary files differ\n"},
		{"BinaryOneSide", "f", "f", "text\n", "te\x00xt\n", 3,
			"--- a/f\n+++ b/f\nBinary files differ\n"},
		{"BinaryInvalidUTF8", "f", "f", "caf\xe9\n", "cafe\n", 3,
			"--- a/f\n+++ b/f\nBinary files differ\n"},
		{"UTF8IsText", "f", "f", "café\n", "cafe\n", 3,
			"--- a/f\n+++ b/f\n@@ -1 +1 @@\n-café\n+cafe\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := domain.UnifiedDiff(tc.pathA, tc.pathB, []byte(tc.a), []byte(tc.b), tc.context)
			if got != tc.want {
				t.Errorf("UnifiedDiff(%q, %q, context %d):\n got %q\nwant %q", tc.a, tc.b, tc.context, got, tc.want)
			}
		})
	}
}

func TestUnifiedDiff_Limits(t *testing.T) {
	t.Run("TooManyBytes", func(t *testing.T) {
		big := []byte(strings.Repeat("x", domain.MaxUnifiedBytes) + "\n")
		got := domain.UnifiedDiff("f", "f", []byte("x\n"), big, 3)
		if !strings.HasPrefix(got, "--- a/f\n+++ b/f\nFile too large to diff") {
			t.Errorf("UnifiedDiff of %d bytes: got %q, want a too-large note", len(big), got)
		}
	})
	t.Run("TooManyLines", func(t *testing.T) {
		many := []byte(strings.Repeat("\n", domain.MaxUnifiedLines+1))
		got := domain.UnifiedDiff("f", "f", many, []byte("x\n"), 3)
		if !strings.HasPrefix(got, "--- a/f\n+++ b/f\nFile too large to diff") {
			t.Errorf("UnifiedDiff of %d lines: got %q, want a too-large note", domain.MaxUnifiedLines+1, got)
		}
	})
	t.Run("WorstCaseIsBounded", func(t *testing.T) {
		// Two unrelated files of the largest line count: every line
		// differs, the worst case for the search. It must still finish,
		// with a correct diff.
		r := rand.New(rand.NewPCG(3, 4))
		a, b := randomLines(r, domain.MaxUnifiedLines, 1<<30), randomLines(r, domain.MaxUnifiedLines, 1<<30)
		got := domain.UnifiedDiff("f", "f", []byte(strings.Join(a, "")), []byte(strings.Join(b, "")), 3)
		if applied := applyUnified(t, a, got); !slices.Equal(applied, b) {
			t.Fatalf("applying the diff of two %d-line files does not give the second", len(a))
		}
	})
}

// randomLines returns n lines drawn from an alphabet of k lines.
func randomLines(r *rand.Rand, n, k int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("line %d\n", r.IntN(k))
	}
	return out
}

// applyUnified applies the hunks of a unified diff to lines and checks that
// every context and deleted line matches.
func applyUnified(t *testing.T, a []string, diff string) []string {
	t.Helper()
	if diff == "" {
		return a
	}
	text := strings.SplitAfter(diff, "\n")
	if len(text) < 2 || !strings.HasPrefix(text[0], "--- ") || !strings.HasPrefix(text[1], "+++ ") {
		t.Fatalf("diff without headers: %q", diff)
	}
	var out []string
	next := 0 // next line of a to copy
	for i := 2; i < len(text) && text[i] != ""; {
		var sa, na, sb, nb int
		h := text[i]
		if _, err := fmt.Sscanf(hunkHeader(h), "%d %d %d %d", &sa, &na, &sb, &nb); err != nil {
			t.Fatalf("bad hunk header %q: %v", h, err)
		}
		start := sa - 1
		if na == 0 {
			start = sa
		}
		if start < next {
			t.Fatalf("hunk %q overlaps the previous one", h)
		}
		out = append(out, a[next:start]...)
		next = start
		i++
		gotA, gotB := 0, 0
		for ; i < len(text) && text[i] != "" && !strings.HasPrefix(text[i], "@@"); i++ {
			l := text[i]
			body := l[1:]
			if i+1 < len(text) && text[i+1] == "\\ No newline at end of file\n" {
				body = strings.TrimSuffix(body, "\n")
				i++
			}
			switch l[0] {
			case ' ', '-':
				if next >= len(a) || a[next] != body {
					t.Fatalf("hunk %q: line %d is %q in the file, %q in the diff", h, next+1, a[min(next, len(a)-1)], body)
				}
				next++
				gotA++
				if l[0] == ' ' {
					out = append(out, body)
					gotB++
				}
			case '+':
				out = append(out, body)
				gotB++
			default:
				t.Fatalf("bad diff line %q", l)
			}
		}
		if gotA != na || gotB != nb {
			t.Fatalf("hunk %q has %d old and %d new lines", h, gotA, gotB)
		}
	}
	return append(out, a[next:]...)
}

// hunkHeader turns "@@ -a,b +c,d @@" into "a b c d", filling omitted
// counts with 1.
func hunkHeader(h string) string {
	h = strings.TrimSuffix(strings.TrimPrefix(h, "@@ -"), " @@\n")
	old, nw, _ := strings.Cut(h, " +")
	part := func(s string) string {
		if n, c, ok := strings.Cut(s, ","); ok {
			return n + " " + c
		}
		return s + " 1"
	}
	return part(old) + " " + part(nw)
}

// lcs is the length of a longest common subsequence, by dynamic
// programming.
func lcs(a, b []string) int {
	prev, cur := make([]int, len(b)+1), make([]int, len(b)+1)
	for i := range a {
		for j := range b {
			switch {
			case a[i] == b[j]:
				cur[j+1] = prev[j] + 1
			default:
				cur[j+1] = max(prev[j+1], cur[j])
			}
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func TestUnifiedDiff_AppliesAndIsMinimal(t *testing.T) {
	for seed := range uint64(2000) {
		r := rand.New(rand.NewPCG(seed, 9))
		a := randomLines(r, r.IntN(30), 1+r.IntN(6))
		b := slices.Clone(a)
		for range r.IntN(8) {
			switch i := r.IntN(len(b) + 1); r.IntN(3) {
			case 0:
				b = slices.Insert(b, i, fmt.Sprintf("line %d\n", r.IntN(8)))
			case 1:
				if i < len(b) {
					b = slices.Delete(b, i, i+1)
				}
			default:
				if i < len(b) {
					b[i] = fmt.Sprintf("line %d\n", r.IntN(8))
				}
			}
		}
		if r.IntN(4) == 0 && len(b) > 0 {
			b[len(b)-1] = strings.TrimSuffix(b[len(b)-1], "\n") // no final newline
		}
		context := r.IntN(5)
		got := domain.UnifiedDiff("f", "f", []byte(strings.Join(a, "")), []byte(strings.Join(b, "")), context)
		if applied := applyUnified(t, a, got); !slices.Equal(applied, b) {
			t.Fatalf("seed %d: applying\n%s\nto %q gives %q, want %q", seed, got, a, applied, b)
		}
		edits := 0
		for _, l := range strings.Split(got, "\n")[min(2, len(got)):] {
			if strings.HasPrefix(l, "-") || strings.HasPrefix(l, "+") {
				edits++
			}
		}
		if want := len(a) + len(b) - 2*lcs(a, b); edits != want {
			t.Fatalf("seed %d: diff of %q and %q has %d edits, want the minimum %d:\n%s", seed, a, b, edits, want, got)
		}
	}
}

func TestUnifiedDiff_WorkBound(t *testing.T) {
	// With the search cut short the edits are not minimal, but the lines
	// left unmarked must still be common to both sides, in order.
	for seed := range uint64(300) {
		r := rand.New(rand.NewPCG(seed, 11))
		a := randomLines(r, r.IntN(200), 1+r.IntN(20))
		b := randomLines(r, r.IntN(200), 1+r.IntN(20))
		work := r.IntN(300)
		delA, insB := domain.LineEdits(a, b, work)
		var keptA, keptB []string
		for i, l := range a {
			if !delA[i] {
				keptA = append(keptA, l)
			}
		}
		for j, l := range b {
			if !insB[j] {
				keptB = append(keptB, l)
			}
		}
		if !slices.Equal(keptA, keptB) {
			t.Fatalf("seed %d, work %d: lines kept from a %q differ from those kept from b %q", seed, work, keptA, keptB)
		}
	}
}
