package domain

import (
	"bytes"
	"maps"
	"slices"
	"sort"
	"strconv"
)

// Merge strategies: how a conflict is resolved. Ours keeps the target's
// side, theirs takes the merged session's side. No strategy leaves the
// conflict unresolved.
const (
	StrategyOurs   = "ours"
	StrategyTheirs = "theirs"
)

// Conflict kinds.
const (
	ConflictBothModified = "both_modified"
	ConflictModifyDelete = "modify_delete"
	ConflictAddAdd       = "add_add"
	ConflictTypeChange   = "type_change"
)

// Per-path merge results.
const (
	// MergeTheirs: the path changed only in the merged session and was taken.
	MergeTheirs = "theirs"
	// MergeLines: both sides changed the text file in places that do not
	// touch, and the lines were merged.
	MergeLines = "merged"
	// MergeConflict: both sides changed the path incompatibly.
	MergeConflict = "conflict"
)

// MergeData is the payload of SessionMerged: where the merged content came
// from and which base the three-way merge used. The event's Ops are the
// result, applied to the target like a batch.
type MergeData struct {
	From         string `msgpack:"from"`
	FromPosition uint64 `msgpack:"fpos"`
	// The base: a position of a session, or a source revision when both
	// histories begin at the same one.
	BaseSession  string `msgpack:"bses,omitempty"`
	BasePosition uint64 `msgpack:"bpos,omitempty"`
	BaseSource   string `msgpack:"bsrc,omitempty"`
	BaseRevision uint64 `msgpack:"brev,omitempty"`
	Strategy     string `msgpack:"strategy,omitempty"`
	// Resolved names the conflicts a strategy settled: path -> ours|theirs.
	Resolved map[string]string `msgpack:"resolved,omitempty"`
	// Gate is what the policy required of the merge (the event's Uses are
	// the approvals that met it).
	Gate Policy `msgpack:"gate,omitempty"`
}

// MergeSession records the result of a three-way merge on the target: Ops
// were computed by Merge against the target's current tree (the head the
// command is decided on). The approval policy for merge applies.
type MergeSession struct {
	Data   MergeData
	Ops    []Op
	Tenant Policy
	// Token is the lease token the caller holds, for locked paths.
	Token string
}

func (MergeSession) command() {}

func decideMerge(s *Session, c MergeSession, m Meta, _ Past) (*Event, error) {
	if err := s.Writable(); err != nil {
		return nil, err
	}
	if len(c.Ops) == 0 {
		return nil, Errorf(CodeInvalidArgument, "the merge changes nothing")
	}
	if len(c.Ops) > MaxBatchOps {
		return nil, Errorf(CodeTooLarge, "the merge changes more than %d paths; merge a part of it with paths or merge in steps", MaxBatchOps)
	}
	for _, st := range c.Data.Resolved {
		if st != StrategyOurs && st != StrategyTheirs {
			return nil, Errorf(CodeInvalidArgument, "strategy must be ours or theirs")
		}
	}
	inline := 0
	for _, op := range c.Ops {
		if err := s.checkOpLocks(op, c.Token, m.Time); err != nil {
			return nil, err
		}
		if op.Inline() {
			h, ok := HashFromBytes(op.Content)
			if !ok || h.IsZero() {
				return nil, Errorf(CodeInvalidArgument, "inline content does not match its hash and size")
			}
			if err := checkInline(&FileOp{Data: op.Data, Content: h, Size: op.Size}); err != nil {
				return nil, err
			}
			inline += len(op.Data)
		}
	}
	if inline > MaxInlineEventBytes {
		return nil, Errorf(CodeTooLarge, "an event carries at most %d bytes of inline content", MaxInlineEventBytes)
	}
	uses, err := s.Authorize(ActionMerge, c.Tenant)
	if err != nil {
		return nil, err
	}
	e := newEvent(s, SessionMerged, m)
	e.Ops = slices.Clone(c.Ops)
	d := c.Data
	d.Resolved = maps.Clone(d.Resolved)
	d.Gate = s.Gate(ActionMerge, c.Tenant)
	e.Merge = &d
	e.Uses = uses
	return e, nil
}

// Lineage is where a state of a session comes from, nearest first: the
// session at a position, then its parent at the fork position, and so on;
// a history that began at a source revision ends with that revision (a
// step with Source set and no Session).
type Lineage []LineageStep

// LineageStep is one step of a Lineage.
type LineageStep struct {
	Session  string
	Position uint64
	Source   string
	Revision uint64
}

// CommonBase returns the nearest state both lineages pass through: a
// session at the lower of the two positions where both histories contain
// it, or a source revision both began at. A fork of the other session (at
// any depth) finds its fork point in the other's history that way.
func CommonBase(a, b Lineage) (LineageStep, bool) {
	for _, x := range a {
		for _, y := range b {
			switch {
			case x.Session != "" && x.Session == y.Session:
				return LineageStep{Session: x.Session, Position: min(x.Position, y.Position)}, true
			case x.Session == "" && y.Session == "" && x.Source != "" && x.Source == y.Source && x.Revision == y.Revision:
				return LineageStep{Source: x.Source, Revision: x.Revision}, true
			}
		}
	}
	return LineageStep{}, false
}

// MergeInput is what a three-way merge needs.
type MergeInput struct {
	Base, Ours, Theirs Tree
	// Strategy resolves every conflict that Paths does not name.
	Strategy string
	// Paths resolves the conflicts at a path or below it (the longest
	// matching path wins): clean path -> ours|theirs.
	Paths map[string]string
	// Content returns a file's bytes for a line merge; nil bytes (or a nil
	// func) mean the file is not merged line by line (too large, say).
	Content func(Hash) ([]byte, error)
}

// Conflict is a path both sides changed incompatibly. Ours and Theirs say
// what each side did (added, modified, deleted) and OursKind and
// TheirsKind what the path holds on each side (file, dir, symlink, or ""
// when absent). Resolution is the strategy that settled it, if any.
type Conflict struct {
	Path       string
	Kind       string
	Ours       string
	Theirs     string
	OursKind   string
	TheirsKind string
	Resolution string
}

// PathResult is the outcome of the merge at one path.
type PathResult struct {
	Path   string
	Result string // MergeTheirs, MergeLines or MergeConflict
}

// MergeOutcome is the result of Merge. When Conflicts is empty, Tree is the
// merged tree and Ops turn the target's tree into it; Content holds the
// content that must be stored as blobs before an event names it: what line
// merges produced, and inline content beyond one event's share
// (MaxInlineEventBytes).
type MergeOutcome struct {
	Tree      Tree
	Ops       []Op
	Paths     []PathResult
	Conflicts []Conflict
	Resolved  []Conflict
	Content   map[Hash][]byte
}

// Merge merges Theirs into Ours with Base as their common ancestor.
//
// Paths changed on one side only take that side. A text file changed on both
// sides is merged line by line when the two sides' edits are separated by
// at least one unchanged line (as diff3 does; edits that touch or overlap
// conflict). Everything else both sides changed differently is a conflict:
// both modified, modified on one side and deleted on the other, added on
// both with different content, or a change of kind (file, directory,
// symlink) against any other change. A strategy for the path, or for all,
// settles a conflict by taking one side whole.
//
// Directories are merged through their entries: a directory that one side
// deleted stays when the result still has entries in it. A change of a
// directory's own mode or xattrs on one side is taken (a chmod, xattr
// operations); when both sides changed them differently, the target's
// stay.
// Xattrs of a file follow the side its content is taken from; when both
// sides changed them differently, the target's stay.
func Merge(in MergeInput) (MergeOutcome, error) {
	m := merger{in: in, result: in.Ours, content: map[Hash][]byte{}}
	ours := changeMap(in.Base, in.Ours)
	theirs := changeMap(in.Base, in.Theirs)
	paths := make([]string, 0, len(theirs))
	for p := range theirs {
		paths = append(paths, p)
	}
	slices.SortFunc(paths, ComparePaths)
	var deletes []string
	for _, p := range paths {
		if m.blocked(p) {
			continue
		}
		t := theirs[p]
		o, both := ours[p]
		if !both {
			ok, err := m.takeTheirs(p, t.new, false)
			if err != nil {
				return MergeOutcome{}, err
			}
			if !ok {
				m.conflict(p, o, t, ConflictTypeChange)
				continue
			}
			if t.new == nil {
				deletes = append(deletes, p)
			}
			m.record(p, MergeTheirs)
			continue
		}
		if err := m.both(p, o, t, &deletes); err != nil {
			return MergeOutcome{}, err
		}
	}
	// Deletions last and deepest first, so a directory goes only when
	// nothing is left in it.
	for i := len(deletes) - 1; i >= 0; i-- {
		p := deletes[i]
		n := m.result.Lookup(p)
		if n == nil || (n.Kind == KindDir && n.Len() > 0) {
			continue
		}
		m.result = m.result.Delete(p)
	}
	out := MergeOutcome{Paths: m.paths, Conflicts: m.conflicts, Resolved: m.resolved}
	if len(m.conflicts) > 0 {
		return out, nil
	}
	out.Tree = m.result
	out.Ops = DiffOps(in.Ours, m.result, true)
	check, err := applyOps(in.Ours, out.Ops)
	if err != nil || check.Hash() != m.result.Hash() {
		return MergeOutcome{}, Errorf(CodeInternal, "merge operations do not rebuild the merged tree")
	}
	out.Content = spillContent(out.Ops, m.content)
	return out, nil
}

// spillContent returns the content that must be stored as blobs before an
// event with these operations: the lines merged here, and inline content
// beyond what one event may carry (MaxInlineEventBytes), whose operations
// it turns into blob references.
func spillContent(ops []Op, merged map[Hash][]byte) map[Hash][]byte {
	var out map[Hash][]byte
	add := func(h Hash, b []byte) {
		if out == nil {
			out = map[Hash][]byte{}
		}
		out[h] = b
	}
	budget := MaxInlineEventBytes
	for i := range ops {
		op := &ops[i]
		if op.Kind != OpWrite {
			continue
		}
		h, _ := HashFromBytes(op.Content)
		switch {
		case op.Inline() && len(op.Data) <= budget:
			budget -= len(op.Data)
		case op.Inline():
			add(h, op.Data)
			op.Data = nil
		default:
			if b, ok := merged[h]; ok {
				add(h, b)
			}
		}
	}
	return out
}

// side is one side's change at a path: the base's node and the side's.
type side struct{ old, new *Node }

// changeMap lists every path that differs between base and x, renames as a
// deletion and an addition. The root's own mode is left out.
func changeMap(base, x Tree) map[string]side {
	c := Diff(base, x)
	out := make(map[string]side, c.Len())
	for _, ch := range c.Added {
		out[ch.Path] = side{nil, ch.New}
	}
	for _, ch := range c.Modified {
		if ch.Path != "" {
			out[ch.Path] = side{ch.Old, ch.New}
		}
	}
	for _, ch := range c.Deleted {
		out[ch.Path] = side{ch.Old, nil}
	}
	for _, r := range c.Renamed {
		out[r.From] = side{r.Old, nil}
		out[r.To] = side{nil, r.New}
	}
	return out
}

type merger struct {
	in        MergeInput
	result    Tree
	content   map[Hash][]byte
	paths     []PathResult
	conflicts []Conflict
	resolved  []Conflict
	// kept are the paths where the target's side stays whole (a conflict
	// resolved as ours, or not resolved): theirs' changes below them are
	// part of the same decision.
	kept []string
}

func (m *merger) record(p, result string) {
	m.paths = append(m.paths, PathResult{Path: p, Result: result})
}

func (m *merger) blocked(p string) bool {
	for _, k := range m.kept {
		if isWithin(p, k) && p != k {
			return true
		}
	}
	return false
}

// strategyFor returns the strategy that applies at p.
func (m *merger) strategyFor(p string) string {
	best, found := "", -1
	for q, st := range m.in.Paths {
		if isWithin(p, q) && len(q) > found {
			best, found = st, len(q)
		}
	}
	if found >= 0 {
		return best
	}
	return m.in.Strategy
}

func what(s side, present bool) (string, string) {
	if !present {
		return "unchanged", ""
	}
	kind := ""
	if s.new != nil {
		kind = s.new.Kind.String()
	}
	switch {
	case s.old == nil:
		return "added", kind
	case s.new == nil:
		return "deleted", kind
	}
	return "modified", kind
}

// conflict records a conflict at p and resolves it when a strategy says so.
func (m *merger) conflict(p string, o, t side, kind string) {
	oursPresent := o.old != nil || o.new != nil
	c := Conflict{Path: p, Kind: kind}
	c.Ours, c.OursKind = what(o, oursPresent)
	c.Theirs, c.TheirsKind = what(t, true)
	if !oursPresent {
		if n := m.in.Ours.Lookup(p); n != nil {
			c.OursKind = n.Kind.String()
		}
	}
	switch st := m.strategyFor(p); st {
	case StrategyTheirs:
		if ok, _ := m.takeTheirs(p, t.new, true); ok {
			c.Resolution = st
			m.resolved = append(m.resolved, c)
			m.record(p, MergeTheirs)
			return
		}
	case StrategyOurs:
		c.Resolution = st
		m.resolved = append(m.resolved, c)
		m.kept = append(m.kept, p)
		return
	}
	m.kept = append(m.kept, p)
	m.conflicts = append(m.conflicts, c)
	m.record(p, MergeConflict)
}

// both handles a path that both sides changed.
func (m *merger) both(p string, o, t side, deletes *[]string) error {
	switch {
	case sameNode(o.new, t.new):
		return nil
	case isDir(o.old) && !isNonDir(o.new) && !isNonDir(t.new):
		// A directory both sides kept (or deleted): its entries merge on
		// their own, its own mode stays the target's.
		if t.new == nil {
			*deletes = append(*deletes, p)
		}
		return nil
	case o.old == nil && t.old == nil && isDir(o.new) && isDir(t.new):
		return nil // added on both sides: entries merge on their own
	}
	kind := ConflictBothModified
	switch {
	case o.old == nil && t.old == nil:
		kind = ConflictAddAdd
	case o.new == nil || t.new == nil:
		kind = ConflictModifyDelete
	case o.new.Kind != t.new.Kind || o.old.Kind != o.new.Kind || t.old.Kind != t.new.Kind:
		kind = ConflictTypeChange
	case o.new.Kind == KindFile:
		n, merged, err := m.mergeFile(o.old, o.new, t.new)
		if err != nil {
			return err
		}
		if n != nil {
			if m.result, err = m.result.Put(p, n); err != nil {
				return err
			}
			if merged {
				m.record(p, MergeLines)
			} else {
				m.record(p, MergeTheirs)
			}
			return nil
		}
	}
	m.conflict(p, o, t, kind)
	return nil
}

func isDir(n *Node) bool    { return n != nil && n.Kind == KindDir }
func isNonDir(n *Node) bool { return n != nil && n.Kind != KindDir }

// sameNode reports whether two sides hold the same thing at a path: for a
// directory its own mode and xattrs, not its entries.
func sameNode(a, b *Node) bool {
	switch {
	case a == nil || b == nil:
		return a == b
	case a.Kind != b.Kind:
		return false
	case a.Kind == KindDir:
		return a.Mode == b.Mode && maps.EqualFunc(a.Xattrs, b.Xattrs, bytes.Equal)
	}
	return a.Hash() == b.Hash()
}

// takeTheirs makes the result hold n at p (nil: nothing, done later by the
// deletion pass). Unless force, it refuses (false) when that would drop a
// change of the target: replacing a directory the target changed, or
// writing below something the target turned into a non-directory. With
// force it replaces whatever is in the way.
func (m *merger) takeTheirs(p string, n *Node, force bool) (bool, error) {
	if n == nil {
		if force {
			m.result = m.result.Delete(p)
		}
		return true, nil
	}
	cur := m.result.Lookup(p)
	if n.Kind == KindDir {
		if cur != nil && cur.Kind == KindDir {
			// The entries merge on their own; the directory's own mode and
			// xattrs are theirs (a chmod, xattr operations).
			if cur.Mode == n.Mode && maps.EqualFunc(cur.Xattrs, n.Xattrs, bytes.Equal) {
				return true, nil
			}
			t, err := m.result.Put(p, cur.WithMode(n.Mode).WithXattrs(n.Xattrs))
			if err != nil {
				return false, err
			}
			m.result = t
			return true, nil
		}
		n = NewDir(n.Mode, n.Xattrs)
	}
	if cur != nil && cur.Kind == KindDir && !force {
		base := m.in.Base.Lookup(p)
		if base == nil || base.Hash() != cur.Hash() {
			return false, nil
		}
	}
	if cur != nil && (cur.Kind == KindDir || n.Kind == KindDir) {
		m.result = m.result.Delete(p)
	}
	t, err := m.result.Put(p, n)
	if err != nil {
		if !force {
			return false, nil
		}
		// Remove the non-directory ancestor in the way, then try again.
		for _, a := range ancestors(p) {
			if x := m.result.Lookup(a); x != nil && x.Kind != KindDir {
				m.result = m.result.Delete(a)
				break
			}
		}
		if t, err = m.result.Put(p, n); err != nil {
			return false, nil
		}
	}
	m.result = t
	return true, nil
}

// ancestors returns the proper ancestors of a clean path, outermost first.
func ancestors(p string) []string {
	var out []string
	for i := 0; i < len(p); i++ {
		if p[i] == '/' {
			out = append(out, p[:i])
		}
	}
	return out
}

// mergeFile merges a file both sides modified: modes and xattrs three-way,
// content three-way and then line by line. It returns nil when they
// conflict, and whether lines were merged.
func (m *merger) mergeFile(base, ours, theirs *Node) (*Node, bool, error) {
	mode, ok := pick3(base.Mode, ours.Mode, theirs.Mode)
	if !ok {
		return nil, false, nil
	}
	x := ours.Xattrs
	if maps.EqualFunc(base.Xattrs, ours.Xattrs, bytes.Equal) {
		x = theirs.Xattrs
	}
	if content, ok := pick3(base.Content, ours.Content, theirs.Content); ok {
		from := ours
		if content == theirs.Content && (content != ours.Content || !ours.Inline()) {
			from = theirs
		}
		n := NewFile(content, from.Size, mode, x)
		n.Data = from.Data
		return n, false, nil
	}
	if m.in.Content == nil {
		return nil, false, nil
	}
	var sides [3][]byte
	for i, n := range []*Node{base, ours, theirs} {
		b, err := n.Data, error(nil)
		if !n.Inline() {
			b, err = m.in.Content(n.Content)
		}
		if err != nil {
			return nil, false, err
		}
		if b == nil || !mergeableText(b) {
			return nil, false, nil
		}
		sides[i] = b
	}
	merged, ok := Merge3(sides[0], sides[1], sides[2])
	if !ok {
		return nil, false, nil
	}
	h := Sum(merged)
	m.content[h] = merged
	return NewFile(h, int64(len(merged)), mode, x), true, nil
}

// pick3 is the three-way choice of one value: equal sides, or the side
// that changed it.
func pick3[T comparable](base, ours, theirs T) (T, bool) {
	switch {
	case ours == theirs:
		return ours, true
	case ours == base:
		return theirs, true
	case theirs == base:
		return ours, true
	}
	return ours, false
}

func mergeableText(b []byte) bool {
	return len(b) <= MaxUnifiedBytes && !isBinary(b)
}

// Merge3 merges two texts that both derive from base, line by line, as
// diff3 -m does: a region changed on one side only takes that side, a
// region changed the same way on both takes it once, and regions that both
// sides changed differently (or whose edits touch, with no unchanged line
// between them) conflict: ok is false.
func Merge3(base, ours, theirs []byte) ([]byte, bool) {
	lb, lo, lt := splitLines(base), splitLines(ours), splitLines(theirs)
	if len(lb) > MaxUnifiedLines || len(lo) > MaxUnifiedLines || len(lt) > MaxUnifiedLines {
		return nil, false
	}
	ids := map[string]int{}
	intern := func(lines []string) []int {
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
	ib, io, it := intern(lb), intern(lo), intern(lt)
	mo := matchLines(ib, io)
	mt := matchLines(ib, it)
	var out bytes.Buffer
	equal := func(a, b []int) bool { return slices.Equal(a, b) }
	i, jo, jt := 0, 0, 0
	for {
		// The next base line kept by both sides is a sync point.
		k := i
		for k < len(ib) && (mo[k] < 0 || mt[k] < 0) {
			k++
		}
		eo, et := len(io), len(it)
		if k < len(ib) {
			eo, et = mo[k], mt[k]
		}
		cb, co, ct := ib[i:k], io[jo:eo], it[jt:et]
		var take []string
		switch {
		case equal(co, cb):
			take = lt[jt:et]
		case equal(ct, cb) || equal(co, ct):
			take = lo[jo:eo]
		default:
			return nil, false
		}
		for _, l := range take {
			out.WriteString(l)
		}
		if k == len(ib) {
			break
		}
		out.WriteString(lb[k])
		i, jo, jt = k+1, eo+1, et+1
	}
	return out.Bytes(), true
}

// matchLines maps every line of base to the line of x it is kept as, or -1
// when x deleted it.
func matchLines(base, x []int) []int {
	del, ins := lineEdits(base, x, unifiedWork)
	out := make([]int, len(base))
	j := 0
	for i := range base {
		if del[i] {
			out[i] = -1
			continue
		}
		for j < len(x) && ins[j] {
			j++
		}
		out[i] = j
		j++
	}
	return out
}

// DiffOps returns the operations that turn tree a into tree b, as recorded
// in events (clean paths, nothing left to resolve): removals first (a
// removed directory takes everything below it), then changes, then
// additions in tree order. With xattrs (merges), a directory's own mode
// and xattrs become a chmod and xattr operations; without (fs.sync, which
// adds the chmods of the archive's own folders itself), both are left as
// in a, and so are files' xattrs: a file whose content and mode are equal
// is not written again.
func DiffOps(a, b Tree, xattrs bool) []Op {
	c := Diff(a, b)
	deleted := append([]Change(nil), c.Deleted...)
	added := append([]Change(nil), c.Added...)
	for _, r := range c.Renamed {
		deleted = append(deleted, Change{Path: r.From, Old: r.Old})
		added = append(added, Change{Path: r.To, New: r.New})
	}
	sort.Slice(deleted, func(i, j int) bool { return ComparePaths(deleted[i].Path, deleted[j].Path) < 0 })
	sort.Slice(added, func(i, j int) bool { return ComparePaths(added[i].Path, added[j].Path) < 0 })
	var ops []Op
	removed := ""
	for _, ch := range deleted {
		if removed != "" && isWithin(ch.Path, removed) {
			continue
		}
		ops = append(ops, Op{Kind: OpRemove, Path: ch.Path, Recursive: ch.Old.Kind == KindDir})
		if ch.Old.Kind == KindDir {
			removed = ch.Path
		}
	}
	for _, ch := range c.Modified {
		if ch.Path == "" {
			continue
		}
		o, n := ch.Old, ch.New
		switch {
		case o.Kind != n.Kind:
			ops = append(ops, Op{Kind: OpRemove, Path: ch.Path, Recursive: o.Kind == KindDir})
			ops = putOps(ops, ch.Path, nil, n, xattrs)
		case n.Kind == KindFile:
			if !xattrs && o.Content == n.Content && o.Mode == n.Mode {
				continue
			}
			ops = putOps(ops, ch.Path, o, n, xattrs)
		case n.Kind == KindSymlink:
			if !xattrs && o.Target == n.Target {
				continue
			}
			ops = append(ops, Op{Kind: OpRemove, Path: ch.Path})
			ops = putOps(ops, ch.Path, nil, n, xattrs)
		case n.Kind == KindDir && xattrs:
			if o.Mode != n.Mode {
				ops = append(ops, Op{Kind: OpChmod, Path: ch.Path, Mode: n.Mode})
			}
			ops = xattrOps(ops, ch.Path, o.Xattrs, n.Xattrs)
		}
	}
	for _, ch := range added {
		ops = putOps(ops, ch.Path, nil, ch.New, xattrs)
	}
	return ops
}

// putOps appends the operations that put n at p, where old (a file, or nil)
// was.
func putOps(ops []Op, p string, old, n *Node, xattrs bool) []Op {
	var have map[string][]byte
	switch n.Kind {
	case KindFile:
		ops = append(ops, Op{Kind: OpWrite, Path: p, Content: n.Content.Bytes(), Size: n.Size, Mode: n.Mode, Data: n.Data})
		if ops[len(ops)-1].Content == nil {
			ops[len(ops)-1].Content = make([]byte, len(Hash{}))
		}
		if old != nil && old.Kind == KindFile {
			have = old.Xattrs
		}
	case KindDir:
		ops = append(ops, Op{Kind: OpMkdir, Path: p, Mode: n.Mode})
	case KindSymlink:
		ops = append(ops, Op{Kind: OpSymlink, Path: p, Target: n.Target})
	}
	if !xattrs {
		return ops
	}
	return xattrOps(ops, p, have, n.Xattrs)
}

func xattrOps(ops []Op, p string, have, want map[string][]byte) []Op {
	for _, k := range slices.Sorted(maps.Keys(have)) {
		if _, ok := want[k]; !ok {
			ops = append(ops, Op{Kind: OpRemoveXattr, Path: p, Name: k})
		}
	}
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if v, ok := have[k]; !ok || !bytes.Equal(v, want[k]) {
			ops = append(ops, Op{Kind: OpSetXattr, Path: p, Name: k, Value: want[k]})
		}
	}
	return ops
}

func describeMerged(e *Event) string {
	d := e.Merge
	if d == nil {
		return describeFileOps(e)
	}
	s := "merge of " + text(d.From) + "@" + strconv.FormatUint(d.FromPosition, 10)
	if d.Strategy != "" {
		s += " (" + text(d.Strategy) + ")"
	}
	return joinParts(s, describeFileOps(e))
}
