package projections

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/names"
	"github.com/strand-dev/strand/streams/streamstest"
)

// BenchmarkSessions_BatchWrites applies one batch of about 400 events of
// about 50 sessions per operation (each operation a new generation, so
// every view is written again), on a server with and without fsync, with
// the views written one KV request each or as atomic batches
// (ShareSyncs).
func BenchmarkSessions_BatchWrites(b *testing.B) {
	for _, fsync := range []bool{true, false} {
		for _, share := range []bool{false, true} {
			b.Run(fmt.Sprintf("fsync=%v/share=%v", fsync, share), func(b *testing.B) {
				env := streamstest.Start(b, streamstest.Options{SyncAlways: fsync})
				ctx := context.Background()
				w := newWorkload(b, env, "acme", 11)
				for range 400 {
					w.step(ctx)
				}
				p, err := OpenSessions(ctx, env.Store.JetStream(), names.EventStream, names.EventFilter("*"), 1, nil)
				if err != nil {
					b.Fatal(err)
				}
				if share {
					p.ShareSyncs()
					if p.atomic = allowAtomic(ctx, p.js, "KV_"+names.SessionsBucket, p.log); !p.atomic {
						b.Fatal("the bucket's stream refused atomic batches")
					}
				}
				ds := fetchAll(b, env, int(w.n.Load()))
				gen := uint64(0)
				for b.Loop() {
					gen++
					for i := range ds {
						ds[i].Gen = gen
					}
					for i, err := range p.applyBatch(ctx, ds) {
						if err != nil {
							b.Fatalf("event %d: %v", ds[i].Seq, err)
						}
					}
				}
			})
		}
	}
}

// fetchAll reads the first n events of the event stream as deliveries.
func fetchAll(tb testing.TB, env *streamstest.Env, n int) []Delivery {
	tb.Helper()
	cons, err := env.Store.JetStream().OrderedConsumer(context.Background(), names.EventStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		tb.Fatal(err)
	}
	var ds []Delivery
	for len(ds) < n {
		batch, err := cons.Fetch(n-len(ds), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			tb.Fatal(err)
		}
		for m := range batch.Messages() {
			md, _ := m.Metadata()
			ds = append(ds, Delivery{Seq: md.Sequence.Stream, Subject: m.Subject(), Header: m.Headers(), Data: m.Data(), Delivered: 1})
		}
	}
	return ds
}
