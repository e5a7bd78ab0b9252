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

	"github.com/strand-dev/strand/names"
)

// WorkConfig tells the session-views projection where to put the work items
// of the review queue. Without a stream it emits none.
type WorkConfig struct {
	// Stream is the work-queue stream (names.WorkStream).
	Stream string
	// Subject makes an item's subject (names.WorkSubject).
	Subject func(tenant, kind string, more ...string) string

	js jetstream.JetStream
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
func (w *WorkConfig) sync(ctx context.Context, gen uint64, v *View, before []PendingRef) error {
	if w.Stream == "" {
		return nil
	}
	for i := range v.Pending {
		r := &v.Pending[i]
		if r.Item != 0 {
			continue
		}
		it := ReviewItem{Kind: KindReview, Tenant: v.Tenant, Session: v.ID, Request: r.ID, Group: r.Group,
			Reason: r.Reason, Requester: r.Requester, Root: r.Root, Position: r.Position, CreatedAt: r.CreatedAt}
		seq, err := w.publish(ctx, w.Subject(v.Tenant, KindReview, r.Group), fmt.Sprintf("%d.%s.%s.%s", gen, KindReview, v.Tenant, r.ID), it)
		if err != nil {
			return err
		}
		it.Kind = KindSummary
		sseq, err := w.publish(ctx, w.Subject(v.Tenant, KindSummary), fmt.Sprintf("%d.%s.%s.%s", gen, KindSummary, v.Tenant, r.ID), it)
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

// needed reports whether sync has anything to do for a view: a request
// without its items, or one that left the queue.
func (w *WorkConfig) needed(v *View, before []PendingRef) bool {
	if w.Stream == "" {
		return false
	}
	for _, r := range v.Pending {
		if r.Item == 0 {
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

func (w *WorkConfig) publish(ctx context.Context, subject, id string, it ReviewItem) (uint64, error) {
	body, _ := json.Marshal(it)
	m := nats.NewMsg(subject)
	m.Data = body
	m.Header.Set(names.HeaderKind, it.Kind)
	ack, err := w.js.PublishMsg(ctx, m, jetstream.WithMsgID(id), jetstream.WithExpectStream(w.Stream))
	if err != nil {
		return 0, fmt.Errorf("publish work item %s: %w", subject, err)
	}
	return ack.Sequence, nil
}

// remove deletes an item; one already taken and acknowledged is gone.
func (w *WorkConfig) remove(ctx context.Context, seq uint64) error {
	if seq == 0 {
		return nil
	}
	body, _ := json.Marshal(map[string]any{"seq": seq, "no_erase": true})
	resp, err := w.js.Conn().RequestWithContext(ctx, "$JS.API.STREAM.MSG.DELETE."+w.Stream, body)
	if err != nil {
		return fmt.Errorf("close work item %d: %w", seq, err)
	}
	var r struct {
		Error *jetstream.APIError `json:"error,omitempty"`
	}
	if err := json.Unmarshal(resp.Data, &r); err != nil {
		return fmt.Errorf("close work item %d: bad reply: %w", seq, err)
	}
	// 10043 (sequence not found), 10037 or 10057 "no message found": the
	// item was taken already.
	if e := r.Error; e != nil && e.ErrorCode != 10043 && e.ErrorCode != jetstream.JSErrCodeMessageNotFound &&
		!(e.ErrorCode == 10057 && strings.Contains(e.Description, "no message found")) {
		return fmt.Errorf("close work item %d: %w", seq, r.Error)
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
