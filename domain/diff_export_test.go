package domain

// DiffCounted is Diff that also returns how many tree and treap nodes the
// walk visited.
var DiffCounted = diffCounted

// LineEdits exposes the line comparison of UnifiedDiff with a given work
// bound: which lines of a are deleted and which of b inserted.
func LineEdits(a, b []string, work int) (delA, insB []bool) {
	ia, ib := internLines(a, b)
	return lineEdits(ia, ib, work)
}
