package handlers

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/streams"
)

// Event page sizes.
const (
	DefaultEventsLimit = 100
	MaxEventsLimit     = 1000
)

// eventFilter decides which events a listing keeps.
type eventFilter struct {
	types []string
	actor string
	path  string
	req   EventsRequest
}

func newEventFilter(req EventsRequest) (*eventFilter, error) {
	f := &eventFilter{types: req.Types, actor: req.Actor, req: req}
	for _, t := range req.Types {
		if !slices.Contains(domain.EventTypes, domain.EventType(t)) {
			return nil, domain.Errorf(domain.CodeInvalidArgument, "unknown event type %q", truncate(t, 64))
		}
	}
	if req.Path != "" {
		p, err := domain.CleanNonRoot(req.Path)
		if err != nil {
			return nil, err
		}
		f.path = p
	}
	if req.Since != nil && req.Until != nil && !req.Since.Before(*req.Until) {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "since must be before until")
	}
	return f, nil
}

func (f *eventFilter) keep(e *domain.Event) bool {
	if len(f.types) > 0 && !slices.Contains(f.types, string(e.Type)) {
		return false
	}
	if f.actor != "" && e.Actor != f.actor {
		return false
	}
	if f.req.Since != nil && e.At().Before(*f.req.Since) {
		return false
	}
	if f.req.Until != nil && !e.At().Before(*f.req.Until) {
		return false
	}
	if f.path != "" {
		touched := false
		for _, p := range e.Paths() {
			if p == f.path || strings.HasPrefix(p, f.path+"/") || strings.HasPrefix(f.path, p+"/") {
				touched = true
				break
			}
		}
		if n := e.Note; n != nil && (n.Path == f.path || strings.HasPrefix(n.Path, f.path+"/")) {
			touched = true
		}
		if l := e.Lock; l != nil && (l.Path == f.path || strings.HasPrefix(f.path, l.Path+"/")) {
			touched = true
		}
		if !touched {
			return false
		}
	}
	return true
}

func (s *Service) eventsList(c *call) (any, error) {
	var req EventsRequest
	id, err := c.decodeSession(&req, &req.Session)
	if err != nil {
		return nil, err
	}
	if req.Limit < 0 || req.Limit > MaxEventsLimit {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "limit must be between 0 and %d", MaxEventsLimit)
	}
	limit := req.Limit
	if limit == 0 {
		limit = DefaultEventsLimit
	}
	filter, err := newEventFilter(req)
	if err != nil {
		return nil, err
	}
	// The history of a deleted session stays listable: audit reads it.
	var bound *domain.Session
	if req.At == "" {
		bound, err = s.store.Head(c.ctx, c.tenant, id)
	} else {
		bound, err = c.resolveAt(id, req.At)
	}
	if err != nil {
		return nil, err
	}
	from := max(req.From, bound.Start)
	reply := EventsReply{Events: []EventView{}}
	if from > bound.Position {
		return reply, nil
	}
	// Pages of the stream are read until the page of matches is full.
	for from <= bound.Position {
		evs, err := s.store.Events(c.ctx, c.tenant, id, from, bound.Position, MaxEventsLimit)
		if err != nil {
			return nil, err
		}
		if len(evs) == 0 {
			break
		}
		for _, se := range evs {
			if !filter.keep(se.Event) {
				continue
			}
			if len(reply.Events) == limit {
				reply.NextFrom = se.Position
				return reply, nil
			}
			reply.Events = append(reply.Events, eventView(se.Position, se.Hash, se.Event))
		}
		from = evs[len(evs)-1].Position + 1
	}
	return reply, nil
}

// WatchSubject is where the server republishes every event of a session as
// it stores it (MessagePack envelope, with the Strand-Type, Nats-Sequence
// and Nats-Subject headers): any NATS client can subscribe.
func WatchSubject(tenant, session string) string {
	return streams.WatchPrefix + tenant + "." + session
}

// Watch calls fn for each event of a session from position from on: first
// the stored history (events.list pages), then the live tail, without gaps
// or repeats. It returns when ctx ends or fn returns an error.
func (c *Client) Watch(ctx context.Context, session string, from uint64, fn func(EventView) error) error {
	live := make(chan *nats.Msg, 1024)
	sub, err := c.nc.ChanSubscribe(WatchSubject(c.Tenant, session), live)
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
			seq, err := strconv.ParseUint(m.Header.Get("Nats-Sequence"), 10, 64)
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
			if err := deliver(eventView(seq, domain.Sum(m.Data), ev)); err != nil {
				return err
			}
		}
	}
}
