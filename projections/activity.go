package projections

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

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
	// Retry runs each request of a read of the feed (List): the store's
	// retry (streams.Retry, wired by cmd), each attempt bounded and sent
	// again while the failure is transient, so that a request no leader
	// answers (a quorum lost and regained) is not waited on until the
	// caller's deadline. Without it each request is made once, bounded by
	// requestTimeout. Every one is a read, safe to repeat.
	Retry func(ctx context.Context, what string, op func(ctx context.Context) error) error
}

// do runs one request of a read of the feed through Retry, or once,
// bounded.
func (f *FeedConfig) do(ctx context.Context, what string, op func(ctx context.Context) error) error {
	return request(ctx, f.Retry, what, op)
}

// Activity is the activity-feed projection: every event becomes a small
// entry on its tenant's feed subject, a stream that keeps the newest
// messages per tenant (MaxMsgsPerSubject). A live event is a message of
// its own (a JSON object); a batch, while the projection catches up, puts
// each tenant's entries in messages of up to FeedChunk (a JSON array), so
// that a catch-up stores (and, with fsync, syncs) one message per tenant
// and chunk rather than one per event. A message id carries the
// generation and the positions, so a redelivered event or batch is stored
// once (within the stream's duplicate window); a batch cut differently
// when redelivered can repeat entries, which the reader drops by position.
type Activity struct {
	js       jetstream.JetStream
	stream   string
	filter   string
	replicas int
	feed     FeedConfig
	log      *slog.Logger
	// share stores a batch's chunks as atomic batches (ShareSyncs), once
	// atomic says the feed's stream takes them (set by Start).
	share, atomic bool
	// atomicChunks counts the chunks stored in atomic batches.
	atomicChunks atomic.Uint64

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
		Apply: a.apply, ApplyBatch: a.applyBatch, Reset: a.reset,
	}
}

// Start joins the projection's consumer.
func (a *Activity) Start(ctx context.Context) error {
	if a.share {
		a.atomic = allowAtomic(ctx, a.js, a.feed.Stream, a.log)
	}
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

// FeedChunk bounds the entries of one feed message.
const FeedChunk = 100

// applyBatch puts a batch's entries on the feed in chunks per tenant, the
// chunks in flight together, and returns each event's outcome: that of
// its chunk.
func (a *Activity) applyBatch(ctx context.Context, ds []Delivery) []error {
	errs := make([]error, len(ds))
	var chunks []*feedChunk
	open := map[string]*feedChunk{}
	for i, d := range ds {
		ev, err := domain.DecodeEvent(d.Data)
		if err != nil {
			a.log.Error("activity: undecodable event skipped", "seq", d.Seq, "err", err)
			continue
		}
		c := open[ev.Tenant]
		if c == nil || len(c.entries) == FeedChunk {
			c = &feedChunk{tenant: ev.Tenant}
			open[ev.Tenant] = c
			chunks = append(chunks, c)
		}
		c.entries = append(c.entries, entryOf(ev, d.Seq))
		c.idx = append(c.idx, i)
	}
	for _, c := range chunks {
		c.msg = a.chunkMsg(c, ds[c.idx[0]].Gen)
	}
	if a.atomic && len(chunks) >= minAtomicViews {
		// With fsync, one sync for many chunks rather than one each
		// (atomicviews.go); a refused batch goes chunk by chunk below.
		chunks = a.publishAtomic(ctx, chunks)
	}
	futures := make([]jetstream.PubAckFuture, len(chunks))
	for k, c := range chunks {
		f, err := a.js.PublishMsgAsync(c.msg)
		if err != nil {
			for _, i := range c.idx {
				errs[i] = fmt.Errorf("publish feed entries: %w", err)
			}
			continue
		}
		futures[k] = f
	}
	for k, c := range chunks {
		if futures[k] == nil {
			continue
		}
		var err error
		select {
		case <-futures[k].Ok():
		case err = <-futures[k].Err():
		case <-ctx.Done():
			err = ctx.Err()
		}
		for _, i := range c.idx {
			errs[i] = err
		}
	}
	return errs
}

// feedChunk is one message of a batch's entries for a tenant.
type feedChunk struct {
	tenant  string
	entries []FeedEntry
	idx     []int
	msg     *nats.Msg
}

// chunkMsg is the feed message of a chunk: one entry as an object, more as
// an array; its id names the generation and the positions it holds, and it
// must land on the feed's stream.
func (a *Activity) chunkMsg(c *feedChunk, gen uint64) *nats.Msg {
	first, last := c.entries[0].Position, c.entries[len(c.entries)-1].Position
	id := fmt.Sprintf("%d.%d", gen, first)
	var body []byte
	if len(c.entries) == 1 {
		body, _ = json.Marshal(c.entries[0])
	} else {
		body, _ = json.Marshal(c.entries)
		id = fmt.Sprintf("%s-%d", id, last)
	}
	m := nats.NewMsg(a.feed.Subject(c.tenant))
	m.Data = body
	m.Header.Set(jetstream.MsgIDHeader, id)
	m.Header.Set(jetstream.ExpectedStreamHeader, a.feed.Stream)
	return m
}

// publishAtomic stores chunks as atomic batches of at most maxAtomicMsgs
// and returns those of batches that were refused or not answered (a
// redelivered chunk's id is a duplicate, which refuses its batch: the
// chunk by itself is then answered as a duplicate, stored once).
func (a *Activity) publishAtomic(ctx context.Context, chunks []*feedChunk) []*feedChunk {
	var rest []*feedChunk
	for start := 0; start < len(chunks); start += maxAtomicMsgs {
		part := chunks[start:min(start+maxAtomicMsgs, len(chunks))]
		if len(part) < 2 {
			rest = append(rest, part...)
			continue
		}
		msgs := make([]*nats.Msg, len(part))
		for i, c := range part {
			msgs[i] = c.msg
		}
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		ack, err := jetstreamext.PublishMsgBatch(actx, a.js, msgs)
		cancel()
		if err != nil || ack == nil || ack.BatchSize != uint64(len(msgs)) {
			a.log.Debug("atomic batch of feed entries refused; publishing them one by one", "chunks", len(part), "err", err)
			rest = append(rest, part...)
			continue
		}
		a.atomicChunks.Add(uint64(len(part)))
	}
	return rest
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
	subj := a.feed.Subject(tenant)
	var s jetstream.Stream
	var info *jetstream.StreamInfo
	err := a.feed.do(ctx, "feed stream", func(ctx context.Context) error {
		var err error
		if s, err = a.js.Stream(ctx, a.feed.Stream); err != nil {
			return err
		}
		info, err = s.Info(ctx, jetstream.WithSubjectFilter(subj))
		return err
	})
	if err != nil {
		return FeedPage{}, fmt.Errorf("feed stream: %w", err)
	}
	page := FeedPage{Entries: []FeedEntry{}}
	if info.State.Subjects[subj] == 0 {
		return page, nil
	}
	var cons jetstream.Consumer
	err = a.feed.do(ctx, "read feed", func(ctx context.Context) error {
		var err error
		cons, err = s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subj}})
		return err
	})
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
			for _, e := range feedEntries(msg.Data()) {
				if seen[e.Position] || (before != 0 && e.Position >= before) {
					continue
				}
				seen[e.Position] = true
				all = append(all, e)
			}
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

// feedEntries decodes a feed message: one entry (an object) or a chunk of
// them (an array). A message that does not decode holds none.
func feedEntries(data []byte) []FeedEntry {
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) > 0 && t[0] == '[' {
		var es []FeedEntry
		if json.Unmarshal(data, &es) != nil {
			return nil
		}
		return es
	}
	var e FeedEntry
	if json.Unmarshal(data, &e) != nil {
		return nil
	}
	return []FeedEntry{e}
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
