package audit

import "github.com/strand-dev/strand/domain"

// stateKey names a state: a history's subject and a position in it.
type stateKey struct {
	subject  string
	position uint64
}

// pastRing remembers the most recently replayed states, at most cap of them,
// by (subject, position). It is a ring in replay order: the oldest state
// goes first. Replay adds a state per event, so adding allocates nothing
// once the ring is full. A position is one message of the stream, so it
// alone indexes the ring; the subject is checked on the way out. States are
// immutable, so a nested replay shares the same ring. Not safe for
// concurrent use.
type pastRing struct {
	ring  []stateEntry
	next  int
	index map[uint64]int
}

type stateEntry struct {
	key stateKey
	s   *domain.Session
}

func newPastRing(capacity int) *pastRing {
	capacity = max(capacity, 1)
	return &pastRing{ring: make([]stateEntry, 0, capacity), index: make(map[uint64]int, capacity)}
}

func (st *pastRing) add(k stateKey, s *domain.Session) {
	if _, ok := st.index[k.position]; ok {
		return
	}
	if len(st.ring) < cap(st.ring) {
		st.index[k.position] = len(st.ring)
		st.ring = append(st.ring, stateEntry{k, s})
		return
	}
	old := &st.ring[st.next]
	delete(st.index, old.key.position)
	*old = stateEntry{k, s}
	st.index[k.position] = st.next
	st.next = (st.next + 1) % len(st.ring)
}

func (st *pastRing) get(k stateKey) (*domain.Session, bool) {
	i, ok := st.index[k.position]
	if !ok || st.ring[i].key.subject != k.subject {
		return nil, false
	}
	return st.ring[i].s, true
}
