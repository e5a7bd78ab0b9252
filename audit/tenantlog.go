package audit

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
)

// The tenant log's layout (written by package streams, see the constants
// in reader.go).
const (
	DefaultTenantLogStream = names.TenantLogStream
	tenantLogPrefix        = names.TenantLogPrefix
)

// KindTenantLog: an entry of a tenant log does not decode, does not follow
// the entry before it (version), or does not chain to it (hash).
const KindTenantLog Kind = "tenant_log"

// TenantEntry is one entry of a tenant log, read straight from the stream.
type TenantEntry struct {
	// Tenant is the tenant of the entry's subject.
	Tenant   string
	Position uint64
	Hash     domain.Hash
	Event    *domain.TenantEvent
}

// TenantLog calls fn for every entry of the tenant logs in stream order
// (one tenant, or every tenant for ""). A store without tenant logs (an
// older version's) has none.
func (r *Reader) TenantLog(ctx context.Context, tenant string, fn func(TenantEntry, error) error) error {
	stream, err := r.js.Stream(ctx, DefaultTenantLogStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open tenant log stream: %w", err)
	}
	filter := tenantLogPrefix + "*"
	if tenant != "" {
		filter = tenantLogPrefix + tenant
	}
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return fmt.Errorf("tenant log stream info: %w", err)
	}
	var total uint64
	for _, n := range info.State.Subjects {
		total += n
	}
	if total == 0 {
		return nil
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		return fmt.Errorf("read tenant log: %w", err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("read tenant log: %w", err)
	}
	defer it.Stop()
	for seen := uint64(0); seen < total; seen++ {
		m, err := it.Next()
		if err != nil {
			return fmt.Errorf("read tenant log: %w", err)
		}
		md, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("read tenant log: %w", err)
		}
		subjTenant := strings.TrimPrefix(m.Subject(), tenantLogPrefix)
		e, derr := domain.DecodeTenantEvent(m.Data())
		if derr == nil && e.Tenant != subjTenant {
			derr = fmt.Errorf("entry of tenant %s on the subject of %s", e.Tenant, subjTenant)
		}
		if err := fn(TenantEntry{Tenant: subjTenant, Position: md.Sequence.Stream, Hash: domain.Sum(m.Data()), Event: e}, derr); err != nil {
			return err
		}
	}
	return nil
}

// TenantLogReport is what VerifyTenantLogs found.
type TenantLogReport struct {
	Logs     int       `json:"logs"`
	Entries  int       `json:"entries"`
	Findings []Finding `json:"findings"`
}

// VerifyTenantLogs folds every tenant log in scope (one tenant, or all)
// and reports, per tenant, the first entry that does not decode, skips or
// repeats a version, or does not chain to the entry before it.
func (r *Reader) VerifyTenantLogs(ctx context.Context, tenant string) (*TenantLogReport, error) {
	rep := &TenantLogReport{Findings: []Finding{}}
	states := map[string]*domain.TenantState{}
	broken := map[string]bool{}
	err := r.TenantLog(ctx, tenant, func(en TenantEntry, derr error) error {
		rep.Entries++
		t := en.Tenant
		if derr != nil {
			if !broken[t] {
				broken[t] = true
				rep.Findings = append(rep.Findings, Finding{Tenant: t, Position: en.Position, Kind: KindTenantLog, Message: derr.Error()})
			}
			return nil
		}
		s, ok := states[t]
		if !ok {
			s = domain.NewTenantState(t)
			states[t] = s
		}
		if broken[t] {
			return nil
		}
		if err := s.Apply(en.Event, en.Hash); err != nil {
			broken[t] = true
			rep.Findings = append(rep.Findings, Finding{Tenant: t, Position: en.Position, Version: en.Event.Version, Kind: KindTenantLog, Message: domain.ErrorMessage(err)})
		}
		return nil
	})
	rep.Logs = len(states)
	return rep, err
}
