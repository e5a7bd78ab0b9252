package streams_test

import (
	"maps"
	"strconv"
	"testing"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/streams/streamstest"
)

// TestStore_Requests: request counts add up per tenant and endpoint, a
// batch sent again under its id counts once, and a scoped endpoint's
// wildcard survives the subject.
func TestStore_Requests(t *testing.T) {
	env := streamstest.StartSuite(t)
	ctx := t.Context()
	add := func(id string, counts ...domain.RequestCount) {
		t.Helper()
		if err := env.Store.AddRequests(ctx, id, counts); err != nil {
			t.Fatalf("add requests %s: %v", id, err)
		}
	}
	add("one", domain.RequestCount{Tenant: "acme", Endpoint: "fs.write", N: 3},
		domain.RequestCount{Tenant: "acme", Endpoint: "secret.get.*", N: 1},
		domain.RequestCount{Tenant: "other", Endpoint: "fs.write", N: 7})
	add("two", domain.RequestCount{Tenant: "acme", Endpoint: "fs.write", N: 2})
	// A retry after an unknown outcome: the same id, counted once.
	add("two", domain.RequestCount{Tenant: "acme", Endpoint: "fs.write", N: 2})
	// More than one atomic batch (500 counts) holds.
	var many []domain.RequestCount
	for i := range 600 {
		many = append(many, domain.RequestCount{Tenant: "big", Endpoint: "e" + string(rune('a'+i%26)) + "." + strconv.Itoa(i), N: 1})
	}
	add("many", many...)
	add("many", many...)

	for tenant, want := range map[string]map[string]uint64{
		"acme":  {"fs.write": 5, "secret.get.*": 1},
		"other": {"fs.write": 7},
		"none":  {},
	} {
		got, err := env.Store.Requests(ctx, tenant)
		if err != nil || !maps.Equal(got, want) {
			t.Errorf("requests of %s: %v, %v; want %v", tenant, got, err, want)
		}
	}
	got, err := env.Store.Requests(ctx, "big")
	if err != nil || len(got) != len(many) {
		t.Fatalf("requests of big: %d endpoints, %v; want %d", len(got), err, len(many))
	}
	for e, n := range got {
		if n != 1 {
			t.Fatalf("requests of big to %s: %d, want 1", e, n)
		}
	}
}
