// Package audit rebuilds and verifies session histories from the streams
// alone: the event stream (one subject per session, strand.ev.<tenant>.<id>)
// and the blob stream (strand.blob.<sha256>). It needs a NATS connection and
// the two stream names, nothing of the running service, so it reads a live
// server, a copy, or a backup restored elsewhere the same way.
//
// What it owns:
//   - Verify: every history in scope read once, in stream order, through one
//     ordered consumer; per event the version (1..n, no gaps, no reordering),
//     the hash chain (a fork's first event chains to its parent's event at
//     the fork position), the blobs it names (raw or chunked, every chunk and
//     the whole content hashed), and the Merkle root that replay recomputes
//     with domain.Evolve. Each broken history yields its first bad event.
//   - State and WriteTree: a session at any position, written to a local
//     directory with modes and symlinks, never outside it. A replay checks
//     every event as Verify does except blobs and roots, folding with
//     domain.Fold, and compares the root of the state it hands out: tree
//     hashes are computed when first asked for, so the roots in between
//     are never computed (docs/design/0008-replay-speed.md).
//   - Log and Blame: the history as JSON-ready entries, and the changes of
//     one path.
//
// The stream layout is repeated here rather than imported from package
// streams: an audit trusts the wire format, not the code that wrote it.
//
// Memory. A replay keeps, for every history in scope, its current state
// (persistent trees share what they did not change) and the last
// Reader.PastStates states overall, by (session, position), for restores
// and forks to start from. A restore or fork to a state that was dropped
// rebuilds it by replaying that history again: slower, never wrong. The
// per-history state is the bound: a store with millions of sessions in one
// scan needs memory in proportion (verify tenant by tenant then). Blob
// checks remember one small record per distinct blob.
//
// Limits of a hash chain. An event is protected by the next one naming its
// hash; the last event of a history has no successor, so a change to it
// that still decodes and replays to the same root (its actor or time, say),
// or the removal of trailing events, is caught only by comparing the head
// with a copy kept elsewhere. Verify reports each history's head for that.
package audit
