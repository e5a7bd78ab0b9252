//go:build unix

package audit

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
	"github.com/strand-dev/strand/streams/streamstest"
)

// benchEvents is how many events the replay benchmark stores:
// STRAND_AUDIT_BENCH_EVENTS overrides the default of one million.
func benchEvents(b *testing.B) int {
	if v := os.Getenv("STRAND_AUDIT_BENCH_EVENTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1000 {
			b.Fatalf("STRAND_AUDIT_BENCH_EVENTS=%q: want a number >= 1000", v)
		}
		return n
	}
	return 1_000_000
}

// benchStore fills a stream with n events without the service: sessions
// (named s0000, s0001, ... in tenant bench) written in bursts of 10 to 50
// events, each over a working set of files in 10 directories with content
// from a pool of 1,000 stored blobs, with a directory made, a file renamed
// or removed now and then, a checkpoint every 100 events and a restore to a
// few events back every 250. Events are decided with domain.Execute,
// encoded, and published asynchronously in order, so each one's position
// is known in advance.
func benchStore(b *testing.B, env *streamstest.Env, n, sessions, files int) {
	b.Helper()
	ctx := context.Background()
	js := env.Store.JetStream()
	const pool = 1000
	var blobs [pool]domain.Hash
	var sizes [pool]int64
	for i := range pool {
		content := []byte(fmt.Sprintf("package p%d\n\n// content %d\n", i%17, i))
		h, err := env.Store.Blobs.Put(ctx, content)
		if err != nil {
			b.Fatal(err)
		}
		blobs[i], sizes[i] = h, int64(len(content))
	}
	type sess struct {
		s      *domain.Session
		recent []*domain.Session // the last states, for restores
	}
	all := make([]*sess, sessions)
	var seq uint64
	var pending []jetstream.PubAckFuture
	settle := func() {
		select {
		case <-js.PublishAsyncComplete():
		case <-time.After(time.Minute):
			b.Fatal("publish did not complete")
		}
		for _, f := range pending {
			select {
			case ack := <-f.Ok():
				_ = ack
			case err := <-f.Err():
				b.Fatalf("publish: %v", err)
			}
		}
		pending = pending[:0]
	}
	at := time.Unix(1_700_000_000, 0)
	publish := func(x *sess, cmd domain.Command, actor string) {
		seq++
		var past domain.Past
		if x.s != nil {
			past = func(p uint64) (*domain.Session, error) {
				for _, r := range x.recent {
					if r.Position == p {
						return r, nil
					}
				}
				return nil, domain.ErrPositionUnknown
			}
		}
		meta := domain.Meta{EventID: strconv.FormatUint(seq, 36), Actor: actor, Time: at.Add(time.Duration(seq) * time.Millisecond)}
		ev, next, err := domain.Execute(x.s, cmd, meta, past)
		if err != nil {
			b.Fatalf("event %d: %v", seq, err)
		}
		body, err := ev.Encode()
		if err != nil {
			b.Fatal(err)
		}
		m := nats.NewMsg(EventSubject(ev.Tenant, ev.Session))
		m.Header.Set(headerType, string(ev.Type))
		m.Header.Set(headerVersion, strconv.FormatUint(ev.Version, 10))
		m.Data = body
		f, err := js.PublishMsgAsync(m)
		if err != nil {
			b.Fatal(err)
		}
		pending = append(pending, f)
		if len(pending) >= 2000 { // below the client's limit of 4000 in flight
			settle()
		}
		next.Commit(ev, seq, domain.Sum(body))
		x.s = next
		if x.recent = append(x.recent, next); len(x.recent) > 32 {
			x.recent = x.recent[1:]
		}
	}
	for i := range all {
		all[i] = &sess{}
		publish(all[i], domain.CreateSession{ID: fmt.Sprintf("s%04d", i), Tenant: "bench", Owner: "bench"}, "bench")
	}
	for i := 0; seq < uint64(n); i = (i + 1) % sessions {
		x := all[i]
		burst := 10 + int(seq%41)
		for j := 0; j < burst && seq < uint64(n); j++ {
			v := x.s.Version
			actor := "agent-" + strconv.Itoa(int(v%3))
			switch {
			case v%250 == 0 && len(x.recent) > 8:
				publish(x, domain.RestoreSession{To: x.recent[len(x.recent)-8].Position}, actor)
			case v%100 == 0:
				publish(x, domain.CreateCheckpoint{Name: "cp" + strconv.FormatUint(v, 10)}, actor)
			case v%97 == 0:
				publish(x, domain.ChangeFiles{Ops: []domain.FileOp{{Kind: domain.OpMkdir, Path: fmt.Sprintf("extra/d%d", v)}}}, actor)
			case v%53 == 0 && x.s.Tree.Lookup(fmt.Sprintf("dir%d/file%d.go", v%10, v%uint64(files))) != nil &&
				x.s.Tree.Lookup(fmt.Sprintf("dir%d/file%d.go.old", v%10, v%uint64(files))) == nil:
				p := fmt.Sprintf("dir%d/file%d.go", v%10, v%uint64(files))
				publish(x, domain.ChangeFiles{Ops: []domain.FileOp{{Kind: domain.OpRename, Path: p, To: p + ".old"}}}, actor)
			case v%61 == 0 && x.s.Tree.Lookup(fmt.Sprintf("dir%d/file%d.go", v%10, v%uint64(files))) != nil:
				publish(x, domain.ChangeFiles{Ops: []domain.FileOp{{Kind: domain.OpRemove, Path: fmt.Sprintf("dir%d/file%d.go", v%10, v%uint64(files))}}}, actor)
			default:
				k := (v*7 + uint64(i)) % pool
				publish(x, domain.ChangeFiles{Ops: []domain.FileOp{{
					Kind: domain.OpWrite, Path: fmt.Sprintf("dir%d/file%d.go", v%10, (v*13)%uint64(files)), Content: blobs[k], Size: sizes[k],
				}}}, actor)
			}
		}
	}
	settle()
	if last := env.LastSeq(b); last != uint64(n) {
		b.Fatalf("stream holds %d events, want %d", last, n)
	}
}

// cpuTime is the CPU time the process used so far, user and system: the
// embedded server's included, as it runs in the process.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rawNext is a baseline: one ordered consumer over the whole event stream,
// read with the iterator (Messages, then Next until all n arrived), that
// reads every message's data and metadata and does nothing with them.
func rawNext(ctx context.Context, js jetstream.JetStream, filter string, n int) (int, error) {
	c, err := rawConsumer(ctx, js, filter)
	if err != nil {
		return 0, err
	}
	it, err := c.Messages(jetstream.PullMaxMessages(4096))
	if err != nil {
		return 0, err
	}
	defer it.Stop()
	var bytes int
	for got := 0; got < n; got++ {
		m, err := it.Next()
		if err != nil {
			return 0, err
		}
		if _, err := m.Metadata(); err != nil {
			return 0, err
		}
		bytes += len(m.Data())
	}
	return bytes, nil
}

// rawConsume is the other baseline: the same consumer read with a
// callback (Consume), which spares the iterator's per-message timers.
func rawConsume(ctx context.Context, js jetstream.JetStream, filter string, n int) (int, error) {
	c, err := rawConsumer(ctx, js, filter)
	if err != nil {
		return 0, err
	}
	var bytes, got int
	done := make(chan error, 1)
	cc, err := c.Consume(func(m jetstream.Msg) {
		if got >= n {
			return
		}
		if _, err := m.Metadata(); err != nil {
			done <- err
			return
		}
		bytes += len(m.Data())
		if got++; got == n {
			done <- nil
		}
	}, jetstream.PullMaxMessages(4096))
	if err != nil {
		return 0, err
	}
	defer cc.Stop()
	select {
	case err := <-done:
		return bytes, err
	case <-time.After(5 * time.Minute):
		return 0, fmt.Errorf("raw consume: %d of %d messages", got, n)
	}
}

func rawConsumer(ctx context.Context, js jetstream.JetStream, filter string) (jetstream.Consumer, error) {
	s, err := js.Stream(ctx, names.EventStream)
	if err != nil {
		return nil, err
	}
	return s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
}

// benchPass is one kind of pass over the stored events, run once per
// benchmark iteration.
type benchPass struct {
	name  string
	raw   bool // a baseline
	run   func() error
	times []time.Duration
	cpu   time.Duration
}

// runPasses runs every pass once per iteration, back to back, and reports
// events per second of the median pass of each kind, CPU time per event
// (the embedded server's included), and each other pass's ratio to the
// faster raw one. profileName names the pass that STRAND_AUDIT_BENCH_PROFILE
// profiles (its first run).
func runPasses(b *testing.B, n int, passes []*benchPass, profileName string) {
	b.Helper()
	var profile *os.File
	if path := os.Getenv("STRAND_AUDIT_BENCH_PROFILE"); path != "" {
		var err error
		if profile, err = os.Create(path); err != nil {
			b.Fatal(err)
		}
		defer profile.Close()
	}
	b.ResetTimer()
	for b.Loop() {
		for _, p := range passes {
			if profile != nil && p.name == profileName {
				if err := pprof.StartCPUProfile(profile); err != nil {
					b.Fatal(err)
				}
			}
			t, c := time.Now(), cpuTime()
			if err := p.run(); err != nil {
				b.Fatalf("%s: %v", p.name, err)
			}
			p.cpu += cpuTime() - c
			p.times = append(p.times, time.Since(t))
			if profile != nil && p.name == profileName {
				pprof.StopCPUProfile()
				profile = nil
			}
		}
	}
	b.StopTimer()
	median := func(ds []time.Duration) time.Duration {
		ds = slices.Clone(ds)
		slices.Sort(ds)
		if len(ds)%2 == 1 {
			return ds[len(ds)/2]
		}
		return (ds[len(ds)/2-1] + ds[len(ds)/2]) / 2
	}
	rate := func(p *benchPass) float64 { return float64(n) / median(p.times).Seconds() }
	best := 0.0
	for _, p := range passes {
		if p.raw {
			best = max(best, rate(p))
		}
	}
	b.ReportMetric(0, "ns/op")
	for _, p := range passes {
		b.ReportMetric(rate(p), p.name+"-ev/s")
		b.ReportMetric(float64(p.cpu.Nanoseconds())/float64(n*len(p.times)), p.name+"-cpu-ns/ev")
		if !p.raw {
			b.ReportMetric(rate(p)/best, p.name+"-ratio")
		}
	}
	b.Logf("%d events, GOMAXPROCS %d, GOGC %d; medians of %d passes:", n, runtime.GOMAXPROCS(0), debug.SetGCPercent(-1), len(passes[0].times))
	debug.SetGCPercent(TuneGC())
	for _, p := range passes {
		b.Logf("  %-16s %8.0f ev/s  %.2f of the faster raw  CPU %5.0f ns/ev  passes %v", p.name, rate(p), rate(p)/best,
			float64(p.cpu.Nanoseconds())/float64(n*len(p.times)), p.times)
	}
}

func rawPasses(ctx context.Context, js jetstream.JetStream, filter string, n int) []*benchPass {
	raw := func(scan func(context.Context, jetstream.JetStream, string, int) (int, error)) func() error {
		return func() error {
			_, err := scan(ctx, js, filter, n)
			return err
		}
	}
	return []*benchPass{
		{name: "raw-next", raw: true, run: raw(rawNext)},
		{name: "raw-consume", raw: true, run: raw(rawConsume)},
	}
}

// benchSetup sets the collector as the audit commands do (restored when
// the benchmark ends), starts a server, stores the benchmark's events over
// sessions of files each and opens a Reader on them.
func benchSetup(b *testing.B, sessions, files int) (int, *streamstest.Env, *Reader) {
	n := benchEvents(b)
	TuneGC()
	b.Cleanup(func() { debug.SetGCPercent(100) })
	env := streamstest.Start(b)
	start := time.Now()
	benchStore(b, env, n, sessions, files)
	b.Logf("stored %d events of %d sessions in %v", n, sessions, time.Since(start).Round(time.Millisecond))
	r, err := Open(context.Background(), env.NC, Streams{})
	if err != nil {
		b.Fatal(err)
	}
	return n, env, r
}

// BenchmarkReader_Replay1M replays one session of a million events, as
// `strand audit replay` and Reader.State do: every event decoded, its
// version, hash chain and restore or fork target checked and folded into
// the session's state (domain.Fold), and the root of the state handed out
// compared with the one its event records. It is compared, in the same
// run, with the two raw ordered consumers over the same subject, and with
// Verify of the same session, which compares every event's root.
//
//	go test ./audit -run '^$' -bench Replay1M -benchtime 5x -timeout 60m
func BenchmarkReader_Replay1M(b *testing.B) {
	n, env, r := benchSetup(b, 1, 1000)
	ctx := context.Background()
	const tenant, session = "bench", "s0000"
	passes := append(rawPasses(ctx, env.Store.JetStream(), EventSubject(tenant, session), n),
		&benchPass{name: "replay", run: func() error {
			s, err := r.State(ctx, tenant, session, 0)
			if err == nil && s.Version != uint64(n) {
				err = fmt.Errorf("replayed %d events, want %d", s.Version, n)
			}
			return err
		}},
		&benchPass{name: "verify", run: func() error {
			rep, err := r.Verify(ctx, Scope{Tenant: tenant, Session: session})
			if err == nil && (!rep.OK() || rep.Events != n) {
				err = fmt.Errorf("verify: %+v", rep)
			}
			return err
		}},
	)
	runPasses(b, n, passes, "replay")
}

// BenchmarkReader_Verify1M compares, in one run over a stream of a million
// events of 1,000 sessions, the two raw ordered consumers over the whole
// stream with Verify of everything (versions, hash chains, every blob,
// every event's root recomputed by domain.Evolve) on the default number of
// workers (DefaultWorkers) and on one per CPU. The garbage collector runs as under the audit commands (TuneGC:
// GOGC 400 unless the GOGC variable says otherwise), for the raw passes too.
//
//	go test ./audit -run '^$' -bench Verify1M -benchtime 5x -timeout 60m
func BenchmarkReader_Verify1M(b *testing.B) {
	n, env, r := benchSetup(b, 1000, 100)
	ctx := context.Background()
	verify := func(workers int) func() error {
		return func() error {
			r.Workers = workers
			rep, err := r.Verify(ctx, Scope{})
			if err == nil && (!rep.OK() || rep.Events != n) {
				err = fmt.Errorf("verify: %+v", rep)
			}
			return err
		}
	}
	passes := append(rawPasses(ctx, env.Store.JetStream(), AllFilter, n),
		&benchPass{name: "verify", run: verify(DefaultWorkers())},
		&benchPass{name: fmt.Sprintf("verify%d", runtime.GOMAXPROCS(0)), run: verify(runtime.GOMAXPROCS(0))},
	)
	runPasses(b, n, passes, "verify")
}
