package workers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
)

// CachedSummary is an entry of SummaryBucket.
type CachedSummary struct {
	Summary  domain.Summary `json:"summary"`
	BaseRoot string         `json:"base_root"`
	Root     string         `json:"root"`
	// Position is the position it was computed at (any position with this
	// root gives the same summary).
	Position   uint64    `json:"position"`
	ComputedAt time.Time `json:"computed_at"`
}

// SummaryKey is the cache key of a session's summary at a root.
func SummaryKey(tenant, session, root string) string { return tenant + "." + session + "." + root }

// Summaries is the summary cache.
type Summaries struct {
	kv jetstream.KeyValue
	// Now is the clock that stamps a summary's ComputedAt (nil: the wall
	// clock).
	Now func() time.Time
}

// SummaryBucketConfig is the bucket of the summary cache; the composition
// root provisions it (streams.EnsureBucket) and hands it to NewSummaries.
func SummaryBucketConfig(replicas int) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      names.SummaryBucket,
		Description: "Strand commit summaries precomputed when an approval is requested (a cache)",
		History:     1,
		TTL:         7 * 24 * time.Hour,
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
	}
}

// NewSummaries returns the cache on its bucket.
func NewSummaries(kv jetstream.KeyValue) *Summaries { return &Summaries{kv: kv} }

func (s *Summaries) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Get returns a cached summary, or nil.
func (s *Summaries) Get(ctx context.Context, tenant, session, root string) (*CachedSummary, error) {
	e, err := s.kv.Get(ctx, SummaryKey(tenant, session, root))
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrInvalidKey) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var c CachedSummary
	if err := json.Unmarshal(e.Value(), &c); err != nil {
		return nil, nil // a cache: an unreadable entry is a miss
	}
	return &c, nil
}

// Summarize computes what a session's tree changed against its base (its
// parent at the fork point, its source revision, or the empty tree): the
// computation commit.summary and commit.create do.
func Summarize(ctx context.Context, st domain.Store, s *domain.Session) (*domain.Summary, domain.Tree, error) {
	var base domain.Tree
	switch o := s.Origin; {
	case o.Parent != "":
		p, err := st.At(ctx, s.Tenant, o.Parent, o.Position)
		if err != nil {
			return nil, base, err
		}
		base = p.Tree
	case o.Source != "":
		t, err := st.SourceTree(ctx, s.Tenant, o.Source, o.Revision)
		if err != nil {
			return nil, base, err
		}
		base = t
	}
	sum, err := domain.Summarize(domain.Diff(base, s.Tree), func(h domain.Hash) ([]byte, error) {
		info, err := st.BlobStore().Stat(ctx, h)
		if err != nil {
			return nil, err
		}
		if info.Size > domain.MaxUnifiedBytes {
			return nil, nil // counted as not text
		}
		return st.BlobStore().Get(ctx, h)
	})
	return sum, base, err
}

// reviewItem is the body of review and summary items
// (projections.ReviewItem; the JSON is the contract).
type reviewItem struct {
	Kind     string `json:"kind"`
	Tenant   string `json:"tenant"`
	Session  string `json:"session"`
	Request  string `json:"request"`
	Root     string `json:"root"`
	Position uint64 `json:"position"`
}

// SummaryHandler precomputes the summary of the content an approval was
// requested for, unless the cache has it. Doing an item twice only
// computes it twice.
func (s *Summaries) SummaryHandler(st domain.Store) Handler {
	return func(ctx context.Context, it *Item) error {
		var ri reviewItem
		if err := json.Unmarshal(it.Data, &ri); err != nil || ri.Session == "" || ri.Position == 0 {
			return Permanent(fmt.Errorf("summary item: bad body"))
		}
		if c, err := s.Get(ctx, ri.Tenant, ri.Session, ri.Root); err != nil {
			return err
		} else if c != nil {
			return nil
		}
		sess, err := st.At(ctx, ri.Tenant, ri.Session, ri.Position)
		if domain.ErrorCode(err) == domain.CodeNotFound {
			return Permanent(err)
		}
		if err != nil {
			return err
		}
		sum, base, err := Summarize(ctx, st, sess)
		if err != nil {
			return err
		}
		root := sess.Tree.Hash().String()
		body, _ := json.Marshal(CachedSummary{Summary: *sum, BaseRoot: base.Hash().String(), Root: root,
			Position: sess.Position, ComputedAt: s.now().UTC()})
		if _, err := s.kv.Put(ctx, SummaryKey(ri.Tenant, ri.Session, root), body); err != nil {
			return err
		}
		return nil
	}
}
