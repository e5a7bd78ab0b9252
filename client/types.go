package client

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/strand-dev/strand/domain"
)

// Mutation holds what every mutating request may carry.
type Mutation struct {
	// RequestID makes the request idempotent: a retry with the same id is
	// stored once and answered as the first time.
	RequestID string `json:"request_id,omitempty"`
	// ExpectedPosition, when set, refuses the request with conflict unless
	// the session's head is exactly at this position.
	ExpectedPosition uint64 `json:"expected_position,omitempty"`
	// Actor names who asks; the Strand-Actor header is the alternative.
	Actor string `json:"actor,omitempty"`
	// Token is a lease token (lock.acquire) for paths under a lock.
	Token string `json:"token,omitempty"`
}

// At names a point in a session's history: a position (a number, in JSON a
// number or a string of digits) or a checkpoint name. Empty means the head.
type At string

// UnmarshalJSON accepts a number or a string.
func (a *At) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		// A position has one spelling: "09" is position 9, as the
		// service reads it, and is kept as "9".
		if n, err := strconv.ParseUint(s, 10, 64); err == nil {
			s = strconv.FormatUint(n, 10)
		}
		*a = At(s)
		return nil
	}
	var n uint64
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	*a = At(strconv.FormatUint(n, 10))
	return nil
}

// AtPosition returns an At for a position.
func AtPosition(p uint64) At { return At(strconv.FormatUint(p, 10)) }

// OriginView is where a session's history begins.
type OriginView struct {
	Source   string `json:"source,omitempty"`
	Revision uint64 `json:"revision,omitempty"`
	Parent   string `json:"parent,omitempty"`
	Position uint64 `json:"position,omitempty"`
}

// CheckpointView is a checkpoint as shown to callers.
type CheckpointView struct {
	Name      string    `json:"name"`
	Position  uint64    `json:"position"`
	Note      string    `json:"note,omitempty"`
	Actor     string    `json:"actor,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// CreatedPosition is the position of the event that created it.
	CreatedPosition uint64 `json:"created_position,omitempty"`
}

// SessionView is a session as shown to callers.
type SessionView struct {
	ID          string            `json:"id"`
	Tenant      string            `json:"tenant"`
	Status      string            `json:"status"`
	Origin      *OriginView       `json:"origin,omitempty"`
	Owner       string            `json:"owner,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
	CreatedAt   time.Time         `json:"created_at"`
	UpdatedAt   time.Time         `json:"updated_at"`
	Position    uint64            `json:"position"`
	Start       uint64            `json:"start_position"`
	Version     uint64            `json:"version"`
	Root        string            `json:"root"`
	Checkpoints []CheckpointView  `json:"checkpoints,omitempty"`
}

// CreateSessionRequest is the body of session.create.
type CreateSessionRequest struct {
	Mutation
	Owner    string            `json:"owner,omitempty"`
	Tags     map[string]string `json:"tags,omitempty"`
	Source   string            `json:"source,omitempty"`
	Revision uint64            `json:"revision,omitempty"`
	// Policy is the session's own approval policy (action: grants); it
	// overrides the tenant's default and later changes need an approval.
	Policy domain.Policy `json:"policy,omitempty"`
}

// SessionRequest names a session in a mutating request (archive, delete).
type SessionRequest struct {
	Mutation
	Session string `json:"session"`
}

// GetSessionRequest is the body of session.get.
type GetSessionRequest struct {
	Session string `json:"session"`
	At      At     `json:"at,omitempty"`
}

// SessionReply answers the session requests.
type SessionReply struct {
	Session  SessionView `json:"session"`
	Position uint64      `json:"position"`
	// Replayed is true when the reply answers a retried request.
	Replayed bool `json:"replayed,omitempty"`
}

// TagRequest is the body of session.tag.
type TagRequest struct {
	Mutation
	Session string            `json:"session"`
	Set     map[string]string `json:"set,omitempty"`
	Remove  []string          `json:"remove,omitempty"`
}

// ListSessionsRequest is the body of session.list.
type ListSessionsRequest struct {
	Status       string            `json:"status,omitempty"`
	Tags         map[string]string `json:"tags,omitempty"`
	Owner        string            `json:"owner,omitempty"`
	Parent       string            `json:"parent,omitempty"`
	Source       string            `json:"source,omitempty"`
	UpdatedSince *time.Time        `json:"updated_since,omitempty"`
	Cursor       string            `json:"cursor,omitempty"`
	Limit        int               `json:"limit,omitempty"`
	// Sort is created (default) or updated; Order asc (default) or desc.
	// A cursor belongs to the sort and order it was returned for.
	Sort  string `json:"sort,omitempty"`
	Order string `json:"order,omitempty"`
	// Counts asks for the number of sessions per status that match the
	// other filters (status and cursor aside).
	Counts bool `json:"counts,omitempty"`
}

// ListSessionsReply answers session.list.
type ListSessionsReply struct {
	Sessions   []SessionView `json:"sessions"`
	NextCursor string        `json:"next_cursor,omitempty"`
	// Counts per status, when asked for.
	Counts map[string]int `json:"counts,omitempty"`
}

// EntryView is one entry of a manifest.
type EntryView struct {
	Path   string `json:"path"`
	Kind   string `json:"kind"`
	Size   int64  `json:"size"`
	Mode   uint32 `json:"mode"`
	Hash   string `json:"hash"`
	Target string `json:"target,omitempty"`
	// Xattrs are included when the manifest request asks for them.
	Xattrs map[string][]byte `json:"xattrs,omitempty"`
}

// ManifestRequest is the body of fs.manifest.
type ManifestRequest struct {
	Session string `json:"session"`
	At      At     `json:"at,omitempty"`
	// Prefix filters the listing: a prefix that names a directory ("src"
	// or "src/") lists that directory's subtree; any other prefix keeps the
	// entries whose path starts with it ("src/ma" keeps src/main.go).
	Prefix string `json:"prefix,omitempty"`
	// After is the cursor: the last path of the previous page.
	After string `json:"after,omitempty"`
	Limit int    `json:"limit,omitempty"`
	// Xattrs includes each entry's extended attributes.
	Xattrs bool `json:"xattrs,omitempty"`
	// Encoding of the reply: "json" (the default when empty) or "msgpack"
	// (ManifestMsgpack: smaller and several times cheaper to encode and
	// decode; see manifest.go).
	Encoding string `json:"encoding,omitempty"`
}

// ManifestReply answers fs.manifest.
type ManifestReply struct {
	Entries    []EntryView `json:"entries"`
	NextCursor string      `json:"next_cursor,omitempty"`
	Position   uint64      `json:"position"`
	Root       string      `json:"root"`
}

// ReadRequest is the body of fs.read.
type ReadRequest struct {
	Session string `json:"session"`
	Path    string `json:"path"`
	At      At     `json:"at,omitempty"`
	Offset  int64  `json:"offset,omitempty"`
	// Length bounds the bytes returned (0: as much as one reply holds).
	Length int64 `json:"length,omitempty"`
}

// ReadReply answers fs.read. Content is base64 in JSON.
type ReadReply struct {
	Path     string `json:"path"`
	Kind     string `json:"kind"`
	Size     int64  `json:"size"`
	Mode     uint32 `json:"mode"`
	Hash     string `json:"hash"`
	Target   string `json:"target,omitempty"`
	Offset   int64  `json:"offset"`
	Content  []byte `json:"content"`
	EOF      bool   `json:"eof"`
	Position uint64 `json:"position"`
}

// WriteRequest is the body of fs.write: the content inline (base64), or the
// hashes of chunks stored before with fs.upload.
type WriteRequest struct {
	Mutation
	Session string   `json:"session"`
	Path    string   `json:"path"`
	Content []byte   `json:"content,omitempty"`
	Chunks  []string `json:"chunks,omitempty"`
	// Hash, with chunks, is the SHA-256 the whole content must have.
	Hash         string `json:"hash,omitempty"`
	Mode         uint32 `json:"mode,omitempty"`
	ExpectedHash string `json:"expected_hash,omitempty"`
}

// UploadRequest is the body of fs.upload: one chunk of a large file.
type UploadRequest struct {
	Session string `json:"session"`
	Data    []byte `json:"data"`
}

// UploadReply answers fs.upload.
type UploadReply struct {
	Hash string `json:"hash"`
	Size int64  `json:"size"`
}

// MkdirRequest is the body of fs.mkdir.
type MkdirRequest struct {
	Mutation
	Session string `json:"session"`
	Path    string `json:"path"`
	Mode    uint32 `json:"mode,omitempty"`
}

// RemoveRequest is the body of fs.remove.
type RemoveRequest struct {
	Mutation
	Session      string `json:"session"`
	Path         string `json:"path"`
	Recursive    bool   `json:"recursive,omitempty"`
	ExpectedHash string `json:"expected_hash,omitempty"`
}

// RenameRequest is the body of fs.rename.
type RenameRequest struct {
	Mutation
	Session      string `json:"session"`
	From         string `json:"from"`
	To           string `json:"to"`
	ExpectedHash string `json:"expected_hash,omitempty"`
}

// SymlinkRequest is the body of fs.symlink.
type SymlinkRequest struct {
	Mutation
	Session string `json:"session"`
	Path    string `json:"path"`
	Target  string `json:"target"`
}

// ChmodRequest is the body of fs.chmod.
type ChmodRequest struct {
	Mutation
	Session string `json:"session"`
	Path    string `json:"path"`
	// Mode is the new permission bits, 0 to 07777; required (a pointer so
	// that 0, no permissions, is told apart from a mode left out).
	Mode         *uint32 `json:"mode"`
	ExpectedHash string  `json:"expected_hash,omitempty"`
}

// BatchOp is one operation of fs.batch.
type BatchOp struct {
	Op           string   `json:"op"`
	Path         string   `json:"path"`
	To           string   `json:"to,omitempty"`
	Target       string   `json:"target,omitempty"`
	Content      []byte   `json:"content,omitempty"`
	Chunks       []string `json:"chunks,omitempty"`
	Hash         string   `json:"hash,omitempty"`
	Mode         uint32   `json:"mode,omitempty"`
	Recursive    bool     `json:"recursive,omitempty"`
	ExpectedHash string   `json:"expected_hash,omitempty"`
	// Name and Value: setxattr and rmxattr (no value).
	Name  string `json:"name,omitempty"`
	Value []byte `json:"value,omitempty"`
}

// MarshalJSON leaves out empty fields, as the tags say, but for a chmod's
// mode: its 0 is no permissions, and the service refuses a chmod without
// a mode.
func (o BatchOp) MarshalJSON() ([]byte, error) {
	type plain BatchOp
	if o.Op != domain.OpChmod || o.Mode != 0 {
		return json.Marshal(plain(o))
	}
	return json.Marshal(struct {
		plain
		Mode uint32 `json:"mode"`
	}{plain: plain(o)})
}

// BatchRequest is the body of fs.batch: all operations or none.
type BatchRequest struct {
	Mutation
	Session string    `json:"session"`
	Ops     []BatchOp `json:"ops"`
}

// ChangeReply answers the fs mutations.
type ChangeReply struct {
	Session  string `json:"session"`
	Position uint64 `json:"position"`
	Root     string `json:"root"`
	// Path, Hash and Size describe the written file (fs.write).
	Path     string `json:"path,omitempty"`
	Hash     string `json:"hash,omitempty"`
	Size     int64  `json:"size,omitempty"`
	Replayed bool   `json:"replayed,omitempty"`
}

// EventsRequest is the body of events.list.
type EventsRequest struct {
	Session string `json:"session"`
	// From is the first position to return (0: the session's first).
	From uint64 `json:"from,omitempty"`
	// At bounds the listing: nothing after this point.
	At    At  `json:"at,omitempty"`
	Limit int `json:"limit,omitempty"`
	// Filters: event types, actor, a path (the event touches it or
	// something below it) and a time window [since, until).
	Types []string   `json:"types,omitempty"`
	Actor string     `json:"actor,omitempty"`
	Path  string     `json:"path,omitempty"`
	Since *time.Time `json:"since,omitempty"`
	Until *time.Time `json:"until,omitempty"`
}

// EventsReply answers events.list. NextFrom, when not zero, is where the
// next page starts.
type EventsReply struct {
	Events   []EventView `json:"events"`
	NextFrom uint64      `json:"next_from,omitempty"`
}
