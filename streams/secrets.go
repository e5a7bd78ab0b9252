package streams

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
)

func secretBucketConfig(c Config) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      names.SecretBucket,
		Description: "Strand secrets, sealed (AES-256-GCM) under the operator's keys",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    c.Replicas,
	}
}

// SecretRecord is domain.SecretRecord (the contracts own the types that cross them).
type SecretRecord = domain.SecretRecord

func secretKVKey(tenant, session, name string) string {
	if session == "" {
		return tenant + ".t." + name
	}
	return tenant + ".s." + session + "." + name
}

func (st *Store) secretKV(ctx context.Context) (jetstream.KeyValue, error) {
	kv, err := st.js.KeyValue(ctx, names.SecretBucket)
	if err != nil {
		return nil, domain.Wrap(err, "open secret bucket")
	}
	return kv, nil
}

// Secret reads a stored secret; not_found when there is none.
func (st *Store) Secret(ctx context.Context, tenant, session, name string) (SecretRecord, error) {
	var rec SecretRecord
	m, err := leaderGet(ctx, st.nc, "KV_"+names.SecretBucket, 0, "$KV."+names.SecretBucket+"."+secretKVKey(tenant, session, name))
	if errors.Is(err, errNoMessage) {
		return rec, domain.Errorf(domain.CodeNotFound, "secret not found")
	}
	if err != nil {
		return rec, domain.Wrap(err, "read secret")
	}
	if op := m.Header.Get("KV-Operation"); op == "DEL" || op == "PURGE" || len(m.Data) == 0 {
		return rec, domain.Errorf(domain.CodeNotFound, "secret not found")
	}
	if err := json.Unmarshal(m.Data, &rec); err != nil {
		return rec, domain.Wrap(err, "decode secret record")
	}
	return rec, nil
}

// PutSecret stores a secret's sealed value.
func (st *Store) PutSecret(ctx context.Context, tenant, session, name string, rec SecretRecord) error {
	kv, err := st.secretKV(ctx)
	if err != nil {
		return err
	}
	body, err := json.Marshal(rec)
	if err != nil {
		return domain.Wrap(err, "encode secret record")
	}
	if _, err := kv.Put(ctx, secretKVKey(tenant, session, name), body); err != nil {
		return domain.Wrap(err, "store secret")
	}
	return nil
}

// DeleteSecret removes a secret's value, leaving no ciphertext behind.
func (st *Store) DeleteSecret(ctx context.Context, tenant, session, name string) error {
	kv, err := st.secretKV(ctx)
	if err != nil {
		return err
	}
	if err := kv.Purge(ctx, secretKVKey(tenant, session, name)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return domain.Wrap(err, "delete secret")
	}
	return nil
}

// SecretEntry is domain.SecretEntry (the contracts own the types that cross them).
type SecretEntry = domain.SecretEntry

// ListSecrets returns the secrets of a tenant (session "") or of one
// session; with all, every secret of the tenant (for a rekey).
func (st *Store) ListSecrets(ctx context.Context, tenant, session string, all bool) ([]SecretEntry, error) {
	kv, err := st.secretKV(ctx)
	if err != nil {
		return nil, err
	}
	filter := secretKVKey(tenant, session, "*")
	if all {
		filter = tenant + ".>"
	}
	lister, err := kv.ListKeysFiltered(ctx, filter)
	if err != nil {
		return nil, domain.Wrap(err, "list secrets")
	}
	var out []SecretEntry
	for key := range lister.Keys() {
		rest := strings.TrimPrefix(key, tenant+".")
		var e SecretEntry
		switch {
		case strings.HasPrefix(rest, "t."):
			e.Name = strings.TrimPrefix(rest, "t.")
		case strings.HasPrefix(rest, "s."):
			sess, name, ok := strings.Cut(strings.TrimPrefix(rest, "s."), ".")
			if !ok {
				continue
			}
			e.Session, e.Name = sess, name
		default:
			continue
		}
		rec, err := st.Secret(ctx, tenant, e.Session, e.Name)
		if domain.ErrorCode(err) == domain.CodeNotFound {
			continue
		}
		if err != nil {
			return nil, err
		}
		e.Record = rec
		out = append(out, e)
	}
	return out, nil
}
