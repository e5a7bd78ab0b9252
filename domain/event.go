package domain

import (
	"bytes"
	"sync"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// EventType names a fact that happened to a session, in the past tense.
type EventType string

// The event types. Each is stored in the Strand-Type header of its message
// and in the envelope.
const (
	SessionCreated    EventType = "SessionCreated"
	SessionForked     EventType = "SessionForked"
	FileWritten       EventType = "FileWritten"
	DirectoryMade     EventType = "DirectoryMade"
	PathRemoved       EventType = "PathRemoved"
	PathRenamed       EventType = "PathRenamed"
	SymlinkCreated    EventType = "SymlinkCreated"
	BatchApplied      EventType = "BatchApplied"
	TagsSet           EventType = "TagsSet"
	SessionArchived   EventType = "SessionArchived"
	SessionDeleted    EventType = "SessionDeleted"
	CheckpointCreated EventType = "CheckpointCreated"
	CheckpointDeleted EventType = "CheckpointDeleted"
	SessionRestored   EventType = "SessionRestored"
	NoteAdded         EventType = "NoteAdded"
	NoteResolved      EventType = "NoteResolved"
	NoteReopened      EventType = "NoteReopened"
	ApprovalRequested EventType = "ApprovalRequested"
	ApprovalGranted   EventType = "ApprovalGranted"
	ApprovalDenied    EventType = "ApprovalDenied"
	CommitCreated     EventType = "CommitCreated"
	PolicyChanged     EventType = "PolicyChanged"
	XattrSet          EventType = "XattrSet"
	XattrRemoved      EventType = "XattrRemoved"
	CacheUpdated      EventType = "CacheUpdated"
	LockAcquired      EventType = "LockAcquired"
	LockRenewed       EventType = "LockRenewed"
	LockReleased      EventType = "LockReleased"
	HealthReported    EventType = "HealthReported"
	SessionMerged     EventType = "SessionMerged"
	ModeChanged       EventType = "ModeChanged"
)

// eventTable is every event type, once, in the order EventTypes lists
// them: how it folds into a session's state (its apply, with what only its
// position completes, see Session.onStored) and how it reads to a person:
// its name in a reviewer's words (EventType.Label) and its payload in one
// line (its describe, see Event.Summary). TestEventTable_EveryType fails
// for a declared type without a row.
var eventTable = []eventRow{
	{typ: SessionCreated, label: "Created", starts: true, apply: applyCreated, describe: describeCreated},
	{typ: SessionForked, label: "Forked", starts: true, apply: applyForked, describe: describeForked},
	{typ: FileWritten, label: "File written", apply: applyFileOps, describe: describeFileOps},
	{typ: DirectoryMade, label: "Folder made", apply: applyFileOps, describe: describeFileOps},
	{typ: PathRemoved, label: "Removed", apply: applyFileOps, describe: describeFileOps},
	{typ: PathRenamed, label: "Renamed", apply: applyFileOps, describe: describeFileOps},
	{typ: SymlinkCreated, label: "Link made", apply: applyFileOps, describe: describeFileOps},
	{typ: BatchApplied, label: "Changes applied", apply: applyFileOps, describe: describeFileOps},
	{typ: TagsSet, label: "Tags set", apply: applyTags, describe: describeTags},
	{typ: SessionArchived, label: "Archived", apply: applyArchived, describe: describeArchived},
	{typ: SessionDeleted, label: "Deleted", apply: applyDeleted, describe: describeDeleted},
	{typ: CheckpointCreated, label: "Checkpoint", apply: applyCheckpointCreated, describe: describeCheckpointCreated},
	{typ: CheckpointDeleted, label: "Checkpoint removed", apply: applyCheckpointDeleted, describe: describeCheckpointDeleted},
	{typ: SessionRestored, label: "Restored", apply: applyRestored, describe: describeRestored},
	{typ: NoteAdded, label: "Note", apply: applyNoteAdded, describe: describeNoteAdded},
	{typ: NoteResolved, label: "Note resolved", apply: applyNoteState, describe: describeNoteState},
	{typ: NoteReopened, label: "Note reopened", apply: applyNoteState, describe: describeNoteState},
	{typ: ApprovalRequested, label: "Approval requested", apply: applyApprovalRequested, describe: describeApprovalRequested},
	{typ: ApprovalGranted, label: "Approval granted", apply: applyDecision, describe: describeDecision},
	{typ: ApprovalDenied, label: "Approval denied", apply: applyDecision, describe: describeDecision},
	{typ: CommitCreated, label: "Commit", apply: applyCommitCreated, describe: describeCommitCreated},
	{typ: PolicyChanged, label: "Policy changed", apply: applyPolicyChanged, describe: describePolicyChanged},
	{typ: XattrSet, label: "Attribute set", apply: applyFileOps, describe: describeFileOps},
	{typ: XattrRemoved, label: "Attribute removed", apply: applyFileOps, describe: describeFileOps},
	{typ: CacheUpdated, label: "Cache updated", apply: applyCacheUpdated, describe: describeCacheUpdated},
	{typ: LockAcquired, label: "Lock taken", apply: applyLock, describe: describeLock},
	{typ: LockRenewed, label: "Lock renewed", apply: applyLock, describe: describeLock},
	{typ: LockReleased, label: "Lock released", apply: applyLock, describe: describeLock},
	{typ: HealthReported, label: "Health report", apply: applyHealth, describe: describeHealth},
	{typ: SessionMerged, label: "Merged", apply: applyFileOps, describe: describeMerged},
	{typ: ModeChanged, label: "Mode changed", apply: applyFileOps, describe: describeFileOps},
}

// eventRow is one row of the event table.
type eventRow struct {
	typ EventType
	// label names the type in a reviewer's words (the web timeline).
	label string
	// starts marks the first event of a session: it applies to nothing,
	// a base tree, or the parent at the fork point, not to the session.
	starts bool
	apply  func(n *Session, e *Event, a applying) error
	// describe shows the event's payload in one line (Event.Summary).
	describe func(e *Event) string
}

var eventIndex = func() map[EventType]*eventRow {
	m := make(map[EventType]*eventRow, len(eventTable))
	for i := range eventTable {
		r := &eventTable[i]
		if _, dup := m[r.typ]; dup || r.apply == nil || r.describe == nil || r.label == "" {
			panic("domain: event type " + string(r.typ) + " has two rows in the event table, or no apply, describe or label")
		}
		m[r.typ] = r
	}
	return m
}()

func eventRowOf(t EventType) (*eventRow, bool) {
	r, ok := eventIndex[t]
	return r, ok
}

// Label names the event type in a reviewer's words ("File written",
// "Approval granted"); a type outside the event table is its own label.
func (t EventType) Label() string {
	if r, ok := eventRowOf(t); ok {
		return r.label
	}
	return string(t)
}

// EventTypes lists every event type, in the order of the event table.
var EventTypes = func() []EventType {
	out := make([]EventType, len(eventTable))
	for i, r := range eventTable {
		out[i] = r.typ
	}
	return out
}()

// Op kinds: the file-tree operations an event can carry.
const (
	OpWrite   = "write"
	OpMkdir   = "mkdir"
	OpRemove  = "remove"
	OpRename  = "rename"
	OpSymlink = "symlink"
	// OpSetXattr and OpRemoveXattr change one extended attribute.
	OpSetXattr    = "setxattr"
	OpRemoveXattr = "rmxattr"
	// OpChmod sets the permission bits (Mode, 0 to 07777) of a file or
	// folder.
	OpChmod = "chmod"
)

// Op is one file-tree operation as recorded in an event: paths are clean and
// already resolved, so applying it needs no further checks.
type Op struct {
	Kind      string `msgpack:"k"`
	Path      string `msgpack:"p"`
	To        string `msgpack:"to,omitempty"`
	Target    string `msgpack:"t,omitempty"`
	Content   []byte `msgpack:"h,omitempty"`
	Size      int64  `msgpack:"s,omitempty"`
	Mode      uint32 `msgpack:"m,omitempty"`
	Recursive bool   `msgpack:"r,omitempty"`
	Name      string `msgpack:"n,omitempty"`
	Value     []byte `msgpack:"v,omitempty"`
	// Data is a write's content itself when it travels inside the event
	// (1 to MaxInlineBytes bytes; design record 0009); Content is still its
	// SHA-256. A write without Data names a blob stored before the event.
	Data []byte `msgpack:"d,omitempty"`
}

// EncodeMsgpack writes the op as the reflective encoder writes its struct
// (a map of the tagged fields in order, empty ones left out, Size and Mode
// at their full widths), byte for byte, so that an event's encoding and
// hash are what they always were; by hand, because reflection spent
// about ten allocations on every op, thousands in one batch
// (TestOpEncoding checks it against the reflective form).
func (op Op) EncodeMsgpack(e *msgpack.Encoder) error {
	n := 2
	for _, set := range [...]bool{op.To != "", op.Target != "", len(op.Content) > 0, op.Size != 0, op.Mode != 0,
		op.Recursive, op.Name != "", len(op.Value) > 0, len(op.Data) > 0} {
		if set {
			n++
		}
	}
	err := e.EncodeMapLen(n)
	str := func(key, v string) {
		if err == nil {
			if err = e.EncodeString(key); err == nil {
				err = e.EncodeString(v)
			}
		}
	}
	bin := func(key string, v []byte) {
		if err == nil && len(v) > 0 {
			if err = e.EncodeString(key); err == nil {
				err = e.EncodeBytes(v)
			}
		}
	}
	str("k", op.Kind)
	str("p", op.Path)
	if op.To != "" {
		str("to", op.To)
	}
	if op.Target != "" {
		str("t", op.Target)
	}
	bin("h", op.Content)
	if op.Size != 0 && err == nil {
		if err = e.EncodeString("s"); err == nil {
			err = e.EncodeInt64(op.Size)
		}
	}
	if op.Mode != 0 && err == nil {
		if err = e.EncodeString("m"); err == nil {
			err = e.EncodeUint32(op.Mode)
		}
	}
	if op.Recursive && err == nil {
		if err = e.EncodeString("r"); err == nil {
			err = e.EncodeBool(true)
		}
	}
	if op.Name != "" {
		str("n", op.Name)
	}
	bin("v", op.Value)
	bin("d", op.Data)
	return err
}

// Inline reports whether a write carries its content in the event.
func (op *Op) Inline() bool { return op.Kind == OpWrite && len(op.Data) > 0 }

// Origin is where a session's history begins.
type Origin struct {
	Source   string `msgpack:"src,omitempty" json:"source,omitempty"`
	Revision uint64 `msgpack:"rev,omitempty" json:"revision,omitempty"`
	Parent   string `msgpack:"parent,omitempty" json:"parent,omitempty"`
	Position uint64 `msgpack:"pos,omitempty" json:"position,omitempty"`
}

// CreatedData is the payload of SessionCreated and SessionForked.
type CreatedData struct {
	Origin Origin            `msgpack:"origin"`
	Owner  string            `msgpack:"owner,omitempty"`
	Tags   map[string]string `msgpack:"tags,omitempty"`
	Policy Policy            `msgpack:"policy,omitempty"`
}

// NoteData is the payload of NoteAdded, and names the note of NoteResolved
// and NoteReopened.
type NoteData struct {
	ID        string `msgpack:"id" json:"id"`
	Body      string `msgpack:"body,omitempty" json:"body,omitempty"`
	Path      string `msgpack:"path,omitempty" json:"path,omitempty"`
	LineStart int    `msgpack:"ls,omitempty" json:"line_start,omitempty"`
	LineEnd   int    `msgpack:"le,omitempty" json:"line_end,omitempty"`
	Content   []byte `msgpack:"h,omitempty" json:"content,omitempty"`
	ReplyTo   string `msgpack:"reply,omitempty" json:"reply_to,omitempty"`
}

// ApprovalData is the payload of ApprovalRequested, ApprovalGranted and
// ApprovalDenied.
type ApprovalData struct {
	ID       string `msgpack:"id" json:"id"`
	Reason   string `msgpack:"reason,omitempty" json:"reason,omitempty"`
	Group    string `msgpack:"group,omitempty" json:"group,omitempty"`
	Details  []byte `msgpack:"details,omitempty" json:"details,omitempty"`
	Root     []byte `msgpack:"root,omitempty" json:"root,omitempty"`
	Required int    `msgpack:"required,omitempty" json:"required,omitempty"`
	Comment  string `msgpack:"comment,omitempty" json:"comment,omitempty"`
}

// CommitData is the payload of CommitCreated.
type CommitData struct {
	ID       string   `msgpack:"id" json:"id"`
	Position uint64   `msgpack:"pos" json:"position"`
	Message  string   `msgpack:"msg" json:"message"`
	Author   string   `msgpack:"author" json:"author"`
	Summary  *Summary `msgpack:"summary,omitempty" json:"summary,omitempty"`
	// Gate is the part of the effective policy that governed the commit:
	// the grants it needed, overall and per reviewer group. The approvals
	// that met it are the event's Uses.
	Gate Policy `msgpack:"gate,omitempty" json:"gate,omitempty"`
}

// CheckpointData is the payload of CheckpointCreated and CheckpointDeleted.
type CheckpointData struct {
	Name     string `msgpack:"name"`
	Position uint64 `msgpack:"pos,omitempty"`
	Note     string `msgpack:"note,omitempty"`
}

// RestoreData is the payload of SessionRestored.
type RestoreData struct {
	To uint64 `msgpack:"to"`
}

// Event is the envelope of one event: one JetStream message on the session's
// subject. Its position is the message's stream sequence, known only once
// stored, so it is not part of the envelope.
type Event struct {
	ID        string    `msgpack:"id"`
	Type      EventType `msgpack:"type"`
	Tenant    string    `msgpack:"tenant"`
	Session   string    `msgpack:"session"`
	Actor     string    `msgpack:"actor"`
	Time      int64     `msgpack:"time"`
	RequestID string    `msgpack:"rid,omitempty"`
	// Version numbers the session's own events: 1 for its first.
	Version uint64 `msgpack:"n"`
	// Prev is the hash of the previous event of the session's history (for
	// the first event of a fork: of the parent's event at the fork point).
	Prev []byte `msgpack:"prev"`
	// Root is the Merkle root of the session's tree after the event.
	Root []byte `msgpack:"root"`

	Ops        []Op              `msgpack:"ops,omitempty"`
	Created    *CreatedData      `msgpack:"created,omitempty"`
	Tags       map[string]string `msgpack:"tags,omitempty"`
	Untag      []string          `msgpack:"untag,omitempty"`
	Checkpoint *CheckpointData   `msgpack:"cp,omitempty"`
	Restore    *RestoreData      `msgpack:"restore,omitempty"`
	Note       *NoteData         `msgpack:"note,omitempty"`
	Approval   *ApprovalData     `msgpack:"approval,omitempty"`
	Commit     *CommitData       `msgpack:"commit,omitempty"`
	Policy     Policy            `msgpack:"policy,omitempty"`
	Merge      *MergeData        `msgpack:"merge,omitempty"`
	// Uses names the approval requests this event consumed (a commit, a
	// delete, a policy change, a merge or a promotion they authorised).
	Uses []string `msgpack:"uses,omitempty"`

	Cache  []CacheOp   `msgpack:"cache,omitempty"`
	Lock   *LockData   `msgpack:"lock,omitempty"`
	Health *HealthData `msgpack:"health,omitempty"`

	// decided is the tree a decide function already built by applying
	// Ops, in order, to the state it decided on; Execute hands it to the
	// event's apply instead of building it a second time, and clears it.
	// Never encoded: a replay builds the tree from Ops.
	decided *Tree
}

// CacheOp is one change of a session's knowledge cache.
type CacheOp struct {
	Op    string `msgpack:"op" json:"op"` // put, delete, delete_prefix
	Key   string `msgpack:"k" json:"key"`
	Value []byte `msgpack:"v,omitempty" json:"value,omitempty"`
	// Expires is when a put entry stops existing (unix nanoseconds, 0: never).
	Expires int64 `msgpack:"x,omitempty" json:"expires,omitempty"`
}

// LockData is the payload of LockAcquired, LockRenewed and LockReleased.
type LockData struct {
	Path    string `msgpack:"p" json:"path"`
	Subtree bool   `msgpack:"sub,omitempty" json:"subtree,omitempty"`
	// TokenHash is the SHA-256 of the lease token: the token itself is
	// never stored, so reading history does not let anyone use a lease.
	TokenHash []byte `msgpack:"th,omitempty" json:"token_hash,omitempty"`
	Owner     string `msgpack:"owner,omitempty" json:"owner,omitempty"`
	Expires   int64  `msgpack:"x,omitempty" json:"expires,omitempty"`
	Forced    bool   `msgpack:"forced,omitempty" json:"forced,omitempty"`
}

// HealthData is the payload of HealthReported: a test run's result.
type HealthData struct {
	Passing bool   `msgpack:"ok" json:"passing"`
	Passed  int    `msgpack:"pass,omitempty" json:"passed,omitempty"`
	Failed  int    `msgpack:"fail,omitempty" json:"failed,omitempty"`
	Skipped int    `msgpack:"skip,omitempty" json:"skipped,omitempty"`
	Summary string `msgpack:"sum,omitempty" json:"summary,omitempty"`
	Details []byte `msgpack:"details,omitempty" json:"details,omitempty"`
}

// At returns the event's time.
func (e *Event) At() time.Time { return time.Unix(0, e.Time).UTC() }

// Paths returns the paths an event touches, in the order of its operations.
func (e *Event) Paths() []string {
	var out []string
	for _, op := range e.Ops {
		out = append(out, op.Path)
		if op.To != "" {
			out = append(out, op.To)
		}
	}
	return out
}

// Blobs returns the hashes of the blobs the event names: the content of
// its writes, except content that travels inside the event (Op.Inline).
func (e *Event) Blobs() []Hash {
	var out []Hash
	for _, op := range e.Ops {
		if op.Kind == OpWrite && !op.Inline() {
			if h, ok := HashFromBytes(op.Content); ok && !h.IsZero() {
				out = append(out, h)
			}
		}
	}
	return out
}

// Encode returns the MessagePack form of the event, with map keys sorted so
// the same event always encodes to the same bytes.
func (e *Event) Encode() ([]byte, error) { return encodeSorted(e) }

// encodeSorted returns the MessagePack form of v with map keys sorted: the
// canonical form of what is hashed (events, tenant log entries).
func encodeSorted(v any) ([]byte, error) {
	w := encoders.Get().(*sortedEncoder)
	defer encoders.Put(w)
	w.buf.Reset()
	if err := w.enc.Encode(v); err != nil {
		return nil, err
	}
	// The buffer goes back to the pool: the caller gets a copy of its
	// exact size (one allocation instead of the buffer's growth).
	return bytes.Clone(w.buf.Bytes()), nil
}

// sortedEncoder is a MessagePack encoder with sorted map keys and the
// buffer it writes to, kept in a pool: every append encodes its event, and
// a fresh encoder and buffer were most of that encoding's allocations.
type sortedEncoder struct {
	buf bytes.Buffer
	enc *msgpack.Encoder
}

var encoders = sync.Pool{New: func() any {
	w := &sortedEncoder{}
	w.enc = msgpack.NewEncoder(&w.buf)
	w.enc.SetSortMapKeys(true)
	return w
}}

// DecodeEvent parses an event envelope (see decode.go).
func DecodeEvent(b []byte) (*Event, error) {
	e := new(Event)
	if err := DecodeEventInto(b, e); err != nil {
		return nil, err
	}
	return e, nil
}

// DecodeEventHead is DecodeEvent without the operations (Ops is nil): for
// a reader that needs only the envelope and the payloads, as the session
// views do, it spares each operation's decoding and copies. Whatever
// DecodeEvent decodes, this decodes to the same but for Ops; an event
// whose operations alone are malformed may decode here and not there.
func DecodeEventHead(b []byte) (*Event, error) {
	e := new(Event)
	if err := decodeEvent(b, e, true); err != nil {
		return nil, err
	}
	return e, nil
}

// DecodeEventInto is DecodeEvent into e, whatever e held before: for a
// reader that decodes many events and keeps none (an audit's replay), so
// that a few Events serve them all.
func DecodeEventInto(b []byte, e *Event) error {
	*e = Event{}
	return decodeEvent(b, e, false)
}

// decodeEvent decodes an envelope into e, which must be zero; head: without
// its operations.
func decodeEvent(b []byte, e *Event, head bool) error {
	if !decodeEventFast(b, e, head) {
		lib, err := decodeEventLibrary(b)
		if err != nil {
			return Errorf(CodeInternal, "decode event: %v", err)
		}
		*e = *lib
		if head {
			e.Ops = nil
		}
	}
	if e.Type == "" || e.Session == "" || e.Version == 0 {
		return Errorf(CodeInternal, "decode event: incomplete envelope")
	}
	return nil
}
