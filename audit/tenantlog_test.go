package audit_test

import (
	"testing"
	"time"

	"github.com/strand-dev/strand/audit"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
	"github.com/strand-dev/strand/streams/streamstest"
)

// TestVerifyTenantLogs appends real entries through the store, then a
// forged one straight to the stream: verify accepts the first and names
// the forged one.
func TestVerifyTenantLogs(t *testing.T) {
	env := streamstest.Start(t)
	ctx := t.Context()
	meta := func(actor string) domain.Meta {
		return domain.Meta{EventID: "01KBN000000000000000000000", Actor: actor, Time: time.Unix(1700000000, 0)}
	}
	for _, tenant := range []string{"acme", "globex"} {
		for _, g := range []string{"leads", "security"} {
			if _, _, err := env.Store.AppendTenant(ctx, tenant, func(ts *domain.TenantState) (*domain.TenantEvent, error) {
				e := ts.NewTenantEvent(domain.GroupSet, meta("root"))
				e.Group = &domain.GroupData{Name: g, Members: []string{"bob"}}
				return e, nil
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	r, err := audit.Open(ctx, env.NC, audit.Streams{})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r.VerifyTenantLogs(ctx, "")
	if err != nil || len(rep.Findings) != 0 || rep.Logs != 2 || rep.Entries != 4 {
		t.Fatalf("verify = %+v, %v; want 2 logs, 4 entries, no finding", rep, err)
	}

	// A forged entry: version 3, but chained to the first entry, not the
	// second (as if the second had been rewritten).
	first, err := env.Store.TenantLog(ctx, "acme", 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	forged := &domain.TenantEvent{ID: "x", Type: domain.GroupSet, Tenant: "acme", Actor: "mallory", Time: 1, Version: 3,
		Prev: first[0].Hash.Bytes(), Group: &domain.GroupData{Name: "leads", Members: []string{"mallory"}}}
	body, err := forged.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Store.JetStream().Publish(ctx, names.TenantLogSubject("acme"), body); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Store.JetStream().Publish(ctx, names.TenantLogSubject("globex"), []byte("not an entry")); err != nil {
		t.Fatal(err)
	}
	rep, err = r.VerifyTenantLogs(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) != 2 {
		t.Fatalf("findings = %+v, want the forged acme entry and the unreadable globex one", rep.Findings)
	}
	for _, f := range rep.Findings {
		if f.Kind != audit.KindTenantLog {
			t.Errorf("finding kind %s, want %s", f.Kind, audit.KindTenantLog)
		}
	}
	if rep.Findings[0].Tenant != "acme" || rep.Findings[0].Version != 3 {
		t.Errorf("first finding = %+v, want acme version 3", rep.Findings[0])
	}
	if rep.Findings[1].Tenant != "globex" {
		t.Errorf("second finding = %+v, want globex", rep.Findings[1])
	}
	// The service refuses to build on a broken log rather than hide it.
	if _, err := env.Store.TenantState(ctx, "acme"); domain.ErrorCode(err) != domain.CodeInternal {
		t.Errorf("tenant state of a broken log: %v, want internal", err)
	}
}
