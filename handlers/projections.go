package handlers

import (
	"context"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

// ProjectionReporter answers projections.status.
type ProjectionReporter interface {
	ProjectionStatus(ctx context.Context) ([]client.ProjectionStatus, error)
}

func (s *Service) projectionsStatus(c *call) (any, error) {
	var req struct{}
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	if s.opts.Projections == nil {
		return nil, domain.Errorf(domain.CodeUnavailable, "projections are not run by this instance")
	}
	st, err := s.opts.Projections.ProjectionStatus(c.ctx)
	if err != nil {
		return nil, err
	}
	return client.ProjectionsReply{Projections: st}, nil
}
