// Package workcopy is a session checked out as a directory: the working
// copy that agents and people edit with their own tools, then push back as
// one atomic event (strand checkout, status, diff, push, pull, run).
//
// A working copy is a directory with a metadata folder, .strand/, that
// holds the session and the position the files came from (HEAD), an index
// of every tracked path (kind, size, mode, mtime, content hash) as it was
// at that position, and the conflicts a pull left. The metadata folder is
// never pushed.
//
// Invariants:
//
//   - The index describes the session's tree at HEAD's position, plus for
//     each path the size and mtime the file had on disk when it last
//     matched that tree. Status hashes only files whose size, mtime or mode
//     differ from the index (git's trick), and files modified so close to
//     the index write that their mtime cannot tell (racy entries).
//   - A push is one fs.batch event expecting HEAD's position: all of the
//     local changes or none. Its request id is derived from the session,
//     the position and the changes, so a push interrupted after the
//     service stored it is completed, not repeated, by running it again.
//     HEAD and the index move only after the service answered.
//   - Content goes up before the event that references it (inline in the
//     batch when small, else uploaded in chunks, skipping chunks the
//     tenant already uploaded: fs.has).
//   - A pull never resolves a conflict silently: it writes conflict
//     markers (or keeps the local side of a conflict that markers cannot
//     show) and records the path; push refuses while a recorded conflict
//     is unchanged since the pull wrote it.
//   - Content read from the service goes through the machine's
//     contentcache, so the same content is fetched once per machine.
//
// The package is a client of the service through the Go client only.
package workcopy
