// Package contentcache is the machine-wide content cache that every client
// of one machine shares: working copies (strand checkout, pull, run) and
// mounts read file content through it so that content already fetched once
// is never fetched again, whatever the session or tenant it came from.
//
// Entries are keyed by the SHA-256 of their content (lowercase hex, as
// domain.Hash.String writes it) and stored one file per entry under
// DIR/ab/abcdef... . Content is checked against its key both when it is put
// and when it is read, so a cache damaged on disk answers a miss, never
// wrong bytes. Writes go to a temporary file that is renamed into place, so
// concurrent processes putting the same entry never see half of one.
//
// PutPack adds many small entries as one pack file, DIR/packs/<id>.pack
// (pack.go): a mount's prefetch stores a batch of fetched contents with
// one file created instead of one per content, which was the largest cost
// of a cold read of many small files. Get, Has, Open and Verify look in
// the packs when an entry has no file of its own; each process keeps the
// packs' indexes in memory and reads the folder again when it changes.
//
// Link adds an entry by hard-linking a file that holds the content (a file
// just written into a working copy), which costs one system call instead of
// a second write; a linked file that is later changed in place fails the
// check on read and is dropped.
//
// The cache is bounded: once the bytes it holds pass MaxBytes, Put evicts
// the entries written longest ago (a pack whole) until it holds at most
// three quarters of the bound. Eviction is by write time (a read does not
// refresh an entry: that would cost a metadata write per read), which is
// good enough for a cache whose misses cost one bulk fetch.
//
// The cache holds only content; which hash a path has is the business of
// its callers (a working copy's index, a mount's manifest).
package contentcache
