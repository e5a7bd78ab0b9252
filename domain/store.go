package domain

import (
	"context"
	"io"
	"time"
)

// The store contracts: what the service (handlers), the workers and the
// projections need from storage, as role interfaces. Package streams
// implements every one of them on JetStream (`var _ domain.X =
// (*streams.Store)(nil)` there); the composition roots (cmd, bench) hand a
// *streams.Store to whoever needs a role. The types that cross the boundary
// live here with the contracts.

// Result is what a change to a session produced: the session after it, the
// event appended and its position; Replayed when the request id had been
// stored before and nothing new was appended.
type Result struct {
	Session  *Session
	Event    *Event
	Position uint64
	Replayed bool
}

// SourceResult is what a change to a source produced.
type SourceResult struct {
	Source   *Source
	Sequence uint64
	Replayed bool
}

// StoredEvent is an event as stored: its position, the hash of its stored
// bytes, the decoded event and the bytes.
type StoredEvent struct {
	Position uint64
	Hash     Hash
	Event    *Event
	Body     []byte
}

// BusMsg is one retained message of a session topic.
type BusMsg struct {
	Sequence uint64
	Time     time.Time
	Data     []byte
	Header   map[string][]string
}

// BlobInfo describes stored content: its size and, for content stored in
// chunks, the chunks' hashes and sizes.
type BlobInfo struct {
	Hash   Hash
	Size   int64
	Chunks []Hash // nil for a single-message blob
	Sizes  []int64
}

// Sealed is a value sealed with one of the operator's keys (it has the
// fields and JSON of keyring.Sealed, which converts to and from it).
type Sealed struct {
	Key        string `json:"key"`
	Nonce      []byte `json:"nonce"`
	Ciphertext []byte `json:"ct"`
}

// SecretRecord is one stored secret: its version, who set it and when, the
// sealed value and its length (so that a listing needs no key).
type SecretRecord struct {
	Version uint64    `json:"version"`
	Actor   string    `json:"actor"`
	Time    time.Time `json:"time"`
	Sealed  Sealed    `json:"sealed"`
	Size    int       `json:"size"`
}

// SecretEntry is a secret as listed: its scope ("" for the tenant's own),
// name and record.
type SecretEntry struct {
	Session string
	Name    string
	Record  SecretRecord
}

// TenantEntry is one entry of a tenant's log.
type TenantEntry struct {
	Sequence uint64
	Event    *TenantEvent
	Hash     Hash
}

// ErrJobMoved means another writer changed a job first.
var ErrJobMoved = Errorf(CodeConflict, "the job was changed by another instance")

// SessionStore appends to and loads sessions' histories.
type SessionStore interface {
	Create(ctx context.Context, meta Meta, cmd Command) (Result, error)
	Fork(ctx context.Context, tenant, parent string, at uint64, meta Meta, cmd ForkSession) (Result, error)
	// Change loads the session, lets build decide the command on it, and
	// appends the event, retrying build on a conflict.
	Change(ctx context.Context, tenant, id string, meta Meta, build func(s *Session) (Command, error)) (Result, error)
	Head(ctx context.Context, tenant, id string) (*Session, error)
	// Peek is Head that may answer from a cache a moment old.
	Peek(ctx context.Context, tenant, id string) (*Session, error)
	At(ctx context.Context, tenant, id string, position uint64) (*Session, error)
	EventAt(ctx context.Context, tenant, id string, position uint64) (StoredEvent, error)
	Events(ctx context.Context, tenant, id string, from, upTo uint64, limit int) ([]StoredEvent, error)
	// PutTree stores a tree as a blob (a source revision's root).
	PutTree(ctx context.Context, t Tree) (Hash, error)
}

// SourceStore keeps sources and their revisions.
type SourceStore interface {
	Source(ctx context.Context, tenant, name string) (*Source, error)
	ListSources(ctx context.Context, tenant string) ([]*Source, error)
	SourceTree(ctx context.Context, tenant, source string, rev uint64) (Tree, error)
	RevisionTree(ctx context.Context, r Revision) (Tree, error)
	CreateSource(ctx context.Context, e SourceEvent) (SourceResult, error)
	ChangeSource(ctx context.Context, tenant, name, requestID string, decide func(s *Source) (*SourceEvent, error)) (SourceResult, error)
}

// JobStore keeps the state of asynchronous jobs. UpdateJob and ExpireJob
// are compare-and-set: ErrJobMoved when another writer was first.
type JobStore interface {
	CreateJob(ctx context.Context, j *Job) error
	GetJob(ctx context.Context, tenant, id string) (*Job, error)
	UpdateJob(ctx context.Context, j *Job) error
	ExpireJob(ctx context.Context, j *Job, now time.Time, timeout time.Duration) (*Job, error)
}

// BlobStore keeps content by hash.
type BlobStore interface {
	Put(ctx context.Context, data []byte) (Hash, error)
	// PutMany stores many contents as Put does, each distinct content
	// once, in fewer writes where the store can.
	PutMany(ctx context.Context, contents [][]byte) error
	PutStream(ctx context.Context, r io.Reader, limit int64) (Hash, int64, error)
	PutChunks(ctx context.Context, chunks []Hash, want, base Hash) (Hash, int64, error)
	ChunkReader(ctx context.Context, chunks []Hash) io.Reader
	Stat(ctx context.Context, h Hash) (BlobInfo, error)
	Get(ctx context.Context, h Hash) ([]byte, error)
	// GetMany reads the whole content of many blobs as Get does, in
	// fewer requests, passing each to fn (in any order, each hash once).
	GetMany(ctx context.Context, hs []Hash, fn func(Hash, []byte) error) error
	ReadAt(ctx context.Context, h Hash, off, n int64) ([]byte, error)
	// ChunkSize is the largest content stored as one message.
	ChunkSize() int
}

// ClaimStore records which tenant uploaded which content, so that a hash
// alone does not let a tenant reference content it never had.
type ClaimStore interface {
	Claim(ctx context.Context, tenant string, h Hash) error
	Claimed(ctx context.Context, tenant string, hashes []Hash) error
}

// TenantStore keeps each tenant's hash-chained log of settings, groups and
// secret changes, and its fold.
type TenantStore interface {
	TenantState(ctx context.Context, tenant string) (*TenantState, error)
	AppendTenant(ctx context.Context, tenant string, build func(*TenantState) (*TenantEvent, error)) (state *TenantState, replayed bool, err error)
	TenantLog(ctx context.Context, tenant string, from uint64, limit int) ([]TenantEntry, error)
}

// SecretStore keeps sealed secrets, per tenant ("" session) or session.
type SecretStore interface {
	Secret(ctx context.Context, tenant, session, name string) (SecretRecord, error)
	PutSecret(ctx context.Context, tenant, session, name string, rec SecretRecord) error
	DeleteSecret(ctx context.Context, tenant, session, name string) error
	ListSecrets(ctx context.Context, tenant, session string, all bool) ([]SecretEntry, error)
}

// BusStore publishes to session topics and replays their retained history.
type BusStore interface {
	BusPublish(ctx context.Context, subject string, data []byte, hdr map[string][]string) (uint64, error)
	BusReplay(ctx context.Context, subject string, limit int) ([]BusMsg, error)
}

// UsageStore counts what each tenant stores, for the limits: sessions
// (from the event stream) and content bytes (a shared counter that every
// instance adds to).
type UsageStore interface {
	CountSessions(ctx context.Context, tenant string) (int64, error)
	UsageBytes(ctx context.Context, tenant string) (int64, error)
	AddUsage(ctx context.Context, tenant string, bytes int64) error
}

// RequestCounter keeps each tenant's requests by endpoint for the whole
// deployment, durably: every instance counts in memory and adds its counts
// in batches, and any instance reads the sums.
type RequestCounter interface {
	// AddRequests adds a batch of counts. id names the batch: adding a
	// batch again under the same id (a retry after an unknown outcome)
	// counts it once, for as long as the counters remember ids (minutes).
	AddRequests(ctx context.Context, id string, counts []RequestCount) error
	// Requests returns a tenant's requests by endpoint.
	Requests(ctx context.Context, tenant string) (map[string]uint64, error)
}

// RequestCount is a number of requests of a tenant to an endpoint (its
// path, "fs.write").
type RequestCount struct {
	Tenant, Endpoint string
	N                uint64
}

// Store is every role the request/reply service uses, and the blob store
// behind it.
type Store interface {
	SessionStore
	SourceStore
	JobStore
	ClaimStore
	TenantStore
	SecretStore
	BusStore
	UsageStore
	RequestCounter
	BlobStore() BlobStore
}
