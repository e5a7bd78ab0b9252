package streams

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
)

// A store follows what other writers append to the sessions it caches, so
// that its next write to one of them is decided on the current head instead
// of losing the append race and catching up afterwards (issue 16, item 6).
//
// The event stream republishes every event it stores on
// strand.watch.<tenant>.<session>, with its stream sequence in the
// Nats-Sequence header (provision.go), before it acknowledges the append.
// The store subscribes to that live tail and keeps, for each session whose
// head it caches, the last few events the tail announced (notices). Change
// folds them into the cached head before deciding, under the session's
// lock: no request to the stream, a decode and a fold each.
//
// The notices arrive on a synchronous subscription that Change empties
// before it looks, and a goroutine of the store every 10 ms in between
// (drainNotices): on one
// server the notice of another instance's append reaches this connection
// before that append's acknowledgement reaches the other instance, so
// before any request that follows from it; read in the order they came,
// they are all kept by the time Change decides, instead of waiting on a
// goroutine the scheduler may not have run yet (a lost race each time it
// had not: 4-5% of the writes of bench row 10 under load).
//
// A store alone on its sessions has nothing to follow, so it subscribes
// only once one of its appends lost a race to another writer, and stops
// after Config.FollowIdle without a lost race or a notice folded: one
// instance pays nothing for this, two or more pay one delivery of every
// event to each instance while they share sessions.
//
// A notice is trusted only as far as a fold of the cached head checks it: it
// must name the head's hash as its previous event, and the state folded must
// have the root the last event folded records. The append expectation still
// refuses a write decided on anything but the subject's last event, so a
// notice that is missing, late or dropped only costs the lost race it was
// meant to avoid. Publishing on strand.watch.> is the server's alone
// (deploy/auth/strand.conf gives clients subscribe permission only).

// Bounds of what the notices hold: the events of at most followSessions
// sessions, at most catchUpMax events each, none larger than followBodyMax
// (a larger event is kept by its position only and read through the stream
// leader when needed): 64 MiB at the very most, a few MiB for small writes.
const (
	followSessions = 1024
	followBodyMax  = 8 << 10
)

// notice is an event of a session the live tail announced.
type notice struct {
	position uint64
	body     []byte // nil: too large to keep; read it when needed
}

type follower struct {
	// notices holds, per session, its newest notices in position order.
	// onNotice replaces a session's slice under drainMu, never changes it
	// in place.
	notices *lru.Cache[string, []notice]
	drainMu sync.Mutex
	// tail is the live tail's subscription while following (nil
	// otherwise).
	tail atomic.Pointer[nats.Subscription]
	// followed counts the writes decided on a head brought up to date by
	// notices; lost counts the appends refused because another writer
	// extended the session first (write.go).
	followed, lost atomic.Uint64
	// busy is set by a lost race or a notice folded; the idle loop clears
	// it, and stops following when it finds it clear.
	busy atomic.Bool
	on   atomic.Bool

	mu     sync.Mutex // guards sub and closed
	sub    *nats.Subscription
	closed bool
	stop   chan struct{}
	done   chan struct{}
}

// Races returns how many appends of this store lost the race to another
// writer, and how many writes were decided on a cached head that notices of
// the live tail had brought up to date (bench row 10 reports both).
func (st *Store) Races() (lost, followed uint64) {
	return st.follower.lost.Load(), st.follower.followed.Load()
}

// Following reports whether the store follows the live tail now.
func (st *Store) Following() bool { return st.follower.on.Load() }

func newFollower() *follower {
	notices, _ := lru.New[string, []notice](followSessions)
	return &follower{notices: notices, stop: make(chan struct{}), done: make(chan struct{})}
}

// raceLost records an append refused because another writer extended the
// session first, and starts following the live tail if the store does not.
func (st *Store) raceLost() {
	f := st.follower
	f.lost.Add(1)
	f.busy.Store(true)
	if f.on.Load() {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sub != nil || f.closed {
		return
	}
	sub, err := st.nc.SubscribeSync(names.WatchPrefix + ">")
	if err == nil {
		// A burst of notices is cheap to drop (a dropped one costs a lost
		// race), never worth holding much memory for.
		err = sub.SetPendingLimits(1<<16, 64<<20)
	}
	if err != nil {
		st.log.Warn("cannot follow the live tail; lost races will catch up instead", "err", err)
		if sub != nil {
			_ = sub.Unsubscribe()
		}
		return
	}
	f.sub = sub
	f.tail.Store(sub)
	f.on.Store(true)
	go st.noticeLoop(sub)
}

// noticeLoop keeps the notices of the live tail every noticeEvery
// between the writes that keep them themselves, until the store stops
// following with this subscription.
func (st *Store) noticeLoop(sub *nats.Subscription) {
	t := time.NewTicker(noticeEvery)
	defer t.Stop()
	for st.follower.tail.Load() == sub {
		select {
		case <-t.C:
			st.drainNotices()
		case <-st.follower.stop:
			return
		}
	}
}

// noticeEvery is how often a following store keeps the notices received
// when no write does it.
const noticeEvery = 10 * time.Millisecond

// drainNotices keeps every notice received. Only it takes notices from the
// subscription, under drainMu: when it returns, every notice received
// before it was called is kept (a goroutine that had taken one and not yet
// kept it would let a write decide without it).
func (st *Store) drainNotices() {
	f := st.follower
	sub := f.tail.Load()
	if sub == nil {
		return
	}
	f.drainMu.Lock()
	defer f.drainMu.Unlock()
	// As many as are waiting, each taken without blocking: NextMsg on an
	// empty subscription waits on a timer, even for no time.
	waiting, _, err := sub.Pending()
	for ; err == nil && waiting > 0; waiting-- {
		var m *nats.Msg
		m, err = sub.NextMsg(0)
		if errors.Is(err, nats.ErrSlowConsumer) {
			m, err = sub.NextMsg(0) // reported once; the messages are still there
		}
		if err == nil {
			st.onNotice(m)
		}
	}
}

// idleLoop stops following once a whole FollowIdle passed without a sign of
// another writer.
func (st *Store) idleLoop() {
	f := st.follower
	defer close(f.done)
	t := time.NewTicker(st.cfg.FollowIdle)
	defer t.Stop()
	for {
		select {
		case <-f.stop:
			st.unfollow()
			return
		case <-t.C:
			if !f.busy.Swap(false) {
				st.unfollow()
			}
		}
	}
}

// unfollow stops following and forgets the notices.
func (st *Store) unfollow() {
	f := st.follower
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tail.Store(nil)
	if f.sub != nil {
		_ = f.sub.Unsubscribe()
		f.sub = nil
	}
	f.on.Store(false)
	f.drainMu.Lock()
	f.notices.Purge()
	f.drainMu.Unlock()
}

func (st *Store) closeFollower() {
	f := st.follower
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	close(f.stop)
	<-f.done
}

// onNotice keeps an announced event of a session whose head this store
// caches. It runs for every event anyone stores, so for the others it does
// no more than a map lookup. drainNotices calls it, under drainMu.
func (st *Store) onNotice(m *nats.Msg) {
	key := strings.TrimPrefix(m.Subject, names.WatchPrefix)
	h, ok := st.heads.Peek(key)
	if !ok {
		return
	}
	seq, err := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
	if err != nil || seq <= h.Position {
		return // this store wrote it, or has caught up already
	}
	n := notice{position: seq}
	if len(m.Data) <= followBodyMax {
		n.body = m.Data
	}
	f := st.follower
	old, _ := f.notices.Peek(key)
	list := make([]notice, 0, min(len(old)+1, catchUpMax))
	for _, o := range old {
		if o.position > h.Position && o.position != seq {
			list = append(list, o)
		}
	}
	// Notices of one session may arrive out of order when several writers
	// take turns: keep them in position order, the newest catchUpMax.
	i := len(list)
	for i > 0 && list[i-1].position > seq {
		i--
	}
	list = append(list, notice{})
	copy(list[i+1:], list[i:])
	list[i] = n
	if len(list) > catchUpMax {
		list = list[len(list)-catchUpMax:]
	}
	f.notices.Add(key, list)
}

// followed returns the cached head s brought up to date with the notices of
// the live tail, or s when none is newer. Notices that do not follow on
// from s (one was dropped or is still on its way) are completed by reading
// the missing events through the stream leader; any doubt falls back to
// Head, which asks the leader for the head itself.
func (st *Store) followed(ctx context.Context, tenant, id string, s *domain.Session) (*domain.Session, error) {
	key := sessionKey(tenant, id)
	st.drainNotices()
	list, ok := st.follower.notices.Get(key)

	if !ok || list[len(list)-1].position <= s.Position {
		return s, nil
	}
	next, err := st.foldNotices(ctx, tenant, id, s, list)
	if err != nil {
		st.log.Debug("notices of the live tail not enough; reading the head", "session", id, "err", err)
		return st.Head(ctx, tenant, id)
	}
	st.remember(key, next)
	st.follower.followed.Add(1)
	st.follower.busy.Store(true)
	return next, nil
}

// foldNotices folds into s the noticed events after it that follow on from
// it, then catches up from there to the newest notice.
func (st *Store) foldNotices(ctx context.Context, tenant, id string, s *domain.Session, list []notice) (*domain.Session, error) {
	subject := names.EventSubject(tenant, id)
	past := func(p uint64) (*domain.Session, error) { return st.At(ctx, tenant, id, p) }
	var last StoredEvent
	for _, n := range list {
		if n.position <= s.Position {
			continue
		}
		if n.body == nil {
			return nil, fmt.Errorf("event at %d not kept", n.position)
		}
		se, err := decodeStored(&StoredMsg{Subject: subject, Sequence: n.position, Data: n.body})
		if err != nil {
			return nil, err
		}
		if se.Event.Tenant != tenant || se.Event.Session != id {
			return nil, fmt.Errorf("event at %d is of %s.%s", n.position, se.Event.Tenant, se.Event.Session)
		}
		last = se
		if !bytes.Equal(se.Event.Prev, s.LastHash.Bytes()) {
			break // an event in between was not noticed (yet)
		}
		folded, err := domain.Fold(s, se.Event, se.Position, se.Hash, past)
		if err != nil {
			return nil, err
		}
		s = folded
	}
	if s.Position < last.Position {
		caught, ok, err := st.catchUpSession(ctx, tenant, id, s, last)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("head at version %d, noticed event at version %d", s.Version, last.Event.Version)
		}
		return caught, nil
	}
	if want, ok := domain.HashFromBytes(last.Event.Root); !ok || want != s.Tree.Hash() {
		return nil, fmt.Errorf("the event at %d records root %x, its fold gives %s", s.Position, last.Event.Root, s.Tree.Hash())
	}
	return s, nil
}
