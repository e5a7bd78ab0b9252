// Package mount shows a session as a directory through FUSE (go-fuse's fs
// API) and records every change made there as events. It is a client of the
// service through the Go client, never of the streams.
//
// The view is a tree of entries in memory: the service's manifest as last
// read, with local changes on top. Reads are answered from it; file content
// comes from the machine's content cache (contentcache), fetched on first
// use. A change is applied to the view at once and recorded as an op in the
// journal (journal.go); written files live in staging files until flushed
// (staged.go). Flushes (flush.go) turn the pending ops into fs.batch
// requests, in order, each write expecting the content it replaces, so
// that a change another writer made first is refused (a conflict, kept in
// the journal and reported, never resolved silently). A live tail of the
// session's events (live.go) brings other writers' changes into the view,
// except on paths with local changes.
//
// Invariants:
//   - an op leaves the journal only once the service has stored it (or
//     refused it as a conflict, and then it stays, marked);
//   - a staging file is removed or moved into the cache only once no op
//     names it and no handle holds it;
//   - the mount never holds Mount.mu while it calls the service or the
//     kernel (notifications), so neither can deadlock against a FUSE request.
//
// A program that serves a mount in its own process must not start a child
// whose working directory or executable is on the mount (see
// docs/mounts.md, troubleshooting): the child, between fork and exec, can
// wait on the file system while the parent waits on it.
//
// Lock order: Mount.flushMu, then Mount.mu, then a staged file's mu (and its
// cmu). A FUSE handler takes a staged file's mu and Mount.mu one after the
// other, never both.
package mount
