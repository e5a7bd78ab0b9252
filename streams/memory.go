package streams

import (
	"runtime/metrics"
	"time"
)

// The session caches (heads, past states, frames) hold states whose trees
// are persistent: a state shares every node but the few its last events
// changed with the states before it, while one loaded from a snapshot
// shares nothing. What a cached state costs therefore depends on which
// other states are cached, so the caches are bounded by what they hold
// together, as the garbage collector measures it: when the live heap that
// the last collection found exceeds Config.StateMemory, each cache drops a
// quarter of its least recently used entries, at most once per collection
// (what they free shows at the next one). A state dropped is loaded again
// when asked for (snapshot and replay): the caches hold nothing else.
//
// Besides, an entry left unused for Config.StateIdle is dropped whatever
// the heap (statecache.go): the budget bounds what the caches may hold,
// the idle time makes them hold what is in use. So an instance's memory
// follows its working set of the last minutes, reaches a steady level as
// soon as its load is steady (not when the caches have filled the
// budget), and falls back when the load ends.

// DefaultStateMemory is Config.StateMemory when zero. The budget counts
// the whole process's live heap (with the embedded nats-server's, 65-70
// MiB in strand bench's process); 2,001 reads at random past positions of
// a 100,000-event session (row 13) hold about 210 MiB of past states and
// frames. At 256 MiB, the default until 2026-12-05, that working set did
// not fit: the caches were trimmed 8-14 times during the row and its
// second pass read in 0.8-6.3 ms (p50) instead of 0.6.
const DefaultStateMemory = 512 << 20

// DefaultStateIdle is Config.StateIdle when zero: a state unused this long
// is dropped. Loading it again costs a snapshot read and a replay of at
// most SnapshotEvery-1 events (milliseconds), once per pause this long.
const DefaultStateIdle = 2 * time.Minute

// minHeads is how many heads the cache keeps however far over the budget
// the heap is: the sessions being written to start from theirs, and the
// least recently used dropped first are not those. Past states and frames
// may all go.
const minHeads = 16

// memoryEvery is how often the store reads the heap's figures.
const memoryEvery = time.Second

// heapFigures returns the live heap the last garbage collection found and
// how many collections have run.
func heapFigures() (live, cycles uint64) {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	for i := range s {
		if s[i].Value.Kind() != metrics.KindUint64 {
			return 0, 0
		}
	}
	return s[0].Value.Uint64(), s[1].Value.Uint64()
}

// memoryLoop trims the caches while the live heap exceeds the budget,
// until stop is closed.
func (st *Store) memoryLoop(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(memoryEvery)
	defer t.Stop()
	var trimmed uint64 // the collection whose figure the last trim acted on
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if st.cfg.StateIdle > 0 {
			if n := st.expireIdle(time.Now().Add(-st.cfg.StateIdle)); n > 0 {
				st.expired.Add(uint64(n))
			}
		}
		live, cycles := heapFigures()
		if cycles == trimmed || live <= st.cfg.StateMemory {
			continue
		}
		trimmed = cycles
		n := st.trimCaches()
		st.log.Debug("state caches trimmed", "live_heap", live, "budget", st.cfg.StateMemory, "dropped", n)
	}
}

// expireIdle drops the cached states last used before a time, and
// returns how many it dropped.
func (st *Store) expireIdle(before time.Time) int {
	t := before.UnixNano()
	return st.heads.expire(t) + st.past.expire(t) + st.frames.expire(t)
}

// trimCaches drops a quarter of each cache's least recently used entries
// (keeping the minimums) and returns how many it dropped.
func (st *Store) trimCaches() int {
	n := trimLRU(st.heads.Len(), minHeads, st.heads.RemoveOldest)
	n += trimLRU(st.past.Len(), 0, st.past.RemoveOldest)
	n += trimLRU(st.frames.Len(), 0, st.frames.RemoveOldest)
	st.trims.Add(1)
	st.dropped.Add(uint64(n))
	return n
}

func trimLRU(size, keep int, removeOldest func() bool) int {
	n := 0
	for drop := min(size-keep, (size+3)/4); n < drop && removeOldest(); n++ {
	}
	return n
}

// CacheStats are figures of the session caches.
type CacheStats struct {
	// Heads, Past and Frames are how many entries each cache holds (Frames:
	// sessions with frames).
	Heads, Past, Frames int
	// Trims is how many times the caches were trimmed because the live heap
	// exceeded Config.StateMemory, and Dropped how many entries that cost.
	Trims, Dropped uint64
	// Expired is how many entries were dropped for being unused for
	// Config.StateIdle.
	Expired uint64
	// LiveHeap is the live heap the last garbage collection found: what
	// the caches are trimmed against.
	LiveHeap uint64
}

// CacheStats returns the session caches' figures.
func (st *Store) CacheStats() CacheStats {
	live, _ := heapFigures()
	return CacheStats{Heads: st.heads.Len(), Past: st.past.Len(), Frames: st.frames.Len(),
		Trims: st.trims.Load(), Dropped: st.dropped.Load(), Expired: st.expired.Load(), LiveHeap: live}
}
