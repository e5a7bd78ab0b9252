package streams

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
)

// Result is domain.Result (the contracts own the types that cross them).
type Result = domain.Result

// maxAttempts bounds how often a command is decided again after losing a race
// to another writer before the caller gets a conflict.
const maxAttempts = 8

func eventMsg(ev *domain.Event, body []byte) *nats.Msg {
	m := nats.NewMsg(names.EventSubject(ev.Tenant, ev.Session))
	m.Header.Set(names.HeaderType, string(ev.Type))
	if ev.Actor != "" {
		m.Header.Set(names.HeaderActor, ev.Actor)
	}
	m.Header.Set(names.HeaderVersion, strconv.FormatUint(ev.Version, 10))
	m.Data = body
	return m
}

func msgID(tenant, scope, requestID string) string {
	if requestID == "" {
		return ""
	}
	return tenant + "." + scope + "." + requestID
}

// Change decides a command against a session's head and appends its event.
// build makes the command from the current state; it runs again when another
// writer extended the session first.
func (st *Store) Change(ctx context.Context, tenant, id string, meta domain.Meta, build func(s *domain.Session) (domain.Command, error)) (Result, error) {
	key := sessionKey(tenant, id)
	mu := st.lock(key)
	mu.Lock()
	defer mu.Unlock()

	s, err := st.cachedHead(ctx, tenant, id)
	if err != nil {
		return Result{}, err
	}
	// Another writer may have appended since: fold what the live tail
	// announced, so as not to lose the race to it (follow.go).
	if s, err = st.followed(ctx, tenant, id, s); err != nil {
		return Result{}, err
	}
	// confirmed: s is the leader's head, not a cached one that another
	// instance's append may have overtaken.
	confirmed := false
	if meta.ExpectedPosition > s.Position {
		// The cached head is behind what the caller has seen: catch up.
		if s, err = st.headFromLast(ctx, tenant, id); err != nil {
			return Result{}, err
		}
		confirmed = true
	}
	if meta.RequestID != "" {
		if pos, ok := s.RequestPosition(meta.RequestID); ok {
			return st.retried(ctx, s, pos, meta, build)
		}
		// Not among the session's last request ids: ask the index,
		// before any precondition of the retry is checked against a
		// state that its first attempt already changed.
		pos, ok, err := st.requestSequence(ctx, msgID(tenant, id, meta.RequestID))
		if err != nil {
			return Result{}, err
		}
		if ok {
			return st.retried(ctx, s, pos, meta, build)
		}
	}
	var wait flightWait // for a write in flight (not a lost race)
	for attempt := 0; attempt < maxAttempts; attempt++ {
		if attempt > 0 {
			// A new head: the request may be among its ids now.
			if pos, ok := s.RequestPosition(meta.RequestID); ok {
				return st.retried(ctx, s, pos, meta, build)
			}
		}
		if s.Status == domain.StatusDeleted {
			return Result{}, domain.ErrSessionDeleted
		}
		ev, next, err := st.decide(ctx, s, meta, build)
		if err != nil {
			// A refusal decided on a cached head may be wrong: another
			// instance may have appended what the command needs (the
			// path it names, the approval request it grants). Refuse only
			// on the leader's head.
			if confirmed || domain.ErrorCode(err) == domain.CodeInternal {
				return Result{}, err
			}
			fresh, herr := st.Head(ctx, tenant, id)
			if herr != nil {
				return Result{}, herr
			}
			confirmed = true
			if fresh.Position == s.Position {
				return Result{}, err
			}
			s = fresh
			continue
		}
		body, err := ev.Encode()
		if err != nil {
			return Result{}, domain.Wrap(err, "encode event")
		}
		expected := s.Position
		res, err := st.append(ctx, eventMsg(ev, body), expected, msgID(tenant, id, meta.RequestID))
		if errors.Is(err, errConflict) {
			st.raceLost()
			// Another writer got there first: catch up and decide again.
			// On a replicated stream its write may still be in flight and
			// not yet visible, and a second loss means a busy session:
			// either way, wait a moment first, so that attempts are not all
			// spent within one write's commit.
			inFlight := errors.Is(err, errInFlight)
			switch {
			case inFlight:
				if err := wait.pause(ctx); err != nil {
					return Result{}, err
				}
			case attempt > 0:
				if err := conflictPause(ctx, attempt); err != nil {
					return Result{}, err
				}
			}
			if s, err = st.headFromLast(ctx, tenant, id); err != nil {
				return Result{}, err
			}
			confirmed = true
			if s.LastHash == domain.Sum(body) {
				// This very event was stored after all (its answer was
				// lost in a refused batch): it is the head, byte for byte.
				st.appends.Add(1)
				st.remember(key, s)
				return Result{Session: s, Event: ev, Position: s.Position}, nil
			}
			pos, own, err := st.ownEvent(ctx, tenant, id, expected, s.Position, body)
			if err != nil {
				return Result{}, err
			}
			if own {
				// Stored after all, and others wrote after it: deciding
				// again would store the command twice.
				st.appends.Add(1)
				next.Commit(ev, pos, domain.Sum(body))
				return Result{Session: next, Event: ev, Position: pos}, nil
			}
			if inFlight && wait.givesBack(s.Position != expected) {
				attempt--
			}
			continue
		}
		if err != nil {
			return Result{}, domain.Wrap(err, "append event")
		}
		if res.Duplicate {
			return st.replayed(ctx, tenant, id, res.Sequence)
		}
		next.Commit(ev, res.Sequence, domain.Sum(body))
		st.remember(key, next)
		st.maybeSnapshot(next)
		return Result{Session: next, Event: ev, Position: res.Sequence}, nil
	}
	return Result{}, domain.Errorf(domain.CodeConflict, "session %s is changing too fast; try again", id)
}

// ownEvent looks for an event's own bytes at the session's first event
// after expected, the position its append expected, when the head (at
// head) has moved past it. An attempt whose answer was lost (a publish
// that the store's retry sent again across a leader's death, a refused
// batch) may have stored it there, and other writers may have appended
// after it, so the head alone does not tell. With a request id the
// request index or the head's ids find it too; without one, this is all
// that stops the command from being decided and stored a second time.
func (st *Store) ownEvent(ctx context.Context, tenant, id string, expected, head uint64, body []byte) (uint64, bool, error) {
	if head <= expected {
		return 0, false, nil
	}
	m, err := nextBySubject(ctx, st.nc, names.EventStream, expected+1, names.EventSubject(tenant, id))
	if errors.Is(err, errNoMessage) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, domain.Wrap(err, "read the event after the expected position")
	}
	return m.Sequence, m.Sequence <= head && bytes.Equal(m.Data, body), nil
}

// decide makes the command from s and executes it: the event to append
// and the state after it, or the refusal.
func (st *Store) decide(ctx context.Context, s *domain.Session, meta domain.Meta, build func(s *domain.Session) (domain.Command, error)) (*domain.Event, *domain.Session, error) {
	cmd, err := build(s)
	if err != nil {
		return nil, nil, err
	}
	past := func(p uint64) (*domain.Session, error) { return st.At(ctx, s.Tenant, s.ID, p) }
	return domain.Execute(s, cmd, meta, past)
}

// conflictPause waits before attempt+1 of a command that lost a race:
// 1 ms doubled on each attempt (at most 128 ms), with jitter so that
// writers that collided do not collide again.
func conflictPause(ctx context.Context, attempt int) error {
	d := time.Millisecond << min(attempt, 7)
	d = d/2 + rand.N(d/2+1)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// retried answers a request whose id the session already applied at pos
// with that first answer, provided the request is of the same kind.
func (st *Store) retried(ctx context.Context, s *domain.Session, pos uint64, meta domain.Meta, build func(s *domain.Session) (domain.Command, error)) (Result, error) {
	res, err := st.replayed(ctx, s.Tenant, s.ID, pos)
	if err != nil {
		return res, err
	}
	if cmd, berr := build(s); berr == nil && !domain.Produces(cmd, res.Event.Type) {
		return Result{}, domain.Errorf(domain.CodeConflict, "request_id %q was already used by another kind of request (%s)", meta.RequestID, res.Event.Type)
	}
	return res, nil
}

// replayed answers a retried request with what its first attempt stored.
func (st *Store) replayed(ctx context.Context, tenant, id string, pos uint64) (Result, error) {
	se, err := st.EventAt(ctx, tenant, id, pos)
	if err != nil {
		return Result{}, err
	}
	s, err := st.At(ctx, tenant, id, pos)
	if err != nil {
		return Result{}, err
	}
	return Result{Session: s, Event: se.Event, Position: pos, Replayed: true}, nil
}

// Create appends the first event of a new session.
func (st *Store) Create(ctx context.Context, meta domain.Meta, cmd domain.Command) (Result, error) {
	ev, next, err := domain.Execute(nil, cmd, meta, nil)
	if err != nil {
		return Result{}, err
	}
	if res, ok, err := st.retriedFirst(ctx, ev.Tenant, meta); ok || err != nil {
		return res, err
	}
	return st.appendFirst(ctx, ev, next, meta)
}

// Fork appends the first event of a session that begins at a position of
// another. Nothing of the parent is copied: the new history names the
// parent's position and hash.
func (st *Store) Fork(ctx context.Context, tenant, parent string, at uint64, meta domain.Meta, cmd domain.ForkSession) (Result, error) {
	if res, ok, err := st.retriedFirst(ctx, tenant, meta); ok || err != nil {
		return res, err
	}
	var p *domain.Session
	var err error
	if at == 0 {
		p, err = st.Head(ctx, tenant, parent)
	} else {
		p, err = st.At(ctx, tenant, parent, at)
	}
	if err != nil {
		return Result{}, err
	}
	cmd.Parent = p
	ev, next, err := domain.Execute(nil, cmd, meta, nil)
	if err != nil {
		return Result{}, err
	}
	return st.appendFirst(ctx, ev, next, meta)
}

func (st *Store) appendFirst(ctx context.Context, ev *domain.Event, next *domain.Session, meta domain.Meta) (Result, error) {
	body, err := ev.Encode()
	if err != nil {
		return Result{}, domain.Wrap(err, "encode event")
	}
	res, err := st.append(ctx, eventMsg(ev, body), 0, msgID(ev.Tenant, "new", meta.RequestID))
	if errors.Is(err, errConflict) {
		return st.firstTaken(ctx, ev, body, next, meta)
	}
	if err != nil {
		return Result{}, domain.Wrap(err, "append event")
	}
	if res.Duplicate {
		// A retry: the first attempt created a session, maybe under another id.
		return st.replayedFirst(ctx, res.Sequence)
	}
	next.Commit(ev, res.Sequence, domain.Sum(body))
	st.remember(sessionKey(ev.Tenant, ev.Session), next)
	return Result{Session: next, Event: ev, Position: res.Sequence}, nil
}

// firstTaken answers an append of a session's first event that found the
// session's subject taken: already_exists, unless what is there is this
// request's own. The store retries an append whose answer did not come in
// time (retry.go), and when the server stored the first attempt and died
// before answering, the next attempt finds the subject taken: JetStream's
// duplicate window, which would say so, does not always survive the
// server's restart (TestSoak: a review's session.create answered
// already_exists after a nats-server SIGKILL). As Change does for later
// events: the same event, byte for byte, is this attempt's own; an event
// with the same request id is a retry's first attempt.
func (st *Store) firstTaken(ctx context.Context, ev *domain.Event, body []byte, next *domain.Session, meta domain.Meta) (Result, error) {
	exists := domain.Errorf(domain.CodeAlreadyExists, "session %s already exists", ev.Session)
	m, err := leaderGetRequest(ctx, st.nc, names.EventStream, map[string]any{"seq": 1, "next_by_subj": names.EventSubject(ev.Tenant, ev.Session)})
	if errors.Is(err, errNoMessage) {
		return Result{}, exists
	}
	if err != nil {
		return Result{}, domain.Wrap(err, "read the session's first event")
	}
	switch {
	case bytes.Equal(m.Data, body):
		st.appends.Add(1) // stored by an attempt whose answer was lost
		next.Commit(ev, m.Sequence, domain.Sum(body))
		st.remember(sessionKey(ev.Tenant, ev.Session), next)
		return Result{Session: next, Event: ev, Position: m.Sequence}, nil
	case meta.RequestID != "":
		if first, err := domain.DecodeEvent(m.Data); err == nil && first.RequestID == meta.RequestID {
			return st.replayedFirst(ctx, m.Sequence)
		}
	}
	return Result{}, exists
}

// retriedFirst answers a retried session.create or session.fork whose
// request id the index knows, with the session its first attempt created.
func (st *Store) retriedFirst(ctx context.Context, tenant string, meta domain.Meta) (Result, bool, error) {
	seq, ok, err := st.requestSequence(ctx, msgID(tenant, "new", meta.RequestID))
	if err != nil || !ok {
		return Result{}, false, err
	}
	res, err := st.replayedFirst(ctx, seq)
	return res, err == nil, err
}

// replayedFirst answers with the session whose first event is at seq.
func (st *Store) replayedFirst(ctx context.Context, seq uint64) (Result, error) {
	m, err := leaderGet(ctx, st.nc, names.EventStream, seq, "")
	if err != nil {
		return Result{}, domain.Wrap(err, "read original event")
	}
	se, err := decodeStored(m)
	if err != nil {
		return Result{}, err
	}
	return st.replayed(ctx, se.Event.Tenant, se.Event.Session, seq)
}
