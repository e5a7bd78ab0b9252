package handlers

import (
	"github.com/strand-dev/strand/domain"
)

// Session list page sizes.
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
)

func (s *Service) sessionList(c *call) (any, error) {
	var req ListSessionsRequest
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	if req.Limit < 0 || req.Limit > MaxListLimit {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "limit must be between 0 and %d", MaxListLimit)
	}
	switch domain.Status(req.Status) {
	case "", domain.StatusActive, domain.StatusPendingApproval, domain.StatusConflict, domain.StatusArchived, domain.StatusDeleted:
	default:
		return nil, domain.Errorf(domain.CodeInvalidArgument, "status must be active, pending_approval, conflict, archived or deleted")
	}
	if req.Limit == 0 {
		req.Limit = DefaultListLimit
	}
	if s.opts.Lister == nil {
		return nil, domain.Errorf(domain.CodeUnavailable, "session list is not served by this instance")
	}
	return s.opts.Lister.ListSessions(c.ctx, c.tenant, req)
}
