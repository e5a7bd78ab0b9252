//go:build fault && soak

package faults_test

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

var (
	soakDuration = flag.Duration("soak.duration", 30*time.Minute, "how long TestSoak runs its load")
	soakKills    = flag.Int("soak.kills", 0, "how many times TestSoak SIGKILLs the NATS server (default: one every 3 minutes, at least 2)")
	soakRSS      = flag.Bool("soak.check-rss", true, "fail when the instance's RSS grows 10% or more after the warm-up (off: report it only)")
	soakMemory   = flag.String("soak.state-memory", "", "the instance's --state-memory (its default when empty)")
	soakLimit    = flag.String("soak.memory-limit", "", "the instance's --memory-limit (its default when empty: twice --state-memory)")
	soakWarm     = flag.Duration("soak.warm-up", 0, "the RSS check compares the end with the minute after this (default: the first sixth of the run)")
	soakLoad     = flag.String("soak.load", "steady", "steady: the writers overwrite a bounded set of paths per session and the sessions they write are replaced every 20 s (created, the old ones deleted); growing: every write a new path to the same 8 sessions, so their trees grow all run (the load before 2026-12-05 05:00)")
	soakLog      = flag.String("soak.log-level", "warn", "the instance's --log-level (its output is shown when the test fails, and kept with -soak.profiles)")
	soakProfiles = flag.String("soak.profiles", "", "write the instance's heap profile to this folder every minute (heap-MMSS.pb.gz; go tool pprof -sample_index=inuse_space)")
)

// TestSoak runs a mixed load for -soak.duration against one `strand serve
// --nats` instance on a separate nats-server (fsync on every write), and
// SIGKILLs that nats-server every few minutes, restarting it on the same
// port and store. The instance is never restarted: it must reconnect by
// itself each time, and its memory and goroutines are watched all along.
//
// The load: the fault tests' writers (with and without expected_position,
// retried with their request id, reads of the head), and beside them forks
// at past positions, reads of acknowledged writes at their positions,
// large writes (through the blob store), reviews (note, approval request,
// grant by another actor, commit: the summary worker's work), orphan
// uploads (the blob collector's work, with a grace of 15 s) and session
// listings (the projections).
//
// It checks, each check a subtest named after it (the last line of a
// failed run lists the failed ones): the instance's RSS at the end grew
// less than 10 % over its RSS once the first sixth of the run (5 minutes of
// 30) was over (-soak.check-rss); every read of the past answered what was
// written; the projections caught up with every session's head; orphan
// uploads were collected and nothing named was; its goroutines under load
// in the last minute, and idle at the end, are no more than after the
// warm-up (+10 %, at least 50); every acknowledged write is in its history
// once where its reply said; `strand audit verify --all` passes.
//
//	go test -tags 'fault soak' -run TestSoak -timeout 60m ./faults/ -args -soak.duration 30m
func TestSoak(t *testing.T) {
	d := *soakDuration
	kills := *soakKills
	if kills == 0 {
		kills = max(2, int(d/(3*time.Minute)))
	}
	warm := d / 6
	if *soakWarm > 0 {
		warm = *soakWarm
	}
	steady := *soakLoad == "steady"
	if !steady && *soakLoad != "growing" {
		t.Fatalf("-soak.load %q: want steady or growing", *soakLoad)
	}
	// Registered first, so it runs last: after the processes' output that
	// their cleanups print on a failure, the failed checks by name.
	var failed []string
	t.Cleanup(func() {
		if len(failed) > 0 {
			t.Logf("TestSoak failed: %s (their messages are above, under --- FAIL: TestSoak/...)", strings.Join(failed, ", "))
		}
	})
	dir := t.TempDir()
	port, mon := freePort(t), freePort(t)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	conf := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`listen: 127.0.0.1:%d
http: 127.0.0.1:%d
jetstream {
  store_dir: %q
  sync_interval: always
}
`, port, mon, filepath.Join(dir, "store"))), 0o600); err != nil {
		t.Fatal(err)
	}
	var ns *proc
	startNATS := func() {
		ns = startProc(t, "nats-server", nil, bin.natsServer, "-c", conf)
		waitHealthz(t, mon)
	}
	startNATS()
	args := []string{"--nats", url, "--replicas", "1", "--gc-grace", "15s", "--gc-every", "10s", "--log-level", *soakLog}
	if *soakProfiles != "" {
		if err := os.MkdirAll(*soakProfiles, 0o755); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--pprof", "127.0.0.1:0")
	}
	if *soakMemory != "" {
		args = append(args, "--state-memory", *soakMemory)
	}
	if *soakLimit != "" {
		args = append(args, "--memory-limit", *soakLimit)
	}
	serve := startServe(t, "strand serve --nats", args...)
	pid := serve.cmd.Process.Pid
	if *soakProfiles != "" {
		t.Cleanup(func() {
			_ = os.WriteFile(filepath.Join(*soakProfiles, "serve.log"), []byte(serve.output()), 0o644)
		})
	}
	httpURL := httpLine(t, serve)

	l := newLoad(t, "soak", 4, func(int) string { return url })
	l.giveUp = 2 * time.Minute
	l.createSessions(8)
	if steady {
		l.paths = soakPaths
	}
	goStart, _ := metric(httpURL, "go_goroutines")
	m := &mixer{t: t, l: l, url: url}
	m.connect()

	var samples []sample
	var began time.Time
	sampleNow := func() {
		s := sample{at: time.Since(began), rss: rssOf(pid)}
		s.goroutines, _ = metric(httpURL, "go_goroutines")
		s.heap, _ = metric(httpURL, "go_memstats_heap_inuse_bytes")
		s.live, _ = metric(httpURL, "strand_heap_live_bytes")
		s.gcs, _ = metric(httpURL, "go_gc_duration_seconds_count")
		samples = append(samples, s)
		if len(samples)%12 == 0 && *soakProfiles != "" {
			heapProfile(t, serve, filepath.Join(*soakProfiles, fmt.Sprintf("heap-%02d%02d.pb.gz", int(s.at.Minutes()), int(s.at.Seconds())%60)))
		}
		if len(samples)%6 == 0 {
			heads, _ := metric(httpURL, "strand_state_cache_heads")
			past, _ := metric(httpURL, "strand_state_cache_past")
			trims, _ := metric(httpURL, "strand_state_cache_trims_total")
			t.Logf("t=%v: RSS %.1f MiB, heap in use %.1f MiB, live heap %.1f MiB, %.0f collections, %.0f goroutines; state caches: %.0f heads, %.0f past states, trimmed %.0f times",
				s.at.Round(time.Second), mib(s.rss), s.heap/(1<<20), s.live/(1<<20), s.gcs, s.goroutines, heads, past, trims)
		}
	}
	stop := make(chan struct{})
	began = time.Now()
	wait := l.run(stop)
	mixDone := m.run(stop)
	rotated := func() int { return 0 }
	if steady {
		rotated = rotateSessions(l, stop)
	}
	every := d / time.Duration(kills+1)
	nextKill := every
	killed := 0
	tick := time.NewTicker(5 * time.Second)
	for time.Since(began) < d {
		<-tick.C
		sampleNow()
		if killed < kills && time.Since(began) >= nextKill {
			killed++
			t.Logf("t=%v: SIGKILL nats-server (kill %d of %d)", time.Since(began).Round(time.Second), killed, kills)
			l.fault(fmt.Sprintf("SIGKILL nats-server %d", killed))
			ns.kill()
			startNATS()
			nextKill += every
		}
		select {
		case <-serve.done:
			t.Fatalf("strand serve exited during the soak; output:\n%s", tail(serve.output(), 40))
		default:
		}
	}
	tick.Stop()
	sampleNow()
	close(stop)
	stopped := time.Now()
	wait()
	mixDone()
	t.Logf("load: %s; %d live sessions replaced (created and the old one deleted)", *soakLoad, rotated())
	// An operation in flight is retried until answered (2 minutes at most).
	t.Logf("the load's operations ended %v after it was stopped", time.Since(stopped).Round(100*time.Millisecond))
	l.reportOutages()

	// Each check is a subtest, so that the output names the one that
	// failed; the summary comes last, after the processes' output.
	check := func(name string, f func(t *testing.T)) {
		began := time.Now()
		if !t.Run(name, f) {
			failed = append(failed, fmt.Sprintf("%s (%v)", name, time.Since(began).Round(time.Second)))
		}
	}
	check("RSS", func(t *testing.T) {
		// The median RSS of the last minute against the median of the
		// minute after the warm-up.
		base, end := medianRSS(samples, warm, warm+time.Minute), medianRSS(samples, d-time.Minute, d+time.Hour)
		growth := float64(end)/float64(base) - 1
		t.Logf("RSS of strand serve: %.1f MiB after the warm-up (t=%v), %.1f MiB at the end (t=%v): %+.1f%%; peak %.1f MiB",
			mib(base), warm.Round(time.Second), mib(end), d.Round(time.Second), 100*growth, mib(peakRSS(samples)))
		// Reported beside it: the live heap and how often the collector ran.
		// While the runtime's memory limit binds (RSS at the limit), a leak
		// shows first there, as a live heap that grows and collections
		// that come ever more often, and in RSS only once the live heap
		// needs more than the limit allows.
		liveBase, liveEnd := medianOf(samples, warm, warm+time.Minute, func(s sample) float64 { return s.live }),
			medianOf(samples, d-time.Minute, d+time.Hour, func(s sample) float64 { return s.live })
		t.Logf("live heap: %.1f MiB after the warm-up, %.1f MiB at the end (%+.1f%%); collections: %.0f a minute after the warm-up, %.0f in the last minute",
			liveBase/(1<<20), liveEnd/(1<<20), 100*(liveEnd/liveBase-1), gcRate(samples, warm, warm+time.Minute), gcRate(samples, d-time.Minute, d+time.Hour))
		if growth >= 0.10 && *soakRSS {
			t.Errorf("RSS grew %.1f%% after the warm-up, want less than 10%%", 100*growth)
		}
	})
	// Each check has a context of its own, so that a slow one (the
	// reads and the projections' heads of a 30-minute run load thousands
	// of forks through their parents) leaves the others their time.
	checkCtx := func() context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		t.Cleanup(cancel)
		return ctx
	}
	check("reads", func(t *testing.T) { m.t = t; m.checkReads(checkCtx()) })
	check("projections", func(t *testing.T) { m.t = t; m.checkProjections(checkCtx(), 2*time.Minute) })
	check("collector", func(t *testing.T) { m.t = t; m.checkCollector(checkCtx(), 2*time.Minute) })
	// Idle, once the projections and the collector are done with the
	// load's backlog.
	check("goroutines", func(t *testing.T) {
		// Under load, the count after the warm-up (request workers have
		// grown to what the load needs) against the count in the last
		// minute; idle, at the end, no more than under load.
		goWarm, goLast := medianGoroutines(samples, warm, warm+time.Minute), medianGoroutines(samples, d-time.Minute, d+time.Hour)
		goEnd := quiescentGoroutines(t, httpURL)
		t.Logf("goroutines of strand serve: %.0f before the load, %d after the warm-up and %d in the last minute under load (range %s), %d idle at the end",
			goStart, goWarm, goLast, goroutineRange(samples), goEnd)
		if limit := goWarm + max(50, goWarm/10); goLast > limit || goEnd > limit {
			t.Errorf("goroutines grew: %d after the warm-up, %d in the last minute, %d idle at the end: a leak", goWarm, goLast, goEnd)
		}
	})

	check("writes stored", func(t *testing.T) {
		l.t = t
		ctx := checkCtx()
		l.checkStored(audit(t, ctx, connect(t, url), 1, "soak", l.sessions))
	})
	check("audit verify", func(t *testing.T) { verifyAll(t, checkCtx(), url) })
}

// soakPaths bounds the paths each writer writes in each session of the
// steady load (4 writers: 1,024 files per session at most), and
// soakRotate is how often one of the 8 sessions they write is replaced
// (each lives about 160 s).
const (
	soakPaths  = 256
	soakRotate = 20 * time.Second
)

// rotateSessions replaces one of the load's live sessions every
// soakRotate until stop is closed (load.rotate), and returns a function
// that waits for the rotation under way and says how many were done.
func rotateSessions(l *load, stop <-chan struct{}) (wait func() int) {
	done := make(chan int)
	go func() {
		n := 0
		tick := time.NewTicker(soakRotate)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				done <- n
				return
			case <-tick.C:
			}
			if l.rotate(len(l.sessions)) {
				n++
			}
		}
	}()
	return func() int { return <-done }
}

type sample struct {
	at         time.Duration
	rss        int64
	goroutines float64
	heap       float64
	live, gcs  float64
}

func medianOf(ss []sample, from, to time.Duration, v func(sample) float64) float64 {
	var vs []float64
	for _, s := range ss {
		if s.at >= from && s.at < to && v(s) > 0 {
			vs = append(vs, v(s))
		}
	}
	if len(vs) == 0 {
		return 0
	}
	slices.Sort(vs)
	return vs[len(vs)/2]
}

// gcRate is how many collections a minute the instance ran between from
// and to.
func gcRate(ss []sample, from, to time.Duration) float64 {
	var first, last *sample
	for i := range ss {
		if s := &ss[i]; s.at >= from && s.at < to && s.gcs > 0 {
			if first == nil {
				first = s
			}
			last = s
		}
	}
	if first == nil || last == first {
		return 0
	}
	return (last.gcs - first.gcs) / (last.at - first.at).Minutes()
}

func medianRSS(ss []sample, from, to time.Duration) int64 {
	var v []int64
	for _, s := range ss {
		if s.at >= from && s.at < to && s.rss > 0 {
			v = append(v, s.rss)
		}
	}
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	return v[len(v)/2]
}

func medianGoroutines(ss []sample, from, to time.Duration) int {
	var v []float64
	for _, s := range ss {
		if s.at >= from && s.at < to && s.goroutines > 0 {
			v = append(v, s.goroutines)
		}
	}
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	return int(v[len(v)/2])
}

func peakRSS(ss []sample) int64 {
	var p int64
	for _, s := range ss {
		p = max(p, s.rss)
	}
	return p
}

func goroutineRange(ss []sample) string {
	lo, hi := math.Inf(1), 0.0
	for _, s := range ss {
		if s.goroutines > 0 {
			lo, hi = min(lo, s.goroutines), max(hi, s.goroutines)
		}
	}
	return fmt.Sprintf("%.0f-%.0f", lo, hi)
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// rssOf reads a process's resident set size from /proc (0 where there is
// none).
func rssOf(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			f := strings.Fields(v)
			if n, err := strconv.ParseInt(f[0], 10, 64); err == nil {
				return n << 10
			}
		}
	}
	return 0
}

// metric reads one unlabelled metric from the instance's /metrics.
func metric(httpURL, name string) (float64, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(httpURL + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("no metric %s", name)
}

// quiescentGoroutines waits until the instance's idle goroutine count is
// steady, and returns it: read once a second, the lowest of the last 12
// readings within 5 of the lowest of the 12 before (idle request workers
// end after 10 s: handlers.workerIdle). The lowest, not every reading:
// periodic work (a collector pass every 10 s, the projections' idle
// fetches) adds goroutines for a moment now and then, and a slow machine
// catches more of those moments; a leak raises the floor.
func quiescentGoroutines(t *testing.T, httpURL string) int {
	t.Helper()
	var last []float64
	var err error
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var g float64
		if g, err = metric(httpURL, "go_goroutines"); err == nil {
			last = append(last, g)
			if n := len(last); n >= 24 {
				a, b := slices.Min(last[n-12:]), slices.Min(last[n-24:n-12])
				if math.Abs(a-b) <= 5 {
					return int(min(a, b))
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("goroutines did not settle in 2 minutes (the lowest of 12 readings a second apart never within 5 of the lowest of the 12 before): %v (last error %v)", last, err)
		}
		time.Sleep(time.Second)
	}
}

// heapProfile saves the instance's heap profile (strand serve --pprof) in
// file.
func heapProfile(t *testing.T, p *proc, file string) {
	t.Helper()
	var base string
	for _, line := range strings.Split(p.output(), "\n") {
		if u, ok := strings.CutPrefix(line, "strand: profiles on "); ok {
			base = strings.TrimSpace(u)
		}
	}
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.Get(base + "heap")
	if err != nil {
		t.Logf("heap profile: %v", err)
		return
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil {
		err = os.WriteFile(file, b, 0o644)
	}
	if err != nil {
		t.Logf("heap profile: %v", err)
	}
}

// httpLine returns the URL the instance printed for its HTTP front.
func httpLine(t *testing.T, p *proc) string {
	t.Helper()
	for _, line := range strings.Split(p.output(), "\n") {
		if u, ok := strings.CutPrefix(line, "strand: HTTP on "); ok {
			return strings.TrimSpace(u)
		}
	}
	t.Fatalf("strand serve printed no HTTP address:\n%s", p.output())
	return ""
}

// waitHealthz waits until a nats-server's monitoring port reports
// JetStream healthy.
func waitHealthz(t *testing.T, port int) {
	t.Helper()
	c := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", port))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("nats-server not healthy in 60 s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
