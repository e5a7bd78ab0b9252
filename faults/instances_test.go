//go:build fault

package faults_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/strand-dev/strand/names"
)

// TestFault_ServeInstanceKilled: two `strand serve --nats --replicas 3`
// processes, started together, share the load of six clients on the
// three-node cluster; one is SIGKILLed mid-load (its requests in flight get
// no answer and are retried by their clients with the same request_id,
// reaching the other) and started again later, then the same with the other.
func TestFault_ServeInstanceKilled(t *testing.T) {
	c := startNATSCluster(t)
	serve := func(name string, first int) *proc {
		return startProc(t, name, nil, bin.strand, "serve", "--log-level", "warn", "--http", "127.0.0.1:0", "--nats", c.URLs(first), "--replicas", "3")
	}
	// Started at the same moment: both provision the streams and buckets.
	s1, s2 := serve("strand serve 1", 0), serve("strand serve 2", 1)
	s1.waitLine(t, "strand: serving on", 90*time.Second)
	s2.waitLine(t, "strand: serving on", 90*time.Second)
	checkReplicated(t, connect(t, c.URLs(0)), 2)

	l := newLoad(t, "faults", 6, func(i int) string { return c.URLs(i % 3) })
	l.createSessions(8)
	kill := func(p **proc, name string) func() {
		return func() {
			t.Logf("SIGKILL %s (pid %d)", name, (*p).cmd.Process.Pid)
			(*p).kill()
		}
	}
	restart := func(p **proc, name string, first int) func() {
		return func() {
			t.Logf("start %s again", name)
			*p = serve(name+" (again)", first)
			(*p).waitLine(t, "strand: serving on", 90*time.Second)
		}
	}
	l.runFor(32*time.Second, map[time.Duration]func(){
		6 * time.Second:  kill(&s1, "strand serve 1"),
		14 * time.Second: restart(&s1, "strand serve 1", 2),
		20 * time.Second: kill(&s2, "strand serve 2"),
		26 * time.Second: restart(&s2, "strand serve 2", 0),
	})
	checkReplicated(t, connect(t, c.URLs(1)), 2)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l.check(audit(t, ctx, connect(t, c.URLs(0)), 3, "faults", l.sessions))
}

// checkReplicated checks what `strand serve --replicas 3` provisioned: every
// stream and bucket with three replicas (the projection's views bucket and
// durable consumer too), and that the micro service answers from the given
// number of instances.
func checkReplicated(t *testing.T, nc *nats.Conn, instances int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	lister := js.StreamNames(ctx)
	for name := range lister.Name() {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
		if r := s.CachedInfo().Config.Replicas; r != 3 {
			t.Errorf("stream %s has %d replicas, want 3", name, r)
		}
		seen[name] = true
	}
	if err := lister.Err(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{names.EventStream, names.BlobStream, "KV_" + names.SnapshotBucket, "KV_" + names.SessionsBucket} {
		if !seen[want] {
			t.Errorf("stream %s was not provisioned (have %v)", want, seen)
		}
	}
	cons, err := js.Consumer(ctx, names.EventStream, names.SessionsConsumer+"_ackall")
	if err != nil {
		t.Fatalf("projection consumer: %v", err)
	}
	if info := cons.CachedInfo(); info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
		t.Errorf("projection consumer %s: cluster %+v, want a leader and 2 replicas", names.SessionsConsumer, info.Cluster)
	}

	// Discovery: one ping, a reply from every instance.
	inbox := nats.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	subj, err := micro.ControlSubject(micro.PingVerb, names.ServiceName, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.PublishRequest(subj, inbox, nil); err != nil {
		t.Fatal(err)
	}
	got := 0
	for {
		if _, err := sub.NextMsg(time.Second); err != nil {
			break
		}
		got++
	}
	if got != instances {
		t.Errorf("%d instances of the %s micro service answered a ping, want %d", got, names.ServiceName, instances)
	}
	t.Logf("%d streams and buckets, all R3; the projection consumer R3; %d service instances", len(seen), got)
}
