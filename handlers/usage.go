package handlers

import (
	"context"
	"sync"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

// UsageReporter answers usage.get from the read models and the streams
// (cmd/strand wires it, as it wires Lister and Reviews).
type UsageReporter interface {
	TenantUsage(ctx context.Context, tenant string) (client.UsageReply, error)
}

// tenantRequests counts requests by tenant and endpoint on this instance.
type tenantRequests struct {
	mu sync.Mutex
	m  map[string]map[string]uint64
}

func (t *tenantRequests) add(tenant, endpoint string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = map[string]map[string]uint64{}
	}
	e := t.m[tenant]
	if e == nil {
		e = map[string]uint64{}
		t.m[tenant] = e
	}
	e[endpoint]++
}

func (t *tenantRequests) of(tenant string) map[string]uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]uint64, len(t.m[tenant]))
	for k, v := range t.m[tenant] {
		out[k] = v
	}
	return out
}

func (s *Service) usageGet(c *call) (any, error) {
	var req client.UsageRequest
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	if s.opts.Usage == nil {
		return nil, domain.Errorf(domain.CodeUnavailable, "usage is not served by this instance")
	}
	r, err := s.opts.Usage.TenantUsage(c.ctx, c.tenant)
	if err != nil {
		return nil, err
	}
	r.Tenant = c.tenant
	r.Requests = s.requests.of(c.tenant)
	if r.SessionsByStatus == nil {
		r.SessionsByStatus = map[string]int{}
	}
	return r, nil
}
