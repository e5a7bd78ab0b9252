package domain

import (
	"hash/maphash"
	"maps"
	"strconv"
	"strings"
	"time"
)

// Status is the lifecycle state of a session.
type Status string

// The session statuses.
const (
	StatusActive          Status = "active"
	StatusPendingApproval Status = "pending_approval"
	StatusConflict        Status = "conflict"
	StatusArchived        Status = "archived"
	StatusDeleted         Status = "deleted"
)

// Checkpoint is a name for a position in a session's history.
type Checkpoint struct {
	Name      string
	Position  uint64
	Note      string
	Actor     string
	CreatedAt time.Time
	// At is the position of the event that created the checkpoint.
	At uint64
}

// Session is the state of one session: the fold of its history up to
// Position. Values are immutable once built; Evolve returns a new one that
// shares everything it did not change.
type Session struct {
	ID        string
	Tenant    string
	Origin    Origin
	Owner     string
	Tags      map[string]string
	Status    Status
	CreatedAt time.Time
	UpdatedAt time.Time
	Tree      Tree

	// Position is the stream sequence of the last event applied.
	Position uint64
	// Start is the position of the session's first event.
	Start uint64
	// Version is the number of the session's own events applied.
	Version uint64
	// LastHash is the hash of the last event applied.
	LastHash Hash

	Checkpoints Checkpoints

	// The state the review and collaboration events keep (review.go,
	// collab.go); a snapshot stores both as they are.
	ReviewState
	CollabState

	recent *recentChunk
	// stored is what the last event's apply left to its position; Commit
	// runs and clears it.
	stored func(s *Session, position uint64)
}

// RecentRequests bounds how many request ids a session remembers for
// idempotent retries beyond JetStream's de-duplication window.
const RecentRequests = 256

// recentChunk holds up to recentChunkSize request ids (oldest first) and
// points at the chunk of the ones before. Chunks are never changed once a
// state points at them: a new request id makes a new head chunk (a copy of
// at most recentChunkSize entries), so states share everything older. A
// lookup compares 64-bit sums held side by side before any string: a write
// looks up its request id up to three times (a linked list of 256 ids,
// walked each time, was 10% of a write's CPU with request ids).
type recentChunk struct {
	ids  []string
	pos  []uint64
	sums []uint64
	next *recentChunk
	// count is the number of ids in this chunk and the ones it points at.
	count int
}

const recentChunkSize = 16

// recentSeed keys the sums of request ids (in memory only).
var recentSeed = maphash.MakeSeed()

// RequestPosition returns the position of the event that a recent request id
// produced, if the session still remembers it.
func (s *Session) RequestPosition(id string) (uint64, bool) {
	if id == "" {
		return 0, false
	}
	sum := maphash.String(recentSeed, id)
	n := 0
	for c := s.recent; c != nil && n < RecentRequests; c = c.next {
		for i := len(c.ids) - 1; i >= 0 && n < RecentRequests; i, n = i-1, n+1 {
			if c.sums[i] == sum && c.ids[i] == id {
				return c.pos[i], true
			}
		}
	}
	return 0, false
}

func (s *Session) remember(id string, position uint64) {
	if id == "" {
		return
	}
	sum := maphash.String(recentSeed, id)
	head := s.recent
	var c *recentChunk
	if head == nil || len(head.ids) == recentChunkSize {
		c = &recentChunk{ids: []string{id}, pos: []uint64{position}, sums: []uint64{sum}, next: head, count: 1}
		if head != nil {
			c.count += head.count
		}
	} else {
		n := len(head.ids) + 1
		c = &recentChunk{ids: make([]string, n), pos: make([]uint64, n), sums: make([]uint64, n), next: head.next, count: head.count + 1}
		copy(c.ids, head.ids)
		copy(c.pos, head.pos)
		copy(c.sums, head.sums)
		c.ids[n-1], c.pos[n-1], c.sums[n-1] = id, position, sum
	}
	if c.count > 2*RecentRequests {
		c = trimRecent(c)
	}
	s.recent = c
}

// trimRecent returns a chain holding the newest RecentRequests ids or a
// few more of c, so that the old tail can be collected. The full chunks'
// arrays are shared; only the chain is new.
func trimRecent(c *recentChunk) *recentChunk {
	var keep []*recentChunk
	n := 0
	for r := c; r != nil && n < RecentRequests; r = r.next {
		keep = append(keep, r)
		n += len(r.ids)
	}
	var next *recentChunk
	count := 0
	for i := len(keep) - 1; i >= 0; i-- {
		count += len(keep[i].ids)
		next = &recentChunk{ids: keep[i].ids, pos: keep[i].pos, sums: keep[i].sums, next: next, count: count}
	}
	return next
}

// RecentRequestList returns the remembered request ids, newest first, for
// snapshots.
func (s *Session) RecentRequestList() ([]string, []uint64) {
	var ids []string
	var pos []uint64
	for c := s.recent; c != nil && len(ids) < RecentRequests; c = c.next {
		for i := len(c.ids) - 1; i >= 0 && len(ids) < RecentRequests; i-- {
			ids = append(ids, c.ids[i])
			pos = append(pos, c.pos[i])
		}
	}
	return ids, pos
}

// RestoreRecentRequests sets the remembered request ids from a snapshot
// (newest first).
func (s *Session) RestoreRecentRequests(ids []string, pos []uint64) {
	s.recent = nil
	for i := len(ids) - 1; i >= 0; i-- {
		s.remember(ids[i], pos[i])
	}
}

// Writable reports whether the session accepts changes, and why not.
func (s *Session) Writable() error {
	switch s.Status {
	case StatusDeleted:
		return ErrSessionDeleted
	case StatusArchived:
		return Errorf(CodeConflict, "session %s is archived", s.ID)
	}
	return nil
}

// Past gives the state of a session at an earlier position of its history.
// Restores need it; loaders provide it.
type Past func(position uint64) (*Session, error)

// Evolve applies a stored event at a position to a state and returns the new
// state. s is nil for the first event of a session; for a fork it is the
// parent's state at the fork point. Evolve checks the event against the
// state (version and hash chain) and the Merkle root it records.
func Evolve(s *Session, e *Event, position uint64, hash Hash, past Past) (*Session, error) {
	n, err := apply(s, e, past)
	if err != nil {
		return nil, err
	}
	if root, ok := HashFromBytes(e.Root); !ok || root != n.Tree.Hash() {
		return nil, Errorf(CodeInternal, "event %d of session %s: recorded root %x, replay gives %s", e.Version, e.Session, e.Root, n.Tree.Hash())
	}
	n.Commit(e, position, hash)
	return n, nil
}

// Fold is Evolve without the comparison of the tree with the root the
// event records. Tree hashes are computed when first asked for, so a
// replay that folds a history and compares only the roots of the states it
// hands out never hashes the nodes that later events replaced: a fraction
// of the work of Evolve for a long history. The caller must check those
// roots; the version and the hash chain are checked here as in Evolve.
func Fold(s *Session, e *Event, position uint64, hash Hash, past Past) (*Session, error) {
	n, err := apply(s, e, past)
	if err != nil {
		return nil, err
	}
	n.Commit(e, position, hash)
	return n, nil
}

// Commit records where an event that produced this state was stored: its
// position and the hash of its encoded form. Evolve calls it; a writer calls
// it on the state Execute returned once the append is acknowledged. What an
// event's apply left to its position (its onStored fix-ups) is completed
// here; what every event settles (the approvals it used, stale requests,
// the pending_approval status) follows.
func (s *Session) Commit(e *Event, position uint64, hash Hash) {
	s.Position = position
	s.LastHash = hash
	s.remember(e.RequestID, position)
	if fix := s.stored; fix != nil {
		s.stored = nil
		fix(s, position)
	}
	settleApprovals(s, e, position)
}

// onStored records what only the event's position completes (where a
// checkpoint, a note, a request or a commit was made): Commit runs it.
func (s *Session) onStored(fix func(s *Session, position uint64)) {
	if prev := s.stored; prev != nil {
		next := fix
		fix = func(s *Session, position uint64) { prev(s, position); next(s, position) }
	}
	s.stored = fix
}

// applying is what an event's apply may use besides the state it changes:
// the state before the event (for a first event: nothing, a source's base
// tree, or the parent at the fork point) and the session's past.
type applying struct {
	before *Session
	past   Past
	// decided is the tree the event's decide function built from its
	// ops on before (Event.decided), nil on a replay.
	decided *Tree
}

// apply folds an event into a state without checking the recorded root:
// the checks every event needs (version and hash chain), then its type's
// apply from the event table.
func apply(s *Session, e *Event, past Past) (*Session, error) {
	return applyWith(s, e, applying{before: s, past: past})
}

// applyDecided is apply of an event just decided on s: the tree its
// decide function built from the same ops on the same tree is taken as it
// is (applyOps of the ops one at a time, as decide did, or all at once, as
// a replay does, build the same tree), and the event keeps no reference to
// it.
func applyDecided(s *Session, e *Event, past Past) (*Session, error) {
	a := applying{before: s, past: past, decided: e.decided}
	e.decided = nil
	return applyWith(s, e, a)
}

func applyWith(s *Session, e *Event, a applying) (*Session, error) {
	row, ok := eventRowOf(e.Type)
	if !ok {
		return nil, Errorf(CodeInternal, "unknown event type %q", e.Type)
	}
	var n Session
	if !row.starts {
		if s == nil {
			return nil, Errorf(CodeInternal, "event %s of %s before its creation", e.Type, e.Session)
		}
		n = *s
		if e.Version != s.Version+1 {
			return nil, Errorf(CodeInternal, "event of %s has version %d after %d", e.Session, e.Version, s.Version)
		}
		if prev, ok := HashFromBytes(e.Prev); !ok || prev != s.LastHash {
			return nil, Errorf(CodeInternal, "event %d of %s breaks the hash chain", e.Version, e.Session)
		}
	}
	n.stored = nil
	n.Version = e.Version
	n.UpdatedAt = e.At()
	if err := row.apply(&n, e, a); err != nil {
		return nil, err
	}
	return &n, nil
}

func applyCreated(n *Session, e *Event, a applying) error { return applyStart(n, e, a.before) }

func applyForked(n *Session, e *Event, a applying) error { return applyStart(n, e, a.before) }

// applyStart folds the first event of a session into base: nil, a base tree
// (a source revision), or for a fork the parent's state at the fork point.
func applyStart(n *Session, e *Event, base *Session) error {
	if e.Created == nil {
		return Errorf(CodeInternal, "%s without payload", e.Type)
	}
	if base != nil {
		// A fork begins with its parent's content: the tree and the
		// knowledge cache as they were at the fork point.
		n.Tree, n.Cache = base.Tree, base.Cache
	}
	if e.Version != 1 {
		return Errorf(CodeInternal, "first event of %s has version %d", e.Session, e.Version)
	}
	// A first event chains to nothing, or, for a fork, to the parent's
	// event at the fork point: base must be exactly that state.
	var last Hash
	if e.Type == SessionForked {
		if base == nil || base.ID != e.Created.Origin.Parent || base.Position != e.Created.Origin.Position {
			return Errorf(CodeInternal, "fork %s applied to a state that is not its parent at the fork point", e.Session)
		}
		last = base.LastHash
	}
	if prev, ok := HashFromBytes(e.Prev); !ok || prev != last {
		return Errorf(CodeInternal, "event 1 of %s breaks the hash chain", e.Session)
	}
	n.ID, n.Tenant = e.Session, e.Tenant
	n.Origin = e.Created.Origin
	n.Owner = e.Created.Owner
	n.Tags = maps.Clone(e.Created.Tags)
	n.Policy = maps.Clone(e.Created.Policy)
	n.Status = StatusActive
	n.CreatedAt = e.At()
	n.onStored(func(s *Session, position uint64) { s.Start = position })
	return nil
}

// applyFileOps folds the file operations of an event (every file event, a
// batch, a merge).
func applyFileOps(n *Session, e *Event, a applying) error {
	if a.decided != nil {
		n.Tree = *a.decided
		return nil
	}
	t, err := applyOps(n.Tree, e.Ops)
	if err != nil {
		return err
	}
	n.Tree = t
	return nil
}

func applyTags(n *Session, e *Event, _ applying) error {
	tags := maps.Clone(n.Tags)
	if tags == nil {
		tags = map[string]string{}
	}
	for _, k := range e.Untag {
		delete(tags, k)
	}
	maps.Copy(tags, e.Tags)
	n.Tags = tags
	return nil
}

func applyArchived(n *Session, _ *Event, _ applying) error {
	n.Status = StatusArchived
	return nil
}

func applyDeleted(n *Session, _ *Event, _ applying) error {
	n.Status = StatusDeleted
	return nil
}

func applyCheckpointCreated(n *Session, e *Event, _ applying) error {
	if e.Checkpoint == nil {
		return Errorf(CodeInternal, "%s without payload", e.Type)
	}
	cp := Checkpoint{
		Name: e.Checkpoint.Name, Position: e.Checkpoint.Position, Note: e.Checkpoint.Note,
		Actor: e.Actor, CreatedAt: e.At(),
	}
	n.Checkpoints = n.Checkpoints.With(cp)
	n.onStored(func(s *Session, position uint64) {
		cp.At = position
		s.Checkpoints = s.Checkpoints.With(cp)
	})
	return nil
}

func applyCheckpointDeleted(n *Session, e *Event, _ applying) error {
	if e.Checkpoint == nil {
		return Errorf(CodeInternal, "%s without payload", e.Type)
	}
	n.Checkpoints = n.Checkpoints.Without(e.Checkpoint.Name)
	return nil
}

func applyRestored(n *Session, e *Event, a applying) error {
	if e.Restore == nil || a.past == nil {
		return Errorf(CodeInternal, "restore without target")
	}
	then, err := a.past(e.Restore.To)
	if err != nil {
		return err
	}
	n.Tree = then.Tree
	n.Cache = then.Cache
	return nil
}

// applyOps applies an event's operations to t, in one edit.
func applyOps(t Tree, ops []Op) (Tree, error) {
	ed := newTreeEdit(t, len(ops))
	for _, op := range ops {
		if err := ed.apply(op); err != nil {
			return t, err
		}
	}
	return ed.done(), nil
}

// apply applies one operation of an event to the tree being edited.
func (ed *treeEdit) apply(op Op) error {
	switch op.Kind {
	case OpWrite:
		h, ok := HashFromBytes(op.Content)
		if !ok {
			return Errorf(CodeInternal, "bad content hash in event")
		}
		n := NewFile(h, op.Size, op.Mode, nil)
		n.Data = op.Data
		return ed.put(op.Path, n, true)
	case OpMkdir:
		return ed.put(op.Path, NewDir(op.Mode, nil), false)
	case OpRemove:
		ed.delete(op.Path)
		return nil
	case OpRename:
		node := ed.tree().Lookup(op.Path)
		if node == nil {
			return Errorf(CodeInternal, "rename of missing %q in event", op.Path)
		}
		ed.delete(op.Path)
		return ed.put(op.To, node, false)
	case OpSymlink:
		return ed.put(op.Path, NewSymlink(strings.Clone(op.Target), nil), false)
	case OpChmod:
		node := ed.tree().Lookup(op.Path)
		if node == nil || node.Kind == KindSymlink {
			return Errorf(CodeInternal, "chmod of missing %q in event", op.Path)
		}
		return ed.put(op.Path, node.WithMode(op.Mode), false)
	case OpSetXattr, OpRemoveXattr:
		node, err := withXattrOp(ed.tree(), op)
		if err != nil {
			return err
		}
		return ed.put(op.Path, node, false)
	default:
		return Errorf(CodeInternal, "unknown op %q in event", op.Kind)
	}
}

func describeCreated(e *Event) string {
	c := e.Created
	if c == nil {
		return ""
	}
	from := ""
	if c.Origin.Source != "" {
		from = "from source " + text(c.Origin.Source) + "@" + strconv.FormatUint(c.Origin.Revision, 10)
	}
	return joinParts(from, ownerPart(c.Owner), tagsPart(c.Tags))
}

func describeForked(e *Event) string {
	c := e.Created
	if c == nil {
		return ""
	}
	return joinParts("fork of "+text(c.Origin.Parent)+"@"+strconv.FormatUint(c.Origin.Position, 10), ownerPart(c.Owner), tagsPart(c.Tags))
}

func ownerPart(owner string) string {
	if owner == "" {
		return ""
	}
	return "owner " + text(owner)
}

func tagsPart(tags map[string]string) string {
	if len(tags) == 0 {
		return ""
	}
	return "tags " + describedTags(tags)
}

// describeFileOps shows the operations of a file event or a batch.
func describeFileOps(e *Event) string { return listed(itemsOf(e.Ops, describeOp), "; ") }

func describeTags(e *Event) string {
	untag := ""
	if len(e.Untag) > 0 {
		untag = "untag " + strings.Join(itemsOf(e.Untag, text), ",")
	}
	return joinParts(tagsPart(e.Tags), untag)
}

func describeArchived(*Event) string { return "archived" }

func describeDeleted(*Event) string { return "deleted" }

func describeCheckpointCreated(e *Event) string {
	cp := e.Checkpoint
	if cp == nil {
		return ""
	}
	s := "checkpoint " + text(cp.Name) + " -> " + strconv.FormatUint(cp.Position, 10)
	if cp.Note != "" {
		s += ": " + text(cp.Note)
	}
	return s
}

func describeCheckpointDeleted(e *Event) string {
	if e.Checkpoint == nil {
		return ""
	}
	return "checkpoint " + text(e.Checkpoint.Name) + " removed"
}

func describeRestored(e *Event) string {
	if e.Restore == nil {
		return ""
	}
	return "restored to " + strconv.FormatUint(e.Restore.To, 10)
}
