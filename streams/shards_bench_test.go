package streams_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/streams"
	"github.com/strand-dev/strand/streams/streamstest"
)

// BenchmarkShardedStreams measures what design record 0019 (sharded event
// streams, proposed) would gain, without a sharded store: one embedded
// server fsyncing every write, with maxShards accounts, each with
// JetStream and a Store of its own (so a STRAND_EVENTS of its own, all on
// one disk). Writer w appends to a session of store w mod shards, each as
// fast as it is answered; raw one-publish-per-write on one stream runs in
// the same benchmark as the baseline. writes/s is the figure: compare
// within a run. docs/design/0019 quotes it.
func BenchmarkShardedStreams(b *testing.B) {
	const maxShards = 8
	accts := streamstest.StartAccounts(b, maxShards, streamstest.Options{SyncAlways: true})
	ctx := context.Background()
	conns := make([]*nats.Conn, maxShards)
	for k := range conns {
		conns[k] = accts.Connect(b, k)
	}
	js, _ := jetstream.New(conns[0])
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "RAW", Subjects: []string{"raw.>"}, Storage: jetstream.FileStorage}); err != nil {
		b.Fatal(err)
	}
	raw := func(b *testing.B, writers int) {
		round := strconv.FormatInt(time.Now().UnixNano(), 36)
		writeAll(b, writers, rawWrites(ctx, js, writers, func(w int) string { return fmt.Sprintf("raw.%s.%d", round, w) }))
	}
	g := &ids{}
	for _, mode := range []struct {
		name string
		cfg  streams.Config
	}{{"one-each", streams.Config{NoGroupCommit: true}}, {"group-min16", streams.Config{GroupCommitMin: streams.DefaultGroupCommitMin}}, {"group-min8", streams.Config{GroupCommitMin: 8}}} {
		stores := make([]*streams.Store, maxShards)
		for k := range stores {
			st, err := streams.Open(ctx, conns[k], mode.cfg, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			stores[k] = st
		}
		for _, writers := range []int{16, 64} {
			b.Run(fmt.Sprintf("writers=%d/raw-one-stream", writers), func(b *testing.B) { raw(b, writers) })
			for _, shards := range []int{1, 2, 4, 8} {
				b.Run(fmt.Sprintf("writers=%d/%s/shards=%d", writers, mode.name, shards), func(b *testing.B) {
					sessions := make([]*domain.Session, writers)
					for w := range sessions {
						sessions[w] = create(b, stores[w%shards], g, "bench")
					}
					writeAll(b, writers, changeWrites(ctx, g, func(w int) *streams.Store { return stores[w%shards] }, sessions))
				})
			}
		}
	}
}
