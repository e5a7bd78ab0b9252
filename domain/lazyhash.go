package domain

import "sync/atomic"

// lazyHash is a tree node's hash, computed once when first asked for.
// Computing it at once would cost a SHA-256 for every node that a change
// copies, also where only the last of many roots matters (a replay checks
// only the root of the state it rebuilds). Nodes are shared between
// goroutines (a session's tree is read by concurrent requests), so the
// hand-over is atomic: the first goroutine to finish publishes the hash,
// and one that finds it being published computes it itself rather than
// wait. The hash is a pure function of the node, so every computation gives
// the same value.
type lazyHash struct {
	state atomic.Uint32 // hashUnknown, hashWriting or hashKnown
	h     Hash
}

const (
	hashUnknown uint32 = iota
	hashWriting
	hashKnown
)

// known returns the hash when it was published.
func (l *lazyHash) known() (Hash, bool) {
	if l.state.Load() == hashKnown {
		return l.h, true
	}
	return Hash{}, false
}

// publish offers a computed hash and returns it.
func (l *lazyHash) publish(h Hash) Hash {
	if l.state.CompareAndSwap(hashUnknown, hashWriting) {
		l.h = h
		l.state.Store(hashKnown)
	}
	return h
}

// forget drops a published hash, for a node that an edit changes in place
// while no other goroutine can see it (treeedit.go).
func (l *lazyHash) forget() { l.state.Store(hashUnknown) }
