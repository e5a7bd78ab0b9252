package projections

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
)

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
	// Version is the number of the session's events folded: events are
	// folded strictly in this order, whatever order they are delivered in.
	Version uint64 `json:"version"`
	Root    string `json:"root"`
	// Pending are the approval requests waiting for a decision on the
	// content they were made for: the review queue.
	Pending []PendingRef `json:"pending,omitempty"`
	// Applied is the last stream sequence folded into this view.
	Applied uint64 `json:"applied"`
	// Gen is the projection generation that wrote the view.
	Gen uint64 `json:"gen,omitempty"`
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
	// Item and SummaryItem are the sequences of the request's work items
	// on the work stream (0: none), deleted when the request closes.
	Item        uint64 `json:"item,omitempty"`
	SummaryItem uint64 `json:"summary_item,omitempty"`
}

// commitKey indexes a commit id to its session. Tenants cannot start with
// "_", so these keys never mix with views.
func commitKey(tenant, commit string) string { return "_commit." + tenant + "." + commit }

// viewKey splits a view key "<tenant>.<session>"; other keys (the commit
// index) are not views.
func viewKey(key string) (tenant, id string, ok bool) {
	if strings.HasPrefix(key, "_") {
		return "", "", false
	}
	tenant, id, ok = strings.Cut(key, ".")
	if !ok || tenant == "" || id == "" || strings.Contains(id, ".") {
		return "", "", false
	}
	return tenant, id, true
}

// Sessions is the session-views projection: a durable consumer folds every
// event into one view per session in SessionsBucket, and every instance
// keeps an in-memory index of that bucket to page from.
type Sessions struct {
	*readModel
	cache *lru.Cache[string, cachedView]
	idx   *index

	work WorkConfig
	// ackWait overrides the consumer's AckWait (tests).
	ackWait time.Duration
	// writeHook, when set, runs before each write of a batch; an error
	// stops that write (tests: a crash half-way through a batch).
	writeHook func(subject string) error
	// share writes a batch's views as atomic batches (ShareSyncs), once
	// atomic says the bucket's stream takes them (atomicviews.go).
	share, atomic bool
	// atomicViews counts the views written in atomic batches.
	atomicViews atomic.Uint64
}

type cachedView struct {
	v   View
	rev uint64
}

// OpenSessions provisions the bucket and returns the projection; Start runs
// it.
func OpenSessions(ctx context.Context, js jetstream.JetStream, stream, filter string, replicas int, log *slog.Logger) (*Sessions, error) {
	m, err := openReadModel(ctx, js, stream, filter, replicas, log, names.SessionsBucket,
		"Strand session views (a projection of the event stream)")
	if err != nil {
		return nil, err
	}
	cache, _ := lru.New[string, cachedView](8192)
	// Atomic batches are turned on now rather than in Start: nats-server
	// v2.15.2 reads a stream's config without its lock while it creates a
	// consumer, so a stream update while the index's watch (or a reader's
	// list) creates one is a data race inside the server. A bucket made
	// by this call has no consumer yet; one made earlier has the setting.
	atomic := allowAtomic(ctx, js, "KV_"+names.SessionsBucket, m.log)
	return &Sessions{readModel: m, cache: cache, idx: newIndex(), atomic: atomic}, nil
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

// Spec describes the projection to the runtime.
func (p *Sessions) Spec() Spec {
	return Spec{
		Name: "sessions", Durable: names.SessionsConsumer, Description: "session views", Filter: p.filter,
		Apply: p.apply, ApplyBatch: p.applyBatch, Sweep: p.sweep, AckWait: p.ackWait,
		Reset: func(ctx context.Context, _ uint64) error { return p.work.reset(ctx) },
	}
}

// Start loads the index, then creates (or joins) the durable consumer and
// folds events as they come.
func (p *Sessions) Start(ctx context.Context) error {
	if p.share {
		if p.work.Stream != "" {
			p.work.atomic = allowAtomic(ctx, p.js, p.work.Stream, p.log)
		}
	}
	return p.run(ctx, p.Spec(), p.StartIndex)
}

// StartIndex starts the watch that keeps this instance's index, without
// folding events (an instance that only serves reads). Start calls it.
func (p *Sessions) StartIndex(context.Context) error {
	return p.startWatch(nil, p.watch)
}

func (p *Sessions) watch(w jetstream.KeyWatcher) {
	for e := range w.Updates() {
		if e == nil {
			p.idx.markReady()
			continue
		}
		tenant, id, ok := viewKey(e.Key())
		if !ok {
			continue
		}
		if e.Operation() != jetstream.KeyValuePut {
			p.idx.remove(tenant, id)
			continue
		}
		var v View
		if err := json.Unmarshal(e.Value(), &v); err != nil || v.ID == "" {
			p.idx.remove(tenant, id)
			continue
		}
		v.Tenant, v.ID = tenant, id
		p.idx.put(&v)
	}
}

// Stop stops folding (other instances carry on) and the index.
func (p *Sessions) Stop() { p.stop() }

// load returns a view and its revision (0: absent), from this instance's
// cache of what it wrote last or from the bucket. A stale cache entry only
// costs a failed update.
func (p *Sessions) load(ctx context.Context, key string, cached bool) (View, uint64, error) {
	if c, ok := p.cache.Get(key); ok && cached {
		return c.v, c.rev, nil
	}
	entry, err := p.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return View{}, 0, nil
	}
	if err != nil {
		return View{}, 0, err
	}
	var v View
	if err := json.Unmarshal(entry.Value(), &v); err != nil {
		return View{}, 0, fmt.Errorf("view %s: %w", key, err)
	}
	return v, entry.Revision(), nil
}

// eventOf decodes a delivery. An event that does not decode still names its
// session and number (subject and header), so it can be stepped over
// without stalling the events after it.
func eventOf(d Delivery) (ev *domain.Event, tenant, id string, version uint64, err error) {
	return decodeDelivery(d, domain.DecodeEvent)
}

// headOf is eventOf without the event's operations, which the session
// views do not fold (domain.DecodeEventHead).
func headOf(d Delivery) (ev *domain.Event, tenant, id string, version uint64, err error) {
	return decodeDelivery(d, domain.DecodeEventHead)
}

func decodeDelivery(d Delivery, decode func([]byte) (*domain.Event, error)) (ev *domain.Event, tenant, id string, version uint64, err error) {
	ev, err = decode(d.Data)
	if err == nil {
		return ev, ev.Tenant, ev.Session, ev.Version, nil
	}
	toks := strings.Split(d.Subject, ".")
	if len(toks) >= 2 {
		tenant, id = toks[len(toks)-2], toks[len(toks)-1]
	}
	version, _ = strconv.ParseUint(d.Header.Get(names.HeaderVersion), 10, 64)
	return nil, tenant, id, version, err
}

func (p *Sessions) apply(ctx context.Context, d Delivery) error {
	_, tenant, id, version, decErr := headOf(d)
	if decErr != nil {
		p.log.Error("session view: undecodable event stepped over", "seq", d.Seq, "subject", d.Subject, "err", decErr)
		if id == "" || version == 0 {
			return nil
		}
	}
	key := tenant + "." + id
	cached := true
	for attempt := 0; attempt < 20; attempt++ {
		v, rev, err := p.load(ctx, key, cached)
		if err != nil {
			return err
		}
		if v.Gen > d.Gen {
			return ErrStaleGeneration
		}
		if v.Gen < d.Gen {
			v = View{} // an older generation's view: rebuild it from event 1
		}
		steps := []Delivery{d}
		if v.Version >= version {
			// Already folded: a redelivery. One handed back to finish
			// the view's work items (ErrRevisit) publishes them now.
			if !p.work.owes(&v) {
				return nil
			}
			steps = nil
		} else if v.Version+1 != version {
			if cached {
				// Another instance may have folded the events in between.
				cached = false
				continue
			}
			if steps, err = fillGap(ctx, p.js, p.stream, p.log, "session view", v.Applied, v.Version, d, version); err != nil || len(steps) == 0 {
				return cmp.Or(err, ErrGap)
			}
		}
		before := v.Pending
		var commits []string
		for _, s := range steps {
			if ev, _, _, n, _ := headOf(s); ev != nil {
				fold(&v, ev, s.Seq)
				if ev.Type == domain.CommitCreated && ev.Commit != nil {
					commits = append(commits, ev.Commit.ID)
				}
			} else {
				v.Version, v.Applied = n, s.Seq
			}
		}
		if err := p.work.sync(ctx, d.Gen, &v, before, false); err != nil {
			return err
		}
		for _, c := range commits {
			if _, err := p.kv.Put(ctx, commitKey(tenant, c), []byte(id)); err != nil {
				return err
			}
		}
		v.Gen = d.Gen
		body, _ := json.Marshal(v)
		if rev == 0 {
			rev, err = p.kv.Create(ctx, key, body)
		} else {
			rev, err = p.kv.Update(ctx, key, body, rev)
		}
		if err == nil {
			p.cache.Add(key, cachedView{v, rev})
			if len(steps) > 0 && steps[len(steps)-1].Seq != d.Seq {
				return ErrGap // a longer gap than one read fills: folded part of it
			}
			return nil
		}
		p.cache.Remove(key)
		cached = false
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return err
		}
	}
	return fmt.Errorf("view %s: too many concurrent updates", key)
}

// fold applies one event to a view. It never changes what v's slices and
// maps point to (a cached view shares them), it replaces them.
func fold(v *View, ev *domain.Event, seq uint64) {
	switch ev.Type {
	case domain.SessionCreated, domain.SessionForked:
		v.ID, v.Tenant, v.Status = ev.Session, ev.Tenant, string(domain.StatusActive)
		if ev.Created != nil {
			v.Origin = ev.Created.Origin
			v.Owner = ev.Created.Owner
			v.Tags = maps.Clone(ev.Created.Tags)
		}
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
	v.Pending = foldPending(v.Pending, ev, seq, v.Root)
	if v.Status == string(domain.StatusActive) || v.Status == string(domain.StatusPendingApproval) {
		v.Status = string(domain.StatusActive)
		if len(v.Pending) > 0 {
			v.Status = string(domain.StatusPendingApproval)
		}
	}
}

// foldPending returns the requests still pending after an event, given the
// session's root after it (a new slice; pending is not changed). A request
// leaves the queue when it is denied, granted as often as it needs, used,
// or stale: the content moved away from the root it was pinned to.
func foldPending(pending []PendingRef, ev *domain.Event, seq uint64, root string) []PendingRef {
	if len(pending) == 0 && ev.Approval == nil {
		return nil // most events of most sessions: nothing to copy
	}
	out := make([]PendingRef, 0, len(pending)+1)
	out = append(out, pending...)
	if a := ev.Approval; a != nil {
		switch ev.Type {
		case domain.ApprovalRequested:
			h, _ := domain.HashFromBytes(a.Root)
			out = append(out, PendingRef{
				ID: a.ID, Reason: a.Reason, Group: a.Group, Requester: ev.Actor, Root: h.String(),
				Required: a.Required, CreatedAt: ev.At(), Position: seq,
			})
		case domain.ApprovalDenied:
			out = slices.DeleteFunc(out, func(p PendingRef) bool { return p.ID == a.ID })
		case domain.ApprovalGranted:
			for i := range out {
				if out[i].ID == a.ID {
					out[i].Grants++
				}
			}
			out = slices.DeleteFunc(out, func(p PendingRef) bool { return p.ID == a.ID && p.Grants >= p.Required })
		}
	}
	out = slices.DeleteFunc(out, func(p PendingRef) bool {
		return p.Root != root || slices.Contains(ev.Uses, p.ID)
	})
	if len(out) == 0 {
		return nil
	}
	return out
}

// sweep deletes the views that generations older than gen wrote and gen did
// not rewrite (sessions whose events are gone).
func (p *Sessions) sweep(ctx context.Context, gen uint64) error {
	lister, err := p.kv.ListKeys(ctx)
	if err != nil {
		return err
	}
	for key := range lister.Keys() {
		if _, _, ok := viewKey(key); !ok {
			continue
		}
		e, err := p.kv.Get(ctx, key)
		if err != nil {
			continue
		}
		var v View
		if json.Unmarshal(e.Value(), &v) == nil && v.Gen >= gen {
			continue
		}
		if err := p.kv.Delete(ctx, key, jetstream.LastRevision(e.Revision())); err != nil && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return err
		}
		p.cache.Remove(key)
	}
	return nil
}

// PendingItem is a request of the review queue with its session.
type PendingItem struct {
	Session string
	PendingRef
}

// Pending returns the tenant's review queue for a group (all groups when
// empty), oldest first, from the index.
func (p *Sessions) Pending(ctx context.Context, tenant, group string) ([]PendingItem, error) {
	select {
	case <-p.idx.ready:
	case <-ctx.Done():
		return nil, domain.Errorf(domain.CodeUnavailable, "session views are still loading")
	}
	p.idx.mu.RLock()
	var out []PendingItem
	if t := p.idx.tenants[tenant]; t != nil {
		for e := range t.pending {
			for _, r := range e.v.Pending {
				if group == "" || r.Group == group {
					out = append(out, PendingItem{Session: e.v.ID, PendingRef: r})
				}
			}
		}
	}
	p.idx.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Position != out[j].Position {
			return out[i].Position < out[j].Position
		}
		return out[i].ID < out[j].ID
	})
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

// Lag returns how many events the projection has yet to fold.
func (p *Sessions) Lag(ctx context.Context) (uint64, error) {
	st, err := StatusOf(ctx, p.js, p.stream, p.Spec())
	if err != nil {
		return 0, err
	}
	if st.Error != "" {
		return 0, errors.New(st.Error)
	}
	return st.Lag, nil
}

// Status reports the projection's position and lag.
func (p *Sessions) Status(ctx context.Context) (Status, error) {
	return StatusOf(ctx, p.js, p.stream, p.Spec())
}

// readViews returns every view in the bucket (tests compare builds).
func (p *Sessions) readViews(ctx context.Context) (map[string]View, error) {
	out := map[string]View{}
	lister, err := p.kv.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	for key := range lister.Keys() {
		if _, _, ok := viewKey(key); !ok {
			continue
		}
		e, err := p.kv.Get(ctx, key)
		if err != nil {
			return nil, err
		}
		var v View
		if err := json.Unmarshal(e.Value(), &v); err != nil {
			return nil, err
		}
		out[key] = v
	}
	return out, nil
}

// JetStream returns the JetStream context the projection uses.
func (p *Sessions) JetStream() jetstream.JetStream { return p.js }

// Tenants returns the tenants the index knows, for jobs that go over every
// tenant (retention).
func (p *Sessions) Tenants(ctx context.Context) ([]string, error) {
	select {
	case <-p.idx.ready:
	case <-ctx.Done():
		return nil, domain.Errorf(domain.CodeUnavailable, "session views are still loading")
	}
	p.idx.mu.RLock()
	defer p.idx.mu.RUnlock()
	out := make([]string, 0, len(p.idx.tenants))
	for t := range p.idx.tenants {
		out = append(out, t)
	}
	sort.Strings(out)
	return out, nil
}
