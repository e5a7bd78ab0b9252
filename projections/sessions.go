package projections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/domain"
)

// SessionsBucket holds the session views.
const SessionsBucket = "strand_session_views"

// SessionsConsumer is the durable consumer of the session-views projection.
const SessionsConsumer = "strand_proj_sessions"

// View is the read model of one session.
type View struct {
	ID        string            `json:"id"`
	Tenant    string            `json:"tenant"`
	Status    string            `json:"status"`
	Origin    domain.Origin     `json:"origin"`
	Owner     string            `json:"owner,omitempty"`
	Tags      map[string]string `json:"tags,omitempty"`
	CreatedAt time.Time         `json:"created_at"`
	UpdatedAt time.Time         `json:"updated_at"`
	Position  uint64            `json:"position"`
	Start     uint64            `json:"start_position"`
	Version   uint64            `json:"version"`
	Root      string            `json:"root"`
	// Pending are the approval requests waiting for a decision on the
	// content they were made for: the review queue.
	Pending []PendingRef `json:"pending,omitempty"`
	// Applied is the last stream sequence folded into this view.
	Applied uint64 `json:"applied"`
}

// PendingRef is one approval request in the review queue.
type PendingRef struct {
	ID        string    `json:"id"`
	Reason    string    `json:"reason"`
	Group     string    `json:"group"`
	Requester string    `json:"requester"`
	Root      string    `json:"root"`
	Required  int       `json:"required"`
	Grants    int       `json:"grants"`
	CreatedAt time.Time `json:"created_at"`
	Position  uint64    `json:"position"`
}

// commitKey indexes a commit id to its session. Tenants cannot start with
// "_", so these keys never mix with views.
func commitKey(tenant, commit string) string { return "_commit." + tenant + "." + commit }

// Sessions is the session-views projection.
type Sessions struct {
	js     jetstream.JetStream
	stream string
	filter string
	kv     jetstream.KeyValue
	log    *slog.Logger
	cc     jetstream.ConsumeContext
}

// OpenSessions provisions the bucket and returns the projection; Start runs
// it.
func OpenSessions(ctx context.Context, js jetstream.JetStream, stream, filter string, replicas int, log *slog.Logger) (*Sessions, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	kv, err := ensureBucket(ctx, js, jetstream.KeyValueConfig{
		Bucket:      SessionsBucket,
		Description: "Strand session views (a projection of the event stream)",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("provision bucket %s: %w", SessionsBucket, err)
	}
	return &Sessions{js: js, stream: stream, filter: filter, kv: kv, log: log}, nil
}

// ensureBucket opens the bucket when it exists with the wanted replicas, and
// creates or updates it otherwise, in bounded attempts. On a cluster,
// nats-server v2.15.2 can leave two CreateOrUpdateKeyValue calls racing on a
// new bucket (several instances starting together) both unanswered; the
// next attempt finds the bucket.
func ensureBucket(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		var kv jetstream.KeyValue
		if kv, err = js.KeyValue(actx, cfg.Bucket); err == nil {
			var st jetstream.KeyValueStatus
			if st, err = kv.Status(actx); err == nil {
				if bs, ok := st.(*jetstream.KeyValueBucketStatus); !ok || bs.StreamInfo().Config.Replicas == cfg.Replicas {
					cancel()
					return kv, nil
				}
			}
		}
		if err == nil || errors.Is(err, jetstream.ErrBucketNotFound) {
			kv, err = js.CreateOrUpdateKeyValue(actx, cfg)
		}
		cancel()
		if err == nil {
			return kv, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		time.Sleep(250 * time.Millisecond)
	}
	return nil, err
}

// Start creates (or joins) the durable consumer and folds events as they come.
func (p *Sessions) Start(ctx context.Context) error {
	cons, err := p.js.CreateOrUpdateConsumer(ctx, p.stream, jetstream.ConsumerConfig{
		Durable:       SessionsConsumer,
		Description:   "session views",
		FilterSubject: p.filter,
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		MaxAckPending: 1000,
		AckWait:       30 * time.Second,
	})
	if err != nil {
		return fmt.Errorf("consumer %s: %w", SessionsConsumer, err)
	}
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		if err := p.apply(context.Background(), msg); err != nil {
			p.log.Warn("session view: apply failed; will be redelivered", "subject", msg.Subject(), "err", err)
			_ = msg.NakWithDelay(time.Second)
			return
		}
		_ = msg.Ack()
	})
	if err != nil {
		return fmt.Errorf("consume %s: %w", SessionsConsumer, err)
	}
	p.cc = cc
	return nil
}

// Stop stops consuming.
func (p *Sessions) Stop() {
	if p.cc != nil {
		p.cc.Drain()
		<-p.cc.Closed()
	}
}

func (p *Sessions) apply(ctx context.Context, msg jetstream.Msg) error {
	md, err := msg.Metadata()
	if err != nil {
		return err
	}
	seq := md.Sequence.Stream
	ev, err := domain.DecodeEvent(msg.Data())
	if err != nil {
		p.log.Error("session view: undecodable event skipped", "seq", seq, "err", err)
		return nil
	}
	key := ev.Tenant + "." + ev.Session
	for attempt := 0; attempt < 10; attempt++ {
		var v View
		var rev uint64
		entry, err := p.kv.Get(ctx, key)
		switch {
		case err == nil:
			if err := json.Unmarshal(entry.Value(), &v); err != nil {
				return fmt.Errorf("view %s: %w", key, err)
			}
			rev = entry.Revision()
		case errors.Is(err, jetstream.ErrKeyNotFound):
		default:
			return err
		}
		if v.Applied >= seq {
			return nil // already folded: a redelivery
		}
		fold(&v, ev, seq)
		if ev.Type == domain.CommitCreated && ev.Commit != nil {
			if _, err := p.kv.Put(ctx, commitKey(ev.Tenant, ev.Commit.ID), []byte(ev.Session)); err != nil {
				return err
			}
		}
		body, _ := json.Marshal(v)
		if rev == 0 {
			_, err = p.kv.Create(ctx, key, body)
		} else {
			_, err = p.kv.Update(ctx, key, body, rev)
		}
		if err == nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return err
		}
	}
	return fmt.Errorf("view %s: too many concurrent updates", key)
}

func fold(v *View, ev *domain.Event, seq uint64) {
	switch ev.Type {
	case domain.SessionCreated, domain.SessionForked:
		v.ID, v.Tenant, v.Status = ev.Session, ev.Tenant, string(domain.StatusActive)
		v.Origin = ev.Created.Origin
		v.Owner = ev.Created.Owner
		v.Tags = maps.Clone(ev.Created.Tags)
		v.CreatedAt = ev.At()
		v.Start = seq
	case domain.TagsSet:
		tags := maps.Clone(v.Tags)
		if tags == nil {
			tags = map[string]string{}
		}
		for _, k := range ev.Untag {
			delete(tags, k)
		}
		maps.Copy(tags, ev.Tags)
		v.Tags = tags
	case domain.SessionArchived:
		v.Status = string(domain.StatusArchived)
	case domain.SessionDeleted:
		v.Status = string(domain.StatusDeleted)
	case domain.ApprovalRequested:
		if a := ev.Approval; a != nil {
			root, _ := domain.HashFromBytes(a.Root)
			v.Pending = append(v.Pending, PendingRef{
				ID: a.ID, Reason: a.Reason, Group: a.Group, Requester: ev.Actor, Root: root.String(),
				Required: a.Required, CreatedAt: ev.At(), Position: seq,
			})
		}
	case domain.ApprovalGranted, domain.ApprovalDenied:
		if a := ev.Approval; a != nil {
			v.Pending = slices.DeleteFunc(v.Pending, func(p PendingRef) bool {
				if p.ID != a.ID {
					return false
				}
				if ev.Type == domain.ApprovalDenied {
					return true
				}
				return p.Grants+1 >= p.Required
			})
			for i := range v.Pending {
				if v.Pending[i].ID == a.ID {
					v.Pending[i].Grants++
				}
			}
		}
	}
	v.UpdatedAt = ev.At()
	v.Position, v.Version, v.Applied = seq, ev.Version, seq
	if h, ok := domain.HashFromBytes(ev.Root); ok {
		v.Root = h.String()
	}
	// A request is pending only for the content it was made for.
	v.Pending = slices.DeleteFunc(v.Pending, func(p PendingRef) bool {
		return p.Root != v.Root || slices.Contains(ev.Uses, p.ID)
	})
	if len(v.Pending) == 0 {
		v.Pending = nil
	}
	if v.Status == string(domain.StatusActive) || v.Status == string(domain.StatusPendingApproval) {
		v.Status = string(domain.StatusActive)
		if len(v.Pending) > 0 {
			v.Status = string(domain.StatusPendingApproval)
		}
	}
}

// PendingItem is a request of the review queue with its session.
type PendingItem struct {
	Session string
	PendingRef
}

// Pending returns the tenant's review queue for a group (all groups when
// empty), oldest first.
func (p *Sessions) Pending(ctx context.Context, tenant, group string) ([]PendingItem, error) {
	views, err := p.views(ctx, tenant, "")
	if err != nil {
		return nil, err
	}
	var out []PendingItem
	for _, v := range views {
		for _, r := range v.Pending {
			if group == "" || r.Group == group {
				out = append(out, PendingItem{Session: v.ID, PendingRef: r})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Position < out[j].Position })
	return out, nil
}

// CommitSession returns the session of a commit id.
func (p *Sessions) CommitSession(ctx context.Context, tenant, commit string) (string, error) {
	entry, err := p.kv.Get(ctx, commitKey(tenant, commit))
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrInvalidKey) {
		return "", domain.Errorf(domain.CodeNotFound, "commit %q not found", commit)
	}
	if err != nil {
		return "", err
	}
	return string(entry.Value()), nil
}

// ListFilter selects sessions.
type ListFilter struct {
	Status       string
	Tags         map[string]string
	Owner        string
	Parent       string
	Source       string
	UpdatedSince *time.Time
	// After is the cursor: the id of the last session of the previous page.
	After string
	Limit int
}

// List returns a page of a tenant's sessions in id order (ids are ULIDs, so
// this is creation order), and the cursor of the next page.
func (p *Sessions) List(ctx context.Context, tenant string, f ListFilter) ([]View, string, error) {
	views, err := p.views(ctx, tenant, f.After)
	if err != nil {
		return nil, "", err
	}
	var out []View
	for _, v := range views {
		if !match(v, f) {
			continue
		}
		if len(out) == f.Limit {
			return out, out[len(out)-1].ID, nil
		}
		out = append(out, v)
	}
	return out, "", nil
}

// views returns a tenant's views with ids after a cursor, in id order.
func (p *Sessions) views(ctx context.Context, tenant, after string) ([]View, error) {
	lister, err := p.kv.ListKeysFiltered(ctx, tenant+".*")
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil, nil
		}
		return nil, err
	}
	var ids []string
	for k := range lister.Keys() {
		id := strings.TrimPrefix(k, tenant+".")
		if id > after {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	out := make([]View, 0, len(ids))
	for _, id := range ids {
		entry, err := p.kv.Get(ctx, tenant+"."+id)
		if err != nil {
			continue
		}
		var v View
		if err := json.Unmarshal(entry.Value(), &v); err != nil {
			continue
		}
		out = append(out, v)
	}
	return out, nil
}

func match(v View, f ListFilter) bool {
	if f.Status != "" {
		if v.Status != f.Status {
			return false
		}
	} else if v.Status == string(domain.StatusDeleted) {
		return false
	}
	for k, want := range f.Tags {
		if got, ok := v.Tags[k]; !ok || (want != "" && got != want) {
			return false
		}
	}
	if f.Owner != "" && v.Owner != f.Owner {
		return false
	}
	if f.Parent != "" && v.Origin.Parent != f.Parent {
		return false
	}
	if f.Source != "" && v.Origin.Source != f.Source {
		return false
	}
	if f.UpdatedSince != nil && v.UpdatedAt.Before(*f.UpdatedSince) {
		return false
	}
	return true
}

// Lag returns how many events the projection has yet to fold.
func (p *Sessions) Lag(ctx context.Context) (uint64, error) {
	cons, err := p.js.Consumer(ctx, p.stream, SessionsConsumer)
	if err != nil {
		return 0, err
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.NumPending + uint64(info.NumAckPending), nil
}
