// Package projections folds the event stream into read models.
//
// A projection (Spec) is a durable JetStream consumer with an Apply; a
// Runner runs it on this instance. A projection with ApplyBatch (all three
// below) is folded by one instance at a time, the holder of its lease, and
// acknowledged once per batch (batchacks.go, lease.go); the others stand by
// and take over when it stops or dies, applying at once what it held.
// Caught up, it takes what accumulated every 10 ms in one pull, and
// catches up with pulls held open (paced.go). One
// applied event at a time is shared by every instance running it, and a
// runner that leaves leaves its unacknowledged events to the others after
// AckWait. Apply is
// idempotent: the session views record, per view, the number of the
// session's last event folded (events of a session carry consecutive
// numbers) and skip what they already have; an event that arrives before
// its predecessors (another instance holds them, they were handed back, a
// leader change redelivers them late) reads the missing events of its
// session from the stream leader and folds them first (gap.go), so
// redeliveries and any delivery order across instances change nothing and
// no entry waits for a redelivery to move on. Status reads a projection's
// position and lag from its consumer; Rebuild folds it again from sequence
// 1 into a new generation (rebuild.go says how, with instances running).
//
// The projections:
//
//   - sessions (sessions.go): one view per session in SessionsBucket, the
//     commit-id index, and the review queue (each view's pending, non-stale
//     requests), whose requests it also emits as work items (work.go). Every
//     instance keeps an in-memory index of the bucket, fed by a watch, that
//     pages session.list (index.go, list.go).
//   - activity (activity.go): each tenant's recent events on a feed stream.
//   - stats (stats.go): each session's figures (session.stats) and what a
//     tenant's usage sums, with per-tenant sums kept in memory by a watch
//     (statstotals.go).
//
// The session views and the stats share their scaffolding (readmodel.go):
// the bucket, the watch that keeps an instance's memory of it, the runner,
// and the order they start and stop in.
//
// Lock order: readModel.mu (of the session views and of the stats),
// Activity.mu and Runner.mu guard only their own fields and are never held
// while calling out; index.mu and tenantTotals.mu are taken alone.
package projections
