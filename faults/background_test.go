//go:build fault

package faults_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/names"
	"github.com/strand-dev/strand/workers"
)

// TestFault_BackgroundWorkThroughFailover: the projections, the workers and
// the blob collector of two `strand serve --nats --replicas 3` instances
// work under a mixed load (writes, forks, reviews that the summary worker
// follows, orphan uploads for the collector) while the node leading the
// event stream is SIGKILLed and restarted, then the node leading the work
// queue. Neither instance may exit; afterwards the projections have folded
// every event (no lag, each session's view at its head, no granted request
// left in the review queue, every pending one in it), the summary worker
// computed the summary of every pending approval request (its work items
// come from the sessions projection), the collector removed the old orphan uploads and nothing
// named (`strand audit verify --all` reads every blob), and every
// acknowledged write is stored once where its reply said.
func TestFault_BackgroundWorkThroughFailover(t *testing.T) {
	c := startNATSCluster(t)
	serve := func(name string, first int) *proc {
		return startProc(t, name, nil, bin.strand, "serve", "--log-level", "warn", "--http", "127.0.0.1:0",
			"--nats", c.URLs(first), "--replicas", "3", "--gc-grace", "15s", "--gc-every", "10s")
	}
	s1, s2 := serve("strand serve 1", 0), serve("strand serve 2", 1)
	s1.waitLine(t, "strand: serving on", 90*time.Second)
	s2.waitLine(t, "strand: serving on", 90*time.Second)
	watch := connect(t, c.URLs(2))

	l := newLoad(t, "faults", 4, func(i int) string { return c.URLs(i % 3) })
	l.createSessions(6)
	m := &mixer{t: t, l: l, url: c.URLs(1)}
	m.connect()
	l.alongside = append(l.alongside, m.run)

	var killed int
	kill := func(stream string) func() {
		return func() {
			killed = streamLeader(t, watch, stream)
			t.Logf("SIGKILL n%d, the leader of %s", killed+1, stream)
			elected := l.fault(fmt.Sprintf("SIGKILL n%d (%s)", killed+1, stream))
			began := time.Now()
			c.kill(killed)
			newLeader(t, watch, stream, killed)
			elected(time.Since(began))
		}
	}
	restart := func() {
		t.Logf("restart n%d", killed+1)
		l.fault(fmt.Sprintf("restart n%d", killed+1))
		c.start(t, killed)
		c.waitHealthy(t, false, killed)
	}
	l.runFor(50*time.Second, map[time.Duration]func(){
		8 * time.Second:  kill(names.EventStream),
		18 * time.Second: restart,
		26 * time.Second: kill(names.WorkStream),
		36 * time.Second: restart,
	})
	for _, p := range []*proc{s1, s2} {
		select {
		case <-p.done:
			t.Errorf("%s exited during the faults", p.name)
		default:
		}
	}
	c.waitHealthy(t, false, 0, 1, 2)
	l.reportOutages()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	m.check(ctx)
	checkSummaries(t, ctx, m)
	l.checkStored(audit(t, ctx, connect(t, c.URLs(0)), 3, "faults", l.sessions))
	verifyAll(t, ctx, c.URLs(0))
}

// checkSummaries checks that the summary worker precomputed the summary of
// every approval request left pending, at the root it was requested for
// (the items of decided requests are closed, maybe before a worker got
// them: those summaries are computed when asked for).
func checkSummaries(t *testing.T, ctx context.Context, m *mixer) {
	t.Helper()
	js, err := jetstream.New(m.c.Conn())
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, names.SummaryBucket)
	if err != nil {
		t.Fatalf("summary bucket: %v", err)
	}
	sums := workers.NewSummaries(kv)
	missing := 0
	for id := range m.waiting {
		s, err := m.c.GetSession(ctx, id, "")
		if err != nil {
			t.Errorf("session %s: %v", id, err)
			continue
		}
		deadline := time.Now().Add(time.Minute)
		for {
			got, err := sums.Get(ctx, m.l.tenant, id, s.Session.Root)
			if err == nil && got != nil {
				break
			}
			if time.Now().After(deadline) {
				missing++
				t.Errorf("session %s: no summary at root %s a minute after the load (%v)", id, s.Session.Root, err)
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	t.Logf("summary worker: %d of %d pending approval requests summarised", len(m.waiting)-missing, len(m.waiting))
	if len(m.waiting) == 0 {
		t.Error("no approval request was left pending: the summary worker was not tested")
	}
}
