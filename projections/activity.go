package projections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
)

// FeedEntry is one event in a tenant's activity feed.
type FeedEntry struct {
	// Position is the event's position (stream sequence): entries are
	// ordered and paged by it.
	Position uint64    `json:"position"`
	Session  string    `json:"session"`
	Type     string    `json:"type"`
	Actor    string    `json:"actor"`
	Time     time.Time `json:"time"`
	// Paths are the first paths the event touched.
	Paths []string `json:"paths,omitempty"`
	// Detail names what the event is about when it is not paths: a
	// checkpoint, an approval request, a commit.
	Detail string `json:"detail,omitempty"`
}

// FeedConfig names the feed's stream.
type FeedConfig struct {
	// Stream is names.FeedStream; Subject names.FeedSubject.
	Stream  string
	Subject func(tenant string) string
}

// Activity is the activity-feed projection: every event becomes a small
// entry on its tenant's feed subject, a stream that keeps the newest
// entries per tenant (MaxMsgsPerSubject). An entry's message id carries the
// generation and the event's position, so a redelivered event is stored
// once (within the stream's duplicate window; the reader also drops
// repeated positions).
type Activity struct {
	js       jetstream.JetStream
	stream   string
	filter   string
	replicas int
	feed     FeedConfig
	log      *slog.Logger

	mu     sync.Mutex
	runner *Runner
}

// OpenActivity returns the activity projection of an event stream.
func OpenActivity(js jetstream.JetStream, stream, filter string, replicas int, feed FeedConfig, log *slog.Logger) *Activity {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Activity{js: js, stream: stream, filter: filter, replicas: replicas, feed: feed, log: log}
}

// Spec describes the projection to the runtime.
func (a *Activity) Spec() Spec {
	return Spec{
		Name: "activity", Durable: names.ActivityConsumer, Description: "activity feed", Filter: a.filter,
		Apply: a.apply, Reset: a.reset, Partitions: 4,
	}
}

// Start joins the projection's consumer.
func (a *Activity) Start(ctx context.Context) error {
	r, err := StartRunner(ctx, a.js, a.stream, a.replicas, a.Spec(), a.log)
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.runner = r
	a.mu.Unlock()
	return nil
}

// Stop leaves the consumer.
func (a *Activity) Stop() {
	a.mu.Lock()
	r := a.runner
	a.runner = nil
	a.mu.Unlock()
	if r != nil {
		r.Stop()
	}
}

func entryOf(ev *domain.Event, seq uint64) FeedEntry {
	e := FeedEntry{Position: seq, Session: ev.Session, Type: string(ev.Type), Actor: ev.Actor, Time: ev.At()}
	if ps := ev.Paths(); len(ps) > 0 {
		e.Paths = ps[:min(len(ps), 5)]
	}
	switch {
	case ev.Checkpoint != nil:
		e.Detail = ev.Checkpoint.Name
	case ev.Approval != nil:
		e.Detail = ev.Approval.ID
	case ev.Commit != nil:
		e.Detail = ev.Commit.ID
	case ev.Note != nil:
		e.Detail = ev.Note.ID
	case ev.Created != nil && ev.Created.Origin.Parent != "":
		e.Detail = "fork of " + ev.Created.Origin.Parent + "@" + strconv.FormatUint(ev.Created.Origin.Position, 10)
	case ev.Created != nil && ev.Created.Origin.Source != "":
		e.Detail = "from " + ev.Created.Origin.Source + "@" + strconv.FormatUint(ev.Created.Origin.Revision, 10)
	}
	return e
}

func (a *Activity) apply(ctx context.Context, d Delivery) error {
	ev, err := domain.DecodeEvent(d.Data)
	if err != nil {
		a.log.Error("activity: undecodable event skipped", "seq", d.Seq, "err", err)
		return nil
	}
	body, _ := json.Marshal(entryOf(ev, d.Seq))
	m := nats.NewMsg(a.feed.Subject(ev.Tenant))
	m.Data = body
	_, err = a.js.PublishMsg(ctx, m, jetstream.WithMsgID(fmt.Sprintf("%d.%d", d.Gen, d.Seq)), jetstream.WithExpectStream(a.feed.Stream))
	return err
}

// reset empties the feed before a rebuild fills it again.
func (a *Activity) reset(ctx context.Context, _ uint64) error {
	s, err := a.js.Stream(ctx, a.feed.Stream)
	if err != nil {
		return err
	}
	return s.Purge(ctx)
}

// Status reports the projection's position and lag.
func (a *Activity) Status(ctx context.Context) (Status, error) {
	return StatusOf(ctx, a.js, a.stream, a.Spec())
}

// FeedPage is one page of a feed, newest first.
type FeedPage struct {
	Entries []FeedEntry
	// Before is the cursor of the next (older) page; 0 on the last.
	Before uint64
}

// List returns up to limit of a tenant's newest entries with positions
// below before (0: from the newest). It reads the tenant's feed subject,
// which holds at most the stream's MaxMsgsPerSubject entries, with an
// ordered consumer on that one literal subject.
func (a *Activity) List(ctx context.Context, tenant string, limit int, before uint64) (FeedPage, error) {
	if limit <= 0 {
		limit = 50
	}
	s, err := a.js.Stream(ctx, a.feed.Stream)
	if err != nil {
		return FeedPage{}, fmt.Errorf("feed stream: %w", err)
	}
	subj := a.feed.Subject(tenant)
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(subj))
	if err != nil {
		return FeedPage{}, fmt.Errorf("feed stream: %w", err)
	}
	page := FeedPage{Entries: []FeedEntry{}}
	if info.State.Subjects[subj] == 0 {
		return page, nil
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subj}})
	if err != nil {
		return FeedPage{}, fmt.Errorf("read feed: %w", err)
	}
	// Each fetch of an ordered consumer may replace its server-side
	// consumer: delete the one current at the end, not the first.
	defer func() {
		if ci := cons.CachedInfo(); ci != nil {
			s.DeleteConsumer(context.Background(), ci.Name) //nolint:errcheck // ordered consumers also expire
		}
	}()
	var all []FeedEntry
	seen := map[uint64]bool{}
	for {
		batch, err := cons.FetchNoWait(500)
		if err != nil {
			return FeedPage{}, fmt.Errorf("read feed: %w", err)
		}
		n := 0
		var pending uint64
		for msg := range batch.Messages() {
			n++
			if md, err := msg.Metadata(); err == nil {
				pending = md.NumPending
			}
			var e FeedEntry
			if json.Unmarshal(msg.Data(), &e) != nil || seen[e.Position] || (before != 0 && e.Position >= before) {
				continue
			}
			seen[e.Position] = true
			all = append(all, e)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return FeedPage{}, fmt.Errorf("read feed: %w", err)
		}
		if n == 0 || pending == 0 {
			break
		}
	}
	slices.SortFunc(all, func(x, y FeedEntry) int { return cmpU64(y.Position, x.Position) })
	if len(all) > limit {
		page.Before = all[limit-1].Position
		all = all[:limit]
	}
	page.Entries = append(page.Entries, all...)
	return page, nil
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
