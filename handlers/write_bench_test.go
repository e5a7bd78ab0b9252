package handlers_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/handlers"
	"github.com/strand-dev/strand/streams/streamstest"
)

// BenchmarkWrite_RoundTrip measures a small-file write through the service
// (request, content stored, event appended with its expectation, reply)
// next to the substrate's limit for the same durable work: a JetStream
// publish with a per-subject expectation, on the same embedded server in the
// same run. It reports both latencies and their ratio (raw/strand, so 0.5
// means Strand reaches half the raw throughput).
func BenchmarkWrite_RoundTrip(b *testing.B) {
	for _, fsync := range []bool{false, true} {
		b.Run(fmt.Sprintf("fsync=%v", fsync), func(b *testing.B) {
			env := streamstest.Start(b, streamstest.Options{SyncAlways: fsync})
			svc := handlers.NewService(env.Store, handlers.Options{})
			if err := svc.Start(env.NC); err != nil {
				b.Fatal(err)
			}
			defer svc.Stop()
			ctx := context.Background()
			cl := client.NewClient(env.NC, "bench")
			sess, err := cl.CreateSession(ctx, client.CreateSessionRequest{})
			if err != nil {
				b.Fatal(err)
			}
			js, _ := jetstream.New(env.NC)
			if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "RAW", Subjects: []string{"raw.>"}, Storage: jetstream.FileStorage}); err != nil {
				b.Fatal(err)
			}
			content := []byte("package main\n\nfunc main() {}\n")

			var strandTime, rawTime time.Duration
			var last uint64
			i := 0
			for b.Loop() {
				i++
				t0 := time.Now()
				if _, err := cl.Write(ctx, client.WriteRequest{Session: sess.Session.ID, Path: fmt.Sprintf("src/f%d.go", i%100), Content: append(content, byte(i))}); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				m := nats.NewMsg("raw.session")
				m.Data = append(content, byte(i))
				ack, err := js.PublishMsg(ctx, m, jetstream.WithExpectLastSequencePerSubject(last))
				if err != nil {
					b.Fatal(err)
				}
				last = ack.Sequence
				t2 := time.Now()
				strandTime += t1.Sub(t0)
				rawTime += t2.Sub(t1)
			}
			if i > 0 {
				b.ReportMetric(float64(strandTime.Microseconds())/float64(i), "strand-µs/op")
				b.ReportMetric(float64(rawTime.Microseconds())/float64(i), "raw-µs/op")
				b.ReportMetric(float64(rawTime)/float64(strandTime), "raw/strand")
			}
		})
	}
}

// BenchmarkWrite_InlineThreshold measures one client's write latency by
// content size around domain.MaxInlineBytes: up to it the content travels
// inside the event (one stored message), above it it is a blob first (two).
// Design record 0009 quotes it.
func BenchmarkWrite_InlineThreshold(b *testing.B) {
	for _, fsync := range []bool{false, true} {
		for _, size := range []int{160, domain.MaxInlineBytes, domain.MaxInlineBytes + 1, 4096, 16384} {
			b.Run(fmt.Sprintf("fsync=%v/size=%d", fsync, size), func(b *testing.B) {
				env := streamstest.Start(b, streamstest.Options{SyncAlways: fsync})
				svc := handlers.NewService(env.Store, handlers.Options{})
				if err := svc.Start(env.NC); err != nil {
					b.Fatal(err)
				}
				defer svc.Stop()
				ctx := context.Background()
				cl := client.NewClient(env.NC, "bench")
				sess, err := cl.CreateSession(ctx, client.CreateSessionRequest{})
				if err != nil {
					b.Fatal(err)
				}
				content := bytes.Repeat([]byte("x"), size)
				i := 0
				for b.Loop() {
					i++
					copy(content, fmt.Sprintf("%08d", i))
					if _, err := cl.Write(ctx, client.WriteRequest{Session: sess.Session.ID, Path: fmt.Sprintf("src/f%d", i%100), Content: content}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
