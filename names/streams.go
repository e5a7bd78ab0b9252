package names

// The streams, buckets and consumers Strand provisions, and the subjects
// inside them. Their names are part of the contract for operators (backups,
// permissions, monitoring): docs/api.md lists them.

// Streams.
const (
	// EventStream holds every session's history: strand.ev.<tenant>.<session>.
	EventStream = "STRAND_EVENTS"
	// BlobStream holds content, by hash: strand.blob.<sha256hex>.
	BlobStream = "STRAND_BLOBS"
	// SourceStream holds source revisions: strand.src.<tenant>.<name>.
	SourceStream = "STRAND_SOURCES"
	// BusStream keeps recent history per session topic (strand.bus.>).
	BusStream = "STRAND_BUS"
	// WorkStream is the work queue: strand.work.<tenant>.<kind>[.<more>].
	// Each message is delivered to the one consumer whose filter takes its
	// subject and is removed once acknowledged.
	WorkStream = "STRAND_WORK"
	// DeadStream keeps work items that failed too often:
	// strand.dead.<tenant>.<kind>, for 30 days.
	DeadStream = "STRAND_DEAD"
	// FeedStream is the activity feed: strand.feed.<tenant>, the tenant's
	// most recent events.
	FeedStream = "STRAND_FEED"
	// GCStream holds the blob collector's records: one condemnation per
	// blob on strand.gc.condemned.<sha256hex> and its run markers.
	GCStream = "STRAND_GC"
	// TenantLogStream holds every tenant's log: one subject per tenant,
	// strand.tlog.<tenant>, each a hash-chained history of the tenant's
	// settings, reviewer groups and secrets (domain.TenantEvent).
	TenantLogStream = "STRAND_TENANT_LOG"
)

// Key-value buckets.
const (
	// SnapshotBucket caches session snapshots (deleting them changes no
	// answer).
	SnapshotBucket = "strand_snapshots"
	// TenantBucket holds tenant settings.
	TenantBucket = "strand_tenants"
	// ClaimBucket records which tenant uploaded which content, so a content
	// hash alone does not let a tenant reference content it never had.
	ClaimBucket = "strand_blob_claims"
	// JobBucket holds the state of asynchronous jobs (source imports), one
	// key per job: <tenant>.<job id>.
	JobBucket = "strand_jobs"
	// SecretBucket holds sealed secrets.
	SecretBucket = "strand_secrets"
	// SessionsBucket holds the session views (projection).
	SessionsBucket = "strand_session_views"
	// StatsBucket holds the session figures and what a tenant's usage
	// sums (projection): s.<tenant>.<session>, t.<tenant>.<session>,
	// b.<tenant>.<sha256hex>.
	StatsBucket = "strand_session_stats"
	// ControlBucket holds the projections' generations and rebuild state.
	ControlBucket = "strand_projections"
	// SummaryBucket holds commit summaries computed by the summary worker.
	SummaryBucket = "strand_summaries"
)

// Durable consumers. The projections' are base names: generation 0 of the
// session views pulls from strand_proj_sessions_ackall, a rebuild moves it
// to strand_proj_sessions_g<n>_ackall (the names without "_ackall" are the
// consumers of the versions that acknowledged each event; an instance
// starts after where they were and removes them).
const (
	// SessionsConsumer is the durable consumer of the session-views
	// projection.
	SessionsConsumer = "strand_proj_sessions"
	// ActivityConsumer is the durable consumer of the activity feed.
	ActivityConsumer = "strand_proj_activity"
	// StatsConsumer is the durable consumer of the session-stats
	// projection.
	StatsConsumer = "strand_proj_stats"
	// WorkDurablePrefix starts a worker's consumer name: strand_work_<name>.
	WorkDurablePrefix = "strand_work_"
)

// Subject prefixes of the streams.
const (
	EventPrefix     = "strand.ev."
	BlobPrefix      = "strand.blob."
	SourcePrefix    = "strand.src."
	WorkPrefix      = "strand.work."
	DeadPrefix      = "strand.dead."
	FeedPrefix      = "strand.feed."
	GCPrefix        = "strand.gc."
	TenantLogPrefix = "strand.tlog."
)

// GCRunSubject receives a marker at the start of every collection; its
// server time stamp is the run's clock.
const GCRunSubject = GCPrefix + "run"

// EventSubject is the one literal subject of a session's history.
func EventSubject(tenant, session string) string { return EventPrefix + tenant + "." + session }

// EventFilter matches every event subject of a tenant ("*" for all tenants).
func EventFilter(tenant string) string { return EventPrefix + tenant + ".*" }

// AllEvents is the event stream's own subject: a consumer of every event
// filters on it rather than on EventFilter("*"), which matches the same
// messages. nats-server v2.15.2 treats a filter equal to the stream's one
// subject as no filter and reads the stream in order; any other filter,
// even one that matches everything, has each delivery search the subjects
// of the current message block for the next match (with a thousand
// sessions a block, that search took a quarter of a projection catch-up's
// CPU: docs/benchmarks.md).
const AllEvents = EventPrefix + ">"

// BlobSubject is the subject of the blob with the given hash.
func BlobSubject(hexHash string) string { return BlobPrefix + hexHash }

// SourceSubject is the subject of a source's revisions.
func SourceSubject(tenant, name string) string { return SourcePrefix + tenant + "." + name }

// WorkSubject is the subject of a work item: strand.work.<tenant>.<kind>,
// followed by more tokens when given (review.<group>).
func WorkSubject(tenant, kind string, more ...string) string {
	s := WorkPrefix + tenant + "." + kind
	for _, m := range more {
		s += "." + m
	}
	return s
}

// DeadSubject is where work items of a kind go when they keep failing.
func DeadSubject(tenant, kind string) string { return DeadPrefix + tenant + "." + kind }

// FeedSubject is the activity feed of a tenant.
func FeedSubject(tenant string) string { return FeedPrefix + tenant }

// CondemnedSubject records that the collector means to delete a blob.
func CondemnedSubject(hexHash string) string { return GCPrefix + "condemned." + hexHash }

// TenantLogSubject is the subject of a tenant's log.
func TenantLogSubject(tenant string) string { return TenantLogPrefix + tenant }

// Headers Strand puts on its messages.
const (
	// HeaderType is an event's type, on event messages.
	HeaderType = "Strand-Type"
	// HeaderVersion is the session's event number, on event messages.
	HeaderVersion = "Strand-Version"
	// HeaderBlobKind says whether a blob message is raw content or a list
	// of chunks; HeaderBlobSize is the content's size.
	HeaderBlobKind = "Strand-Blob"
	HeaderBlobSize = "Strand-Size"
	// HeaderSession names the session of a bus message.
	HeaderSession = "Strand-Session"
	// HeaderKind is a work item's kind.
	HeaderKind = "Strand-Kind"
	// Headers on dead letters: why, after how many deliveries, and where
	// the item came from.
	HeaderDeadReason     = "Strand-Dead-Reason"
	HeaderDeadDeliveries = "Strand-Dead-Deliveries"
	HeaderDeadSubject    = "Strand-Dead-Subject"
	HeaderDeadSeq        = "Strand-Dead-Seq"
	HeaderDeadWorker     = "Strand-Dead-Worker"
)

// Headers of NATS and JetStream that Strand reads or writes and that
// nats.go names nowhere Strand can use.
const (
	// HeaderMsgID is JetStream's deduplication id.
	HeaderMsgID = "Nats-Msg-Id"
	// HeaderSequence and HeaderSubject are set on republished messages.
	HeaderSequence = "Nats-Sequence"
	// HeaderMsgSize is set on a message fetched with headers only.
	HeaderMsgSize = "Nats-Msg-Size"
	// HeaderIncr adds to a counter stream's subject.
	HeaderIncr = "Nats-Incr"
	// Atomic batch publish headers.
	HeaderBatchID       = "Nats-Batch-Id"
	HeaderBatchSequence = "Nats-Batch-Sequence"
	HeaderBatchCommit   = "Nats-Batch-Commit"
)
