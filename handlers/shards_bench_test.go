package handlers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/handlers"
	"github.com/strand-dev/strand/streams"
	"github.com/strand-dev/strand/streams/streamstest"
)

// BenchmarkWrite_Sharded is BenchmarkShardedStreams (package streams)
// through the service: what design record 0019's sharded event streams
// would give row 1 (64 clients, fsync on every write), without a sharded
// store. One embedded server fsyncing every write gets maxShards accounts,
// each with JetStream, a Store (so a STRAND_EVENTS of its own, all on one
// disk) and a Service with the embedded default's group commit. Client w
// writes small files to a session of account w mod shards through that
// account's service; raw one-publish-per-write on one stream, with a
// per-subject expectation as row 1's, runs in the same benchmark. ops/s is
// the figure: compare within a run.
func BenchmarkWrite_Sharded(b *testing.B) {
	const maxShards = 4
	accts := streamstest.StartAccounts(b, maxShards, streamstest.Options{SyncAlways: true})
	ctx := context.Background()
	// Each account: the service on a connection of its own, as strand
	// serve runs it, and one for its clients.
	clients := make([]*client.Client, maxShards)
	stores := make([]*streams.Store, maxShards)
	var js jetstream.JetStream
	for k := range maxShards {
		nc := accts.Connect(b, k)
		st, err := streams.Open(ctx, nc, streams.Config{GroupCommitMin: streams.DefaultGroupCommitMin}, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		stores[k] = st
		svc := handlers.NewService(st, handlers.Options{})
		if err := svc.Start(nc); err != nil {
			b.Fatal(err)
		}
		defer svc.Stop()
		cnc := accts.Connect(b, k)
		clients[k] = client.NewClient(cnc, "bench")
		if k == 0 {
			js, _ = jetstream.New(cnc)
		}
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "RAW", Subjects: []string{"raw.>"}, Storage: jetstream.FileStorage}); err != nil {
		b.Fatal(err)
	}
	content := []byte(strings.Repeat("package main // x\n", 9)[:160])
	for _, writers := range []int{16, 64} {
		b.Run(fmt.Sprintf("writers=%d/raw-one-stream", writers), func(b *testing.B) {
			concurrent(b, writers, rawPublish(ctx, js, writers, content))
		})
		for _, shards := range []int{1, 2, 4} {
			b.Run(fmt.Sprintf("writers=%d/shards=%d", writers, shards), func(b *testing.B) {
				sessions := make([]string, writers)
				for w := range sessions {
					s, err := clients[w%shards].CreateSession(ctx, client.CreateSessionRequest{})
					if err != nil {
						b.Fatal(err)
					}
					sessions[w] = s.Session.ID
				}
				var before []streams.AppendStats
				for _, st := range stores[:shards] {
					before = append(before, st.AppendStats())
				}
				concurrent(b, writers, func(w, i int) error {
					_, err := clients[w%shards].Write(ctx, client.WriteRequest{Session: sessions[w], Path: fmt.Sprintf("src/file%02d.go", i%50), Content: content})
					return err
				})
				// How group commit fared: the share of appends stored in
				// atomic batches, and their mean size.
				var appended, batches, batched uint64
				for k, st := range stores[:shards] {
					s := st.AppendStats()
					appended += s.Appended - before[k].Appended
					batches += s.Batches - before[k].Batches
					batched += s.Batched - before[k].Batched
				}
				if appended > 0 && batches > 0 {
					b.ReportMetric(float64(batched)/float64(appended), "batched-share")
					b.ReportMetric(float64(batched)/float64(batches), "batch-size")
				}
			})
		}
	}
}
