package domain

import (
	"maps"
	"regexp"
	"strings"
	"time"
)

// Meta is what a writer knows about a command besides its arguments: who
// asks, when, and under which request id. Ids and time are given, never
// generated here, so decisions are deterministic.
type Meta struct {
	EventID   string
	Actor     string
	Time      time.Time
	RequestID string
	// ExpectedPosition, when not zero, refuses the command with conflict
	// unless the session's head is exactly there.
	ExpectedPosition uint64
}

// Command is a request to change a session, named as an imperative.
type Command interface{ command() }

// Expectation values for FileOp.Expect besides a hex hash.
const (
	// ExpectAbsent requires that nothing exists at the path.
	ExpectAbsent = "absent"
)

// FileOp is one file-tree operation as asked for: WriteFile, MakeDir,
// RemovePath, RenamePath and CreateSymlink are single FileOps; ApplyBatch is
// several, all or nothing.
type FileOp struct {
	Kind      string // one of the Op kinds
	Path      string
	To        string // rename: destination
	Target    string // symlink: target
	Content   Hash   // write: content hash, already stored
	Size      int64  // write: content length
	Mode      uint32 // write, mkdir: permission bits; 0 keeps or defaults
	Recursive bool   // remove: a directory and everything below it
	Name      string // setxattr, rmxattr: the attribute
	Value     []byte // setxattr: its value
	// Data, for a write of 1 to MaxInlineBytes bytes, is the content
	// itself, recorded in the event instead of a blob (Content must be its
	// hash); nil when the content is a stored blob.
	Data []byte
	// Expect, when set, is the hash the path must hold before the operation
	// (the content hash of a file, the Merkle hash of a directory or
	// symlink), or ExpectAbsent.
	Expect string
}

// Commands.
type (
	// CreateSession starts a new session with an empty tree, or from a base
	// tree (a source revision).
	CreateSession struct {
		ID     string
		Tenant string
		Owner  string
		Tags   map[string]string
		Origin Origin
		Base   Tree
		Policy Policy
	}
	// ForkSession starts a new session whose history begins at a position
	// of another; Parent is the other's state at that position.
	ForkSession struct {
		ID     string
		Owner  string
		Tags   map[string]string
		Parent *Session
	}
	// ChangeFiles applies file operations: one (write, mkdir, remove,
	// rename, symlink) or a batch.
	ChangeFiles struct {
		Ops   []FileOp
		Batch bool
		// Token is the lease token the caller holds, for locked paths.
		Token string
	}
	// SetTags sets and removes tags.
	SetTags struct {
		Set    map[string]string
		Remove []string
	}
	// ArchiveSession makes a session read-only.
	ArchiveSession struct{}
	// DeleteSession deletes a session; its history stays for its forks and
	// for audit. Tenant is the tenant's default policy.
	DeleteSession struct{ Tenant Policy }
	// CreateCheckpoint names a position (0: the head).
	CreateCheckpoint struct {
		Name     string
		Position uint64
		Note     string
	}
	// DeleteCheckpoint removes a checkpoint name.
	DeleteCheckpoint struct{ Name string }
	// RestoreSession points the tree (and the cache) back to an earlier
	// position. Token is the lease token the caller holds, if any.
	RestoreSession struct {
		To    uint64
		Token string
	}
)

func (CreateSession) command()    {}
func (ForkSession) command()      {}
func (ChangeFiles) command()      {}
func (SetTags) command()          {}
func (ArchiveSession) command()   {}
func (DeleteSession) command()    {}
func (CreateCheckpoint) command() {}
func (DeleteCheckpoint) command() {}
func (RestoreSession) command()   {}

// Limits on commands.
const (
	// MaxInlineBytes is the largest content a write carries inside its
	// event; larger content is a blob (design record 0009 measures it).
	MaxInlineBytes = 1024
	// MaxInlineEventBytes bounds the inline content of one event, so that
	// a batch stays far below the server's largest message; the writes of
	// a batch beyond it store their content as blobs.
	MaxInlineEventBytes = 256 << 10
	MaxBatchOps         = 1000
	MaxTags             = 64
	MaxTagKeyBytes      = 128
	MaxTagValBytes      = 1024
	MaxNameBytes        = 128
	MaxNoteBytes        = 16 * 1024
	MaxTargetBytes      = MaxPathBytes
	MaxActorBytes       = 256
)

var (
	tenantRe = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
	idRe     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$`)
	tagKeyRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:/-]*$`)
	cpNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
)

// ValidTenant checks a tenant name: it is a NATS subject token.
func ValidTenant(t string) error {
	if !tenantRe.MatchString(t) {
		return Errorf(CodeInvalidArgument, "tenant must match [a-z0-9][a-z0-9_-]{0,63}")
	}
	return nil
}

// topicRe is a bus topic: 1 to 8 dot-separated tokens, so that a topic is
// a NATS subject suffix with no wildcard.
var topicRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}(\.[A-Za-z0-9_-]{1,64}){0,7}$`)

// ValidTopic reports whether t is a well-formed bus topic.
func ValidTopic(t string) bool { return topicRe.MatchString(t) }

// validSessionID checks a new session's id: it is part of the session's
// subject, and an event without one cannot be decoded again.
func validSessionID(id string) error {
	if !idRe.MatchString(id) {
		return Errorf(CodeInvalidArgument, "session id must match [A-Za-z0-9][A-Za-z0-9_-]{0,127}")
	}
	return nil
}

// ValidCheckpointName checks a checkpoint name. Names that are all digits
// are refused so that a name never reads as a position.
func ValidCheckpointName(name string) error {
	if len(name) > MaxNameBytes || !cpNameRe.MatchString(name) {
		return Errorf(CodeInvalidArgument, "checkpoint name must match [A-Za-z0-9][A-Za-z0-9_.-]* and be at most %d bytes", MaxNameBytes)
	}
	if strings.Trim(name, "0123456789") == "" {
		return Errorf(CodeInvalidArgument, "checkpoint name must not be all digits")
	}
	return nil
}

func validTags(set map[string]string, remove []string) error {
	if len(set)+len(remove) > MaxTags {
		return Errorf(CodeInvalidArgument, "at most %d tags per request", MaxTags)
	}
	for k, v := range set {
		if len(k) > MaxTagKeyBytes || !tagKeyRe.MatchString(k) {
			return Errorf(CodeInvalidArgument, "tag key %q must match [A-Za-z0-9][A-Za-z0-9_.:/-]* and be at most %d bytes", k, MaxTagKeyBytes)
		}
		if len(v) > MaxTagValBytes || strings.IndexByte(v, 0) >= 0 {
			return Errorf(CodeInvalidArgument, "tag value for %q is too long or has a NUL byte", k)
		}
	}
	for _, k := range remove {
		if len(k) > MaxTagKeyBytes || !tagKeyRe.MatchString(k) {
			return Errorf(CodeInvalidArgument, "tag key %q is not valid", k)
		}
	}
	return nil
}

func newEvent(s *Session, t EventType, m Meta) *Event {
	e := &Event{
		ID: m.EventID, Type: t, Actor: m.Actor, Time: m.Time.UnixNano(), RequestID: m.RequestID,
	}
	if s != nil {
		e.Tenant, e.Session = s.Tenant, s.ID
		e.Version = s.Version + 1
		e.Prev = s.LastHash.Bytes()
	}
	return e
}

func decideCreate(_ *Session, c CreateSession, m Meta, _ Past) (*Event, error) {
	if err := ValidTenant(c.Tenant); err != nil {
		return nil, err
	}
	if err := validSessionID(c.ID); err != nil {
		return nil, err
	}
	if err := validTags(c.Tags, nil); err != nil {
		return nil, err
	}
	e := newEvent(nil, SessionCreated, m)
	e.Tenant, e.Session, e.Version = c.Tenant, c.ID, 1
	e.Prev = nil
	if err := c.Policy.Validate(); err != nil {
		return nil, err
	}
	e.Created = &CreatedData{Origin: c.Origin, Owner: c.Owner, Tags: maps.Clone(c.Tags), Policy: maps.Clone(c.Policy)}
	return e, nil
}

func decideFork(_ *Session, c ForkSession, m Meta, _ Past) (*Event, error) {
	p := c.Parent
	if p == nil {
		return nil, ErrSessionNotFound
	}
	if p.Status == StatusDeleted {
		return nil, ErrSessionDeleted
	}
	if err := validSessionID(c.ID); err != nil {
		return nil, err
	}
	if err := validTags(c.Tags, nil); err != nil {
		return nil, err
	}
	e := newEvent(nil, SessionForked, m)
	e.Tenant, e.Session, e.Version = p.Tenant, c.ID, 1
	e.Prev = p.LastHash.Bytes()
	e.Created = &CreatedData{
		Origin: Origin{Parent: p.ID, Position: p.Position},
		Owner:  c.Owner,
		Tags:   maps.Clone(c.Tags),
		Policy: maps.Clone(p.Policy),
	}
	return e, nil
}

func decideTags(s *Session, c SetTags, m Meta, _ Past) (*Event, error) {
	if err := validTags(c.Set, c.Remove); err != nil {
		return nil, err
	}
	if len(c.Set) == 0 && len(c.Remove) == 0 {
		return nil, Errorf(CodeInvalidArgument, "no tags to set or remove")
	}
	e := newEvent(s, TagsSet, m)
	e.Tags, e.Untag = maps.Clone(c.Set), append([]string(nil), c.Remove...)
	return e, nil
}

func decideArchive(s *Session, _ ArchiveSession, m Meta, _ Past) (*Event, error) {
	if s.Status == StatusArchived {
		return nil, Errorf(CodeConflict, "session %s is already archived", s.ID)
	}
	return newEvent(s, SessionArchived, m), nil
}

func decideDelete(s *Session, c DeleteSession, m Meta, _ Past) (*Event, error) {
	uses, err := s.Authorize(ActionDelete, c.Tenant)
	if err != nil {
		return nil, err
	}
	e := newEvent(s, SessionDeleted, m)
	e.Uses = uses
	return e, nil
}

func decideCreateCheckpoint(s *Session, c CreateCheckpoint, m Meta, past Past) (*Event, error) {
	if err := ValidCheckpointName(c.Name); err != nil {
		return nil, err
	}
	if len(c.Note) > MaxNoteBytes {
		return nil, Errorf(CodeInvalidArgument, "note is longer than %d bytes", MaxNoteBytes)
	}
	if _, ok := s.Checkpoints.Get(c.Name); ok {
		return nil, Errorf(CodeAlreadyExists, "checkpoint %q already exists", c.Name)
	}
	pos := c.Position
	if pos == 0 {
		pos = s.Position
	} else if pos > s.Position {
		// A name must never point past the head: the position would
		// later mean another event, or another session's.
		return nil, ErrPositionUnknown
	} else if past != nil {
		if _, err := past(pos); err != nil {
			return nil, err
		}
	}
	e := newEvent(s, CheckpointCreated, m)
	e.Checkpoint = &CheckpointData{Name: c.Name, Position: pos, Note: c.Note}
	return e, nil
}

func decideDeleteCheckpoint(s *Session, c DeleteCheckpoint, m Meta, _ Past) (*Event, error) {
	if _, ok := s.Checkpoints.Get(c.Name); !ok {
		return nil, Errorf(CodeNotFound, "checkpoint %q not found", c.Name)
	}
	e := newEvent(s, CheckpointDeleted, m)
	e.Checkpoint = &CheckpointData{Name: c.Name}
	return e, nil
}

func decideRestore(s *Session, c RestoreSession, m Meta, past Past) (*Event, error) {
	if err := s.Writable(); err != nil {
		return nil, err
	}
	if past == nil {
		return nil, Errorf(CodeInternal, "restore needs the session's past")
	}
	if c.To == 0 || c.To > s.Position {
		return nil, ErrPositionUnknown
	}
	// A restore may change anything: every lease must be the caller's.
	if err := s.checkLocks("", true, c.Token, m.Time); err != nil {
		return nil, err
	}
	if _, err := past(c.To); err != nil {
		return nil, err
	}
	e := newEvent(s, SessionRestored, m)
	e.Restore = &RestoreData{To: c.To}
	return e, nil
}

func decideFiles(s *Session, c ChangeFiles, m Meta, _ Past) (*Event, error) {
	if err := s.Writable(); err != nil {
		return nil, err
	}
	if len(c.Ops) == 0 {
		return nil, Errorf(CodeInvalidArgument, "no operations")
	}
	if len(c.Ops) > MaxBatchOps {
		return nil, Errorf(CodeTooLarge, "at most %d operations in one batch", MaxBatchOps)
	}
	if !c.Batch && len(c.Ops) != 1 {
		return nil, Errorf(CodeInvalidArgument, "a single change has exactly one operation")
	}
	ed := newTreeEdit(s.Tree, len(c.Ops))
	ops := make([]Op, 0, len(c.Ops))
	inline := 0
	for _, fo := range c.Ops {
		inline += len(fo.Data)
	}
	if inline > MaxInlineEventBytes {
		return nil, Errorf(CodeTooLarge, "an event carries at most %d bytes of inline content", MaxInlineEventBytes)
	}
	for i, fo := range c.Ops {
		op, err := checkOp(ed.tree(), fo)
		if err == nil {
			err = s.checkOpLocks(op, c.Token, m.Time)
		}
		if err != nil {
			if c.Batch {
				var de *Error
				if AsError(err, &de) {
					return nil, &Error{Code: de.Code, Message: "operation " + itoa(i) + ": " + de.Message}
				}
			}
			return nil, err
		}
		if err := ed.apply(op); err != nil {
			return nil, err
		}
		ops = append(ops, op)
	}
	t := ed.done()
	typ := BatchApplied
	if !c.Batch {
		typ = map[string]EventType{
			OpWrite: FileWritten, OpMkdir: DirectoryMade, OpRemove: PathRemoved,
			OpRename: PathRenamed, OpSymlink: SymlinkCreated,
			OpSetXattr: XattrSet, OpRemoveXattr: XattrRemoved, OpChmod: ModeChanged,
		}[ops[0].Kind]
	}
	e := newEvent(s, typ, m)
	e.Ops = ops
	e.decided = &t
	return e, nil
}

// checkOp validates one operation against the tree it will apply to and
// returns it as recorded: paths clean and resolved through symlinks.
func checkOp(t Tree, fo FileOp) (Op, error) {
	p, err := CleanNonRoot(fo.Path)
	if err != nil {
		return Op{}, err
	}
	followLast := fo.Kind == OpWrite || fo.Kind == OpSetXattr || fo.Kind == OpRemoveXattr || fo.Kind == OpChmod
	var cur *Node
	var parentErr error
	if c, fileParent, plain := t.lookupPlain(p, followLast); plain {
		cur = c
		if fileParent {
			parentErr = Errorf(CodeInvalidArgument, "a parent of %q is not a directory", p)
		}
	} else {
		if p, err = t.Resolve(p, followLast); err != nil {
			return Op{}, err
		}
		if p == "" {
			return Op{}, Errorf(CodeInvalidArgument, "path must name an entry below the root")
		}
		cur = t.Lookup(p)
		parentErr = checkParents(t, p)
	}
	if err := checkExpect(cur, fo.Expect, p); err != nil {
		return Op{}, err
	}
	if parentErr != nil {
		return Op{}, parentErr
	}
	op := Op{Kind: fo.Kind, Path: p}
	switch fo.Kind {
	case OpWrite:
		if cur != nil && cur.Kind == KindDir {
			return Op{}, Errorf(CodeInvalidArgument, "%q is a directory", p)
		}
		if fo.Size < 0 {
			return Op{}, Errorf(CodeInvalidArgument, "negative size")
		}
		if len(fo.Data) > 0 {
			if err := checkInline(&fo); err != nil {
				return Op{}, err
			}
			op.Data = fo.Data
		}
		op.Content, op.Size = append([]byte(nil), fo.Content[:]...), fo.Size
		op.Mode = fo.Mode & 0o7777
		if op.Mode == 0 {
			op.Mode = DefaultFileMode
			if cur != nil && cur.Kind == KindFile {
				op.Mode = cur.Mode
			}
		}
	case OpMkdir:
		if cur != nil {
			return Op{}, Errorf(CodeAlreadyExists, "%q already exists", p)
		}
		op.Mode = fo.Mode & 0o7777
		if op.Mode == 0 {
			op.Mode = DefaultDirMode
		}
	case OpRemove:
		if cur == nil {
			return Op{}, Errorf(CodeNotFound, "%q not found", p)
		}
		if cur.Kind == KindDir && cur.Len() > 0 && !fo.Recursive {
			return Op{}, Errorf(CodeInvalidArgument, "directory %q is not empty; remove it with recursive", p)
		}
		op.Recursive = fo.Recursive && cur.Kind == KindDir
	case OpRename:
		if cur == nil {
			return Op{}, Errorf(CodeNotFound, "%q not found", p)
		}
		to, err := CleanNonRoot(fo.To)
		if err != nil {
			return Op{}, err
		}
		if to, err = t.Resolve(to, false); err != nil {
			return Op{}, err
		}
		if to == "" || to == p {
			return Op{}, Errorf(CodeInvalidArgument, "rename destination must differ from the source")
		}
		if isWithin(to, p) {
			return Op{}, Errorf(CodeInvalidArgument, "cannot move %q into itself", p)
		}
		if t.Lookup(to) != nil {
			return Op{}, Errorf(CodeAlreadyExists, "%q already exists", to)
		}
		if err := checkParents(t, to); err != nil {
			return Op{}, err
		}
		op.To = to
	case OpSetXattr, OpRemoveXattr:
		if err := checkXattr(cur, fo, p); err != nil {
			return Op{}, err
		}
		op.Name = fo.Name
		if fo.Kind == OpSetXattr {
			op.Value = append([]byte{}, fo.Value...)
		}
	case OpChmod:
		// As chmod(2): the mode of what the path names, a symlink's
		// target (resolved above); every bit of the mode is the caller's,
		// 0 included.
		if cur == nil {
			return Op{}, Errorf(CodeNotFound, "%q not found", p)
		}
		if fo.Mode&^0o7777 != 0 {
			return Op{}, Errorf(CodeInvalidArgument, "mode %#o has bits beyond 07777", fo.Mode)
		}
		op.Mode = fo.Mode
	case OpSymlink:
		if cur != nil {
			return Op{}, Errorf(CodeAlreadyExists, "%q already exists", p)
		}
		if fo.Target == "" || len(fo.Target) > MaxTargetBytes || strings.IndexByte(fo.Target, 0) >= 0 {
			return Op{}, Errorf(CodeInvalidArgument, "symlink target must be 1 to %d bytes without NUL", MaxTargetBytes)
		}
		op.Target = fo.Target
	default:
		return Op{}, Errorf(CodeInvalidArgument, "unknown operation %q", fo.Kind)
	}
	return op, nil
}

// checkInline checks a write's inline content against its hash and size.
// A zero hash is filled in with the content's: a caller that has not
// hashed the content (the service, for inline content given without a
// hash) leaves it to this one SHA-256 instead of a second one.
func checkInline(fo *FileOp) error {
	if len(fo.Data) > MaxInlineBytes {
		return Errorf(CodeTooLarge, "inline content holds at most %d bytes", MaxInlineBytes)
	}
	if int64(len(fo.Data)) != fo.Size {
		return Errorf(CodeInvalidArgument, "inline content does not match its hash and size")
	}
	h := Sum(fo.Data)
	if fo.Content.IsZero() {
		fo.Content = h
	} else if h != fo.Content {
		return Errorf(CodeInvalidArgument, "inline content does not match its hash and size")
	}
	return nil
}

// checkParents refuses a path whose existing ancestors include a non-directory.
func checkParents(t Tree, p string) error {
	dir, _ := parentOf(p)
	for dir != "" {
		if n := t.Lookup(dir); n != nil {
			if n.Kind != KindDir {
				return Errorf(CodeInvalidArgument, "a parent of %q is not a directory", p)
			}
			return nil
		}
		dir, _ = parentOf(dir)
	}
	return nil
}

func checkExpect(cur *Node, expect, p string) error {
	switch expect {
	case "":
		return nil
	case ExpectAbsent:
		if cur != nil {
			return Errorf(CodeConflict, "expected %q to be absent", p)
		}
		return nil
	}
	want, err := ParseHash(expect)
	if err != nil {
		return Errorf(CodeInvalidArgument, "expected_hash must be 64 hex characters or %q", ExpectAbsent)
	}
	if cur == nil {
		return Errorf(CodeConflict, "expected %q to hold %s, but it does not exist", p, want)
	}
	got := cur.Hash()
	if cur.Kind == KindFile {
		got = cur.Content
	}
	if got != want {
		return Errorf(CodeConflict, "expected %q to hold %s, found %s", p, want, got)
	}
	return nil
}

func itoa(i int) string {
	const digits = "0123456789"
	if i == 0 {
		return "0"
	}
	var b []byte
	for i > 0 {
		b = append([]byte{digits[i%10]}, b...)
		i /= 10
	}
	return string(b)
}

// checkOpLocks refuses an operation that touches a path under someone
// else's active lease.
func (s *Session) checkOpLocks(op Op, token string, now time.Time) error {
	below := op.Kind == OpRemove || op.Kind == OpRename
	if err := s.checkLocks(op.Path, below, token, now); err != nil {
		return err
	}
	if op.To != "" {
		return s.checkLocks(op.To, true, token, now)
	}
	return nil
}
