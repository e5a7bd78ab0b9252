package streams

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
)

// SnapshotBytes returns the bytes of a tenant's snapshots: the size of
// each snapshot document its sessions' snapshot references name (a
// document is a blob; one named by several references counts once), and
// how many references there are. It reads the tenant's references in
// batches (one round trip per 256); a reference written before references
// carried their document's size costs a look-up of its document.
func (st *Store) SnapshotBytes(ctx context.Context, tenant string) (bytes uint64, count int, err error) {
	c, err := st.js.OrderedConsumer(ctx, "KV_"+names.SnapshotBucket, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{"$KV." + names.SnapshotBucket + "." + tenant + ".>"},
		DeliverPolicy:  jetstream.DeliverLastPerSubjectPolicy,
	})
	if err != nil {
		return 0, 0, fmt.Errorf("snapshot references: %w", err)
	}
	seen := map[domain.Hash]bool{}
	for {
		batch, err := c.FetchNoWait(256)
		if err != nil {
			return 0, 0, fmt.Errorf("snapshot references: %w", err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				continue
			}
			if len(m.Data()) == 0 {
				if md.NumPending == 0 {
					return bytes, count, nil
				}
				continue // a delete marker
			}
			count++
			var ref snapshotRef
			if domain.DecodeMsgpack(m.Data(), &ref) == nil {
				if h, ok := domain.HashFromBytes(ref.Blob); ok && !seen[h] {
					seen[h] = true
					size := ref.Size
					if size == 0 {
						bi, err := st.Blobs.Stat(ctx, h)
						if err != nil && !errors.Is(err, domain.ErrNotFound) {
							return 0, 0, err
						}
						size = bi.Size
					}
					bytes += uint64(size)
				}
			}
			if md.NumPending == 0 {
				return bytes, count, nil
			}
		}
		if err := batch.Error(); err != nil {
			return 0, 0, fmt.Errorf("snapshot references: %w", err)
		}
		if n == 0 {
			break
		}
	}
	return bytes, count, nil
}
