package streams

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
)

func sourceStreamConfig(c Config) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        names.SourceStream,
		Description: "Strand sources: one subject per source, its revisions as events",
		Subjects:    []string{names.SourcePrefix + ">"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    c.Replicas,
		Discard:     jetstream.DiscardNew,
		Duplicates:  c.DuplicateWindow,
		AllowDirect: true,
	}
}

// Caches shared by every store. A tree is named by its root hash, so one
// cache serves all; a revision is immutable once stored, and its key names
// the store so that two servers in one process never mix.
var (
	treeCache, _ = lru.New[domain.Hash, domain.Tree](64)
	revCache, _  = lru.New[revKey, domain.Revision](4096)
)

type revKey struct {
	st           *Store
	tenant, name string
	n            uint64
}

// SourceResult is domain.SourceResult (the contracts own the types that cross them).
type SourceResult = domain.SourceResult

// Source returns a source's state, read through the stream leader.
func (st *Store) Source(ctx context.Context, tenant, name string) (*domain.Source, error) {
	if err := domain.ValidSourceName(name); err != nil {
		return nil, err
	}
	h, err := st.readSource(ctx, tenant, name, nil)
	if err != nil {
		return nil, err
	}
	if h.head == nil {
		return nil, domain.Errorf(domain.CodeNotFound, "source %q not found", name)
	}
	return h.head, nil
}

// sourceHistory is what reading a source's events found.
type sourceHistory struct {
	head *domain.Source // after the last event; nil when there is none
	// match is the source right after the first event that the reader's
	// match accepted (nil when none did), event that event, data its
	// stored bytes.
	match *domain.Source
	event *domain.SourceEvent
	data  []byte
}

// readSource folds a source's events, read through the stream leader, and
// finds the first one that match (if not nil) accepts.
func (st *Store) readSource(ctx context.Context, tenant, name string, match func(m *StoredMsg, e *domain.SourceEvent) bool) (sourceHistory, error) {
	subj := names.SourceSubject(tenant, name)
	var h sourceHistory
	for seq := uint64(1); ; {
		m, err := nextBySubject(ctx, st.nc, names.SourceStream, seq, subj)
		if errors.Is(err, errNoMessage) {
			break
		}
		if err != nil {
			return sourceHistory{}, domain.Wrap(err, "read source")
		}
		e := new(domain.SourceEvent)
		if err := domain.DecodeMsgpack(m.Data, e); err != nil {
			return sourceHistory{}, domain.Wrap(fmt.Errorf("source %s at %d: %w", name, m.Sequence, err), "decode source event")
		}
		if h.head, err = domain.ApplySource(h.head, e, m.Sequence); err != nil {
			return sourceHistory{}, err
		}
		if h.match == nil && match != nil && match(m, e) {
			h.match, h.event, h.data = h.head, e, m.Data
		}
		seq = m.Sequence + 1
	}
	if h.head != nil {
		for _, r := range h.head.Revisions {
			revCache.Add(revKey{st, tenant, name, r.Number}, r)
		}
	}
	return h, nil
}

// ListSources returns the tenant's sources in name order.
func (st *Store) ListSources(ctx context.Context, tenant string) ([]*domain.Source, error) {
	_, info, err := st.streamInfo(ctx, names.SourceStream, names.SourcePrefix+tenant+".*", "list sources")
	if err != nil {
		return nil, err
	}
	nameList := make([]string, 0, len(info.State.Subjects))
	for subj := range info.State.Subjects {
		nameList = append(nameList, subj[len(names.SourcePrefix)+len(tenant)+1:])
	}
	slices.Sort(nameList)
	out := make([]*domain.Source, 0, len(nameList))
	for _, n := range nameList {
		s, err := st.Source(ctx, tenant, n)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// SourceRevision returns a revision of a source (0: the latest), from the
// cache when this store has read it before: revisions never change.
func (st *Store) SourceRevision(ctx context.Context, tenant, name string, n uint64) (domain.Revision, error) {
	if n != 0 {
		if r, ok := revCache.Get(revKey{st, tenant, name, n}); ok {
			return r, nil
		}
	}
	s, err := st.Source(ctx, tenant, name)
	if err != nil {
		return domain.Revision{}, err
	}
	return s.Revision(n)
}

// SourceTree returns the tree of a source revision. It works for a deleted
// source too: the sessions started from it replay through here.
func (st *Store) SourceTree(ctx context.Context, tenant, source string, rev uint64) (domain.Tree, error) {
	r, err := st.SourceRevision(ctx, tenant, source, rev)
	if err != nil {
		return domain.Tree{}, err
	}
	return st.RevisionTree(ctx, r)
}

// RevisionTree returns the tree a revision names.
func (st *Store) RevisionTree(ctx context.Context, r domain.Revision) (domain.Tree, error) {
	blob, ok1 := domain.HashFromBytes(r.Tree)
	root, ok2 := domain.HashFromBytes(r.Root)
	if !ok1 || !ok2 {
		return domain.Tree{}, domain.Wrap(errors.New("revision with a bad hash"), "read source revision")
	}
	return st.GetTree(ctx, blob, root)
}

// Retries of source requests.
//
// A source's history is short and every change reads all of it, so a
// request id is found there, in the events themselves (their rid), for as
// long as the source's events are kept: no window, no index, and no lag
// between an append and the moment its id is known. A retry is answered
// with the source as the event left it, replayed, whatever came since. An
// append whose answer was lost (a leader election; the store's retry,
// retry.go, sends it again and finds the subject moved on, its own event
// on it) is recognised by its bytes and answered as the first time, so
// that it is never taken for another writer's: no second revision, no
// already_exists for a create that succeeded.

// CreateSource appends the first event of a source.
func (st *Store) CreateSource(ctx context.Context, e domain.SourceEvent) (SourceResult, error) {
	if err := domain.ValidSourceName(e.Source); err != nil {
		return SourceResult{}, err
	}
	e.Type = domain.SourceCreated
	body, err := encodeSourceEvent(&e)
	if err != nil {
		return SourceResult{}, err
	}
	if e.RequestID != "" {
		h, err := st.readSource(ctx, e.Tenant, e.Source, byRequest(e.RequestID))
		if err != nil {
			return SourceResult{}, err
		}
		if h.match != nil {
			return retriedSource(h, e.RequestID, e.Type)
		}
	}
	res, err := st.appendSource(ctx, &e, body, 0)
	if errors.Is(err, errConflict) {
		res, ok, err := st.ownSource(ctx, &e, body, 0)
		if err != nil || ok {
			return res, err
		}
		return SourceResult{}, domain.Errorf(domain.CodeAlreadyExists, "source %q already exists (names of deleted sources are not reused)", e.Source)
	}
	if err != nil {
		return SourceResult{}, err
	}
	return st.appended(ctx, nil, &e, body, res)
}

// ChangeSource decides an event against a source's current state and
// appends it, deciding again when another writer got there first. decide
// returns the event to append (its Tenant, Source, Time and the like
// already set, and requestID as its RequestID): a request id the source
// already applied is answered as the first time, before decide runs.
func (st *Store) ChangeSource(ctx context.Context, tenant, name, requestID string, decide func(s *domain.Source) (*domain.SourceEvent, error)) (SourceResult, error) {
	if err := domain.ValidSourceName(name); err != nil {
		return SourceResult{}, err
	}
	h, err := st.readSource(ctx, tenant, name, byRequest(requestID))
	if err != nil {
		return SourceResult{}, err
	}
	if h.head == nil {
		return SourceResult{}, domain.Errorf(domain.CodeNotFound, "source %q not found", name)
	}
	if h.match != nil {
		kind := h.event.Type
		if e, err := decide(h.head); err == nil {
			kind = e.Type
		}
		return retriedSource(h, requestID, kind)
	}
	var wait flightWait // for a write in flight (not a lost race)
	for attempt := 0; attempt < maxAttempts; attempt++ {
		e, err := decide(h.head)
		if err != nil {
			return SourceResult{}, err
		}
		e.Tenant, e.Source = tenant, name
		body, err := encodeSourceEvent(e)
		if err != nil {
			return SourceResult{}, err
		}
		expected := h.head.Sequence
		res, err := st.appendSource(ctx, e, body, expected)
		if errors.Is(err, errConflict) {
			// Another writer got there first, or this very event did, or
			// (in flight) another write is still being stored: wait for it
			// as Change does, without counting a lost race.
			inFlight := errors.Is(err, errInFlight)
			if inFlight {
				if err := wait.pause(ctx); err != nil {
					return SourceResult{}, err
				}
			}
			found, ok, err := st.ownSource(ctx, e, body, expected)
			if err != nil || ok {
				return found, err
			}
			if h, err = st.readSource(ctx, tenant, name, nil); err != nil {
				return SourceResult{}, err
			}
			if inFlight && wait.givesBack(h.head.Sequence != expected) {
				attempt--
			}
			continue
		}
		if err != nil {
			return SourceResult{}, err
		}
		return st.appended(ctx, h.head, e, body, res)
	}
	return SourceResult{}, domain.Errorf(domain.CodeConflict, "source %s is changing too fast; try again", name)
}

// byRequest matches the event that a request id produced (none for no id).
func byRequest(requestID string) func(*StoredMsg, *domain.SourceEvent) bool {
	if requestID == "" {
		return nil
	}
	return func(_ *StoredMsg, e *domain.SourceEvent) bool { return e.RequestID == requestID }
}

// retriedSource answers a request whose id the source's history holds with
// the source as that event left it, provided the request is of the same
// kind.
func retriedSource(h sourceHistory, requestID, kind string) (SourceResult, error) {
	if h.event.Type != kind {
		return SourceResult{}, domain.Errorf(domain.CodeConflict, "request_id %q was already used by another kind of request (%s)", requestID, h.event.Type)
	}
	return SourceResult{Source: h.match, Sequence: h.match.Sequence, Replayed: true}, nil
}

// ownSource looks, after an append of e found the subject moved past
// expected, for e among the events stored since: the same bytes are this
// request's own event, stored by an attempt whose answer was lost (answered
// as the first time); the same request id is a retry's first attempt
// (answered replayed). ok is false when neither is there.
func (st *Store) ownSource(ctx context.Context, e *domain.SourceEvent, body []byte, expected uint64) (SourceResult, bool, error) {
	h, err := st.readSource(ctx, e.Tenant, e.Source, func(m *StoredMsg, x *domain.SourceEvent) bool {
		return m.Sequence > expected && (bytes.Equal(m.Data, body) || e.RequestID != "" && x.RequestID == e.RequestID)
	})
	if err != nil || h.match == nil {
		return SourceResult{}, false, err
	}
	if bytes.Equal(h.data, body) {
		return SourceResult{Source: h.match, Sequence: h.match.Sequence}, true, nil
	}
	res, err := retriedSource(h, e.RequestID, e.Type)
	return res, err == nil, err
}

// appended answers an append that JetStream acknowledged: the source
// before it (nil for a create) with the event applied, or, when JetStream
// took it for a duplicate of a message id it remembers, the source as the
// stored event left it (replayed, unless the stored bytes are this
// request's own: an attempt whose answer was lost).
func (st *Store) appended(ctx context.Context, before *domain.Source, e *domain.SourceEvent, body []byte, res appendResult) (SourceResult, error) {
	if !res.Duplicate {
		s, err := domain.ApplySource(before, e, res.Sequence)
		if err != nil {
			return SourceResult{}, err
		}
		return SourceResult{Source: s, Sequence: res.Sequence}, nil
	}
	h, err := st.readSource(ctx, e.Tenant, e.Source, func(m *StoredMsg, _ *domain.SourceEvent) bool { return m.Sequence == res.Sequence })
	if err != nil {
		return SourceResult{}, err
	}
	if h.match == nil {
		return SourceResult{}, domain.Wrap(fmt.Errorf("source %s: no event at %d", e.Source, res.Sequence), "read original source event")
	}
	return SourceResult{Source: h.match, Sequence: res.Sequence, Replayed: !bytes.Equal(h.data, body)}, nil
}

// sourceMsgID is the message id of a source event with a request id: it
// stops a retry that races its first attempt from being stored twice.
func sourceMsgID(tenant, name, requestID string) string {
	return msgID(tenant, "src."+name, requestID)
}

// encodeSourceEvent is the stored form of a source event. An event is
// encoded once per attempt, so that its bytes tell it apart from every
// other writer's.
func encodeSourceEvent(e *domain.SourceEvent) ([]byte, error) {
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.SetSortMapKeys(true)
	if err := enc.Encode(e); err != nil {
		return nil, domain.Wrap(err, "encode source event")
	}
	return buf.Bytes(), nil
}

// appendSource publishes a source event expecting the subject's last
// sequence; the request id, when given, makes a retry a duplicate.
func (st *Store) appendSource(ctx context.Context, e *domain.SourceEvent, body []byte, expected uint64) (appendResult, error) {
	m := nats.NewMsg(names.SourceSubject(e.Tenant, e.Source))
	m.Header.Set(names.HeaderType, e.Type)
	if e.Actor != "" {
		m.Header.Set(names.HeaderActor, e.Actor)
	}
	m.Data = body
	msgID := ""
	if e.RequestID != "" {
		msgID = sourceMsgID(e.Tenant, e.Source, e.RequestID)
	}
	res, err := publishExpecting(ctx, st.js, names.SourceStream, "append source event", m, expected, msgID)
	if err != nil && !errors.Is(err, errConflict) {
		return res, domain.Wrap(err, "append source event")
	}
	return res, err
}

// nextBySubject reads, through the stream leader, the first message on
// subject at or after seq.
func nextBySubject(ctx context.Context, nc *nats.Conn, stream string, seq uint64, subject string) (*StoredMsg, error) {
	return leaderGetRequest(ctx, nc, stream, map[string]any{"seq": seq, "next_by_subj": subject})
}

// SourceBlobs calls fn for every blob that source revisions keep alive:
// each revision's tree blob and the content of every file in its tree. No
// event names them, so the blob collector must count them as referenced
// (a deleted source's revisions too: sessions started from them replay).
func (st *Store) SourceBlobs(ctx context.Context, fn func(domain.Hash) error) error {
	_, info, err := st.streamInfo(ctx, names.SourceStream, names.SourcePrefix+">", "list sources")
	if err != nil {
		return err
	}
	seen := map[domain.Hash]bool{}
	for subj := range info.State.Subjects {
		tenant, name, ok := strings.Cut(strings.TrimPrefix(subj, names.SourcePrefix), ".")
		if !ok {
			continue
		}
		s, err := st.Source(ctx, tenant, name)
		if err != nil {
			return err
		}
		for _, r := range s.Revisions {
			blob, _ := domain.HashFromBytes(r.Tree)
			if seen[blob] {
				continue
			}
			seen[blob] = true
			if err := fn(blob); err != nil {
				return err
			}
			t, err := st.RevisionTree(ctx, r)
			if err != nil {
				return err
			}
			var ferr error
			t.Walk("", "", func(e domain.Entry) bool {
				if e.Node.Kind == domain.KindFile && !seen[e.Node.Content] {
					seen[e.Node.Content] = true
					ferr = fn(e.Node.Content)
				}
				return ferr == nil
			})
			if ferr != nil {
				return ferr
			}
		}
	}
	return nil
}
