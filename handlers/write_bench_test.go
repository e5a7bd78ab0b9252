package handlers_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/handlers"
	"github.com/strand-dev/strand/names"
	"github.com/strand-dev/strand/projections"
	"github.com/strand-dev/strand/streams"
	"github.com/strand-dev/strand/streams/streamstest"
)

// BenchmarkWrite_RoundTrip measures a small-file write through the service
// (request, content stored, event appended with its expectation, reply)
// next to the substrate's limit for the same durable work: a JetStream
// publish with a per-subject expectation, on the same embedded server in the
// same run. It reports both latencies and their ratio (raw/strand, so 0.5
// means Strand reaches half the raw throughput).
func BenchmarkWrite_RoundTrip(b *testing.B) {
	for _, c := range []struct {
		fsync bool
		group int // streams.Config.GroupCommitMin: the embedded default with fsync
	}{{false, 0}, {true, 0}, {true, streams.DefaultGroupCommitMin}} {
		b.Run(fmt.Sprintf("fsync=%v/group=%v", c.fsync, c.group > 0), func(b *testing.B) {
			env := streamstest.Start(b, streamstest.Options{SyncAlways: c.fsync, Config: streams.Config{GroupCommitMin: c.group}})
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

// BenchmarkWrite_Concurrent measures small-file writes through the service
// from 16 concurrent clients (each on a session of its own, on a connection
// of their own) against as many raw publishers with a per-subject
// expectation, on one embedded server without fsync: the shape of row 1 of
// strand bench, small enough for a CPU profile of the service's side alone
// (go test -bench 'Concurrent/strand$' -cpuprofile). strand-read-models
// writes with the read models folding in the process, as strand serve runs
// them, and strand-3-followers with three durable consumers that only
// take and acknowledge the events: what the read models' reading of the
// stream alone costs the writes.
func BenchmarkWrite_Concurrent(b *testing.B) {
	const clients = 16
	env := streamstest.Start(b, streamstest.Options{})
	svc := handlers.NewService(env.Store, handlers.Options{})
	if err := svc.Start(env.NC); err != nil {
		b.Fatal(err)
	}
	defer svc.Stop()
	ctx := context.Background()
	nc, err := nats.Connect(env.Server.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	cl := client.NewClient(nc, "bench")
	js, _ := jetstream.New(nc)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "RAW", Subjects: []string{"raw.>"}, Storage: jetstream.FileStorage}); err != nil {
		b.Fatal(err)
	}
	sessions := make([]string, clients)
	for i := range sessions {
		s, err := cl.CreateSession(ctx, client.CreateSessionRequest{})
		if err != nil {
			b.Fatal(err)
		}
		sessions[i] = s.Session.ID
	}
	content := bytes.Repeat([]byte("package main // x\n"), 9)[:160]
	write := func(w, i int) error {
		_, err := cl.Write(ctx, client.WriteRequest{Session: sessions[w], Path: fmt.Sprintf("src/file%02d.go", i%50), Content: content})
		return err
	}
	b.Run("strand", func(b *testing.B) {
		concurrent(b, clients, write)
	})
	// As the mount and the working copy write: every request with an id
	// of its own (idempotent retries), which the service looks up in the
	// request index before deciding, and the index records.
	b.Run("strand-request-id", func(b *testing.B) {
		prefix := strconv.FormatInt(time.Now().UnixNano(), 36)
		concurrent(b, clients, func(w, i int) error {
			_, err := cl.Write(ctx, client.WriteRequest{Mutation: client.Mutation{RequestID: fmt.Sprintf("%s-%d-%d", prefix, w, i)},
				Session: sessions[w], Path: fmt.Sprintf("src/file%02d.go", i%50), Content: content})
			return err
		})
	})
	// As strand serve runs: the read models (session views, activity
	// feed, stats) folding every event in the same process. The CPU per
	// write includes their folding of it (they are caught up first, and
	// again before the figure is taken).
	b.Run("strand-read-models", func(b *testing.B) {
		m, err := projections.OpenReadModels(ctx, env.Store.JetStream(), 1, false, streams.Retry, nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := m.Start(ctx); err != nil {
			b.Fatal(err)
		}
		defer func() {
			m.Stop()
			// The durable consumers go, so that nothing follows the
			// stream through the cases after this one.
			for _, spec := range m.Specs() {
				if st, err := projections.StatusOf(ctx, env.Store.JetStream(), names.EventStream, spec); err == nil && st.Consumer != "" {
					_ = env.Store.JetStream().DeleteConsumer(ctx, names.EventStream, st.Consumer)
				}
			}
		}()
		caughtUp := func() {
			for _, spec := range m.Specs() {
				streamstest.Wait(b, time.Minute, spec.Name+" caught up", func() bool {
					st, err := projections.StatusOf(ctx, env.Store.JetStream(), names.EventStream, spec)
					if err != nil {
						b.Fatal(err)
					}
					return st.Lag == 0
				})
			}
		}
		caughtUp()
		concurrent(b, clients, write, caughtUp)
	})
	// What following the event stream costs the writes alone: three
	// durable consumers, as many as the read models have, each taking the
	// events live in pulls of up to 1,000 and acknowledging them and
	// nothing else.
	b.Run("strand-3-followers", func(b *testing.B) {
		var ccs []jetstream.ConsumeContext
		var pending []jetstream.Consumer
		for k := range 3 {
			cons, err := js.CreateConsumer(ctx, names.EventStream, jetstream.ConsumerConfig{
				Durable: fmt.Sprintf("bench-follower-%d-%d", k, time.Now().UnixNano()), AckPolicy: jetstream.AckAllPolicy,
				DeliverPolicy: jetstream.DeliverNewPolicy, MaxAckPending: 10000})
			if err != nil {
				b.Fatal(err)
			}
			cc, err := cons.Consume(func(m jetstream.Msg) {
				// AckAll: every 100th, and the last one pending.
				md, err := m.Metadata()
				if err == nil && (md.NumPending == 0 || md.Sequence.Consumer%100 == 0) {
					_ = m.Ack()
				}
			}, jetstream.PullMaxMessages(1000))
			if err != nil {
				b.Fatal(err)
			}
			ccs = append(ccs, cc)
			pending = append(pending, cons)
		}
		defer func() {
			for k, cc := range ccs {
				cc.Stop()
				_ = js.DeleteConsumer(ctx, names.EventStream, pending[k].CachedInfo().Name)
			}
		}()
		caughtUp := func() {
			for _, cons := range pending {
				streamstest.Wait(b, time.Minute, "a follower caught up", func() bool {
					info, err := cons.Info(ctx)
					if err != nil {
						b.Fatal(err)
					}
					return info.NumPending+uint64(info.NumAckPending) == 0
				})
			}
		}
		concurrent(b, clients, write, caughtUp)
	})
	b.Run("raw", func(b *testing.B) {
		concurrent(b, clients, rawPublish(ctx, js, clients, content))
	})
}

// rawPublish is the raw side of the concurrent write benchmarks: worker w
// publishes content to a subject of its own, expecting its last sequence
// there, as a Strand write expects its session's head.
func rawPublish(ctx context.Context, js jetstream.JetStream, workers int, content []byte) func(w, i int) error {
	last := make([]uint64, workers)
	prefix := fmt.Sprintf("raw.%d.", time.Now().UnixNano())
	return func(w, i int) error {
		m := nats.NewMsg(prefix + strconv.Itoa(w))
		m.Data = content
		ack, err := js.PublishMsg(ctx, m, jetstream.WithExpectLastSequencePerSubject(last[w]))
		if err != nil {
			return err
		}
		last[w] = ack.Sequence
		return nil
	}
}

// concurrent runs op from n goroutines, b.N calls in all (rounded up to a
// multiple of n), worker w's i-th call as op(w, i), then each of after
// (waiting for work the calls left behind, which the figures then
// include), and reports the calls a second and the process's CPU time per
// call.
func concurrent(b *testing.B, n int, op func(w, i int) error, after ...func()) {
	b.Helper()
	var wg sync.WaitGroup
	var failed atomic.Value
	per := b.N/n + 1
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	for w := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				if err := op(w, i); err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, ok := failed.Load().(error); ok {
		b.Fatal(err)
	}
	for _, f := range after {
		f()
	}
	b.ReportMetric(float64(per*n)/time.Since(start).Seconds(), "ops/s")
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(per*n), "cpu-µs/op")
}

// cpuTime is the CPU time (user and system) the process has used: the
// embedded server, the service and the clients together. On a machine
// shared with other work it is steadier than throughput.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchSession starts the service on env's connection and returns a
// client of tenant bench and a new session of it.
func benchSession(b *testing.B, env *streamstest.Env) (*client.Client, string) {
	b.Helper()
	svc := handlers.NewService(env.Store, handlers.Options{})
	if err := svc.Start(env.NC); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = svc.Stop() })
	cl := client.NewClient(env.NC, "bench")
	sess, err := cl.CreateSession(context.Background(), client.CreateSessionRequest{})
	if err != nil {
		b.Fatal(err)
	}
	return cl, sess.Session.ID
}

// BenchmarkBatch_Bulk is row 9 of strand bench in small: one fs.batch of
// 1,000 files of 200 bytes (all inline, one event) through the service on
// one embedded server without fsync, for a CPU profile of a bulk change.
func BenchmarkBatch_Bulk(b *testing.B) {
	cl, id := benchSession(b, streamstest.Start(b, streamstest.Options{}))
	ctx := context.Background()
	ops := make([]client.BatchOp, 1000)
	line := []byte("func f() { return 42 } // some source text\n")
	rep := 0
	cpu0 := cpuTime()
	for b.Loop() {
		rep++
		for i := range ops {
			c := make([]byte, 200)
			for k := 0; k < len(c); k += copy(c[k:], line) {
			}
			copy(c, fmt.Sprintf("%d/%d", rep, i))
			ops[i] = client.BatchOp{Op: "write", Path: fmt.Sprintf("d%02d/f%04d.go", i%10, i), Content: c}
		}
		if _, err := cl.Batch(ctx, client.BatchRequest{Session: id, Ops: ops}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(rep), "cpu-µs/op")
}

// BenchmarkBatch_Blobs is one fs.batch of 200 files of 4 KiB (above the
// inline limit, so each is a blob stored before the event) on one
// embedded server that fsyncs every write (with group commit, as strand
// serve runs it there, so the blobs go in atomic batches), and on one that
// does not (blobs one by one); new content every time, or (stored) the
// same content again, which the store holds already.
func BenchmarkBatch_Blobs(b *testing.B) {
	for _, c := range []struct{ fsync, stored bool }{{true, false}, {false, false}, {true, true}} {
		fsync := c.fsync
		name := fmt.Sprintf("fsync=%v", fsync)
		if c.stored {
			name += "/stored"
		}
		b.Run(name, func(b *testing.B) {
			var cfg streams.Config
			if fsync {
				cfg.GroupCommitMin = streams.DefaultGroupCommitMin
			}
			cl, id := benchSession(b, streamstest.Start(b, streamstest.Options{SyncAlways: fsync, Config: cfg}))
			ctx := context.Background()
			ops := make([]client.BatchOp, 200)
			rep := 0
			for b.Loop() {
				if !c.stored || rep == 0 {
					rep++
				}
				for i := range ops {
					data := bytes.Repeat([]byte("x"), 4096)
					copy(data, fmt.Sprintf("%d/%d", rep, i))
					ops[i] = client.BatchOp{Op: "write", Path: fmt.Sprintf("d%02d/f%04d.bin", i%10, i), Content: data}
				}
				if _, err := cl.Batch(ctx, client.BatchRequest{Session: id, Ops: ops}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkUpload is fs.upload of new 512 KiB chunks (as a mount's flush
// and a large write send them) in a MessagePack body, as the Go client
// sends it, and in JSON (base64), on one embedded server without fsync.
func BenchmarkUpload(b *testing.B) {
	cl, id := benchSession(b, streamstest.Start(b, streamstest.Options{}))
	ctx := context.Background()
	for _, enc := range []string{"msgpack", "json"} {
		b.Run(enc, func(b *testing.B) {
			c := client.NewClient(cl.Conn(), "bench")
			c.JSONRequests = enc == "json"
			chunk := make([]byte, domain.DefaultChunkSize)
			rng := rand.NewChaCha8([32]byte{byte(len(enc))})
			b.SetBytes(int64(len(chunk)))
			cpu0 := cpuTime()
			for b.Loop() {
				_, _ = rng.Read(chunk)
				if _, err := c.Upload(ctx, id, chunk); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}

// BenchmarkUpload_InFlight is fs.upload of new 512 KiB chunks four at a
// time, as a mount's flush and a push send a large file's chunks, on one
// embedded server without fsync and on one that fsyncs every write with
// group commit on (as strand serve runs it). Each chunk is a put of its
// own: chunks that arrive together made into one atomic batch were half
// as fast with fsync (docs/benchmarks.md, twenty-fourth session).
func BenchmarkUpload_InFlight(b *testing.B) {
	for _, c := range []struct {
		name  string
		fsync bool
	}{{"no-fsync", false}, {"fsync", true}} {
		b.Run(c.name, func(b *testing.B) {
			cfg := streams.Config{}
			if c.fsync {
				cfg.GroupCommitMin = streams.DefaultGroupCommitMin
			}
			cl, id := benchSession(b, streamstest.Start(b, streamstest.Options{SyncAlways: c.fsync, Config: cfg}))
			cl = client.NewClient(cl.Conn(), "bench")
			ctx := context.Background()
			b.SetBytes(domain.DefaultChunkSize)
			next := make(chan struct{})
			g, gctx := errgroup.WithContext(ctx)
			for w := range 4 {
				g.Go(func() error {
					chunk := make([]byte, domain.DefaultChunkSize)
					rng := rand.NewChaCha8([32]byte{byte(w)})
					for range next {
						_, _ = rng.Read(chunk)
						if _, err := cl.Upload(gctx, id, chunk); err != nil {
							return err
						}
					}
					return nil
				})
			}
			for b.Loop() {
				next <- struct{}{}
			}
			close(next)
			if err := g.Wait(); err != nil {
				b.Fatal(err)
			}
		})
	}
}
