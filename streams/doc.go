// Package streams is Strand's JetStream adapter: it provisions the event
// stream, the blob store and the snapshot bucket; appends events with the
// session's expected last sequence and the request id as message id; loads a
// session as its newest snapshot plus the replay of the rest; and runs the
// embedded nats-server of the single-machine default.
//
// Invariants kept here:
//   - One literal subject per session (strand.ev.<tenant>.<session>); the
//     event type rides in a header, never in the subject.
//   - Content is stored (and acknowledged) before the event that names it,
//     or travels inside it (small content, design record 0009).
//   - An append never extends a position another writer extended: the
//     expected last subject sequence rides on every publish, and a conflict
//     is recognised by JetStream's error codes 10071 and 10164.
//   - Snapshots are a cache: every answer can be rebuilt without them.
//   - A request id that was applied is answered as the first time for the
//     request window, before any precondition is checked: the session's
//     last 256 ids, then the request index (requests.go, a read model of
//     the event stream), then JetStream's duplicate window. A source's
//     request ids are in its own history, read whole by every source
//     request (sources.go): recognised for as long as it is kept.
//   - Every JetStream request made for a caller goes through retry
//     (retry.go): a leader election is waited out inside the caller's
//     deadline and ends as unavailable, never internal; a write refused
//     for want of space is unavailable at once and stored nothing.
//
// Lock order: Store.mu (the per-session lock table) before a session lock;
// the caches have their own internal locks and take no other.
package streams
