package streams

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
)

// Config sizes what Provision creates.
type Config struct {
	// Replicas of every stream and bucket: 1 for one server, 3 on a cluster.
	Replicas int
	// DuplicateWindow is how long JetStream remembers message ids, so a
	// retried append with the same request id is stored once.
	DuplicateWindow time.Duration
	// RequestWindow is how long an applied request id is recognised, so
	// that a retry is answered as the first time (RequestBucket);
	// DefaultRequestWindow when zero.
	RequestWindow time.Duration
	// SnapshotEvery writes a snapshot every this many events of a session.
	SnapshotEvery uint64
	// ChunkSize is the largest blob stored as one message.
	ChunkSize int
	// Group commit (see groupcommit.go) batches appends of different
	// sessions that arrive together. It is on for replicated streams, where
	// one Raft round covers the batch; on a single server, nats-server
	// v2.15.2 stages every atomic batch in a temporary store, which costs
	// more than the fsyncs it saves (measured: docs/operations.md), so it is
	// off there unless ForceGroupCommit. NoGroupCommit turns it off always.
	NoGroupCommit    bool
	ForceGroupCommit bool
	// GroupCommitMin turns group commit on for a single server too, for
	// groups of at least this many appends waiting together; smaller
	// groups are published one message each, at once. A server that
	// fsyncs every write stores one atomic batch with one fsync, at a fixed
	// cost of several fsyncs (the staging store): so with enough writers a
	// batch shares what would be one fsync each (BenchmarkFsyncSharing,
	// docs/benchmarks.md). DefaultGroupCommitMin is what strand serve sets
	// when its embedded server fsyncs every write; 0 leaves it off.
	GroupCommitMin int
	// BusHistory is how many messages each bus topic retains for late
	// subscribers, and BusMaxAge how long.
	BusHistory int
	BusMaxAge  time.Duration
	// FollowIdle is how long a store keeps following the event stream's
	// live tail after the last sign of another writer on its sessions (an
	// append race lost, or a notice folded): follow.go. One minute when
	// zero.
	FollowIdle time.Duration
	// StateMemory is the live heap (bytes) above which the session caches
	// drop their least recently used states (memory.go);
	// DefaultStateMemory when zero.
	StateMemory uint64
	// StateIdle is how long a cached state (a head, a past state, a
	// session's frames) is kept unused before it is dropped (memory.go);
	// DefaultStateIdle when zero, never when negative.
	StateIdle time.Duration
}

// DefaultGroupCommitMin is GroupCommitMin for an embedded server that
// fsyncs every write.
const DefaultGroupCommitMin = 16

func (c Config) withDefaults() Config {
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.DuplicateWindow <= 0 {
		c.DuplicateWindow = 10 * time.Minute
	}
	if c.RequestWindow <= 0 {
		c.RequestWindow = DefaultRequestWindow
	}
	if c.SnapshotEvery == 0 {
		c.SnapshotEvery = 500
	}
	if c.ChunkSize <= 0 {
		c.ChunkSize = domain.DefaultChunkSize
	}
	if c.BusHistory <= 0 {
		c.BusHistory = 100
	}
	if c.BusMaxAge <= 0 {
		c.BusMaxAge = 24 * time.Hour
	}
	if c.FollowIdle <= 0 {
		c.FollowIdle = time.Minute
	}
	if c.StateMemory == 0 {
		c.StateMemory = DefaultStateMemory
	}
	if c.StateIdle == 0 {
		c.StateIdle = DefaultStateIdle
	}
	return c
}

func eventStreamConfig(c Config) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        names.EventStream,
		Description: "Strand session histories: one subject per session",
		Subjects:    []string{names.AllEvents},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    c.Replicas,
		Discard:     jetstream.DiscardNew,
		Duplicates:  c.DuplicateWindow,
		DenyDelete:  false,
		DenyPurge:   false,
		AllowDirect: true,
		// Group commit publishes appends of different sessions as one
		// atomic batch (see groupcommit.go).
		AllowAtomicPublish: true,
		// Every stored event is republished at once on
		// strand.watch.<tenant>.<session>: a live tail any NATS client can
		// subscribe to, published by the server exactly when it stores.
		RePublish: &jetstream.RePublish{Source: names.AllEvents, Destination: names.WatchPrefix + ">"},
	}
}

func blobStreamConfig(c Config) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              names.BlobStream,
		Description:       "Strand content-addressed blobs (SHA-256)",
		Subjects:          []string{names.BlobPrefix + ">"},
		Retention:         jetstream.LimitsPolicy,
		Storage:           jetstream.FileStorage,
		Replicas:          c.Replicas,
		MaxMsgsPerSubject: 1,
		Discard:           jetstream.DiscardOld,
		Duplicates:        2 * time.Minute,
		AllowDirect:       true,
		// Many contents of one change go in one atomic batch
		// (Blobs.PutMany).
		AllowAtomicPublish: true,
	}
}

// Provision creates or updates the streams and buckets. It is safe to run
// from any number of instances at once: every stream goes through
// ensureStream and every bucket through EnsureBucket, never through
// CreateOrUpdateStream or CreateOrUpdateKeyValue directly (see
// provisionAttempt for why).
func Provision(ctx context.Context, js jetstream.JetStream, c Config) error {
	c = c.withDefaults()
	scs := []jetstream.StreamConfig{eventStreamConfig(c), blobStreamConfig(c), busStreamConfig(c), sourceStreamConfig(c), tenantLogStreamConfig(c)}
	for _, sc := range append(scs, backgroundStreamConfigs(c)...) {
		if err := ensureStream(ctx, js, sc); err != nil {
			return err
		}
	}
	if _, err := EnsureBucket(ctx, js, jetstream.KeyValueConfig{
		Bucket:      names.SnapshotBucket,
		Description: "Strand session snapshots (a cache: deleting them changes no answer)",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    c.Replicas,
	}); err != nil {
		return err
	}
	_, err := EnsureBucket(ctx, js, jetstream.KeyValueConfig{
		Bucket:      names.TenantBucket,
		Description: "Strand tenant settings (default approval policy)",
		History:     8,
		Storage:     jetstream.FileStorage,
		Replicas:    c.Replicas,
	})
	if err != nil {
		return err
	}
	if _, err := EnsureBucket(ctx, js, secretBucketConfig(c)); err != nil {
		return err
	}
	if _, err := EnsureBucket(ctx, js, requestBucketConfig(c)); err != nil {
		return err
	}
	if err := provisionClaims(ctx, js, c); err != nil {
		return err
	}
	return ensureJobBucket(ctx, js, c)
}

// provisionAttempt bounds one create or update request. On a cluster,
// nats-server v2.15.2 can leave both requests unanswered when one client
// creates a stream while another updates the same stream (two `strand serve`
// starting together did, through CreateOrUpdateStream): the stream exists,
// but neither caller hears so. The next attempt finds it.
const provisionAttempt = 5 * time.Second

// provision runs one bounded attempt after another until one succeeds, the
// context ends or 20 attempts failed. A cluster still electing its meta
// leader answers with transient errors, and see provisionAttempt.
func provision(ctx context.Context, what string, attempt func(ctx context.Context) error) error {
	var err error
	for i := 0; i < 20; i++ {
		actx, cancel := context.WithTimeout(ctx, provisionAttempt)
		err = attempt(actx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("provision %s: %w (last error: %v)", what, ctx.Err(), err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("provision %s: %w (last error: %v)", what, ctx.Err(), err)
		case <-time.After(250 * time.Millisecond):
		}
	}
	return fmt.Errorf("provision %s: %w", what, err)
}

// EnsureStream creates a stream, or updates it when a setting Strand
// chooses differs, in bounded attempts; safe from several instances at once
// (see provisionAttempt). Use it for any stream created at run time.
func EnsureStream(ctx context.Context, js jetstream.JetStream, sc jetstream.StreamConfig) error {
	return ensureStream(ctx, js, sc)
}

// ensureStream creates a stream, or updates it when what Strand sets differs.
// It reads before it writes, so instances starting together do not update a
// stream that another one is creating.
func ensureStream(ctx context.Context, js jetstream.JetStream, sc jetstream.StreamConfig) error {
	return provision(ctx, "stream "+sc.Name, func(ctx context.Context) error {
		s, err := js.Stream(ctx, sc.Name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			_, err = js.CreateStream(ctx, sc)
			return err
		}
		if err != nil {
			return err
		}
		if streamConfigMatches(s.CachedInfo().Config, sc) {
			return nil
		}
		_, err = js.UpdateStream(ctx, sc)
		return err
	})
}

// streamConfigMatches reports whether a stream has every setting Strand
// chooses (the server fills in the rest).
func streamConfigMatches(have, want jetstream.StreamConfig) bool {
	return have.Description == want.Description &&
		slices.Equal(have.Subjects, want.Subjects) &&
		have.Retention == want.Retention &&
		have.Storage == want.Storage &&
		have.Replicas == want.Replicas &&
		have.Discard == want.Discard &&
		(want.Duplicates == 0 || have.Duplicates == want.Duplicates) &&
		have.MaxAge == want.MaxAge &&
		limit(have.MaxMsgsPerSubject) == limit(want.MaxMsgsPerSubject) &&
		have.AllowDirect == want.AllowDirect &&
		have.DenyDelete == want.DenyDelete &&
		have.DenyPurge == want.DenyPurge &&
		have.AllowMsgCounter == want.AllowMsgCounter &&
		have.AllowAtomicPublish == want.AllowAtomicPublish &&
		have.AllowMsgTTL == want.AllowMsgTTL &&
		samePtr(have.RePublish, want.RePublish)
}

// limit normalises a stream limit: the server stores "none" as -1.
func limit(n int64) int64 {
	if n <= 0 {
		return -1
	}
	return n
}

func samePtr[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// EnsureBucket creates a key-value bucket, or updates it when its replicas,
// history or storage differ from cfg, and returns it. Like Provision, it is
// safe to run from several instances at once.
func EnsureBucket(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	var kv jetstream.KeyValue
	err := provision(ctx, "bucket "+cfg.Bucket, func(ctx context.Context) error {
		var err error
		kv, err = js.KeyValue(ctx, cfg.Bucket)
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			kv, err = js.CreateKeyValue(ctx, cfg)
			return err
		}
		if err != nil {
			return err
		}
		st, err := kv.Status(ctx)
		if err != nil {
			return err
		}
		bs, ok := st.(*jetstream.KeyValueBucketStatus)
		if !ok {
			return nil // not a status we can compare: keep the bucket as it is
		}
		have := bs.StreamInfo().Config
		if have.Replicas == max(cfg.Replicas, 1) && have.MaxMsgsPerSubject == int64(max(cfg.History, 1)) && have.Storage == cfg.Storage && have.MaxAge == cfg.TTL {
			return nil
		}
		kv, err = js.UpdateKeyValue(ctx, cfg)
		return err
	})
	return kv, err
}
