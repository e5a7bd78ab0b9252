package streams_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
	"github.com/strand-dev/strand/streams"
	"github.com/strand-dev/strand/streams/streamstest"
)

// durabilityEnv is one deployment the durability benchmarks write to, with
// two stores on it: one with group commit (the default), one without.
type durabilityEnv struct {
	name     string
	nc       *nats.Conn
	replicas int
	grouped  *streams.Store
	single   *streams.Store
}

// durabilityEnvs starts the four deployments operators choose between: one
// embedded server and a three-node cluster (in this process, on loopback),
// each with and without an fsync on every write. Clients connect to the
// event stream's leader.
func durabilityEnvs(b *testing.B) []durabilityEnv {
	b.Helper()
	ctx := context.Background()
	open := func(nc *nats.Conn, replicas int, noGroup bool) *streams.Store {
		st, err := streams.Open(ctx, nc, streams.Config{Replicas: replicas, NoGroupCommit: noGroup, ForceGroupCommit: !noGroup}, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(st.Close)
		return st
	}
	var out []durabilityEnv
	for _, fsync := range []bool{false, true} {
		env := streamstest.Start(b, streamstest.Options{SyncAlways: fsync})
		out = append(out, durabilityEnv{name: fmt.Sprintf("R1/fsync=%v", fsync), nc: env.NC, replicas: 1,
			grouped: open(env.NC, 1, false), single: open(env.NC, 1, true)})
	}
	for _, fsync := range []bool{false, true} {
		c := streamstest.StartCluster(b, streamstest.ClusterOptions{SyncAlways: fsync})
		open(c.Connect(b, 0), 3, true)
		nc := c.Connect(b, c.StreamLeader(b, names.EventStream))
		out = append(out, durabilityEnv{name: fmt.Sprintf("R3/fsync=%v", fsync), nc: nc, replicas: 3,
			grouped: open(nc, 3, false), single: open(nc, 3, true)})
	}
	return out
}

// BenchmarkStore_ChangeDurability measures the append path (Store.Change:
// decide on the cached head, publish with the session's expected sequence
// and the request id, wait for the acknowledgement) on each deployment,
// with 1, 8 or 32 writes arriving together on different sessions (one
// iteration = one such round), through a store with group commit (the
// default) and one without (one publish per append). writes/s is the
// durable throughput; µs/round what each writer of a round waited.
func BenchmarkStore_ChangeDurability(b *testing.B) {
	envs := durabilityEnvs(b)
	g := &ids{} // one generator: sessions of different runs must not collide
	for _, e := range envs {
		for _, writers := range []int{1, 8, 32} {
			for _, mode := range []string{"group-commit", "one-publish-each"} {
				st := e.grouped
				if mode == "one-publish-each" {
					st = e.single
				}
				b.Run(fmt.Sprintf("%s/writers=%d/%s", e.name, writers, mode), func(b *testing.B) {
					benchChanges(b, st, g, writers)
				})
			}
		}
	}
}

func benchChanges(b *testing.B, st *streams.Store, g *ids, writers int) {
	ctx := context.Background()
	var sessions []*domain.Session
	for range writers {
		sessions = append(sessions, create(b, st, g, "bench"))
	}
	content := domain.Sum([]byte("package main\n"))
	rounds := 0
	start := time.Now()
	for b.Loop() {
		var wg sync.WaitGroup
		for w, s := range sessions {
			wg.Add(1)
			go func() {
				defer wg.Done()
				m := meta(g, "bench")
				m.RequestID = fmt.Sprintf("r%d-%d", w, rounds)
				_, err := st.Change(ctx, "bench", s.ID, m, func(*domain.Session) (domain.Command, error) {
					return domain.ChangeFiles{Ops: []domain.FileOp{{Kind: domain.OpWrite, Path: fmt.Sprintf("f%d", rounds%64), Content: content, Size: 13}}}, nil
				})
				if err != nil {
					b.Error(err)
				}
			}()
		}
		wg.Wait()
		rounds++
	}
	el := time.Since(start)
	b.ReportMetric(float64(rounds*writers)/el.Seconds(), "writes/s")
	b.ReportMetric(float64(el.Microseconds())/float64(rounds), "µs/round")
}

// BenchmarkGroupCommit compares, on the same servers in the same run, the
// two ways N appends to N different subjects (sessions) can reach the
// stream: one publish each (sent together, each with its own
// expected-last-subject-sequence, N acknowledgements), or one atomic batch
// of the N messages (each still with its own expectation; one commit, so
// one fsync on one server). Scratch streams, not Strand's own.
func BenchmarkGroupCommit(b *testing.B) {
	envs := durabilityEnvs(b)
	for _, e := range envs {
		js, err := jetstream.New(e.nc)
		if err != nil {
			b.Fatal(err)
		}
		replicas := e.replicas
		ctx := context.Background()
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
			Name: "GC", Subjects: []string{"gc.>"}, Storage: jetstream.FileStorage, Replicas: replicas,
			AllowAtomicPublish: true, Duplicates: time.Minute,
		}); err != nil {
			b.Fatal(err)
		}
		for _, n := range []int{8, 32} {
			last := make([]uint64, n)
			b.Run(fmt.Sprintf("%s/appends=%d/one-publish-each", e.name, n), func(b *testing.B) {
				start, rounds := time.Now(), 0
				for b.Loop() {
					var wg sync.WaitGroup
					for i := range n {
						wg.Add(1)
						go func() {
							defer wg.Done()
							m := nats.NewMsg("gc." + strconv.Itoa(n) + "." + strconv.Itoa(i))
							m.Data = []byte("event")
							ack, err := js.PublishMsg(ctx, m, jetstream.WithExpectLastSequencePerSubject(last[i]))
							if err != nil {
								b.Error(err)
								return
							}
							last[i] = ack.Sequence
						}()
					}
					wg.Wait()
					rounds++
				}
				b.ReportMetric(float64(rounds*n)/time.Since(start).Seconds(), "appends/s")
			})
			b.Run(fmt.Sprintf("%s/appends=%d/atomic-batch", e.name, n), func(b *testing.B) {
				start, rounds := time.Now(), 0
				for b.Loop() {
					subject := func(i int) string { return "gc." + strconv.Itoa(n) + "." + strconv.Itoa(i) }
					if err := appendBatch(e.nc, subject, []byte("event"), last); err != nil {
						b.Fatal(err)
					}
					rounds++
				}
				b.ReportMetric(float64(rounds*n)/time.Since(start).Seconds(), "appends/s")
			})
		}
	}
}

var batchIDs atomic.Uint64

// appendBatch stores one message on each of len(last) subjects as one
// atomic batch, each expecting its subject's last sequence in last, and
// moves last on to the sequences stored (seq-n+1 .. seq).
func appendBatch(nc *nats.Conn, subject func(i int) string, data []byte, last []uint64) error {
	msgs := make([]*nats.Msg, len(last))
	for i := range msgs {
		m := nats.NewMsg(subject(i))
		m.Data = data
		m.Header.Set("Nats-Expected-Last-Subject-Sequence", strconv.FormatUint(last[i], 10))
		msgs[i] = m
	}
	seq, err := atomicBatch(nc, msgs)
	if err != nil {
		return err
	}
	for i := range last {
		last[i] = seq - uint64(len(last)-1-i)
	}
	return nil
}

// atomicBatch publishes msgs as one atomic batch (ADR-50, headers only:
// nats.go v1.55 has no batch API) and returns the sequence of the last one.
func atomicBatch(nc *nats.Conn, msgs []*nats.Msg) (uint64, error) {
	id := "b" + strconv.FormatInt(time.Now().UnixNano(), 36) + strconv.FormatUint(batchIDs.Add(1), 36)
	for i, m := range msgs {
		m.Header.Set(names.HeaderBatchID, id)
		m.Header.Set(names.HeaderBatchSequence, strconv.Itoa(i+1))
		last := i == len(msgs)-1
		if last {
			m.Header.Set(names.HeaderBatchCommit, "1")
		}
		if i > 0 && !last {
			if err := nc.PublishMsg(m); err != nil {
				return 0, err
			}
			continue
		}
		r, err := nc.RequestMsg(m, 10*time.Second)
		if err != nil {
			return 0, err
		}
		if !last && len(r.Data) == 0 {
			continue
		}
		var ack struct {
			Seq   uint64 `json:"seq"`
			Error *struct {
				ErrCode     int    `json:"err_code"`
				Description string `json:"description"`
			} `json:"error"`
		}
		if err := json.Unmarshal(r.Data, &ack); err != nil {
			return 0, err
		}
		if ack.Error != nil {
			return 0, fmt.Errorf("batch rejected: %d %s", ack.Error.ErrCode, ack.Error.Description)
		}
		if last {
			return ack.Seq, nil
		}
	}
	return 0, fmt.Errorf("empty batch")
}

// BenchmarkFsyncSharing measures, on one embedded server that fsyncs every
// write (the embedded default), the ways 64 concurrent writers can share
// fsyncs, against the raw baseline of one synchronous publish per write on
// one stream (issue 16, item 7). Each writer appends to a subject of its
// own with a per-subject expectation, as a session's writer does. Scratch
// streams, not Strand's own. writes/s is the figure; compare within a run.
//
//   - one-stream: one synchronous publish per write, one stream (baseline);
//   - one-stream-async: the same writes published asynchronously by each
//     writer, up to 8 in flight each, so the server always has a queue;
//   - streams=K: writer i publishes to stream i mod K, so K streams
//     (each with its own store and fsync) take the writes;
//   - atomic-batch/size=K/inflight=C: C writers each storing rounds of K
//     messages as one atomic batch (one commit), and ms per batch.
func BenchmarkFsyncSharing(b *testing.B) {
	const writers = 64
	env := streamstest.Start(b, streamstest.Options{SyncAlways: true})
	js, err := jetstream.New(env.NC)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	mk := func(name string, atomic bool) {
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{strings.ToLower(name) + ".>"},
			Storage: jetstream.FileStorage, AllowAtomicPublish: atomic}); err != nil {
			b.Fatal(err)
		}
	}
	for k := range 8 {
		mk(fmt.Sprintf("FS%d", k), k == 0)
	}
	run := func(b *testing.B, streams, writers int) {
		round := strconv.FormatInt(time.Now().UnixNano(), 36)
		writeAll(b, writers, rawWrites(ctx, js, writers, func(w int) string { return fmt.Sprintf("fs%d.%s.%d", w%streams, round, w) }))
	}
	for _, n := range []int{16, writers} {
		b.Run(fmt.Sprintf("writers=%d/one-stream", n), func(b *testing.B) { run(b, 1, n) })
	}
	// Strand's own appends (Store.Change, 64 writers on 64 sessions, each
	// writing as fast as it is answered): one publish each, and group
	// commit as strand serve opens it on a server that fsyncs every write.
	g := &ids{}
	for _, mode := range []struct {
		name string
		cfg  streams.Config
	}{{"store/one-publish-each", streams.Config{NoGroupCommit: true}}, {"store/group-commit-min", streams.Config{GroupCommitMin: streams.DefaultGroupCommitMin}}} {
		st, err := streams.Open(ctx, env.NC, mode.cfg, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(st.Close)
		for _, writers := range []int{16, writers} {
			b.Run(fmt.Sprintf("writers=%d/%s", writers, mode.name), func(b *testing.B) {
				sessions := make([]*domain.Session, writers)
				for w := range sessions {
					sessions[w] = create(b, st, g, "bench")
				}
				before := st.AppendStats()
				writeAll(b, writers, changeWrites(ctx, g, func(int) *streams.Store { return st }, sessions))
				// How many shared a sync: appends per atomic batch, and
				// the share of appends that went in one.
				after := st.AppendStats()
				if n := after.Batches - before.Batches; n > 0 {
					b.ReportMetric(float64(after.Batched-before.Batched)/float64(n), "appends/batch")
				}
				b.ReportMetric(float64(after.Batched-before.Batched)/float64(b.N), "batched/append")
			})
		}
	}
	b.Run(fmt.Sprintf("writers=%d/one-stream-async", writers), func(b *testing.B) {
		round := strconv.FormatInt(time.Now().UnixNano(), 36)
		var next atomic.Int64
		total := int64(b.N)
		var wg sync.WaitGroup
		start := time.Now()
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				subj := fmt.Sprintf("fs0.%s.%d", round, w)
				var futs []jetstream.PubAckFuture
				flush := func() {
					for _, f := range futs {
						select {
						case <-f.Ok():
						case err := <-f.Err():
							b.Error(err)
						}
					}
					futs = futs[:0]
				}
				for next.Add(1) <= total {
					m := nats.NewMsg(subj)
					m.Data = smallEvent
					f, err := js.PublishMsgAsync(m)
					if err != nil {
						b.Error(err)
						return
					}
					if futs = append(futs, f); len(futs) == 8 {
						flush()
					}
				}
				flush()
			}()
		}
		wg.Wait()
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "writes/s")
	})
	for _, k := range []int{2, 4, 8} {
		b.Run(fmt.Sprintf("writers=%d/streams=%d", writers, k), func(b *testing.B) { run(b, k, writers) })
	}
	// Atomic batches of size messages (each on a subject of its own, with
	// its expectation), inflight at once: what one costs by size, and
	// whether two in flight are stored side by side.
	for _, v := range [][2]int{{16, 1}, {32, 1}, {64, 1}, {16, 2}, {32, 2}} {
		size, inflight := v[0], v[1]
		b.Run(fmt.Sprintf("atomic-batch/size=%d/inflight=%d", size, inflight), func(b *testing.B) {
			var wg sync.WaitGroup
			var sent atomic.Int64
			start := time.Now()
			for c := range inflight {
				wg.Add(1)
				go func() {
					defer wg.Done()
					last := make([]uint64, size)
					round := strconv.FormatInt(time.Now().UnixNano(), 36) + "-" + strconv.Itoa(c)
					for sent.Add(int64(size)) <= int64(b.N) {
						subject := func(i int) string { return fmt.Sprintf("fs0.%s.%d", round, i) }
						if err := appendBatch(env.NC, subject, smallEvent, last); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			el := time.Since(start)
			b.ReportMetric(float64(b.N)/el.Seconds(), "writes/s")
			b.ReportMetric(el.Seconds()*1000/(float64(b.N)/float64(size*inflight)), "ms/batch")
		})
	}
}

// smallEvent is what raw writers publish: about the size of row 1's events.
var smallEvent = []byte("a small event of about a hundred and sixty bytes, as row 1 of strand bench writes: package main, func main")

// writeAll runs writers goroutines, writer w calling write(w, i) for its
// i-th write, each as soon as the last is answered, until b.N writes are
// done in all, and reports writes/s.
func writeAll(b *testing.B, writers int, write func(w, i int) error) {
	var next atomic.Int64
	total := int64(b.N)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; next.Add(1) <= total; i++ {
				if err := write(w, i); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "writes/s")
}

// rawWrites is writeAll's write for raw JetStream: writer w publishes
// smallEvent to subject(w), expecting its own last sequence there, as
// Strand's appends expect the session's.
func rawWrites(ctx context.Context, js jetstream.JetStream, writers int, subject func(w int) string) func(w, i int) error {
	last := make([]uint64, writers)
	return func(w, _ int) error {
		m := nats.NewMsg(subject(w))
		m.Data = smallEvent
		ack, err := js.PublishMsg(ctx, m, jetstream.WithExpectLastSequencePerSubject(last[w]))
		if err != nil {
			return err
		}
		last[w] = ack.Sequence
		return nil
	}
}

// changeWrites is writeAll's write for Store.Change: writer w writes one
// small file (one of 64 paths) to sessions[w] through store(w).
func changeWrites(ctx context.Context, g *ids, store func(w int) *streams.Store, sessions []*domain.Session) func(w, i int) error {
	content := domain.Sum([]byte("package main\n"))
	return func(w, i int) error {
		_, err := store(w).Change(ctx, "bench", sessions[w].ID, meta(g, "bench"), func(*domain.Session) (domain.Command, error) {
			return domain.ChangeFiles{Ops: []domain.FileOp{{Kind: domain.OpWrite, Path: fmt.Sprintf("f%d", i%64), Content: content, Size: 13}}}, nil
		})
		return err
	}
}
