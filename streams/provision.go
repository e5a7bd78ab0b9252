package streams

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Names of the streams and buckets Strand provisions.
const (
	EventStream    = "STRAND_EVENTS"
	BlobStream     = "STRAND_BLOBS"
	SnapshotBucket = "strand_snapshots"
	TenantBucket   = "strand_tenants"

	eventPrefix = "strand.ev."
	blobPrefix  = "strand.blob."
)

// Config sizes what Provision creates.
type Config struct {
	// Replicas of every stream and bucket: 1 for one server, 3 on a cluster.
	Replicas int
	// DuplicateWindow is how long JetStream remembers message ids, so a
	// retried append with the same request id is stored once.
	DuplicateWindow time.Duration
	// SnapshotEvery writes a snapshot every this many events of a session.
	SnapshotEvery uint64
	// ChunkSize is the largest blob stored as one message.
	ChunkSize int
}

func (c Config) withDefaults() Config {
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.DuplicateWindow <= 0 {
		c.DuplicateWindow = 10 * time.Minute
	}
	if c.SnapshotEvery == 0 {
		c.SnapshotEvery = 500
	}
	if c.ChunkSize <= 0 {
		c.ChunkSize = DefaultChunkSize
	}
	return c
}

// EventSubject is the one literal subject of a session's history.
func EventSubject(tenant, session string) string {
	return eventPrefix + tenant + "." + session
}

// EventFilter matches every event subject of a tenant ("*" for all tenants).
func EventFilter(tenant string) string { return eventPrefix + tenant + ".*" }

// BlobSubject is the subject of the blob with the given hash.
func BlobSubject(hexHash string) string { return blobPrefix + hexHash }

func eventStreamConfig(c Config) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        EventStream,
		Description: "Strand session histories: one subject per session",
		Subjects:    []string{eventPrefix + ">"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    c.Replicas,
		Discard:     jetstream.DiscardNew,
		Duplicates:  c.DuplicateWindow,
		DenyDelete:  false,
		DenyPurge:   false,
		AllowDirect: true,
	}
}

func blobStreamConfig(c Config) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              BlobStream,
		Description:       "Strand content-addressed blobs (SHA-256)",
		Subjects:          []string{blobPrefix + ">"},
		Retention:         jetstream.LimitsPolicy,
		Storage:           jetstream.FileStorage,
		Replicas:          c.Replicas,
		MaxMsgsPerSubject: 1,
		Discard:           jetstream.DiscardOld,
		Duplicates:        2 * time.Minute,
		AllowDirect:       true,
	}
}

// Provision creates or updates the streams and buckets. It is safe to run
// from any number of instances at once.
func Provision(ctx context.Context, js jetstream.JetStream, c Config) error {
	c = c.withDefaults()
	for _, sc := range []jetstream.StreamConfig{eventStreamConfig(c), blobStreamConfig(c)} {
		if err := ensureStream(ctx, js, sc); err != nil {
			return err
		}
	}
	_, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      SnapshotBucket,
		Description: "Strand session snapshots (a cache: deleting them changes no answer)",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    c.Replicas,
	})
	if err != nil {
		return fmt.Errorf("provision bucket %s: %w", SnapshotBucket, err)
	}
	_, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      TenantBucket,
		Description: "Strand tenant settings (default approval policy)",
		History:     8,
		Storage:     jetstream.FileStorage,
		Replicas:    c.Replicas,
	})
	if err != nil {
		return fmt.Errorf("provision bucket %s: %w", TenantBucket, err)
	}
	return nil
}

func ensureStream(ctx context.Context, js jetstream.JetStream, sc jetstream.StreamConfig) error {
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		_, err = js.CreateOrUpdateStream(ctx, sc)
		if err == nil {
			return nil
		}
		// A cluster that is still electing its meta leader answers with
		// transient errors; wait a little and try again.
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("provision stream %s: %w", sc.Name, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
	return fmt.Errorf("provision stream %s: %w", sc.Name, err)
}
