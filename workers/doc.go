// Package workers is the worker runtime and the built-in workers.
//
// Work items are messages on the work-queue stream (names.WorkStream),
// strand.work.<tenant>.<kind>[.<more>]. A Worker is a durable pull consumer
// on one kind, shared by every process that runs it: it hands each item to
// a Handler with bounded concurrency, acknowledges it when the handler
// succeeds, delivers it again with a growing delay when it fails, sends it
// to strand.dead.<tenant>.<kind> (with the reason and the number of tries in
// headers) after MaxDeliver tries, and on Stop finishes or hands back what
// it holds. Handlers may see an item twice (a worker that dies after doing
// the work but before the acknowledgement); the built-in ones are
// idempotent.
//
// The built-in workers use nothing an outside worker could not:
//
//   - summary: precomputes the commit summary of the content an approval
//     was requested for (items emitted by the session-views projection)
//     into names.SummaryBucket;
//   - retention: archives idle sessions and deletes long-archived ones
//     through the service API, with a dry run;
//   - gc: collects blobs that nothing retained names; the collector itself
//     lives next to the blob store it reads the layout of
//     (streams/collector.go, which says why it never removes a blob a live
//     event names), and runs on this runtime.
//
// Lock order: Worker has no lock of its own; its slots channel bounds the
// handlers.
package workers
