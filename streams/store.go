package streams

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
)

// Store is the event store: session histories on the event stream, content
// in the blob store, snapshots in their bucket, and in-memory caches of
// recently used states. Any number of Stores (in any number of processes)
// may serve the same streams: the caches are only trusted as far as the
// append expectations confirm them.
type Store struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	events jetstream.Stream
	snaps  jetstream.KeyValue
	// requests is the index of applied request ids (requests.go), kept
	// by indexers.
	requests jetstream.KeyValue
	indexers []*requestIndexer
	cfg      Config
	log      *slog.Logger

	// Blobs is the content-addressed blob store.
	Blobs *Blobs

	// directEvents says a direct get of the event stream sees every
	// acknowledged write (eventGet).
	directEvents atomic.Bool

	heads *stateCache[string, *domain.Session]
	past  *stateCache[pastKey, *domain.Session]
	// frames are states of sessions' pasts kept to start replays from
	// (frames.go).
	frames *stateCache[string, *frameSet]
	locks  [256]sync.Mutex

	commit *committer
	// appends counts the events stored (AppendStats).
	appends atomic.Uint64

	// follower keeps the newest event other writers stored for the cached
	// sessions (follow.go).
	follower *follower

	tenants tenantCache

	// usage provisions the usage counter stream once (usage.go).
	usage usageStream

	snapq    chan *domain.Session
	snapDone chan struct{}
	closeOne sync.Once

	// memStop ends memoryLoop (memory.go), which closes memDone; trims,
	// dropped and expired count what it did.
	memStop, memDone        chan struct{}
	trims, dropped, expired atomic.Uint64
}

type pastKey struct {
	key      string
	position uint64
}

// Open provisions the streams (idempotently) and returns a Store on them.
func Open(ctx context.Context, nc *nats.Conn, cfg Config, log *slog.Logger) (*Store, error) {
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	if err := Provision(ctx, js, cfg); err != nil {
		return nil, err
	}
	events, err := js.Stream(ctx, names.EventStream)
	if err != nil {
		return nil, fmt.Errorf("open stream %s: %w", names.EventStream, err)
	}
	blobs, err := js.Stream(ctx, names.BlobStream)
	if err != nil {
		return nil, fmt.Errorf("open stream %s: %w", names.BlobStream, err)
	}
	snaps, err := js.KeyValue(ctx, names.SnapshotBucket)
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", names.SnapshotBucket, err)
	}
	requests, err := js.KeyValue(ctx, RequestBucket)
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", RequestBucket, err)
	}
	heads := newStateCache[string, *domain.Session](4096)
	past := newStateCache[pastKey, *domain.Session](16384)
	st := &Store{
		nc: nc, js: js, events: events, snaps: snaps, requests: requests, cfg: cfg, log: log,
		Blobs: newBlobs(nc, js, blobs, cfg.ChunkSize),
		heads: heads, past: past, frames: newFrames(), follower: newFollower(),
		snapq:    make(chan *domain.Session, 256),
		snapDone: make(chan struct{}),
		memStop:  make(chan struct{}),
		memDone:  make(chan struct{}),
	}
	st.directEvents.Store(directEventsSafe(ctx, js, events, log))
	if !cfg.NoGroupCommit && (cfg.Replicas > 1 || cfg.ForceGroupCommit || cfg.GroupCommitMin > 0) {
		st.commit = newCommitter(js, cfg.GroupCommitMin)
		// Where a batch of events pays, so does a batch of blobs.
		st.Blobs.batches = true
	}
	// The indexer publishes on a JetStream context of its own, so that its
	// pipelined puts never share a window of pending publishes with the
	// store's callers.
	ijs, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	st.indexers = append(st.indexers, newRequestIndexer(ijs, requests, names.EventStream, eventIndexDurable, cfg.RequestWindow, log))
	// Left by an older version; nothing reads what it would index.
	if err := js.DeleteConsumer(ctx, names.SourceStream, oldSourceIndexDurable); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		log.Debug("delete the old source request index consumer", "err", err)
	}
	go st.snapshotLoop()
	go st.idleLoop()
	go st.memoryLoop(st.memStop, st.memDone)
	return st, nil
}

// Close stops the background snapshot writer after it wrote what it had.
func (st *Store) Close() {
	st.closeOne.Do(func() {
		st.closeFollower()
		close(st.memStop)
		<-st.memDone
		close(st.snapq)
		<-st.snapDone
		if st.commit != nil {
			st.commit.close()
		}
		for _, x := range st.indexers {
			x.close()
		}
	})
}

// JetStream returns the JetStream context the store uses.
func (st *Store) JetStream() jetstream.JetStream { return st.js }

// Config returns the store's configuration.
func (st *Store) Config() Config { return st.cfg }

func sessionKey(tenant, id string) string { return tenant + "." + id }

func (st *Store) lock(key string) *sync.Mutex {
	h := fnv.New32a()
	h.Write([]byte(key))
	return &st.locks[h.Sum32()%uint32(len(st.locks))]
}

// LastSequence returns the stream's last sequence: tests and checks use it
// to show that a refused request appended nothing.
func (st *Store) LastSequence(ctx context.Context) (uint64, error) {
	info, err := st.events.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("stream info: %w", err)
	}
	return info.State.LastSeq, nil
}

// append stores one event message, through group commit unless it is off.
func (st *Store) append(ctx context.Context, m *nats.Msg, expected uint64, msgID string) (res appendResult, err error) {
	if st.commit != nil {
		res, err = st.commit.append(ctx, m, expected, msgID)
	} else {
		res, err = appendMsg(ctx, st.js, m, expected, msgID)
	}
	if err == nil && !res.Duplicate {
		st.appends.Add(1)
	}
	return res, err
}

// AppendStats are what this instance's appends of events did since it
// started (strand serve's /metrics; bench row 1).
type AppendStats struct {
	// Appended counts the events this instance stored, as the server
	// answered: an append answered as a duplicate is not counted again,
	// so one whose first answer was lost (a failover) and whose retry was
	// answered as a duplicate goes uncounted; one found in place after a
	// refused batch or a lost answer is counted.
	Appended uint64
	// Batches counts the atomic batches group commit stored (each one
	// sync for all of its events, with fsync), Batched the events in them
	// (the others went one publish each), Refused the batches refused (a
	// stale expectation, a timeout) whose events were published again one
	// by one. All 0 with group commit off.
	Batches, Batched, Refused uint64
	// RacesLost counts appends refused because another writer extended
	// the session first; RacesFollowed the writes decided on a cached head
	// that the live tail had brought up to date (follow.go).
	RacesLost, RacesFollowed uint64
}

// AppendStats reports this instance's appends.
func (st *Store) AppendStats() AppendStats {
	s := AppendStats{Appended: st.appends.Load()}
	if c := st.commit; c != nil {
		s.Batches, s.Batched, s.Refused = c.batches.Load(), c.batched.Load(), c.refused.Load()
	}
	s.RacesLost, s.RacesFollowed = st.Races()
	return s
}
