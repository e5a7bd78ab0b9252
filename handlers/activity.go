package handlers

import (
	"context"
	"time"

	"github.com/strand-dev/strand/domain"
)

// Activity feed page sizes.
const (
	DefaultActivityLimit = 50
	MaxActivityLimit     = 1000
)

// ActivityFeed answers activity.list from a read model (the activity-feed
// projection).
type ActivityFeed interface {
	ActivityList(ctx context.Context, tenant string, req ActivityRequest) (ActivityReply, error)
}

// ActivityRequest is the body of activity.list.
type ActivityRequest struct {
	Limit int `json:"limit,omitempty"`
	// Before lists entries at positions below it: the next_before of the
	// previous page (0: from the newest).
	Before uint64 `json:"before,omitempty"`
}

// ActivityEntry is one event of the tenant's feed.
type ActivityEntry struct {
	Position uint64    `json:"position"`
	Session  string    `json:"session"`
	Type     string    `json:"type"`
	Actor    string    `json:"actor"`
	Time     time.Time `json:"time"`
	Paths    []string  `json:"paths,omitempty"`
	Detail   string    `json:"detail,omitempty"`
}

// ActivityReply answers activity.list, newest first.
type ActivityReply struct {
	Entries []ActivityEntry `json:"entries"`
	// NextBefore is the before of the next (older) page; absent on the
	// last.
	NextBefore uint64 `json:"next_before,omitempty"`
}

func (s *Service) activityList(c *call) (any, error) {
	var req ActivityRequest
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	if req.Limit < 0 || req.Limit > MaxActivityLimit {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "limit must be between 0 and %d", MaxActivityLimit)
	}
	if req.Limit == 0 {
		req.Limit = DefaultActivityLimit
	}
	if s.opts.Activity == nil {
		return nil, domain.Errorf(domain.CodeUnavailable, "the activity feed is not served by this instance")
	}
	return s.opts.Activity.ActivityList(c.ctx, c.tenant, req)
}

// Activity lists a page of the tenant's recent events, newest first.
func (c *Client) Activity(ctx context.Context, req ActivityRequest) (ActivityReply, error) {
	var r ActivityReply
	return r, c.Request(ctx, "activity", "list", req, &r)
}
