package streams

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
)

// StoredEvent is domain.StoredEvent (the contracts own the types that cross them).
type StoredEvent = domain.StoredEvent

func decodeStored(m *StoredMsg) (StoredEvent, error) {
	ev, err := domain.DecodeEvent(m.Data)
	if err != nil {
		return StoredEvent{}, domain.Wrap(fmt.Errorf("event at %d: %w", m.Sequence, err), "decode event")
	}
	return StoredEvent{Position: m.Sequence, Hash: domain.Sum(m.Data), Event: ev, Body: m.Data}, nil
}

// EventAt reads the event at a position and checks that it belongs to the
// session.
func (st *Store) EventAt(ctx context.Context, tenant, id string, position uint64) (StoredEvent, error) {
	m, err := st.eventGet(ctx, map[string]any{"seq": position})
	if errors.Is(err, errNoMessage) {
		return StoredEvent{}, domain.ErrPositionUnknown
	}
	if err != nil {
		return StoredEvent{}, domain.Wrap(err, "read event")
	}
	if m.Subject != names.EventSubject(tenant, id) {
		return StoredEvent{}, domain.ErrPositionUnknown
	}
	return decodeStored(m)
}

// Head returns the session's current state: every acknowledged event is in
// it, whichever instance wrote it. With the session cached it asks the
// stream (eventGet: its leader, or its one copy) for the first event after
// the cached head: a reply without a message (a hundred bytes, whatever
// the size of the last event) confirms the cache. Otherwise (not cached,
// or behind: another instance appended) it reads the last event and
// catches up (headFromLast).
func (st *Store) Head(ctx context.Context, tenant, id string) (*domain.Session, error) {
	if h, ok := st.heads.Get(sessionKey(tenant, id)); ok {
		current, err := st.confirmHead(ctx, tenant, id, h)
		if err != nil {
			return nil, err
		}
		if current {
			return h, nil
		}
	}
	return st.headFromLast(ctx, tenant, id)
}

// confirmHead asks the stream (eventGet) for the first event of the
// session after h, a cached head of it. With none, h is the head (current). With
// one, it folds it into h and remembers the state, so that headFromLast
// catches up from there.
func (st *Store) confirmHead(ctx context.Context, tenant, id string, h *domain.Session) (current bool, err error) {
	m, err := st.eventGet(ctx, nextEventRequest{Seq: h.Position + 1, NextBySubject: names.EventSubject(tenant, id)})
	if errors.Is(err, errNoMessage) {
		return true, nil
	}
	if err != nil {
		return false, domain.Wrap(err, "read session head")
	}
	se, err := decodeStored(m)
	if err != nil {
		return false, err
	}
	s, ok, err := st.catchUpSession(ctx, tenant, id, h, se)
	if err != nil || !ok {
		return false, err
	}
	st.remember(sessionKey(tenant, id), s)
	return false, nil
}

// nextEventRequest asks $JS.API.STREAM.MSG.GET for the first message of a
// subject at or after a sequence.
type nextEventRequest struct {
	Seq           uint64 `json:"seq"`
	NextBySubject string `json:"next_by_subj"`
}

// headFromLast returns the session's current state by reading its last
// event (eventGet, as current as the stream leader): when this instance's
// cached head is a few events behind (another instance appended), it
// catches up from there: the last event read is folded directly, and any
// before it are read one by one, instead of loading the session again. A
// writer that lost an append race knows it is behind and comes here
// directly.
func (st *Store) headFromLast(ctx context.Context, tenant, id string) (*domain.Session, error) {
	m, err := st.eventGet(ctx, map[string]any{"last_by_subj": names.EventSubject(tenant, id)})
	if errors.Is(err, errNoMessage) {
		return nil, domain.ErrSessionNotFound
	}
	if err != nil {
		return nil, domain.Wrap(err, "read session head")
	}
	key := sessionKey(tenant, id)
	if h, ok := st.heads.Get(key); ok && h.Position <= m.Sequence {
		if h.Position == m.Sequence {
			return h, nil
		}
		last, err := decodeStored(m)
		if err != nil {
			return nil, err
		}
		if s, ok, err := st.catchUpSession(ctx, tenant, id, h, last); ok || err != nil {
			if err == nil {
				st.remember(key, s)
			}
			return s, err
		}
	}
	return st.At(ctx, tenant, id, m.Sequence)
}

// catchUpMax bounds the events a catch-up reads one by one (one get
// each); a state further behind is loaded as usual (snapshot, consumer).
const catchUpMax = 8

// catchUpSession folds into base, a state of the session this instance
// holds, the events after it up to last, an event of the same session read
// already: those in between with eventGet (next_by_subj), last as it
// is. ok is false, with nothing read, when base is more than
// catchUpMax events behind. The state returned is checked against the root
// last records, as a load's.
func (st *Store) catchUpSession(ctx context.Context, tenant, id string, base *domain.Session, last StoredEvent) (*domain.Session, bool, error) {
	if last.Event.Version <= base.Version || last.Event.Version-base.Version > catchUpMax {
		return nil, false, nil
	}
	subject := names.EventSubject(tenant, id)
	past := func(p uint64) (*domain.Session, error) { return st.At(ctx, tenant, id, p) }
	s := base
	for s.Position < last.Position {
		se := last
		if s.Version+1 < last.Event.Version {
			m, err := st.eventGet(ctx, map[string]any{"seq": s.Position + 1, "next_by_subj": subject})
			if err != nil {
				return nil, true, domain.Wrap(err, "catch up")
			}
			if se, err = decodeStored(m); err != nil {
				return nil, true, err
			}
			if se.Position >= last.Position {
				return nil, true, domain.Errorf(domain.CodeInternal, "catch up of %s: event %d at %d, after the head's version %d at %d", id, se.Event.Version, se.Position, last.Event.Version, last.Position)
			}
		}
		if !bytes.Equal(se.Event.Prev, s.LastHash.Bytes()) {
			return nil, true, domain.Errorf(domain.CodeInternal, "catch up of %s: the event at %d does not follow the one at %d", id, se.Position, s.Position)
		}
		n, err := domain.Fold(s, se.Event, se.Position, se.Hash, past)
		if err != nil {
			return nil, true, domain.Wrap(err, "catch up")
		}
		s = n
	}
	if want, ok := domain.HashFromBytes(last.Event.Root); !ok || want != s.Tree.Hash() {
		return nil, true, domain.Errorf(domain.CodeInternal, "catch up of %s: the event at %d records root %x, replay gives %s", id, s.Position, last.Event.Root, s.Tree.Hash())
	}
	return s, true, nil
}

// cachedHead returns the session's state as this instance last saw it, or
// loads it. Writers start from it and let the append expectation tell them
// when it is stale.
func (st *Store) cachedHead(ctx context.Context, tenant, id string) (*domain.Session, error) {
	if s, ok := st.heads.Get(sessionKey(tenant, id)); ok {
		return s, nil
	}
	return st.Head(ctx, tenant, id)
}

// At returns the session's state at a position of its own history. The
// answer for a (session, position) never changes.
func (st *Store) At(ctx context.Context, tenant, id string, position uint64) (*domain.Session, error) {
	key := sessionKey(tenant, id)
	if h, ok := st.heads.Get(key); ok && h.Position == position {
		return h, nil
	}
	if s, ok := st.past.Get(pastKey{key, position}); ok {
		return s, nil
	}
	s, err := st.load(ctx, tenant, id, position)
	if err != nil {
		return nil, err
	}
	st.remember(key, s)
	return s, nil
}

func (st *Store) remember(key string, s *domain.Session) {
	st.past.Add(pastKey{key, s.Position}, s)
	st.keepFrame(key, s)
	if h, ok := st.heads.Get(key); !ok || h.Position < s.Position {
		st.heads.Add(key, s)
	}
}

// load rebuilds a state: from the nearest cached state or snapshot at or
// before the position, then the replay of the events after it.
func (st *Store) load(ctx context.Context, tenant, id string, position uint64) (*domain.Session, error) {
	target, err := st.EventAt(ctx, tenant, id, position)
	if err != nil {
		return nil, err
	}
	key := sessionKey(tenant, id)
	var base *domain.Session
	if h, ok := st.heads.Get(key); ok && h.Position < position {
		if s, ok, err := st.catchUpSession(ctx, tenant, id, h, target); ok || err != nil {
			return s, err
		}
		base = h
	}
	if f := st.frameBefore(key, position); f != nil && (base == nil || f.Position > base.Position) {
		base = f
	}
	// A snapshot is worth loading only when it is newer than the state in
	// hand (it costs a read and a decode of the whole tree).
	every := st.cfg.SnapshotEvery
	if base == nil || base.Version < target.Event.Version/every*every {
		if snap := st.loadSnapshot(ctx, tenant, id, target.Event.Version); snap != nil && snap.Position <= position {
			if base == nil || snap.Position > base.Position {
				base = snap
			}
		}
	}
	from, events := uint64(1), 0
	if base != nil {
		from, events = base.Position+1, int(target.Event.Version-base.Version)
	}
	return st.replay(ctx, tenant, id, base, from, position, events)
}

// replay folds the session's events with positions in [from, to] into base
// (nil: from the session's first event). It compares the root of the state
// it returns with the one its event records, not every event's: tree
// hashes are computed when first asked for, so the roots in between are
// never computed (domain.Fold); audit verify checks every one.
//
// events, when known (0: not), is how many events the replay folds: a few
// are read with one batched direct get rather than a consumer.
func (st *Store) replay(ctx context.Context, tenant, id string, base *domain.Session, from, to uint64, events int) (*domain.Session, error) {
	s := base
	if s != nil && s.Position == to {
		return s, nil
	}
	var root []byte // recorded by the last event folded
	seen := map[uint64]*domain.Session{}
	var frames []*domain.Session // kept once the replay checked out
	past := func(p uint64) (*domain.Session, error) {
		if v, ok := seen[p]; ok {
			return v, nil
		}
		return st.At(ctx, tenant, id, p)
	}
	fold := func(se StoredEvent) error {
		ev := se.Event
		prev := s
		if s == nil {
			switch ev.Type {
			case domain.SessionForked:
				o := ev.Created.Origin
				parent, err := st.At(ctx, tenant, o.Parent, o.Position)
				if err != nil {
					return fmt.Errorf("load parent %s at %d: %w", o.Parent, o.Position, err)
				}
				prev = parent
			case domain.SessionCreated:
				if o := ev.Created.Origin; o.Source != "" {
					t, err := st.SourceTree(ctx, tenant, o.Source, o.Revision)
					if err != nil {
						return err
					}
					prev = &domain.Session{Tree: t}
				}
			}
		}
		n, err := domain.Fold(prev, ev, se.Position, se.Hash, past)
		if err != nil {
			return domain.Wrap(err, "replay")
		}
		s, root = n, ev.Root
		seen[se.Position] = n
		frames = append(frames, n)
		return nil
	}
	subject := names.EventSubject(tenant, id)
	if events > 0 && events <= directMax {
		var foldErr error
		last, _ := st.directRange(ctx, subject, from, to, events, func(se StoredEvent) error {
			foldErr = fold(se)
			return foldErr
		})
		if foldErr != nil {
			return nil, foldErr
		}
		// Whatever the direct get did not deliver (an error, a lagging
		// replica), the consumer reads.
		if last != 0 {
			from = last + 1
		}
	}
	if s == nil || s.Position != to {
		if err := st.scan(ctx, subject, from, to, fold); err != nil {
			return nil, err
		}
	}
	if s == nil || s.Position != to {
		return nil, domain.Wrap(fmt.Errorf("replay of %s stopped before %d", id, to), "replay")
	}
	if want, ok := domain.HashFromBytes(root); !ok || want != s.Tree.Hash() {
		return nil, domain.Errorf(domain.CodeInternal, "replay of %s: the event at %d records root %x, replay gives %s", id, s.Position, root, s.Tree.Hash())
	}
	key := sessionKey(tenant, id)
	for _, f := range frames {
		st.keepFrame(key, f)
	}
	return s, nil
}

// scan calls fn for every event on subject with position in [from, to]
// (to == 0: up to the subject's last event), in order, through an ordered
// consumer: ephemeral, flow-controlled, restarted by the client on gaps.
//
// On a replicated stream the server places that consumer on any replica,
// and a follower may not have applied the newest acknowledged events yet.
// to is a position the leader has confirmed, so when the consumer runs out
// before it, scan waits a little and continues from where it stopped with a
// new consumer, for up to replicaCatchUp: a replay never ends short.
func (st *Store) scan(ctx context.Context, subject string, from, to uint64, fn func(StoredEvent) error) error {
	if from == 0 {
		from = 1
	}
	deadline := time.Now().Add(replicaCatchUp)
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		last, done, err := st.scanOnce(ctx, subject, from, to, fn)
		// The first fetch from a consumer just created on another server
		// sometimes finds no responder yet: try again like a short read.
		again := transient(err) && ctx.Err() == nil
		if (err != nil && !again) || done || (to == 0 && !again) {
			return err
		}
		if last != 0 {
			from = last + 1
		}
		if time.Now().After(deadline) {
			if err != nil && again {
				return unavailable("read history", err)
			}
			if err != nil {
				return err
			}
			return domain.Wrap(fmt.Errorf("%s: the replica serving the replay stayed behind position %d for %v", subject, to, replicaCatchUp), "fetch events")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// replicaCatchUp bounds how long scan waits for a lagging replica.
const replicaCatchUp = 10 * time.Second

// scanOnce is one pass of scan with one consumer. It returns the position
// of the last event it passed to fn (0: none) and whether it reached to.
func (st *Store) scanOnce(ctx context.Context, subject string, from, to uint64, fn func(StoredEvent) error) (last uint64, done bool, err error) {
	// Creating the consumer is a request to the meta leader: one sent while
	// none is elected (a quorum lost and regained) may never be answered,
	// so each attempt is bounded and sent again, as other requests are.
	var cons jetstream.Consumer
	err = retry(ctx, "create replay consumer", func(ctx context.Context) error {
		var err error
		cons, err = st.events.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{subject},
			DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
			OptStartSeq:    from,
		})
		return err
	})
	if err != nil {
		return 0, false, domain.Wrap(err, "create replay consumer")
	}
	// Every Fetch of an ordered consumer replaces its server-side consumer
	// with a new one, so delete the one current at the end: the name taken
	// now would be gone already, and the last one would linger for the
	// ordered consumer's inactive threshold (5 minutes) and count against
	// the server's limit of consumers per stream (1,000 by default).
	defer func() {
		if ci := cons.CachedInfo(); ci != nil {
			st.events.DeleteConsumer(context.Background(), ci.Name) //nolint:errcheck // ordered consumers also expire on their own
		}
	}()
	for {
		batch, err := cons.FetchNoWait(1000)
		if err != nil {
			return last, false, domain.Wrap(err, "fetch events")
		}
		n := 0
		var pending uint64 = 1
		for msg := range batch.Messages() {
			n++
			md, err := msg.Metadata()
			if err != nil {
				return last, false, domain.Wrap(err, "event metadata")
			}
			pending = md.NumPending
			seq := md.Sequence.Stream
			if to != 0 && seq > to {
				return last, true, nil
			}
			se, err := decodeStored(&StoredMsg{Subject: msg.Subject(), Sequence: seq, Header: msg.Headers(), Data: msg.Data()})
			if err != nil {
				return last, false, err
			}
			if err := fn(se); err != nil {
				return last, false, err
			}
			last = seq
			if seq == to {
				return last, true, nil
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return last, false, domain.Wrap(err, "fetch events")
		}
		if n == 0 || pending == 0 {
			return last, false, nil
		}
		if ctx.Err() != nil {
			return last, false, ctx.Err()
		}
	}
}

// Events returns up to limit events of a session with positions >= from and
// <= upTo (0: no bound), in order.
func (st *Store) Events(ctx context.Context, tenant, id string, from, upTo uint64, limit int) ([]StoredEvent, error) {
	var out []StoredEvent
	errStop := errors.New("stop")
	err := st.scan(ctx, names.EventSubject(tenant, id), from, upTo, func(se StoredEvent) error {
		out = append(out, se)
		if len(out) >= limit {
			return errStop
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return nil, err
	}
	return out, nil
}

// Peek returns the session's state as this instance last saw it (loading it
// when unknown). It may lag behind other instances' writes: use it only for
// early refusals, never to decide a write.
func (st *Store) Peek(ctx context.Context, tenant, id string) (*domain.Session, error) {
	return st.cachedHead(ctx, tenant, id)
}
