package streams

import "github.com/strand-dev/strand/domain"

// ScanStream lets the external tests read a stream the way the collector
// does.
var ScanStream = scan

// SetBeforeSweep sets the hook that runs between a collection's mark and
// its sweep.
func (c *Collector) SetBeforeSweep(fn func()) { c.beforeSweep = fn }

// Noticed returns the newest position the live tail announced to st for a
// session (0: none kept).
func Noticed(st *Store, tenant, id string) uint64 {
	list, ok := st.follower.notices.Peek(sessionKey(tenant, id))
	if !ok || len(list) == 0 {
		return 0
	}
	return list[len(list)-1].position
}

// LeaderReads makes st read the event stream at the head through the
// stream leader, as it does on a replicated stream.
func LeaderReads(st *Store) { st.directEvents.Store(false) }

// OnChunkRead sets a function told of every chunk PutChunks reads back.
func OnChunkRead(b *Blobs, fn func(domain.Hash)) { b.onChunkRead = fn }
