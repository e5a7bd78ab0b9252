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
	subj := names.SourceSubject(tenant, name)
	var s *domain.Source
	for seq := uint64(1); ; {
		m, err := nextBySubject(ctx, st.nc, names.SourceStream, seq, subj)
		if errors.Is(err, errNoMessage) {
			break
		}
		if err != nil {
			return nil, domain.Wrap(err, "read source")
		}
		var e domain.SourceEvent
		if err := domain.DecodeMsgpack(m.Data, &e); err != nil {
			return nil, domain.Wrap(fmt.Errorf("source %s at %d: %w", name, m.Sequence, err), "decode source event")
		}
		if s, err = domain.ApplySource(s, &e, m.Sequence); err != nil {
			return nil, err
		}
		seq = m.Sequence + 1
	}
	if s == nil {
		return nil, domain.Errorf(domain.CodeNotFound, "source %q not found", name)
	}
	for _, r := range s.Revisions {
		revCache.Add(revKey{st, tenant, name, r.Number}, r)
	}
	return s, nil
}

// ListSources returns the tenant's sources in name order.
func (st *Store) ListSources(ctx context.Context, tenant string) ([]*domain.Source, error) {
	stream, err := st.js.Stream(ctx, names.SourceStream)
	if err != nil {
		return nil, domain.Wrap(err, "open source stream")
	}
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(names.SourcePrefix+tenant+".*"))
	if err != nil {
		return nil, domain.Wrap(err, "list sources")
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

// CreateSource appends the first event of a source.
func (st *Store) CreateSource(ctx context.Context, e domain.SourceEvent) (SourceResult, error) {
	if err := domain.ValidSourceName(e.Source); err != nil {
		return SourceResult{}, err
	}
	e.Type = domain.SourceCreated
	if res, ok, err := st.retriedSource(ctx, e.Tenant, e.Source, e.RequestID); ok || err != nil {
		return res, err
	}
	res, err := st.appendSource(ctx, &e, 0)
	if errors.Is(err, errConflict) {
		return SourceResult{}, domain.Errorf(domain.CodeAlreadyExists, "source %q already exists (names of deleted sources are not reused)", e.Source)
	}
	if err != nil {
		return SourceResult{}, err
	}
	return st.sourceResult(ctx, e.Tenant, e.Source, res)
}

// ChangeSource decides an event against a source's current state and
// appends it, deciding again when another writer got there first. decide
// returns the event to append (its Tenant, Source, Time and the like
// already set, and requestID as its RequestID): a request id the source
// already applied is answered as the first time, before decide runs.
func (st *Store) ChangeSource(ctx context.Context, tenant, name, requestID string, decide func(s *domain.Source) (*domain.SourceEvent, error)) (SourceResult, error) {
	if res, ok, err := st.retriedSource(ctx, tenant, name, requestID); ok || err != nil {
		return res, err
	}
	for attempt := 0; attempt < maxAttempts; attempt++ {
		s, err := st.Source(ctx, tenant, name)
		if err != nil {
			return SourceResult{}, err
		}
		e, err := decide(s)
		if err != nil {
			return SourceResult{}, err
		}
		e.Tenant, e.Source = tenant, name
		res, err := st.appendSource(ctx, e, s.Sequence)
		if errors.Is(err, errConflict) {
			continue
		}
		if err != nil {
			return SourceResult{}, err
		}
		return st.sourceResult(ctx, tenant, name, res)
	}
	return SourceResult{}, domain.Errorf(domain.CodeConflict, "source %s is changing too fast; try again", name)
}

func (st *Store) sourceResult(ctx context.Context, tenant, name string, res appendResult) (SourceResult, error) {
	s, err := st.Source(ctx, tenant, name)
	if err != nil {
		return SourceResult{}, err
	}
	return SourceResult{Source: s, Sequence: res.Sequence, Replayed: res.Duplicate}, nil
}

// sourceMsgID is the message id of a source event with a request id.
func sourceMsgID(tenant, name, requestID string) string {
	return msgID(tenant, "src."+name, requestID)
}

// retriedSource answers a source request whose id the index knows.
func (st *Store) retriedSource(ctx context.Context, tenant, name, requestID string) (SourceResult, bool, error) {
	seq, ok, err := st.requestSequence(ctx, sourceMsgID(tenant, name, requestID))
	if err != nil || !ok {
		return SourceResult{}, false, err
	}
	res, err := st.sourceResult(ctx, tenant, name, appendResult{Sequence: seq, Duplicate: true})
	return res, err == nil, err
}

// appendSource publishes a source event expecting the subject's last
// sequence; the request id, when given, makes a retry a duplicate.
func (st *Store) appendSource(ctx context.Context, e *domain.SourceEvent, expected uint64) (appendResult, error) {
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.SetSortMapKeys(true)
	if err := enc.Encode(e); err != nil {
		return appendResult{}, domain.Wrap(err, "encode source event")
	}
	m := nats.NewMsg(names.SourceSubject(e.Tenant, e.Source))
	m.Header.Set(names.HeaderType, e.Type)
	if e.Actor != "" {
		m.Header.Set(names.HeaderActor, e.Actor)
	}
	m.Data = buf.Bytes()
	opts := []jetstream.PublishOpt{jetstream.WithExpectLastSequencePerSubject(expected), jetstream.WithExpectStream(names.SourceStream)}
	if e.RequestID != "" {
		opts = append(opts, jetstream.WithMsgID(sourceMsgID(e.Tenant, e.Source, e.RequestID)))
	}
	var ack *jetstream.PubAck
	err := retry(ctx, "append source event", func(ctx context.Context) error {
		var err error
		ack, err = st.js.PublishMsg(ctx, m, opts...)
		return err
	})
	switch {
	case err == nil:
		return appendResult{Sequence: ack.Sequence, Duplicate: ack.Duplicate}, nil
	case isConflict(err):
		return appendResult{}, errConflict
	}
	return appendResult{}, domain.Wrap(err, "append source event")
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
	stream, err := st.js.Stream(ctx, names.SourceStream)
	if err != nil {
		return domain.Wrap(err, "open source stream")
	}
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(names.SourcePrefix+">"))
	if err != nil {
		return domain.Wrap(err, "list sources")
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
