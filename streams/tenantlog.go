package streams

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
)

func tenantLogStreamConfig(c Config) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        names.TenantLogStream,
		Description: "Strand tenant logs: settings, reviewer groups and secrets, hash-chained per tenant",
		Subjects:    []string{names.TenantLogPrefix + "*"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    c.Replicas,
		Discard:     jetstream.DiscardNew,
		Duplicates:  c.DuplicateWindow,
		DenyDelete:  true,
		DenyPurge:   true,
		AllowDirect: true,
	}
}

// TenantEntry is domain.TenantEntry (the contracts own the types that cross them).
type TenantEntry = domain.TenantEntry

// tenantCache keeps each tenant's folded state and the stream sequence of
// its last entry; it is caught up from the stream on every read, so it is
// only ever behind, never wrong.
type tenantCache struct {
	mu     sync.Mutex
	states map[string]*tenantFold
}

type tenantFold struct {
	mu    sync.Mutex
	state *domain.TenantState
	seq   uint64
}

func (tc *tenantCache) fold(tenant string) *tenantFold {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if tc.states == nil {
		tc.states = map[string]*tenantFold{}
	}
	f, ok := tc.states[tenant]
	if !ok {
		f = &tenantFold{state: domain.NewTenantState(tenant)}
		tc.states[tenant] = f
	}
	return f
}

// catchUp folds the entries stored after the cached ones (f.mu held).
func (st *Store) catchUp(ctx context.Context, f *tenantFold) error {
	subject := names.TenantLogSubject(f.state.Tenant)
	for {
		m, err := nextBySubject(ctx, st.nc, names.TenantLogStream, f.seq+1, subject)
		if errors.Is(err, errNoMessage) {
			return nil
		}
		if err != nil {
			return domain.Wrap(err, "read tenant log")
		}
		e, err := domain.DecodeTenantEvent(m.Data)
		if err != nil {
			return err
		}
		next := f.state.Clone()
		if err := next.Apply(e, domain.Sum(m.Data)); err != nil {
			return err
		}
		f.state, f.seq = next, m.Sequence
	}
}

// TenantState returns the fold of a tenant's log as it stands now. A
// tenant whose log holds no policy yet gets the policy an older version
// kept in the tenant bucket.
func (st *Store) TenantState(ctx context.Context, tenant string) (*domain.TenantState, error) {
	f := st.tenants.fold(tenant)
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := st.catchUp(ctx, f); err != nil {
		return nil, err
	}
	s := f.state.Clone()
	if !s.PolicySet {
		ts, err := st.TenantSettings(ctx, tenant)
		if err != nil {
			return nil, err
		}
		s.Policy = ts.Policy
	}
	return s, nil
}

// maxTenantAttempts bounds the retries of an append that lost a race.
const maxTenantAttempts = 20

// AppendTenant appends the entry that build makes from the tenant's state,
// expecting the log's last entry to be the one the state was folded from,
// and returns the state after it. build returning a nil event appends
// nothing. A request id makes the append idempotent within the stream's
// duplicate window: replayed is true when an entry with the same request id
// was stored before, and nothing new was.
func (st *Store) AppendTenant(ctx context.Context, tenant string, build func(*domain.TenantState) (*domain.TenantEvent, error)) (state *domain.TenantState, replayed bool, err error) {
	f := st.tenants.fold(tenant)
	f.mu.Lock()
	defer f.mu.Unlock()
	for attempt := 0; attempt < maxTenantAttempts; attempt++ {
		if err := st.catchUp(ctx, f); err != nil {
			return nil, false, err
		}
		cur := f.state.Clone()
		if !cur.PolicySet {
			ts, err := st.TenantSettings(ctx, tenant)
			if err != nil {
				return nil, false, err
			}
			cur.Policy = ts.Policy
		}
		e, err := build(cur)
		if err != nil || e == nil {
			return cur, false, err
		}
		body, err := e.Encode()
		if err != nil {
			return nil, false, domain.Wrap(err, "encode tenant event")
		}
		m := nats.NewMsg(names.TenantLogSubject(tenant))
		m.Data = body
		m.Header.Set(names.HeaderType, string(e.Type))
		m.Header.Set(names.HeaderActor, e.Actor)
		opts := []jetstream.PublishOpt{jetstream.WithExpectLastSequencePerSubject(f.seq), jetstream.WithExpectStream(names.TenantLogStream)}
		if e.RequestID != "" {
			opts = append(opts, jetstream.WithMsgID("t:"+tenant+":"+e.RequestID))
		}
		ack, err := st.js.PublishMsg(ctx, m, opts...)
		switch {
		case isConflict(err):
			if isInFlight(err) {
				select {
				case <-ctx.Done():
					return nil, false, domain.Wrap(ctx.Err(), "append tenant event")
				case <-time.After(10 * time.Millisecond):
				}
			}
			continue
		case err != nil:
			return nil, false, domain.Wrap(fmt.Errorf("publish %s: %w", m.Subject, err), "append tenant event")
		case ack.Duplicate:
			// Stored before under the same request id: the state now
			// includes it.
			if err := st.catchUp(ctx, f); err != nil {
				return nil, false, err
			}
			return f.state.Clone(), true, nil
		}
		next := f.state.Clone()
		if err := next.Apply(e, domain.Sum(body)); err != nil {
			return nil, false, err
		}
		f.state, f.seq = next, ack.Sequence
		out := next.Clone()
		if !out.PolicySet {
			out.Policy = cur.Policy
		}
		return out, false, nil
	}
	return nil, false, domain.Errorf(domain.CodeConflict, "the tenant log of %s kept moving; try again", tenant)
}

// TenantLog returns up to limit entries of a tenant's log from position
// from (a stream sequence; 0 or 1 for the start).
func (st *Store) TenantLog(ctx context.Context, tenant string, from uint64, limit int) ([]TenantEntry, error) {
	if from == 0 {
		from = 1
	}
	var out []TenantEntry
	subject := names.TenantLogSubject(tenant)
	for len(out) < limit {
		m, err := nextBySubject(ctx, st.nc, names.TenantLogStream, from, subject)
		if errors.Is(err, errNoMessage) {
			break
		}
		if err != nil {
			return nil, domain.Wrap(err, "read tenant log")
		}
		e, err := domain.DecodeTenantEvent(m.Data)
		if err != nil {
			return nil, err
		}
		out = append(out, TenantEntry{Sequence: m.Sequence, Event: e, Hash: domain.Sum(m.Data)})
		from = m.Sequence + 1
	}
	return out, nil
}
