package handlers

import (
	"context"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

// StatsReader answers session.stats from the stats projection (cmd/strand
// wires it, as it wires Lister and Usage). Bucket is "hour" or "day";
// folded is the number of the session's last event in the figures (0:
// none yet).
type StatsReader interface {
	SessionStats(ctx context.Context, tenant, id, bucket string) (r client.SessionStatsReply, folded uint64, err error)
}

func (s *Service) sessionStats(c *call) (any, error) {
	var req client.SessionStatsRequest
	id, err := c.decodeSession(&req, &req.Session)
	if err != nil {
		return nil, err
	}
	switch req.Bucket {
	case "", "day":
		req.Bucket = "day"
	case "hour":
	default:
		return nil, domain.Errorf(domain.CodeInvalidArgument, "bucket must be hour or day")
	}
	if s.opts.Stats == nil {
		return nil, domain.Errorf(domain.CodeUnavailable, "session figures are not served by this instance")
	}
	// The head says whether the session exists and how far the
	// projection is behind it.
	head, err := s.store.Head(c.ctx, c.tenant, id)
	if err != nil {
		return nil, err
	}
	r, folded, err := s.opts.Stats.SessionStats(c.ctx, c.tenant, id, req.Bucket)
	if err != nil {
		return nil, err
	}
	r.Session = id
	if head.Version > folded {
		r.Behind = head.Version - folded
	}
	return r, nil
}
