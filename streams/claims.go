package streams

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
)

// ClaimTTL is how long an upload may wait for the write that uses it.
const ClaimTTL = 24 * time.Hour

func provisionClaims(ctx context.Context, js jetstream.JetStream, c Config) error {
	_, err := EnsureBucket(ctx, js, jetstream.KeyValueConfig{
		Bucket:      names.ClaimBucket,
		Description: "Strand uploads per tenant: who may write content by reference",
		History:     1,
		TTL:         ClaimTTL,
		Storage:     jetstream.FileStorage,
		Replicas:    c.Replicas,
	})
	if err != nil {
		return fmt.Errorf("provision bucket %s: %w", names.ClaimBucket, err)
	}
	return nil
}

func claimKey(tenant string, h domain.Hash) string { return tenant + "." + h.String() }

// Claim records that a tenant uploaded content with hash h.
func (st *Store) Claim(ctx context.Context, tenant string, h domain.Hash) error {
	// Retried like the other JetStream requests a caller waits for: the
	// bucket's leader may be being elected (retry.go).
	err := retry(ctx, "record upload", func(ctx context.Context) error {
		kv, err := st.js.KeyValue(ctx, names.ClaimBucket)
		if err != nil {
			return err
		}
		_, err = kv.Put(ctx, claimKey(tenant, h), nil)
		return err
	})
	return domain.Wrap(err, "record upload")
}

// Claimed checks that a tenant uploaded every one of hashes; it fails with
// not_found naming the first that it did not.
func (st *Store) Claimed(ctx context.Context, tenant string, hashes []domain.Hash) error {
	for _, h := range hashes {
		_, err := leaderGet(ctx, st.nc, "KV_"+names.ClaimBucket, 0, "$KV."+names.ClaimBucket+"."+claimKey(tenant, h))
		if errors.Is(err, errNoMessage) {
			return domain.Errorf(domain.CodeNotFound, "chunk %s was not uploaded by this tenant (or longer ago than %s)", h, ClaimTTL)
		}
		if err != nil {
			return domain.Wrap(err, "check upload")
		}
	}
	return nil
}
