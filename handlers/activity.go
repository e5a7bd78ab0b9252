package handlers

import (
	"context"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

// ActivityFeed answers activity.list from a read model (the activity-feed
// projection).
type ActivityFeed interface {
	ActivityList(ctx context.Context, tenant string, req client.ActivityRequest) (client.ActivityReply, error)
}

func (s *Service) activityList(c *call) (any, error) {
	var req client.ActivityRequest
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	if req.Limit < 0 || req.Limit > client.MaxActivityLimit {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "limit must be between 0 and %d", client.MaxActivityLimit)
	}
	if req.Limit == 0 {
		req.Limit = client.DefaultActivityLimit
	}
	if s.opts.Activity == nil {
		return nil, domain.Errorf(domain.CodeUnavailable, "the activity feed is not served by this instance")
	}
	return s.opts.Activity.ActivityList(c.ctx, c.tenant, req)
}
