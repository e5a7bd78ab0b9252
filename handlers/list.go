package handlers

import (
	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

func (s *Service) sessionList(c *call) (any, error) {
	var req client.ListSessionsRequest
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	if req.Limit < 0 || req.Limit > client.MaxListLimit {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "limit must be between 0 and %d", client.MaxListLimit)
	}
	switch domain.Status(req.Status) {
	case "", domain.StatusActive, domain.StatusPendingApproval, domain.StatusConflict, domain.StatusArchived, domain.StatusDeleted:
	default:
		return nil, domain.Errorf(domain.CodeInvalidArgument, "status must be active, pending_approval, conflict, archived or deleted")
	}
	if req.Limit == 0 {
		req.Limit = client.DefaultListLimit
	}
	if s.opts.Lister == nil {
		return nil, domain.Errorf(domain.CodeUnavailable, "session list is not served by this instance")
	}
	return s.opts.Lister.ListSessions(c.ctx, c.tenant, req)
}
