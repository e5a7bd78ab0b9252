package projections

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/domain"
)

// TenantStats are a tenant's sums over the stats projection.
type TenantStats struct {
	// Sessions counts the sessions with at least one event folded.
	Sessions int64
	// Events, EventBytes, ContentBytes and BlobBytesWritten sum the
	// sessions' SessionTotals.
	Events           int64
	EventBytes       int64
	ContentBytes     int64
	BlobBytesWritten int64
	// Blobs and BlobBytes count the distinct blob contents the tenant's
	// events name, and their sizes.
	Blobs     int64
	BlobBytes int64
}

// tenantTotals keeps every tenant's sums in memory, fed by a watch of the
// totals and blob keys: it remembers each key's last figures so that an
// update replaces them and a delete takes them away.
//
// Lock order: tenantTotals.mu only.
type tenantTotals struct {
	mu       sync.RWMutex
	sessions map[string]SessionTotals // totals key -> figures
	blobs    map[string]int64         // blob key -> size
	tenants  map[string]*TenantStats
	ready    chan struct{}
	once     sync.Once
}

func newTenantTotals() *tenantTotals {
	return &tenantTotals{sessions: map[string]SessionTotals{}, blobs: map[string]int64{},
		tenants: map[string]*TenantStats{}, ready: make(chan struct{})}
}

func (t *tenantTotals) watch(w jetstream.KeyWatcher) {
	for e := range w.Updates() {
		if e == nil {
			t.once.Do(func() { close(t.ready) })
			continue
		}
		t.update(e.Key(), e.Value(), e.Operation() == jetstream.KeyValuePut)
	}
}

// update applies one key's new value (put false: the key is gone).
func (t *tenantTotals) update(key string, value []byte, put bool) {
	kind, rest, _ := strings.Cut(key, ".")
	tenant, _, ok := strings.Cut(rest, ".")
	if !ok {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	ts := t.tenants[tenant]
	if ts == nil {
		ts = &TenantStats{}
		t.tenants[tenant] = ts
	}
	switch kind {
	case "t":
		if old, ok := t.sessions[key]; ok {
			ts.Sessions--
			ts.Events -= old.Events
			ts.EventBytes -= old.EventBytes
			ts.ContentBytes -= old.ContentBytes
			ts.BlobBytesWritten -= old.BlobBytesWritten
			delete(t.sessions, key)
		}
		var st SessionTotals
		if !put || json.Unmarshal(value, &st) != nil {
			return
		}
		t.sessions[key] = st
		ts.Sessions++
		ts.Events += st.Events
		ts.EventBytes += st.EventBytes
		ts.ContentBytes += st.ContentBytes
		ts.BlobBytesWritten += st.BlobBytesWritten
	case "b":
		if old, ok := t.blobs[key]; ok {
			ts.Blobs--
			ts.BlobBytes -= old
			delete(t.blobs, key)
		}
		n, err := strconv.ParseInt(string(value), 10, 64)
		if !put || err != nil {
			return
		}
		t.blobs[key] = n
		ts.Blobs++
		ts.BlobBytes += n
	}
}

// Tenant returns a tenant's sums. It waits (within ctx) for the watch to
// have read the bucket once.
func (p *Stats) Tenant(ctx context.Context, tenant string) (TenantStats, error) {
	select {
	case <-p.tot.ready:
	case <-ctx.Done():
		return TenantStats{}, domain.Errorf(domain.CodeUnavailable, "session figures are still loading")
	}
	p.tot.mu.RLock()
	defer p.tot.mu.RUnlock()
	if ts := p.tot.tenants[tenant]; ts != nil {
		return *ts, nil
	}
	return TenantStats{}, nil
}
