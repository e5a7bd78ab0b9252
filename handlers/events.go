package handlers

import (
	"github.com/strand-dev/strand/domain"
)

// Event page sizes.
const (
	DefaultEventsLimit = 100
	MaxEventsLimit     = 1000
)

func (s *Service) eventsList(c *call) (any, error) {
	var req EventsRequest
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	id, err := sessionID(req.Session)
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
	bound, err := c.resolveAt(id, req.At)
	if err != nil {
		return nil, err
	}
	from := max(req.From, bound.Start)
	reply := EventsReply{Events: []EventView{}}
	if from > bound.Position {
		return reply, nil
	}
	evs, err := s.store.Events(c.ctx, c.tenant, id, from, bound.Position, limit+1)
	if err != nil {
		return nil, err
	}
	for i, se := range evs {
		if i == limit {
			reply.NextFrom = se.Position
			break
		}
		reply.Events = append(reply.Events, eventView(se.Position, se.Hash, se.Event))
	}
	return reply, nil
}
