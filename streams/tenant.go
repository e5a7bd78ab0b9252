package streams

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
)

// TenantSettings are a tenant's defaults.
type TenantSettings struct {
	Policy domain.Policy `json:"policy"`
}

// TenantSettings returns a tenant's settings, read through the bucket's
// stream leader because they decide writes (approval policies).
func (st *Store) TenantSettings(ctx context.Context, tenant string) (TenantSettings, error) {
	var ts TenantSettings
	m, err := leaderGet(ctx, st.nc, "KV_"+names.TenantBucket, 0, "$KV."+names.TenantBucket+"."+tenant)
	if errors.Is(err, errNoMessage) {
		return ts, nil
	}
	if err != nil {
		return ts, domain.Wrap(err, "read tenant settings")
	}
	if op := m.Header.Get("KV-Operation"); op == "DEL" || op == "PURGE" || len(m.Data) == 0 {
		return ts, nil
	}
	if err := json.Unmarshal(m.Data, &ts); err != nil {
		return ts, domain.Wrap(fmt.Errorf("tenant %s: %w", tenant, err), "decode tenant settings")
	}
	return ts, nil
}

// SetTenantSettings stores a tenant's settings.
func (st *Store) SetTenantSettings(ctx context.Context, tenant string, ts TenantSettings) error {
	if err := ts.Policy.Validate(); err != nil {
		return err
	}
	kv, err := st.js.KeyValue(ctx, names.TenantBucket)
	if err != nil {
		return domain.Wrap(err, "open tenant bucket")
	}
	body, _ := json.Marshal(ts)
	if _, err := kv.Put(ctx, tenant, body); err != nil {
		return domain.Wrap(err, "store tenant settings")
	}
	return nil
}
