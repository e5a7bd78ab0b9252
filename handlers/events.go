package handlers

import (
	"slices"
	"strings"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

// eventFilter decides which events a listing keeps.
type eventFilter struct {
	types []string
	actor string
	path  string
	req   client.EventsRequest
}

func newEventFilter(req client.EventsRequest) (*eventFilter, error) {
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
	var req client.EventsRequest
	id, err := c.decodeSession(&req, &req.Session)
	if err != nil {
		return nil, err
	}
	if req.Limit < 0 || req.Limit > client.MaxEventsLimit {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "limit must be between 0 and %d", client.MaxEventsLimit)
	}
	limit := req.Limit
	if limit == 0 {
		limit = client.DefaultEventsLimit
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
	reply := client.EventsReply{Events: []client.EventView{}}
	if from > bound.Position {
		return reply, nil
	}
	// Pages of the stream are read until the page of matches is full.
	for from <= bound.Position {
		evs, err := s.store.Events(c.ctx, c.tenant, id, from, bound.Position, client.MaxEventsLimit)
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
			reply.Events = append(reply.Events, client.NewEventView(se.Position, se.Hash, se.Event))
		}
		from = evs[len(evs)-1].Position + 1
	}
	return reply, nil
}
