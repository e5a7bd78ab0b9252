package handlers

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nuid"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

// UsageReporter answers usage.get from the read models and the streams
// (cmd/strand wires it, as it wires Lister and Reviews).
type UsageReporter interface {
	TenantUsage(ctx context.Context, tenant string) (client.UsageReply, error)
}

// DefaultRequestFlush is how often an instance adds the requests it
// counted to the deployment's counters.
const DefaultRequestFlush = 2 * time.Second

// requestKey is a tenant and an endpoint's path.
type requestKey struct{ tenant, endpoint string }

// requestBatch is counts on their way to the deployment's counters, under
// the id that makes sending them again count them once.
type requestBatch struct {
	id     string
	counts []domain.RequestCount
}

// requestCounts counts this instance's requests by tenant and endpoint in
// memory, and adds them to the deployment's counters (a
// domain.RequestCounter) as one batch every flush: a request costs a map
// increment, never a JetStream call. What a reply shows is the counters
// plus what this instance has not added yet, so it counts every request of
// this instance and those other instances flushed (they are at most a
// flush interval behind).
//
// Lock order: flushMu before mu. flushMu makes a flush and a read
// exclusive, so a read never sees a batch both unsent and in the
// counters; mu guards pending alone and is held for a map update, so
// counting a request never waits for a flush.
type requestCounts struct {
	flushMu sync.Mutex
	// unsent are batches whose adding failed, oldest first: sent again
	// under their id by the next flush.
	unsent []requestBatch

	mu      sync.Mutex
	pending map[requestKey]uint64
}

func (t *requestCounts) add(tenant, endpoint string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.pending == nil {
		t.pending = map[requestKey]uint64{}
	}
	t.pending[requestKey{tenant, endpoint}]++
}

// take empties pending into a batch (nil when nothing was counted).
func (t *requestCounts) take() []domain.RequestCount {
	t.mu.Lock()
	p := t.pending
	t.pending = nil
	t.mu.Unlock()
	keys := slices.SortedFunc(maps.Keys(p), func(a, b requestKey) int {
		return cmp.Or(strings.Compare(a.tenant, b.tenant), strings.Compare(a.endpoint, b.endpoint))
	})
	var out []domain.RequestCount
	for _, k := range keys {
		out = append(out, domain.RequestCount{Tenant: k.tenant, Endpoint: k.endpoint, N: p[k]})
	}
	return out
}

// flush adds what was counted since the last flush, and any batch a
// failed flush left, to the counters.
func (t *requestCounts) flush(ctx context.Context, store domain.RequestCounter) error {
	t.flushMu.Lock()
	defer t.flushMu.Unlock()
	if counts := t.take(); len(counts) > 0 {
		t.unsent = append(t.unsent, requestBatch{id: nuid.Next(), counts: counts})
	}
	for len(t.unsent) > 0 {
		b := t.unsent[0]
		if err := store.AddRequests(ctx, b.id, b.counts); err != nil {
			return err
		}
		t.unsent = t.unsent[1:]
	}
	return nil
}

// of returns a tenant's requests by endpoint: the deployment's counters
// and what this instance has not added to them yet.
func (t *requestCounts) of(ctx context.Context, store domain.RequestCounter, tenant string) (map[string]uint64, error) {
	t.flushMu.Lock()
	defer t.flushMu.Unlock()
	out, err := store.Requests(ctx, tenant)
	if err != nil {
		return nil, err
	}
	for _, b := range t.unsent {
		for _, c := range b.counts {
			if c.Tenant == tenant {
				out[c.Endpoint] += c.N
			}
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, n := range t.pending {
		if k.tenant == tenant {
			out[k.endpoint] += n
		}
	}
	return out, nil
}

// flushRequests adds the request counts to the deployment's counters
// every RequestFlush until flushStop closes, then once more, so that a
// stopped instance leaves nothing uncounted (unless its connection is down
// then: a stop does not wait for a server to come back).
func (s *Service) flushRequests() {
	defer close(s.flushDone)
	every := s.opts.RequestFlush
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			ctx, cancel := context.WithTimeout(context.Background(), every+5*time.Second)
			if err := s.requests.flush(ctx, s.store); err != nil {
				s.opts.Log.Warn("request counts not flushed; sent again at the next flush", "err", err)
			}
			cancel()
		case <-s.flushStop:
			if !s.nc.IsConnected() {
				s.opts.Log.Warn("request counts not flushed at stop: not connected")
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := s.requests.flush(ctx, s.store); err != nil {
				s.opts.Log.Warn("request counts not flushed at stop", "err", err)
			}
			return
		}
	}
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
	if r.Requests, err = s.requests.of(c.ctx, s.store, c.tenant); err != nil {
		return nil, err
	}
	if r.SessionsByStatus == nil {
		r.SessionsByStatus = map[string]int{}
	}
	return r, nil
}
