package handlers

import "context"

// FlushRequests adds the requests this instance counted to the
// deployment's counters now, as its flush loop does every RequestFlush.
func (s *Service) FlushRequests(ctx context.Context) error { return s.requests.flush(ctx, s.store) }

// RequestsOf is what usage.get on this instance answers for requests.
func (s *Service) RequestsOf(ctx context.Context, tenant string) (map[string]uint64, error) {
	return s.requests.of(ctx, s.store, tenant)
}
