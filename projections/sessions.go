package projections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
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
	// Applied is the last stream sequence folded into this view.
	Applied uint64 `json:"applied"`
}

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
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
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
	}
	v.UpdatedAt = ev.At()
	v.Position, v.Version, v.Applied = seq, ev.Version, seq
	if h, ok := domain.HashFromBytes(ev.Root); ok {
		v.Root = h.String()
	}
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
	lister, err := p.kv.ListKeysFiltered(ctx, tenant+".*")
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil, "", nil
		}
		return nil, "", err
	}
	var ids []string
	for k := range lister.Keys() {
		id := strings.TrimPrefix(k, tenant+".")
		if id > f.After {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	var out []View
	for _, id := range ids {
		entry, err := p.kv.Get(ctx, tenant+"."+id)
		if err != nil {
			continue
		}
		var v View
		if err := json.Unmarshal(entry.Value(), &v); err != nil {
			continue
		}
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
