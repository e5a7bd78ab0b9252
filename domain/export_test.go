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

// DecodeEventFast and DecodeEventLibrary are the two decoders DecodeEvent
// chooses between: the direct one (ok false: it left the body to the
// library) and the library's reflective one, after a check of the body's
// structure.
var DecodeEventLibrary = decodeEventLibrary

// DecodeEventFast is the direct decoder into a new Event.
func DecodeEventFast(b []byte) (*Event, bool) {
	e := new(Event)
	return e, decodeEventFast(b, e, false)
}
