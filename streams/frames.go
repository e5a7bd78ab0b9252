package streams

import (
	"sort"
	"sync"

	"github.com/strand-dev/strand/domain"
)

// Frames make reads of a session's past cheap once it has been read
// (issue 17, item 6). A state at a position is its newest snapshot at or
// before it plus the replay of up to SnapshotEvery-1 events; every replay
// and every write goes through the states in between anyway, and trees are
// persistent, so keeping every frameEvery-th of them (by version) costs only
// what differs between them. A later read at any position of that stretch
// starts from the frame before it and replays fewer than frameEvery events,
// without loading the snapshot again.
//
// Frames are a cache of states that any replay would rebuild (snapshots are
// one too): a state is only kept once it has been folded from the stored
// history and, for a replay, checked against the root its last event
// records, and the answer for a (session, position) never changes, so a
// frame never goes stale. Restores, forks and merges need nothing of their
// own: their states come out of the same fold, and the states they refer to
// (a restore's target, a fork's parent, a merge's base) are read through At,
// which uses frames too.

// Bounds of the frames kept: for at most frameSessions sessions, at most
// frameMax each. A session's frames are thinned to every other one when
// full, so they keep covering its whole read history, more sparsely.
const (
	frameEvery    = 16
	frameSessions = 64
	frameMax      = 8192
)

// frameSet is one session's frames, in position order.
type frameSet struct {
	mu     sync.Mutex
	states []*domain.Session
}

func newFrames() *stateCache[string, *frameSet] {
	return newStateCache[string, *frameSet](frameSessions)
}

// keepFrame keeps s as a frame of its session when its version is one
// frames are kept at.
func (st *Store) keepFrame(key string, s *domain.Session) {
	if s == nil || s.Version%frameEvery != 0 {
		return
	}
	f, ok := st.frames.Get(key)
	if !ok {
		f = &frameSet{}
		if prev, found := st.frames.PeekOrAdd(key, f); found {
			f = prev
		}
	}
	f.add(s)
}

// frameBefore returns the newest frame of a session at or before position.
func (st *Store) frameBefore(key string, position uint64) *domain.Session {
	f, ok := st.frames.Get(key)
	if !ok {
		return nil
	}
	return f.before(position)
}

func (f *frameSet) add(s *domain.Session) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := sort.Search(len(f.states), func(i int) bool { return f.states[i].Position >= s.Position })
	if i < len(f.states) && f.states[i].Position == s.Position {
		return
	}
	f.states = append(f.states, nil)
	copy(f.states[i+1:], f.states[i:])
	f.states[i] = s
	if len(f.states) > frameMax {
		kept := f.states[:0]
		for j, x := range f.states {
			if j%2 == 0 {
				kept = append(kept, x)
			}
		}
		clear(f.states[len(kept):])
		f.states = kept
	}
}

func (f *frameSet) before(position uint64) *domain.Session {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := sort.Search(len(f.states), func(i int) bool { return f.states[i].Position > position })
	if i == 0 {
		return nil
	}
	return f.states[i-1]
}
