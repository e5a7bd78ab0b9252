package streams

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
)

// usageStream remembers that the counter stream exists.
type usageStream struct {
	mu sync.Mutex
	ok bool
}

// CountSessions counts a tenant's sessions on the event stream: one
// subject per session (deleted sessions included, so the count errs on the
// strict side). A read model answers faster when there is one.
func (st *Store) CountSessions(ctx context.Context, tenant string) (int64, error) {
	var info *jetstream.StreamInfo
	err := retry(ctx, "count sessions", func(ctx context.Context) error {
		var err error
		info, err = st.events.Info(ctx, jetstream.WithSubjectFilter(names.EventFilter(tenant)))
		return err
	})
	if err != nil {
		return 0, err
	}
	return int64(len(info.State.Subjects)), nil
}

// ensureUsage provisions the counter stream once.
func (st *Store) ensureUsage(ctx context.Context) error {
	st.usage.mu.Lock()
	defer st.usage.mu.Unlock()
	if st.usage.ok {
		return nil
	}
	err := EnsureStream(ctx, st.js, jetstream.StreamConfig{
		Name:              names.UsageStream,
		Description:       "Strand: usage counters per tenant: bytes stored (limits), requests by endpoint",
		Subjects:          []string{names.UsagePrefix + ">"},
		Storage:           jetstream.FileStorage,
		Replicas:          max(st.cfg.Replicas, 1),
		MaxMsgsPerSubject: 1,
		AllowMsgCounter:   true,
		// Each instance adds its request counts as one atomic batch.
		AllowAtomicPublish: true,
		AllowDirect:        true,
	})
	if err != nil {
		return fmt.Errorf("provision %s: %w", names.UsageStream, err)
	}
	st.usage.ok = true
	return nil
}

// UsageBytes reads a tenant's content bytes counter (0 before the first).
func (st *Store) UsageBytes(ctx context.Context, tenant string) (int64, error) {
	if err := st.ensureUsage(ctx); err != nil {
		return 0, err
	}
	var m *jetstream.RawStreamMsg
	err := retry(ctx, "read usage", func(ctx context.Context) error {
		stream, err := st.js.Stream(ctx, names.UsageStream)
		if err != nil {
			return err
		}
		m, err = stream.GetLastMsgForSubject(ctx, names.UsageSubject(tenant))
		return err
	})
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n, err := counterValue(m.Data)
	if err != nil {
		return 0, fmt.Errorf("counter %s: %w", m.Subject, err)
	}
	return n, nil
}

// AddUsage adds to a tenant's content bytes counter. Fire and forget: the
// counter costs no round trip on the write path; an increment lost in a
// crash makes the count low, never high.
func (st *Store) AddUsage(ctx context.Context, tenant string, bytes int64) error {
	if err := st.ensureUsage(ctx); err != nil {
		return err
	}
	m := nats.NewMsg(names.UsageSubject(tenant))
	m.Header.Set(names.HeaderIncr, "+"+strconv.FormatInt(bytes, 10))
	return st.nc.PublishMsg(m)
}

// BlobStore returns the content-addressed blob store.
func (st *Store) BlobStore() domain.BlobStore { return st.Blobs }

// ChunkSize is the largest content stored as one message.
func (b *Blobs) ChunkSize() int { return b.chunkSize }

// The contracts Store and Blobs implement.
var (
	_ domain.Store          = (*Store)(nil)
	_ domain.SessionStore   = (*Store)(nil)
	_ domain.SourceStore    = (*Store)(nil)
	_ domain.JobStore       = (*Store)(nil)
	_ domain.ClaimStore     = (*Store)(nil)
	_ domain.TenantStore    = (*Store)(nil)
	_ domain.SecretStore    = (*Store)(nil)
	_ domain.BusStore       = (*Store)(nil)
	_ domain.UsageStore     = (*Store)(nil)
	_ domain.RequestCounter = (*Store)(nil)
	_ domain.BlobStore      = (*Blobs)(nil)
)
