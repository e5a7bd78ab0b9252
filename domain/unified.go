package domain

import (
	"bytes"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits of UnifiedDiff. They bound the memory and time that one text diff
// can take, whatever its input.
const (
	// MaxUnifiedBytes is the largest content, per side, that UnifiedDiff
	// compares; a larger file gets a one-line note instead of a diff.
	MaxUnifiedBytes = 4 << 20
	// MaxUnifiedLines is the most lines per side that UnifiedDiff
	// compares; a file with more gets the same note.
	MaxUnifiedLines = 100_000
	// binarySniff is how much of a file is searched for a NUL byte.
	binarySniff = 8000
)

// unifiedWork bounds the steps of the line comparison. The search is
// Myers' O((N+M)·D) algorithm in O(N+M) memory; past the bound the lines
// not matched yet are shown as replaced, which is still a correct diff,
// only not the smallest one. The bound lets a 10,000-line file with
// hundreds of scattered edits get its smallest diff (in about 10 ms), and
// caps the worst case, two unrelated files of MaxUnifiedLines lines, at
// about half a second of one core.
var unifiedWork = 1 << 25

// UnifiedDiff returns the unified diff (as diff -u and git diff print it)
// that turns content a, at pathA, into content b, at pathB, with context
// lines of context around each change. An empty path stands for a side
// where the file does not exist (shown as /dev/null). Equal content gives
// "". Content with a NUL byte in its first 8000 bytes or that is not valid
// UTF-8 is binary: the diff says "Binary files differ" and nothing more.
// Content over MaxUnifiedBytes or MaxUnifiedLines is not compared either:
// the diff says "File too large to diff". A caller need not read more than
// MaxUnifiedBytes+1 bytes of a file to get the same answer.
//
// Lines are compared whole, line ends included, so a change of line ending
// or of the final newline is a change; a last line without a newline is
// followed by "\ No newline at end of file". The edit script is the
// shortest one (Myers' algorithm in linear space) unless the comparison
// exceeds its work bound, see unifiedWork.
func UnifiedDiff(pathA, pathB string, a, b []byte, context int) string {
	if bytes.Equal(a, b) {
		return ""
	}
	var out strings.Builder
	out.WriteString("--- " + diffName("a/", pathA) + "\n")
	out.WriteString("+++ " + diffName("b/", pathB) + "\n")
	// The size is checked before UTF-8 so that a caller may pass only the
	// first MaxUnifiedBytes+1 bytes of a large file, cut anywhere.
	switch {
	case hasNUL(a) || hasNUL(b):
		out.WriteString("Binary files differ\n")
		return out.String()
	case len(a) > MaxUnifiedBytes || len(b) > MaxUnifiedBytes:
		out.WriteString("File too large to diff (more than " + strconv.Itoa(MaxUnifiedBytes) + " bytes)\n")
		return out.String()
	case !utf8.Valid(a) || !utf8.Valid(b):
		out.WriteString("Binary files differ\n")
		return out.String()
	}
	la, lb := splitLines(a), splitLines(b)
	if len(la) > MaxUnifiedLines || len(lb) > MaxUnifiedLines {
		out.WriteString("File too large to diff (more than " + strconv.Itoa(MaxUnifiedLines) + " lines)\n")
		return out.String()
	}
	ia, ib := internLines(la, lb)
	delA, insB := lineEdits(ia, ib, unifiedWork)
	writeHunks(&out, la, lb, delA, insB, max(context, 0))
	return out.String()
}

func diffName(prefix, p string) string {
	if p == "" {
		return "/dev/null"
	}
	return prefix + p
}

// isBinary reports whether content is shown as binary rather than as lines:
// it has a NUL byte in its first 8000 bytes or is not valid UTF-8.
func isBinary(b []byte) bool { return hasNUL(b) || !utf8.Valid(b) }

func hasNUL(b []byte) bool {
	return bytes.IndexByte(b[:min(len(b), binarySniff)], 0) >= 0
}

// splitLines splits text after every "\n"; the last line may lack one.
func splitLines(b []byte) []string {
	s := string(b)
	lines := make([]string, 0, strings.Count(s, "\n")+1)
	for s != "" {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			lines = append(lines, s)
			break
		}
		lines = append(lines, s[:i+1])
		s = s[i+1:]
	}
	return lines
}

// internLines numbers the distinct lines, so the search compares ints.
func internLines(a, b []string) ([]int, []int) {
	ids := make(map[string]int, len(a))
	conv := func(lines []string) []int {
		out := make([]int, len(lines))
		for i, l := range lines {
			id, ok := ids[l]
			if !ok {
				id = len(ids)
				ids[l] = id
			}
			out[i] = id
		}
		return out
	}
	return conv(a), conv(b)
}

// lineEdits marks the lines of a to delete and of b to insert. The lines
// left unmarked on both sides are a common subsequence, matched in order.
func lineEdits(a, b []int, work int) (delA, insB []bool) {
	n, m := len(a), len(b)
	my := &myers{a: a, b: b, delA: make([]bool, n), insB: make([]bool, m), work: work, off: m + 1}
	my.fd, my.bd = make([]int, n+m+3), make([]int, n+m+3)
	my.compare(0, n, 0, m)
	return my.delA, my.insB
}

// myers is the linear-space variant of E. Myers, "An O(ND) Difference
// Algorithm and Its Variations" (1986), section 4b, in the formulation of
// GNU diff's diffseq.h: find the middle of a shortest edit path by
// searching from both ends at once, then solve the two halves the same way.
// Diagonals are numbered x-y in absolute line numbers.
type myers struct {
	a, b       []int
	delA, insB []bool
	fd, bd     []int // furthest x on each diagonal, top-down and bottom-up
	off        int   // index of diagonal 0 in fd and bd
	work       int   // steps left before falling back
}

func (my *myers) compare(a0, a1, b0, b1 int) {
	for a0 < a1 && b0 < b1 && my.a[a0] == my.b[b0] {
		a0, b0 = a0+1, b0+1
	}
	for a0 < a1 && b0 < b1 && my.a[a1-1] == my.b[b1-1] {
		a1, b1 = a1-1, b1-1
	}
	if a0 == a1 || b0 == b1 || my.work <= 0 {
		// One side is used up, or so is the budget: the rest is replaced.
		for i := a0; i < a1; i++ {
			my.delA[i] = true
		}
		for j := b0; j < b1; j++ {
			my.insB[j] = true
		}
		return
	}
	x, y, ok := my.middle(a0, a1, b0, b1)
	if !ok {
		my.compare(a0, a1, b0, b1) // out of budget: marks everything
		return
	}
	// Both ends differ, so a shortest path has at least two edits and the
	// middle point has some on each side: both halves are smaller.
	my.compare(a0, x, b0, y)
	my.compare(x, a1, y, b1)
}

// middle returns a point (x, y) on a shortest edit path from (a0, b0) to
// (a1, b1), halfway in edits. It reports false when it runs out of work.
func (my *myers) middle(a0, a1, b0, b1 int) (x, y int, ok bool) {
	fd, bd, off := my.fd, my.bd, my.off
	dmin, dmax := a0-b1, a1-b0 // the diagonals that cross the rectangle
	fmid, bmid := a0-b0, a1-b1 // where each search starts
	fmin, fmax, bmin, bmax := fmid, fmid, bmid, bmid
	odd := (fmid-bmid)&1 != 0
	fd[off+fmid] = a0
	bd[off+bmid] = a1
	for {
		// One more edit top-down on every diagonal in reach; a sentinel
		// outside the range makes the choice below take the inside one.
		if fmin > dmin {
			fmin--
			fd[off+fmin-1] = -1
		} else {
			fmin++
		}
		if fmax < dmax {
			fmax++
			fd[off+fmax+1] = -1
		} else {
			fmax--
		}
		for d := fmax; d >= fmin; d -= 2 {
			lo, hi := fd[off+d-1], fd[off+d+1]
			x := hi
			if lo >= hi {
				x = lo + 1
			}
			x0, y := x, x-d
			for x < a1 && y < b1 && my.a[x] == my.b[y] {
				x, y = x+1, y+1
			}
			my.work -= 1 + x - x0
			fd[off+d] = x
			if odd && bmin <= d && d <= bmax && bd[off+d] <= x {
				return x, y, true
			}
		}
		// The same bottom-up.
		if bmin > dmin {
			bmin--
			bd[off+bmin-1] = math.MaxInt
		} else {
			bmin++
		}
		if bmax < dmax {
			bmax++
			bd[off+bmax+1] = math.MaxInt
		} else {
			bmax--
		}
		for d := bmax; d >= bmin; d -= 2 {
			lo, hi := bd[off+d-1], bd[off+d+1]
			x := hi - 1
			if lo < hi {
				x = lo
			}
			x0, y := x, x-d
			for a0 < x && b0 < y && my.a[x-1] == my.b[y-1] {
				x, y = x-1, y-1
			}
			my.work -= 1 + x0 - x
			bd[off+d] = x
			if !odd && fmin <= d && d <= fmax && x <= fd[off+d] {
				return x, y, true
			}
		}
		if my.work <= 0 {
			return 0, 0, false
		}
	}
}

// writeHunks writes the hunks of an edit script: the changed lines with up
// to context equal lines around them, merging hunks that would touch.
func writeHunks(out *strings.Builder, la, lb []string, delA, insB []bool, context int) {
	type op struct {
		kind byte // ' ', '-' or '+'
		i, j int  // line of a and of b at this point
	}
	ops := make([]op, 0, max(len(la), len(lb)))
	for i, j := 0, 0; i < len(la) || j < len(lb); {
		switch {
		case i < len(la) && delA[i]:
			ops = append(ops, op{'-', i, j})
			i++
		case j < len(lb) && insB[j]:
			ops = append(ops, op{'+', i, j})
			j++
		default:
			ops = append(ops, op{' ', i, j})
			i, j = i+1, j+1
		}
	}
	context = min(context, len(ops))
	type span struct{ s, e int }
	var spans []span
	for k, o := range ops {
		if o.kind == ' ' {
			continue
		}
		s, e := max(k-context, 0), min(k+context+1, len(ops))
		if n := len(spans); n > 0 && s <= spans[n-1].e {
			spans[n-1].e = e
		} else {
			spans = append(spans, span{s, e})
		}
	}
	for _, sp := range spans {
		na, nb := 0, 0
		for _, o := range ops[sp.s:sp.e] {
			if o.kind != '+' {
				na++
			}
			if o.kind != '-' {
				nb++
			}
		}
		first := ops[sp.s]
		out.WriteString("@@ -" + hunkRange(first.i, na) + " +" + hunkRange(first.j, nb) + " @@\n")
		for _, o := range ops[sp.s:sp.e] {
			line := ""
			if o.kind == '+' {
				line = lb[o.j]
			} else {
				line = la[o.i]
			}
			out.WriteByte(o.kind)
			out.WriteString(line)
			if !strings.HasSuffix(line, "\n") {
				out.WriteString("\n\\ No newline at end of file\n")
			}
		}
	}
}

// hunkRange formats the range of a hunk header from a 0-based start: as
// diff -u does, an empty range names the line before it and a range of
// one line has no count.
func hunkRange(start, count int) string {
	switch count {
	case 0:
		return strconv.Itoa(start) + ",0"
	case 1:
		return strconv.Itoa(start + 1)
	}
	return strconv.Itoa(start+1) + "," + strconv.Itoa(count)
}
