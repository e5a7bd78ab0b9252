package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/strand-dev/strand/names"
)

// WorkConfig tells the session-views projection where to put the work items
// of the review queue. Without a stream it emits none.
type WorkConfig struct {
	// Stream is the work-queue stream (names.WorkStream).
	Stream string
	// Subject makes an item's subject (names.WorkSubject).
	Subject func(tenant, kind string, more ...string) string
	// Retry runs each request of the items to the work stream: the
	// store's retry (streams.Retry, wired by cmd), so that a leader
	// election is waited out within the apply's deadline, each attempt
	// bounded. Without it each request is made once, bounded by
	// requestTimeout. Either way none waits for an answer that a killed
	// server will never send. Every request is safe to repeat: items
	// carry their id (a repeat is a duplicate), and deleting an item
	// twice finds nothing the second time.
	Retry func(ctx context.Context, what string, op func(ctx context.Context) error) error

	js jetstream.JetStream
	// atomic says the work stream takes atomic batches (set by
	// Sessions.Start when it shares syncs).
	atomic bool
}

// Kinds of the work items the projection emits.
const (
	// KindReview: an approval request waits for its reviewer group, on
	// strand.work.<tenant>.review.<group>.
	KindReview = "review"
	// KindSummary: precompute the commit summary of the content a request
	// was made for, on strand.work.<tenant>.summary.
	KindSummary = "summary"
)

// ReviewItem is the JSON body of review and summary work items.
//
// An item is closed when its request is decided, used or goes stale: the
// projection then deletes the item from the work stream, and a worker
// that already holds it must check the request's state (review.pending
// with the session and all) before acting, and acknowledge it without
// acting when it is no longer pending.
type ReviewItem struct {
	Kind      string    `json:"kind"`
	Tenant    string    `json:"tenant"`
	Session   string    `json:"session"`
	Request   string    `json:"request"`
	Group     string    `json:"group"`
	Reason    string    `json:"reason"`
	Requester string    `json:"requester"`
	Root      string    `json:"root"`
	Position  uint64    `json:"position"`
	CreatedAt time.Time `json:"created_at"`
}

// EmitWork makes the projection put review and summary work items on a
// work stream. Call it before Start.
func (p *Sessions) EmitWork(w WorkConfig) {
	w.js = p.js
	p.work = w
}

// sync publishes the items of requests that entered the queue and deletes
// those of requests that left it. Item ids carry the generation, so a
// rebuild (which purges the items first) emits them again; a redelivered
// event publishes the same id and gets the first item's sequence back.
//
// With deferNew (a batch of a catch-up: events were still pending after
// it), the requests that entered the queue in this batch (not in before)
// get their items later: a catch-up's requests are mostly decided a few
// thousand events on, in the next batch, and publishing their items only
// to delete them there was most of the review queue's catch-up beyond the
// views' own (docs/benchmarks.md, tenth session). Such a request is
// recorded in the view without items (Item 0); the batch hands one of the
// view's events back (ErrRevisit), so a later delivery of it, to this
// instance or after a crash to another, finds the request in the view as
// loaded and publishes its items if it is still open. Items of a request
// that waited are published at most about two batches late (the events
// handed back come after the batch already fetched), and at once when the
// projection is live.
func (w *WorkConfig) sync(ctx context.Context, gen uint64, v *View, before []PendingRef, deferNew bool) error {
	if w.Stream == "" {
		return nil
	}
	for i := range v.Pending {
		r := &v.Pending[i]
		if !due(*r, before, deferNew) {
			continue
		}
		it := w.item(v, r)
		seq, err := w.publish(ctx, w.Subject(v.Tenant, KindReview, r.Group), w.itemID(gen, KindReview, v.Tenant, r.ID), it)
		if err != nil {
			return err
		}
		it.Kind = KindSummary
		sseq, err := w.publish(ctx, w.Subject(v.Tenant, KindSummary), w.itemID(gen, KindSummary, v.Tenant, r.ID), it)
		if err != nil {
			return err
		}
		r.Item, r.SummaryItem = seq, sseq
	}
	for _, old := range before {
		if slices.ContainsFunc(v.Pending, func(r PendingRef) bool { return r.ID == old.ID }) {
			continue
		}
		for _, seq := range []uint64{old.Item, old.SummaryItem} {
			if err := w.remove(ctx, seq); err != nil {
				return err
			}
		}
	}
	return nil
}

// syncAll is sync for the views of a batch. With shared syncs
// (Sessions.ShareSyncs) the new items of every view go to the work stream
// as atomic batches first (one sync for many); a view whose items were
// not stored that way (a batch refused, for instance by the id of an item
// a redelivered event published already) goes through sync, which also
// closes the items of requests that left the queue.
func (w *WorkConfig) syncAll(ctx context.Context, gen uint64, views []*batchView, share bool) {
	if share && w.atomic && len(views) >= minAtomicViews {
		w.publishAtomic(ctx, gen, views)
	}
	parallel(views, func(bv *batchView) {
		bv.err = w.sync(ctx, gen, &bv.v, bv.before, bv.deferNew)
	})
}

// publishAtomic stores the new items of views as atomic batches and
// records their sequences in the views' requests; views of a refused
// batch keep theirs at 0, for sync.
func (w *WorkConfig) publishAtomic(ctx context.Context, gen uint64, views []*batchView) {
	type item struct {
		r   *PendingRef
		msg *nats.Msg
	}
	var items []item
	flush := func() {
		if len(items) < 2 {
			items = nil
			return
		}
		msgs := make([]*nats.Msg, len(items))
		for i, it := range items {
			msgs[i] = it.msg
		}
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		ack, err := jetstreamext.PublishMsgBatch(actx, w.js, msgs)
		cancel()
		if err == nil && ack != nil && ack.BatchSize == uint64(len(msgs)) {
			seq := ack.Sequence - uint64(len(msgs))
			for i := 0; i+1 < len(items); i += 2 {
				items[i].r.Item, items[i+1].r.SummaryItem = seq+uint64(i)+1, seq+uint64(i)+2
			}
		}
		items = nil
	}
	for _, bv := range views {
		v := &bv.v
		for i := range v.Pending {
			r := &v.Pending[i]
			if !due(*r, bv.before, bv.deferNew) {
				continue
			}
			if len(items)+2 > maxAtomicMsgs {
				flush()
			}
			it := w.item(v, r)
			review := w.msg(w.Subject(v.Tenant, KindReview, r.Group), w.itemID(gen, KindReview, v.Tenant, r.ID), it)
			it.Kind = KindSummary
			summary := w.msg(w.Subject(v.Tenant, KindSummary), w.itemID(gen, KindSummary, v.Tenant, r.ID), it)
			items = append(items, item{r, review}, item{r, summary})
		}
	}
	flush()
}

// needed reports whether sync has anything to do for a view: a request
// without its items (not deferred), or one that left the queue.
func (w *WorkConfig) needed(v *View, before []PendingRef, deferNew bool) bool {
	if w.Stream == "" {
		return false
	}
	for _, r := range v.Pending {
		if due(r, before, deferNew) {
			return true
		}
	}
	for _, old := range before {
		if !slices.ContainsFunc(v.Pending, func(r PendingRef) bool { return r.ID == old.ID }) {
			return true
		}
	}
	return false
}

// item is the review item of a pending request.
func (w *WorkConfig) item(v *View, r *PendingRef) ReviewItem {
	return ReviewItem{Kind: KindReview, Tenant: v.Tenant, Session: v.ID, Request: r.ID, Group: r.Group,
		Reason: r.Reason, Requester: r.Requester, Root: r.Root, Position: r.Position, CreatedAt: r.CreatedAt}
}

// itemID is the message id of an item: its generation, kind and request.
func (w *WorkConfig) itemID(gen uint64, kind, tenant, request string) string {
	return fmt.Sprintf("%d.%s.%s.%s", gen, kind, tenant, request)
}

// msg is the message of an item, with its id, for the work stream.
func (w *WorkConfig) msg(subject, id string, it ReviewItem) *nats.Msg {
	body, _ := json.Marshal(it)
	m := nats.NewMsg(subject)
	m.Data = body
	m.Header.Set(names.HeaderKind, it.Kind)
	m.Header.Set(jetstream.MsgIDHeader, id)
	m.Header.Set(jetstream.ExpectedStreamHeader, w.Stream)
	return m
}

func (w *WorkConfig) publish(ctx context.Context, subject, id string, it ReviewItem) (uint64, error) {
	m := w.msg(subject, id, it)
	var seq uint64
	err := w.do(ctx, "publish work item", func(ctx context.Context) error {
		ack, err := w.js.PublishMsg(ctx, m)
		if err == nil {
			seq = ack.Sequence
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("publish work item %s: %w", subject, err)
	}
	return seq, nil
}

// requestTimeout bounds a request made without a Retry (WorkConfig's,
// FeedConfig's). A variable for tests.
var requestTimeout = 10 * time.Second

// request runs op through retry (the store's, wired by cmd) or, without
// one, once, bounded by requestTimeout.
func request(ctx context.Context, retry func(ctx context.Context, what string, op func(ctx context.Context) error) error, what string, op func(ctx context.Context) error) error {
	if retry != nil {
		return retry(ctx, what, op)
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	return op(ctx)
}

// do runs one request to the work stream through Retry, or once, bounded.
func (w *WorkConfig) do(ctx context.Context, what string, op func(ctx context.Context) error) error {
	return request(ctx, w.Retry, what, op)
}

// remove deletes an item; one already taken and acknowledged is gone.
func (w *WorkConfig) remove(ctx context.Context, seq uint64) error {
	if seq == 0 {
		return nil
	}
	body, _ := json.Marshal(map[string]any{"seq": seq, "no_erase": true})
	err := w.do(ctx, "close work item", func(ctx context.Context) error {
		resp, err := w.js.Conn().RequestWithContext(ctx, "$JS.API.STREAM.MSG.DELETE."+w.Stream, body)
		if err != nil {
			return err
		}
		var r struct {
			Error *jetstream.APIError `json:"error,omitempty"`
		}
		if err := json.Unmarshal(resp.Data, &r); err != nil {
			return fmt.Errorf("bad reply: %w", err)
		}
		// 10043 (sequence not found), 10037 or 10057 "no message found":
		// the item was taken already (or an earlier attempt deleted it).
		if e := r.Error; e != nil && e.ErrorCode != 10043 && e.ErrorCode != jetstream.JSErrCodeMessageNotFound &&
			!(e.ErrorCode == 10057 && strings.Contains(e.Description, "no message found")) {
			return e
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("close work item %d: %w", seq, err)
	}
	return nil
}

// reset purges the review and summary items before a rebuild emits the
// open ones again.
func (w *WorkConfig) reset(ctx context.Context) error {
	if w.Stream == "" {
		return nil
	}
	s, err := w.js.Stream(ctx, w.Stream)
	if err != nil {
		return fmt.Errorf("work stream: %w", err)
	}
	for _, subj := range []string{w.Subject("*", KindReview, ">"), w.Subject("*", KindSummary)} {
		if err := s.Purge(ctx, jetstream.WithPurgeSubject(subj)); err != nil {
			return fmt.Errorf("purge %s: %w", subj, err)
		}
	}
	return nil
}

// owes reports whether a view holds an open request without its items.
func (w *WorkConfig) owes(v *View) bool {
	if w.Stream == "" {
		return false
	}
	return slices.ContainsFunc(v.Pending, func(r PendingRef) bool { return r.Item == 0 })
}

// deferred reports whether sync left a request of the view without items
// for a later batch.
func (w *WorkConfig) deferred(v *View, before []PendingRef) bool {
	if w.Stream == "" {
		return false
	}
	return slices.ContainsFunc(v.Pending, func(r PendingRef) bool { return r.Item == 0 && !inRefs(before, r.ID) })
}

// due reports whether sync publishes a request's items now: it has none
// yet, and it did not enter the queue in a catch-up's batch (deferNew, not
// in before), whose requests wait for a later one.
func due(r PendingRef, before []PendingRef, deferNew bool) bool {
	return r.Item == 0 && (!deferNew || inRefs(before, r.ID))
}

func inRefs(refs []PendingRef, id string) bool {
	return slices.ContainsFunc(refs, func(r PendingRef) bool { return r.ID == id })
}
