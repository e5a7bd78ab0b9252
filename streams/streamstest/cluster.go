package streamstest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// ClusterOptions shape a test cluster.
type ClusterOptions struct {
	// Size is the number of servers (default 3).
	Size int
	// RoutePorts are fixed cluster (route) ports, one per server. Empty:
	// free ports outside the ephemeral range are picked, so that a port
	// cannot be taken by an outgoing connection while a server is down.
	RoutePorts []int
	// ClientPorts are fixed client ports. Empty: random ports, kept across
	// restarts of the same server so that clients reconnect.
	ClientPorts []int
	// SyncAlways fsyncs every write (sync_interval: always).
	SyncAlways bool
}

// Cluster is a JetStream cluster of servers running in the test process on
// loopback, with storage in the test's temp folder, the way nats-server tests
// itself (createJetStreamClusterEx). Servers can be stopped and restarted on
// the same storage and ports.
type Cluster struct {
	Dir     string
	Servers []*server.Server // nil while stopped
	opts    []*server.Options
}

// StartCluster starts a cluster and waits until it has a JetStream meta
// leader. Every server is shut down when the test ends.
func StartCluster(t testing.TB, o ClusterOptions) *Cluster {
	t.Helper()
	if o.Size == 0 {
		o.Size = 3
	}
	routePorts := o.RoutePorts
	if len(routePorts) == 0 {
		routePorts = freePorts(t, o.Size)
	}
	var routes []string
	for _, p := range routePorts {
		routes = append(routes, "nats-route://127.0.0.1:"+strconv.Itoa(p))
	}
	c := &Cluster{Dir: t.TempDir(), Servers: make([]*server.Server, o.Size)}
	for i := range o.Size {
		port := server.RANDOM_PORT
		if len(o.ClientPorts) > i {
			port = o.ClientPorts[i]
		}
		c.opts = append(c.opts, &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1),
			Host:       "127.0.0.1",
			Port:       port,
			JetStream:  true,
			StoreDir:   filepath.Join(c.Dir, fmt.Sprintf("n%d", i+1)),
			SyncAlways: o.SyncAlways,
			NoSigs:     true,
			NoLog:      true,
			Cluster: server.ClusterOpts{
				Name: "strand-test",
				Host: "127.0.0.1",
				Port: routePorts[i],
			},
			Routes:             server.RoutesFromStr(strings.Join(routes, ",")),
			JetStreamMaxMemory: 256 << 20,
			JetStreamMaxStore:  4 << 30,
		})
	}
	t.Cleanup(c.Shutdown)
	for i := range o.Size {
		c.Start(t, i)
	}
	c.WaitMetaLeader(t)
	return c
}

// freePorts returns n ports in 20000-29999 that could be listened on just
// now.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var out []int
	for tries := 0; len(out) < n && tries < 1000; tries++ {
		p := 20000 + rand.IntN(10000)
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		l.Close()
		dup := false
		for _, q := range out {
			dup = dup || q == p
		}
		if !dup {
			out = append(out, p)
		}
	}
	if len(out) < n {
		t.Fatalf("found only %d free ports", len(out))
	}
	return out
}

// Start starts server i (again), on its storage and ports.
func (c *Cluster) Start(t testing.TB, i int) {
	t.Helper()
	if c.Servers[i] != nil {
		t.Fatalf("server %d is running", i)
	}
	o := c.opts[i].Clone()
	s, err := server.NewServer(o)
	if err != nil {
		t.Fatalf("new server %d: %v", i, err)
	}
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		t.Fatalf("server %d not ready after 30s", i)
	}
	// Keep the client port so that a restart listens where clients look.
	c.opts[i].Port = s.Addr().(*net.TCPAddr).Port
	c.Servers[i] = s
}

// Stop shuts server i down and waits until it has stopped.
func (c *Cluster) Stop(i int) {
	if s := c.Servers[i]; s != nil {
		s.Shutdown()
		s.WaitForShutdown()
		c.Servers[i] = nil
	}
}

// Shutdown stops every server.
func (c *Cluster) Shutdown() {
	for i := range c.Servers {
		c.Stop(i)
	}
}

// ClientURL is server i's client URL.
func (c *Cluster) ClientURL(i int) string {
	return "nats://127.0.0.1:" + strconv.Itoa(c.opts[i].Port)
}

// URLs lists every server's client URL, comma-separated.
func (c *Cluster) URLs() string {
	var out []string
	for i := range c.opts {
		out = append(out, c.ClientURL(i))
	}
	return strings.Join(out, ",")
}

// Connect opens a TCP connection to server i only (no other server in its
// pool, so it stays there), closed when the test ends.
func (c *Cluster) Connect(t testing.TB, i int, opts ...nats.Option) *nats.Conn {
	t.Helper()
	opts = append([]nats.Option{nats.DontRandomize(), nats.MaxReconnects(-1), nats.ReconnectWait(100 * time.Millisecond)}, opts...)
	nc, err := nats.Connect(c.ClientURL(i), opts...)
	if err != nil {
		t.Fatalf("connect to server %d: %v", i, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// WaitMetaLeader waits up to 30 s until a running server is the JetStream
// meta leader and every running server knows it.
func (c *Cluster) WaitMetaLeader(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		leader, current := false, true
		for _, s := range c.Servers {
			if s == nil {
				continue
			}
			leader = leader || s.JetStreamIsLeader()
			current = current && s.JetStreamIsCurrent()
		}
		if leader && current {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no JetStream meta leader after 30s")
}

// StreamLeader returns the index of the server leading a stream (of the
// global account), waiting up to 30 s for one.
func (c *Cluster) StreamLeader(t testing.TB, stream string) int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for i, s := range c.Servers {
			if s != nil && s.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, stream) {
				return i
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("stream %s has no leader after 30s", stream)
	return -1
}
