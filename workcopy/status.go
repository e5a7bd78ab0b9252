package workcopy

import (
	"sort"
)

// Change kinds, as status prints them.
const (
	Added       = "added"
	Modified    = "modified"
	Deleted     = "deleted"
	Renamed     = "renamed"
	ModeChanged = "mode"
)

// Change is one local change since HEAD. Old is absent when added, New
// when deleted; From is the old path of a rename.
type Change struct {
	Kind string `json:"kind"`
	Path string `json:"path"`
	From string `json:"from,omitempty"`
	Old  *Entry `json:"-"`
	New  *Entry `json:"-"`
}

// Status is the local changes of a working copy, in path order, and the
// conflicts a pull left that are not resolved yet.
type Status struct {
	Session   string     `json:"session"`
	Position  uint64     `json:"position"`
	Changes   []Change   `json:"changes"`
	Conflicts []Conflict `json:"conflicts,omitempty"`

	current map[string]Entry
}

// Clean reports whether there is nothing to push.
func (s *Status) Clean() bool { return len(s.Changes) == 0 }

// Status compares the working copy with HEAD. It reads only files whose
// size, mtime or mode changed, and records what it learnt in the index
// (a file touched but not changed is not read again).
func (w *Copy) Status() (*Status, error) {
	cur, err := w.scan()
	if err != nil {
		return nil, err
	}
	st := &Status{Session: w.Head.Session, Position: w.Head.Position, current: cur, Changes: []Change{}}
	refreshed := false
	var added, deleted []Entry
	for p, e := range cur {
		old, ok := w.index[p]
		switch {
		case !ok:
			added = append(added, e)
		case old.same(e):
			if e.Kind == KindFile && (old.Mtime != e.Mtime || old.Size != e.Size) {
				old.Mtime, old.Size = e.Mtime, e.Size
				w.index[p] = old
				refreshed = true
			}
		case old.Kind == KindFile && e.Kind == KindFile && old.Hash == e.Hash:
			st.Changes = append(st.Changes, change(ModeChanged, p, old, e))
		default:
			st.Changes = append(st.Changes, change(Modified, p, old, e))
		}
	}
	for p, old := range w.index {
		if _, ok := cur[p]; !ok {
			deleted = append(deleted, old)
		}
	}
	st.Changes = append(st.Changes, renames(added, deleted)...)
	sort.Slice(st.Changes, func(i, j int) bool { return st.Changes[i].Path < st.Changes[j].Path })
	for _, c := range w.conflicts {
		if e, ok := cur[c.Path]; ok && e.Hash == c.Hash {
			st.Conflicts = append(st.Conflicts, c)
		}
	}
	if refreshed {
		if err := w.saveIndex(); err != nil {
			return nil, err
		}
	}
	return st, nil
}

func change(kind, p string, old, e Entry) Change {
	c := Change{Kind: kind, Path: p}
	if old.Kind != "" {
		c.Old = &old
	}
	if e.Kind != "" {
		c.New = &e
	}
	return c
}

// renames pairs deleted and added files of equal content (exact renames;
// each content pairs once, in path order) and returns every change.
func renames(added, deleted []Entry) []Change {
	sort.Slice(added, func(i, j int) bool { return added[i].Path < added[j].Path })
	sort.Slice(deleted, func(i, j int) bool { return deleted[i].Path < deleted[j].Path })
	gone := map[string][]int{}
	for i, d := range deleted {
		if d.Kind == KindFile {
			gone[d.Hash] = append(gone[d.Hash], i)
		}
	}
	used := make([]bool, len(deleted))
	var out []Change
	for _, a := range added {
		if a.Kind == KindFile {
			if is := gone[a.Hash]; len(is) > 0 {
				i := is[0]
				gone[a.Hash] = is[1:]
				used[i] = true
				c := change(Renamed, a.Path, deleted[i], a)
				c.From = deleted[i].Path
				out = append(out, c)
				continue
			}
		}
		out = append(out, change(Added, a.Path, Entry{}, a))
	}
	for i, d := range deleted {
		if !used[i] {
			out = append(out, change(Deleted, d.Path, d, Entry{}))
		}
	}
	return out
}
