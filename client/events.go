package client

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
)

// Event page sizes.
const (
	DefaultEventsLimit = 100
	MaxEventsLimit     = 1000
)

// Watch calls fn for each event of a session from position from on: first
// the stored history (events.list pages), then the live tail, without gaps
// or repeats. It returns when ctx ends or fn returns an error.
func (c *Client) Watch(ctx context.Context, session string, from uint64, fn func(EventView) error) error {
	live := make(chan *nats.Msg, 1024)
	sub, err := c.nc.ChanSubscribe(names.WatchSubject(c.Tenant, session), live)
	if err != nil {
		return err
	}
	defer sub.Unsubscribe() //nolint:errcheck // best effort on the way out
	// Positions of one session are not contiguous (they are the stream's
	// sequences), its versions are: they tell what was missed.
	next, version := from, uint64(0)
	deliver := func(e EventView) error {
		next, version = e.Position+1, e.Version
		return fn(e)
	}
	for {
		page, err := c.Events(ctx, EventsRequest{Session: session, From: next, Limit: MaxEventsLimit})
		if err != nil {
			return err
		}
		for _, e := range page.Events {
			if err := deliver(e); err != nil {
				return err
			}
		}
		if page.NextFrom == 0 {
			break
		}
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case m := <-live:
			ev, err := domain.DecodeEvent(m.Data)
			if err != nil {
				return err
			}
			seq, err := strconv.ParseUint(m.Header.Get(names.HeaderSequence), 10, 64)
			if err != nil {
				return fmt.Errorf("watch %s: bad Nats-Sequence header", session)
			}
			if seq < next || (version != 0 && ev.Version <= version) {
				continue // already delivered
			}
			if version != 0 && ev.Version > version+1 {
				// Missed some (a slow subscriber): list the gap first.
				page, err := c.Events(ctx, EventsRequest{Session: session, From: next, At: AtPosition(seq), Limit: MaxEventsLimit})
				if err != nil {
					return err
				}
				for _, e := range page.Events {
					if e.Position >= seq {
						break
					}
					if err := deliver(e); err != nil {
						return err
					}
				}
			}
			if err := deliver(NewEventView(seq, domain.Sum(m.Data), ev)); err != nil {
				return err
			}
		}
	}
}

func hexOf(b []byte) string {
	if h, ok := domain.HashFromBytes(b); ok && len(b) > 0 {
		return h.String()
	}
	return ""
}

func nanosTime(n int64) *time.Time {
	if n == 0 {
		return nil
	}
	t := time.Unix(0, n).UTC()
	return &t
}

func payloadViews(v *EventView, e *domain.Event) {
	if n := e.Note; n != nil {
		v.Note = &NoteEventView{ID: n.ID, Body: n.Body, Path: n.Path, LineStart: n.LineStart, LineEnd: n.LineEnd, Hash: hexOf(n.Content), ReplyTo: n.ReplyTo}
	}
	if a := e.Approval; a != nil {
		v.Approval = &ApprovalEventView{ID: a.ID, Reason: a.Reason, Group: a.Group, Details: json.RawMessage(a.Details), Root: hexOf(a.Root), Required: a.Required, Comment: a.Comment}
	}
	for _, op := range e.Cache {
		v.Cache = append(v.Cache, CacheOpView{Op: op.Op, Key: op.Key, Value: op.Value, ExpiresAt: nanosTime(op.Expires)})
	}
	if l := e.Lock; l != nil {
		v.Lock = &LockEventView{Path: l.Path, Subtree: l.Subtree, Owner: l.Owner, ExpiresAt: nanosTime(l.Expires), Forced: l.Forced, TokenHash: hexOf(l.TokenHash)}
	}
	if h := e.Health; h != nil {
		v.Health = &HealthEventView{Passing: h.Passing, Passed: h.Passed, Failed: h.Failed, Skipped: h.Skipped, Summary: h.Summary, Details: json.RawMessage(h.Details)}
	}
	if m := e.Merge; m != nil {
		v.Merge = &MergeEventView{From: m.From, FromPosition: m.FromPosition, BaseSession: m.BaseSession, BasePosition: m.BasePosition,
			BaseSource: m.BaseSource, BaseRevision: m.BaseRevision, Strategy: m.Strategy, Resolved: m.Resolved}
	}
	v.Commit, v.Policy, v.Uses = e.Commit, e.Policy, e.Uses
}

// NewEventView is how every caller sees an event: the one rendering of
// each event type's payload, shared by the API, the CLI and the audit log.
func NewEventView(position uint64, hash domain.Hash, e *domain.Event) EventView {
	v := EventView{
		Position: position, ID: e.ID, Type: string(e.Type), Tenant: e.Tenant, Session: e.Session,
		Actor: e.Actor, Time: e.At(), RequestID: e.RequestID, Version: e.Version,
		Hash: hash.String(), Tags: e.Tags, Untag: e.Untag,
	}
	if h, ok := domain.HashFromBytes(e.Prev); ok && !h.IsZero() {
		v.Prev = h.String()
	}
	if h, ok := domain.HashFromBytes(e.Root); ok {
		v.Root = h.String()
	}
	for _, op := range e.Ops {
		ov := OpView{Op: op.Kind, Path: op.Path, To: op.To, Target: op.Target, Size: op.Size, Mode: op.Mode, Recursive: op.Recursive, Name: op.Name, Value: op.Value}
		if h, ok := domain.HashFromBytes(op.Content); ok && len(op.Content) > 0 {
			ov.Hash = h.String()
		}
		v.Ops = append(v.Ops, ov)
	}
	if c := e.Created; c != nil {
		v.Owner = c.Owner
		v.Tags = c.Tags
		if o := c.Origin; o != (domain.Origin{}) {
			v.Origin = &OriginView{Source: o.Source, Revision: o.Revision, Parent: o.Parent, Position: o.Position}
		}
	}
	if cp := e.Checkpoint; cp != nil {
		v.Checkpoint = &CheckpointView{Name: cp.Name, Position: cp.Position, Note: cp.Note, Actor: e.Actor, CreatedAt: e.At()}
	}
	if r := e.Restore; r != nil {
		v.RestoredTo = r.To
	}
	payloadViews(&v, e)
	return v
}
