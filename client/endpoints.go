package client

import (
	"strings"

	"github.com/strand-dev/strand/names"
)

// Effect says what a request to an endpoint does, so that the limits, the
// HTTP front (GET or POST) and the docs can tell reads from writes.
type Effect uint8

// The effects, from the weakest.
const (
	// Reads answers from stored state and changes nothing.
	Reads Effect = iota
	// Mutates changes state (an event, a lease, a cache entry, a source).
	Mutates
	// WritesContent mutates and brings file or cache content: such a
	// request is refused when the tenant is over its byte quota.
	WritesContent
	// AddsSession mutates by creating a session: refused when the tenant is
	// over its session quota.
	AddsSession
)

// Endpoint is one row of the endpoint table: the request subject
// strand.v1.<tenant>.<Area>.<Verb> (or .<Area> when Verb is empty), what a
// request does, and the JSON body types of its request and reply. The
// service registers every row (handlers), the Client sends to it, the
// limits classify by its Effect, and the API doc test checks docs/api.md
// against it; an HTTP front and an OpenAPI document iterate it too.
type Endpoint struct {
	Area, Verb string
	Effect     Effect
	// Request and Reply are zero values of the body types (reflect on them
	// for a schema).
	Request, Reply any
	// Msgpack says the request body may also be MessagePack, sent with the
	// header Content-Type: application/msgpack (MsgpackContentType): the
	// JSON body's keys, bytes as binary instead of base64. JSON stays the
	// default (docs/api.md, "Request encodings").
	Msgpack bool
}

// Path is <area>.<verb>, the part of the subject after the tenant, and the
// endpoint's name in the table.
func (e *Endpoint) Path() string { return names.EndpointPath(e.Area, e.Verb) }

// Subject is the endpoint's request subject for a tenant.
func (e *Endpoint) Subject(tenant string) string { return names.Subject(tenant, e.Area, e.Verb) }

// Scoped reports whether the endpoint's subject ends in a wildcard token
// (secret.get.<scope>) that the caller fills in: see SubjectScoped.
func (e *Endpoint) Scoped() bool { return strings.HasSuffix(e.Verb, ".*") }

// SubjectScoped is the subject of a scoped endpoint for a tenant, with scope
// in place of the wildcard token.
func (e *Endpoint) SubjectScoped(tenant, scope string) string {
	return names.Subject(tenant, e.Area, strings.TrimSuffix(e.Verb, "*")+scope)
}

// msgpackRequests marks a row whose request body may be MessagePack.
func (e *Endpoint) msgpackRequests() *Endpoint {
	e.Msgpack = true
	return e
}

// Mutating reports whether a request may change state.
func (e *Endpoint) Mutating() bool { return e.Effect != Reads }

// Endpoints is the endpoint table, ordered by area, in the order of the
// rows below. It is filled as the package initialises and never changes.
var Endpoints []*Endpoint

// row adds an endpoint to the table.
func row(area, verb string, effect Effect, req, reply any) *Endpoint {
	e := &Endpoint{Area: area, Verb: verb, Effect: effect, Request: req, Reply: reply}
	Endpoints = append(Endpoints, e)
	return e
}

// The endpoint table, by area. Adding an endpoint is one row here, its
// handler (handlers/<area>.go, bound to the row in handlers/routes.go), a
// Client method if Go callers want one, and its section of docs/api.md
// (docs/architecture.md has the checklist).
var (
	SessionCreate  = row("session", "create", AddsSession, CreateSessionRequest{}, SessionReply{})
	SessionGet     = row("session", "get", Reads, GetSessionRequest{}, SessionReply{})
	SessionList    = row("session", "list", Reads, ListSessionsRequest{}, ListSessionsReply{})
	SessionArchive = row("session", "archive", Mutates, SessionRequest{}, SessionReply{})
	SessionDelete  = row("session", "delete", Mutates, SessionRequest{}, SessionReply{})
	SessionTag     = row("session", "tag", Mutates, TagRequest{}, SessionReply{})
	SessionFork    = row("session", "fork", AddsSession, ForkRequest{}, SessionReply{})
	SessionRestore = row("session", "restore", Mutates, RestoreRequest{}, SessionReply{})
	SessionStats   = row("session", "stats", Reads, SessionStatsRequest{}, SessionStatsReply{})

	FSManifest    = row("fs", "manifest", Reads, ManifestRequest{}, ManifestReply{})
	FSRead        = row("fs", "read", Reads, ReadRequest{}, ReadReply{})
	FSReadBatch   = row("fs", "read_batch", Reads, ReadBatchRequest{}, ReadBatchReply{})
	FSHas         = row("fs", "has", Reads, HasRequest{}, HasReply{})
	FSSearch      = row("fs", "search", Reads, SearchRequest{}, SearchReply{})
	FSWrite       = row("fs", "write", WritesContent, WriteRequest{}, ChangeReply{}).msgpackRequests()
	FSUpload      = row("fs", "upload", WritesContent, UploadRequest{}, UploadReply{}).msgpackRequests()
	FSMkdir       = row("fs", "mkdir", Mutates, MkdirRequest{}, ChangeReply{})
	FSRemove      = row("fs", "remove", Mutates, RemoveRequest{}, ChangeReply{})
	FSRename      = row("fs", "rename", Mutates, RenameRequest{}, ChangeReply{})
	FSSymlink     = row("fs", "symlink", Mutates, SymlinkRequest{}, ChangeReply{})
	FSChmod       = row("fs", "chmod", Mutates, ChmodRequest{}, ChangeReply{})
	FSBatch       = row("fs", "batch", WritesContent, BatchRequest{}, ChangeReply{}).msgpackRequests()
	FSSync        = row("fs", "sync", WritesContent, SyncRequest{}, SyncReply{})
	FSXattrSet    = row("fs", "xattr.set", Mutates, XattrRequest{}, XattrReply{})
	FSXattrGet    = row("fs", "xattr.get", Reads, XattrRequest{}, XattrReply{})
	FSXattrList   = row("fs", "xattr.list", Reads, XattrRequest{}, XattrReply{})
	FSXattrRemove = row("fs", "xattr.remove", Mutates, XattrRequest{}, XattrReply{})

	EventsList = row("events", "list", Reads, EventsRequest{}, EventsReply{})

	CheckpointCreate = row("checkpoint", "create", Mutates, CheckpointRequest{}, CheckpointReply{})
	CheckpointList   = row("checkpoint", "list", Reads, CheckpointListRequest{}, CheckpointListReply{})
	CheckpointDelete = row("checkpoint", "delete", Mutates, CheckpointRequest{}, CheckpointReply{})

	DiffTrees = row("diff", "", Reads, DiffRequest{}, DiffReply{})
	MergeInto = row("merge", "", WritesContent, MergeRequest{}, MergeReply{})

	CacheGet          = row("cache", "get", Reads, CacheRequest{}, CacheReply{})
	CachePut          = row("cache", "put", WritesContent, CachePutRequest{}, CacheReply{})
	CacheDelete       = row("cache", "delete", Mutates, CacheRequest{}, CacheReply{})
	CacheExists       = row("cache", "exists", Reads, CacheRequest{}, CacheReply{})
	CacheMeta         = row("cache", "meta", Reads, CacheRequest{}, CacheReply{})
	CacheCAS          = row("cache", "cas", WritesContent, CachePutRequest{}, CacheReply{})
	CacheKeys         = row("cache", "keys", Reads, CacheKeysRequest{}, CacheKeysReply{})
	CacheStats        = row("cache", "stats", Reads, CacheKeysRequest{}, CacheStatsReply{})
	CacheBatchGet     = row("cache", "batch_get", Reads, CacheBatchRequest{}, CacheBatchReply{})
	CacheBatchPut     = row("cache", "batch_put", WritesContent, CacheBatchRequest{}, CacheBatchReply{})
	CacheBatchDelete  = row("cache", "batch_delete", Mutates, CacheBatchRequest{}, CacheBatchReply{})
	CacheDeletePrefix = row("cache", "delete_prefix", Mutates, CacheBatchRequest{}, CacheBatchReply{})

	LockAcquire      = row("lock", "acquire", Mutates, LockRequest{}, LockReply{})
	LockRenew        = row("lock", "renew", Mutates, LockRequest{}, LockReply{})
	LockRelease      = row("lock", "release", Mutates, LockRequest{}, LockReply{})
	LockForceRelease = row("lock", "force_release", Mutates, LockRequest{}, LockReply{})
	LockList         = row("lock", "list", Reads, LockListRequest{}, LockListReply{})

	HealthReport = row("health", "report", Mutates, HealthRequest{}, HealthReply{})
	HealthGet    = row("health", "get", Reads, HealthRequest{}, HealthReply{})

	BusPublish = row("bus", "publish", Mutates, BusRequest{}, BusReply{})
	BusReplay  = row("bus", "replay", Reads, BusRequest{}, BusReply{})

	ReviewAnnotate = row("review", "annotate", Mutates, AnnotateRequest{}, NoteReply{})
	ReviewNotes    = row("review", "notes", Reads, NotesRequest{}, NotesReply{})
	ReviewResolve  = row("review", "resolve", Mutates, NoteRequest{}, NoteReply{})
	ReviewReopen   = row("review", "reopen", Mutates, NoteRequest{}, NoteReply{})
	ReviewRequest  = row("review", "request", Mutates, ApprovalRequestRequest{}, ApprovalReply{})
	ReviewGrant    = row("review", "grant", Mutates, DecideRequest{}, ApprovalReply{})
	ReviewDeny     = row("review", "deny", Mutates, DecideRequest{}, ApprovalReply{})
	ReviewPending  = row("review", "pending", Reads, PendingRequest{}, PendingReply{})

	PolicyGet = row("policy", "get", Reads, PolicyRequest{}, PolicyReply{})
	PolicySet = row("policy", "set", Mutates, PolicyRequest{}, PolicyReply{})

	CommitCreate  = row("commit", "create", Mutates, CommitRequest{}, CommitReply{})
	CommitList    = row("commit", "list", Reads, CommitListRequest{}, CommitListReply{})
	CommitGet     = row("commit", "get", Reads, CommitGetRequest{}, CommitReply{})
	CommitSummary = row("commit", "summary", Reads, SummaryRequest{}, SummaryReply{})

	SourceCreate  = row("source", "create", Mutates, SourceCreateRequest{}, SourceReply{})
	SourceGet     = row("source", "get", Reads, SourceRequest{}, SourceReply{})
	SourceList    = row("source", "list", Reads, struct{}{}, SourceListReply{})
	SourceDelete  = row("source", "delete", Mutates, SourceRequest{}, SourceReply{})
	SourceUpload  = row("source", "upload", WritesContent, SourceUploadRequest{}, UploadReply{}).msgpackRequests()
	SourceImport  = row("source", "import", WritesContent, SourceImportRequest{}, JobReply{})
	SourceJob     = row("source", "job", Reads, JobRequest{}, JobReply{})
	SourcePromote = row("source", "promote", Mutates, PromoteRequest{}, SourceReply{})

	SecretPut    = row("secret", "put", Mutates, SecretRequest{}, SecretReply{})
	SecretGet    = row("secret", "get.*", Reads, SecretRequest{}, SecretReply{})
	SecretList   = row("secret", "list", Reads, SecretListRequest{}, SecretListReply{})
	SecretDelete = row("secret", "delete", Mutates, SecretRequest{}, SecretReply{})
	SecretRekey  = row("secret", "rekey", Mutates, Mutation{}, SecretRekeyReply{})

	GroupSet    = row("group", "set", Mutates, GroupRequest{}, GroupReply{})
	GroupGet    = row("group", "get", Reads, GroupRequest{}, GroupReply{})
	GroupList   = row("group", "list", Reads, struct{}{}, GroupListReply{})
	GroupDelete = row("group", "delete", Mutates, GroupRequest{}, GroupReply{})

	TenantLog = row("tenant", "log", Reads, TenantLogRequest{}, TenantLogReply{})

	ActivityList      = row("activity", "list", Reads, ActivityRequest{}, ActivityReply{})
	ProjectionsStatus = row("projections", "status", Reads, struct{}{}, ProjectionsReply{})
	UsageGet          = row("usage", "get", Reads, UsageRequest{}, UsageReply{})
)

// Lookup returns the row of the table whose Path is path, or nil.
func Lookup(path string) *Endpoint {
	for _, e := range Endpoints {
		if e.Path() == path {
			return e
		}
	}
	return nil
}
