//go:build fault

package faults_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/names"
)

// connect opens a connection that fails over between the servers of urls.
func connect(t *testing.T, urls string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(urls, nats.DontRandomize(), nats.MaxReconnects(-1),
		nats.ReconnectWait(100*time.Millisecond), nats.Timeout(2*time.Second))
	if err != nil {
		t.Fatalf("connect to %s: %v", urls, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// streamLeader returns the index of the node leading a stream, asking
// through nc for up to 30 s.
func streamLeader(t *testing.T, nc *nats.Conn, stream string) int {
	t.Helper()
	return leaderWhere(t, nc, stream, 30*time.Second, "a leader", func(int) bool { return true })
}

// newLeader waits, for up to a minute, until a node other than the
// killed one leads a stream, and returns it.
func newLeader(t *testing.T, nc *nats.Conn, stream string, killed int) int {
	t.Helper()
	return leaderWhere(t, nc, stream, time.Minute, fmt.Sprintf("a leader other than n%d", killed+1),
		func(i int) bool { return i != killed })
}

// leaderWhere asks through nc which node leads a stream until one that
// ok accepts does, for up to within.
func leaderWhere(t *testing.T, nc *nats.Conn, stream string, within time.Duration, what string, ok func(int) bool) int {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		s, err := js.Stream(ctx, stream)
		cancel()
		if err == nil && s.CachedInfo().Cluster != nil {
			if name := s.CachedInfo().Cluster.Leader; strings.HasPrefix(name, "n") {
				if i, err := strconv.Atoi(name[1:]); err == nil && i >= 1 && i <= 3 && ok(i-1) {
					return i - 1
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s for %s after %v (last error %v)", what, stream, within, err)
		}
		// Often enough that the time a new leader took is measured.
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFault_ClusterNodeKilled: a three-node cluster (R3 streams, fsync on
// every write) under write load from six clients through two service
// instances; the node leading the event stream is SIGKILLed, restarted
// ten seconds later, and the same again with whichever node leads then.
func TestFault_ClusterNodeKilled(t *testing.T) {
	c := startNATSCluster(t)
	for i := range 2 {
		startInstance(t, connect(t, c.URLs(i)), 3, 8*time.Second)
	}
	watch := connect(t, c.URLs(2))
	l := newLoad(t, "faults", 6, func(i int) string { return c.URLs(i % 3) })
	l.createSessions(8)

	var killed int
	kill := func() {
		killed = streamLeader(t, watch, names.EventStream)
		t.Logf("SIGKILL n%d, the leader of %s", killed+1, names.EventStream)
		elected := l.fault(fmt.Sprintf("SIGKILL n%d", killed+1))
		began := time.Now()
		c.kill(killed)
		newLeader(t, watch, names.EventStream, killed)
		elected(time.Since(began))
	}
	restart := func() {
		t.Logf("restart n%d", killed+1)
		l.fault(fmt.Sprintf("restart n%d", killed+1))
		c.start(t, killed)
		c.waitHealthy(t, false, killed)
	}
	l.runFor(40*time.Second, map[time.Duration]func(){
		5 * time.Second:  kill,
		15 * time.Second: restart,
		22 * time.Second: kill,
		32 * time.Second: restart,
	})

	c.waitHealthy(t, false, 0, 1, 2)
	l.reportOutages()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l.check(audit(t, ctx, connect(t, c.URLs(0)), 3, "faults", l.sessions))
}
