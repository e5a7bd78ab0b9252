package workcopy

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
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
	now := time.Now().UnixNano()
	var added, deleted []Entry
	for p, e := range cur {
		old, ok := w.index[p]
		switch {
		case !ok:
			added = append(added, e)
		case old.same(e):
			// Record what was learnt: a file touched but unchanged, or a
			// racy entry that is old enough now to be trusted once the
			// index is written again.
			if e.Kind == KindFile && (old.Mtime != e.Mtime || old.Size != e.Size ||
				old.Mtime >= w.indexWritten-racyWindow && now-e.Mtime > racyWindow) {
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
		if err := w.save(); err != nil {
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

// localAt returns the local changes at the given paths only, and for each
// of dirs any change below it: what a pull needs to know, in time that
// grows with the paths asked about rather than with the tree.
func (w *Copy) localAt(paths, dirs []string) (map[string]Change, error) {
	out := map[string]Change{}
	for _, p := range paths {
		e, present, err := w.lstatEntry(p)
		if err != nil {
			return nil, err
		}
		old, tracked := w.index[p]
		switch {
		case !present && tracked:
			out[p] = change(Deleted, p, old, Entry{})
		case !present:
		case !tracked:
			out[p] = change(Added, p, Entry{}, e)
		case old.same(e):
		case old.Kind == KindFile && e.Kind == KindFile && old.Hash == e.Hash:
			out[p] = change(ModeChanged, p, old, e)
		default:
			out[p] = change(Modified, p, old, e)
		}
	}
	for _, d := range dirs {
		if _, err := os.Lstat(w.abs(d)); err != nil {
			continue
		}
		ig, err := w.ignorerFor(d)
		if err != nil {
			return nil, err
		}
		s := &scanner{w: w, cur: map[string]Entry{}, sem: make(chan struct{}, scanWorkers)}
		s.dir(d, ig)
		s.wg.Wait()
		if s.err != nil {
			return nil, s.err
		}
		if err := w.hashAll(s.cur, s.toHash); err != nil {
			return nil, err
		}
		for p, e := range s.cur {
			if old, ok := w.index[p]; !ok || !old.same(e) {
				out[p] = change(Modified, p, old, e)
			}
		}
	}
	return out, nil
}

// lstatEntry describes what is on disk at p (present false: nothing, or
// an untracked path that .strandignore ignores).
func (w *Copy) lstatEntry(p string) (Entry, bool, error) {
	info, err := os.Lstat(w.abs(p))
	if os.IsNotExist(err) {
		return Entry{}, false, nil
	}
	if err != nil {
		return Entry{}, false, err
	}
	old, tracked := w.index[p]
	if !tracked {
		ig, err := w.ignorerFor(parentOf(p))
		if err != nil {
			return Entry{}, false, err
		}
		if ig.ignored(p, info.IsDir()) {
			return Entry{}, false, nil
		}
	}
	switch {
	case info.IsDir():
		return Entry{Path: p, Kind: KindDir, Mode: uint32(info.Mode().Perm())}, true, nil
	case info.Mode()&os.ModeSymlink != 0:
		target, err := os.Readlink(w.abs(p))
		return Entry{Path: p, Kind: KindSymlink, Target: target}, err == nil, err
	case info.Mode().IsRegular():
		e := Entry{Path: p, Kind: KindFile, Size: info.Size(), Mode: uint32(info.Mode().Perm()), Mtime: info.ModTime().UnixNano()}
		if tracked && old.Kind == KindFile && old.Size == e.Size && old.Mtime == e.Mtime && old.Mtime != 0 && old.Mtime < w.indexWritten-racyWindow {
			e.Hash = old.Hash
			return e, true, nil
		}
		h, err := hashFile(w.abs(p))
		e.Hash = h
		return e, err == nil, err
	}
	return Entry{}, false, nil
}

// ignorerFor returns the ignore patterns that apply inside dir: those of
// the root's .strandignore and of every directory down to dir.
func (w *Copy) ignorerFor(dir string) (*ignorer, error) {
	ig := newIgnorer()
	if err := ig.load(w.Dir, ""); err != nil {
		return nil, err
	}
	if dir == "" {
		return ig, nil
	}
	parts := strings.Split(dir, "/")
	for i := range parts {
		d := strings.Join(parts[:i+1], "/")
		if _, err := os.Stat(filepath.Join(w.abs(d), IgnoreFile)); err == nil {
			if ig, err = ig.with(w.Dir, d); err != nil {
				return nil, err
			}
		}
	}
	return ig, nil
}

func parentOf(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return ""
}
