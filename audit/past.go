package audit

import (
	"sort"

	"github.com/strand-dev/strand/domain"
)

// stateKey names a state: a history's subject and a position in it.
type stateKey struct {
	subject  string
	position uint64
}

// pastRing remembers the most recently replayed states, at most cap of them,
// by (subject, position). A replay adds one state per event, in stream
// order, so positions arrive increasing: they go into a ring that stays
// sorted, where adding is a store (no map to update, nothing allocated once
// the ring is full) and finding is a binary search. A position is one
// message of the stream, so it alone indexes the ring; the subject is
// checked on the way out. States that arrive out of order (a nested replay
// rebuilding an older state shares the ring) go to a small map instead,
// emptied when full. States are immutable. Not safe for concurrent use.
type pastRing struct {
	ring []stateEntry // sorted by position from next on, wrapping around
	next int
	last uint64 // the highest position in the ring
	side map[stateKey]pastState
}

// pastState is a state and the root its event records.
type pastState struct {
	s    *domain.Session
	root domain.Hash
}

type stateEntry struct {
	key stateKey
	pastState
}

// maxSideStates bounds the states kept out of order.
const maxSideStates = 4096

func newPastRing(capacity int) *pastRing {
	capacity = max(capacity, 1)
	return &pastRing{ring: make([]stateEntry, 0, capacity)}
}

func (st *pastRing) add(k stateKey, s pastState) {
	if k.position <= st.last {
		if _, ok := st.get(k); ok {
			return
		}
		if st.side == nil || len(st.side) >= maxSideStates {
			st.side = map[stateKey]pastState{}
		}
		st.side[k] = s
		return
	}
	st.last = k.position
	if len(st.ring) < cap(st.ring) {
		st.ring = append(st.ring, stateEntry{k, s})
		return
	}
	st.ring[st.next] = stateEntry{k, s}
	st.next = (st.next + 1) % len(st.ring)
}

func (st *pastRing) get(k stateKey) (pastState, bool) {
	n := len(st.ring)
	at := func(j int) *stateEntry { return &st.ring[(st.next+j)%n] }
	if j := sort.Search(n, func(j int) bool { return at(j).key.position >= k.position }); j < n {
		if e := at(j); e.key == k {
			return e.pastState, true
		}
	}
	s, ok := st.side[k]
	return s, ok
}
