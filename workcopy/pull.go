package workcopy

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

// PullResult is what a pull did.
type PullResult struct {
	Session string `json:"session"`
	From    uint64 `json:"from"`
	To      uint64 `json:"to"`
	// Updated counts paths taken from the session as they are there;
	// Merged, files both sides changed that merged cleanly.
	Updated   int        `json:"updated"`
	Merged    int        `json:"merged"`
	Conflicts []Conflict `json:"conflicts"`
}

// remoteChanges returns what changed in the session from HEAD to head:
// path -> entry at head (nil: deleted there).
func (w *Copy) remoteChanges(ctx context.Context, head uint64) (map[string]*Entry, error) {
	d, err := w.client.Diff(ctx, client.DiffRequest{
		From:  &client.DiffSide{Session: w.Head.Session, At: client.AtPosition(w.Head.Position)},
		To:    client.DiffSide{Session: w.Head.Session, At: client.AtPosition(head)},
		Limit: client.MaxDiffLimit,
	})
	if err != nil {
		return nil, err
	}
	out := map[string]*Entry{}
	if d.Truncated {
		// More changes than one diff lists: compare whole trees.
		entries, _, err := w.manifest(ctx, head)
		if err != nil {
			return nil, err
		}
		seen := map[string]bool{}
		for _, e := range entries {
			seen[e.Path] = true
			if old, ok := w.index[e.Path]; !ok || !old.same(e) {
				out[e.Path] = &e
			}
		}
		for p := range w.index {
			if !seen[p] {
				out[p] = nil
			}
		}
		return out, nil
	}
	node := func(p string, n *client.DiffNodeView) *Entry {
		return &Entry{Path: p, Kind: n.Kind, Size: n.Size, Mode: n.Mode, Hash: n.Hash, Target: n.Target}
	}
	for _, e := range d.Deleted {
		out[e.Path] = nil
	}
	for _, r := range d.Renamed {
		out[r.From] = nil
		out[r.To] = node(r.To, &r.New)
	}
	for _, list := range [][]client.DiffEntryView{d.Added, d.Modified} {
		for _, e := range list {
			if e.New != nil {
				out[e.Path] = node(e.Path, e.New)
			}
		}
	}
	return out, nil
}

// Pull brings the working copy to the session's head: paths changed only
// there are taken as they are; paths changed on both sides merge line by
// line when both are text files, and otherwise conflict. A conflict is
// written down (conflict markers in the file, or the session's side put
// back) and listed; push refuses while one is left as the pull wrote it.
func (w *Copy) Pull(ctx context.Context) (PullResult, error) {
	res, err := w.pull(ctx)
	if err != nil {
		counters.failures[opPull].Add(1)
		return res, err
	}
	counters.pulls.Add(1)
	counters.pullUpdated.Add(int64(res.Updated + res.Merged))
	counters.pullConflicts.Add(int64(len(res.Conflicts)))
	return res, nil
}

func (w *Copy) pull(ctx context.Context) (PullResult, error) {
	if err := w.remote(); err != nil {
		return PullResult{}, err
	}
	sess, err := w.client.GetSession(ctx, w.Head.Session, "")
	if err != nil {
		return PullResult{}, err
	}
	head := sess.Session.Position
	res := PullResult{Session: w.Head.Session, From: w.Head.Position, To: head, Conflicts: []Conflict{}}
	if head == w.Head.Position {
		return res, nil
	}
	remote, err := w.remoteChanges(ctx, head)
	if err != nil {
		return res, err
	}
	paths := make([]string, 0, len(remote))
	var gone []string
	for p, r := range remote {
		paths = append(paths, p)
		if old, ok := w.index[p]; ok && old.Kind == KindDir && (r == nil || r.Kind != KindDir) {
			gone = append(gone, p)
		}
	}
	// Only the paths the session changed matter, and what is below the
	// directories it removed.
	local, err := w.localAt(paths, gone)
	if err != nil {
		return res, err
	}
	localUnder := func(dir string) bool {
		for p := range local {
			if hasPrefixDir(p, dir) {
				return true
			}
		}
		return false
	}
	// Deepest first for removals; materialize sorts what it writes.
	sort.Sort(sort.Reverse(sort.StringSlice(paths)))
	var take []Entry
	var merges []string
	for _, p := range paths {
		r := remote[p]
		lc, changed := local[p]
		if !changed && r == nil && localUnder(p) {
			changed = true
			lc = Change{Kind: Modified, Path: p, Old: ptr(w.index[p]), New: ptr(Entry{Path: p, Kind: KindDir})}
		}
		switch {
		case !changed && r == nil:
			if err := os.RemoveAll(w.abs(p)); err != nil {
				return res, err
			}
			w.dropTree(p)
			res.Updated++
		case !changed:
			if old, ok := w.index[p]; ok && old.Kind != r.Kind {
				if err := os.RemoveAll(w.abs(p)); err != nil {
					return res, err
				}
				w.dropTree(p)
			}
			take = append(take, *r)
			res.Updated++
		case r == nil && lc.New == nil:
			w.dropTree(p) // deleted on both sides
		case r != nil && lc.New != nil && lc.New.same(*r):
			e := *r
			e.Mtime = lc.New.Mtime
			w.index[p] = e // changed the same way on both sides
		case r != nil && lc.New != nil && r.Kind == KindFile && lc.New.Kind == KindFile:
			merges = append(merges, p)
		case r == nil:
			// Deleted there, changed here: the local side stays, to be
			// pushed back once looked at.
			w.dropTree(p)
			res.Conflicts = append(res.Conflicts, Conflict{Path: p, Why: "deleted in the session, changed here: kept here", Hash: lc.New.Hash})
		case lc.New == nil:
			// Changed there, deleted here: the session's side comes back.
			take = append(take, *r)
			res.Conflicts = append(res.Conflicts, Conflict{Path: p, Why: "changed in the session, deleted here: put back", Hash: r.Hash})
		default:
			// Different kinds on the two sides: the local one stays.
			w.index[p] = *r
			res.Conflicts = append(res.Conflicts, Conflict{Path: p, Why: "a " + r.Kind + " in the session, a " + lc.New.Kind + " here: kept here", Hash: lc.New.Hash})
		}
	}
	if err := w.materialize(ctx, head, take, nil); err != nil {
		return res, err
	}
	merged, conflicts, err := w.merge(ctx, head, merges, remote, local)
	if err != nil {
		return res, err
	}
	res.Merged = merged
	res.Conflicts = append(res.Conflicts, conflicts...)
	sort.Slice(res.Conflicts, func(i, j int) bool { return res.Conflicts[i].Path < res.Conflicts[j].Path })
	for _, c := range res.Conflicts {
		if c.Hash != "" {
			w.conflicts = append(w.conflicts, c)
		}
	}
	w.Head.Position, w.Head.Root = head, sess.Session.Root
	if err := w.save(); err != nil {
		return res, err
	}
	return res, nil
}

func ptr(e Entry) *Entry { return &e }

// dropTree removes p and everything below it from the index.
func (w *Copy) dropTree(p string) {
	delete(w.index, p)
	for k := range w.index {
		if hasPrefixDir(k, p) {
			delete(w.index, k)
		}
	}
}

// merge merges files both sides changed: the base content (HEAD), ours (on
// disk) and theirs (head). The index takes the session's side, so what the
// merge adds shows as a local change to push.
func (w *Copy) merge(ctx context.Context, head uint64, paths []string, remote map[string]*Entry, local map[string]Change) (int, []Conflict, error) {
	if len(paths) == 0 {
		return 0, nil, nil
	}
	var theirRefs, baseRefs []client.FileRef
	for _, p := range paths {
		r := remote[p]
		theirRefs = append(theirRefs, client.FileRef{Path: p, Hash: r.Hash, Size: r.Size})
		if o := local[p].Old; o != nil && o.Kind == KindFile {
			baseRefs = append(baseRefs, client.FileRef{Path: p, Hash: o.Hash, Size: o.Size})
		}
	}
	content := map[string][]byte{}
	var mu sync.Mutex
	keep := func(hash string, data []byte) (string, error) {
		mu.Lock()
		content[hash] = data
		mu.Unlock()
		return "", nil
	}
	if err := w.fetch(ctx, head, theirRefs, keep); err != nil {
		return 0, nil, err
	}
	if err := w.fetch(ctx, w.Head.Position, baseRefs, keep); err != nil {
		return 0, nil, err
	}
	merged := 0
	var conflicts []Conflict
	for _, p := range paths {
		r, lc := remote[p], local[p]
		ours, err := os.ReadFile(w.abs(p))
		if err != nil {
			return 0, nil, err
		}
		theirs := content[r.Hash]
		var base []byte
		if lc.Old != nil && lc.Old.Kind == KindFile {
			base = content[lc.Old.Hash]
		}
		out, ok := domain.Merge3(base, ours, theirs)
		if !ok {
			out = markers(ours, theirs, w.Head.Session, strconv.FormatUint(head, 10))
		}
		mode := lc.New.Mode
		if r.Mode != lc.Old.modeOr(r.Mode) {
			mode = r.Mode
		}
		mtime, err := writeFile(w.abs(p), out, mode)
		if err != nil {
			return 0, nil, err
		}
		e := *r
		if hashBytes(out) == r.Hash && mode == r.Mode {
			e.Mtime = mtime
		} else {
			e.Mtime = 0
		}
		w.index[p] = e
		if ok {
			merged++
			continue
		}
		conflicts = append(conflicts, Conflict{Path: p, Why: "changed on both sides", Hash: hashBytes(out)})
	}
	return merged, conflicts, nil
}

// modeOr is the entry's mode, or def for a missing entry.
func (e *Entry) modeOr(def uint32) uint32 {
	if e == nil {
		return def
	}
	return e.Mode
}

// markers writes both sides of a conflict in one file, git style, the
// local side first.
func markers(ours, theirs []byte, session, position string) []byte {
	var b bytes.Buffer
	b.WriteString("<<<<<<< local\n")
	b.Write(ours)
	if len(ours) > 0 && !bytes.HasSuffix(ours, []byte("\n")) {
		b.WriteByte('\n')
	}
	b.WriteString("=======\n")
	b.Write(theirs)
	if len(theirs) > 0 && !bytes.HasSuffix(theirs, []byte("\n")) {
		b.WriteByte('\n')
	}
	b.WriteString(">>>>>>> " + session + "@" + position + "\n")
	return b.Bytes()
}

// ConflictSummary is one line per conflict, for people.
func ConflictSummary(cs []Conflict) string {
	var b strings.Builder
	for _, c := range cs {
		fmt.Fprintf(&b, "CONFLICT %s: %s\n", c.Path, c.Why)
	}
	return b.String()
}
