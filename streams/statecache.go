package streams

import (
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// stateCache is the LRU cache the session caches (heads, past states,
// frames) are made of, with one thing more: it knows when each entry was
// last used, so that entries left unused for Config.StateIdle are dropped
// (expire, called by memoryLoop). Without that, a cache keeps what one
// burst of reads brought in until the live heap reaches the budget, so an
// instance's memory climbs to the budget and stays there whatever it is
// doing now; with it, what the caches hold follows the working set of the
// last few minutes, and falls back when the instance goes quiet.
//
// Get and Add mark an entry used; Peek does not (nor does it change the
// order), so that looking does not keep an entry alive.
type stateCache[K comparable, V any] struct {
	lru *lru.Cache[K, *cachedState[V]]
}

type cachedState[V any] struct {
	v    V
	used atomic.Int64 // unix nanoseconds of the last Get or Add
}

func newStateCache[K comparable, V any](size int) *stateCache[K, V] {
	c, _ := lru.New[K, *cachedState[V]](size) // only a size <= 0 fails
	return &stateCache[K, V]{lru: c}
}

func newCached[V any](v V) *cachedState[V] {
	e := &cachedState[V]{v: v}
	e.used.Store(time.Now().UnixNano())
	return e
}

// Get returns the entry of k and marks it used (most recently, too).
func (c *stateCache[K, V]) Get(k K) (V, bool) {
	e, ok := c.lru.Get(k)
	if !ok {
		var zero V
		return zero, false
	}
	e.used.Store(time.Now().UnixNano())
	return e.v, true
}

// Peek returns the entry of k without marking it used.
func (c *stateCache[K, V]) Peek(k K) (V, bool) {
	e, ok := c.lru.Peek(k)
	if !ok {
		var zero V
		return zero, false
	}
	return e.v, true
}

// Add sets the entry of k.
func (c *stateCache[K, V]) Add(k K, v V) { c.lru.Add(k, newCached(v)) }

// PeekOrAdd returns the entry of k when there is one (found), else adds v.
func (c *stateCache[K, V]) PeekOrAdd(k K, v V) (prev V, found bool) {
	e, found, _ := c.lru.PeekOrAdd(k, newCached(v))
	if found {
		return e.v, true
	}
	return prev, false
}

// RemoveOldest drops the least recently used entry.
func (c *stateCache[K, V]) RemoveOldest() bool {
	_, _, ok := c.lru.RemoveOldest()
	return ok
}

// Len is how many entries the cache holds.
func (c *stateCache[K, V]) Len() int { return c.lru.Len() }

// expire drops the entries last used before the time before (unix
// nanoseconds) and returns how many it dropped. Entries are in the order
// of their use, so it looks at the oldest only: an entry used while it
// looks stays.
func (c *stateCache[K, V]) expire(before int64) int {
	n := 0
	for {
		k, e, ok := c.lru.GetOldest()
		if !ok || e.used.Load() >= before {
			return n
		}
		// Remove only what was looked at: another goroutine may have used
		// it (and moved it to the front) since.
		if cur, ok := c.lru.Peek(k); !ok || cur != e || e.used.Load() >= before {
			return n
		}
		c.lru.Remove(k)
		n++
	}
}
