// Package streamstest runs a real JetStream for tests: an embedded
// nats-server on a random port with storage in the test's temp folder, the
// way nats-server tests itself.
package streamstest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/strand-dev/strand/streams"
)

// Env is a running JetStream (an embedded server, or a cluster) with a
// store on it.
type Env struct {
	// Server is the embedded server (nil on a cluster).
	Server *streams.Embedded
	// Cluster is the cluster (nil on an embedded server).
	Cluster *Cluster
	NC      *nats.Conn
	Store   *streams.Store
	Dir     string
}

// Backend is where a suite's JetStream runs.
type Backend string

const (
	// Embedded is one embedded server, replicas 1.
	Embedded Backend = "embedded"
	// Cluster3 is a cluster of three servers in the test process, every
	// stream and bucket with three replicas.
	Cluster3 Backend = "cluster"
)

// EnvBackend is the environment variable that picks the backend of the
// suites that run on either (StartSuite): "embedded" (the default) or
// "cluster".
const EnvBackend = "STRAND_TEST_BACKEND"

// SuiteBackend is the backend EnvBackend picks. An unknown name fails the
// test rather than run on another backend than asked.
func SuiteBackend(t testing.TB) Backend {
	t.Helper()
	switch b := Backend(os.Getenv(EnvBackend)); b {
	case "", Embedded:
		return Embedded
	case Cluster3:
		return Cluster3
	default:
		t.Fatalf("%s=%q: want %q or %q", EnvBackend, b, Embedded, Cluster3)
		return ""
	}
}

// StartSuite starts the backend EnvBackend picks, so that one test body
// runs on one server or on a cluster (as litestream runs one suite on
// every replica client). Tests that stop or restart the server itself use
// Start or StartCluster.
func StartSuite(t testing.TB, opts ...Options) *Env {
	t.Helper()
	if SuiteBackend(t) == Cluster3 {
		return StartOnCluster(t, opts...)
	}
	return Start(t, opts...)
}

// StartOnCluster starts a three-server cluster and opens a store on it with
// three replicas (unless the options ask for others); the connection knows
// every server.
func StartOnCluster(t testing.TB, opts ...Options) *Env {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	c := StartCluster(t, ClusterOptions{SyncAlways: o.SyncAlways})
	nc, err := nats.Connect(c.URLs(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatalf("connect to the cluster: %v", err)
	}
	t.Cleanup(nc.Close)
	if o.Config.Replicas == 0 {
		o.Config.Replicas = 3
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := streams.Open(ctx, nc, o.Config, nil)
	if err != nil {
		t.Fatalf("open store on the cluster: %v", err)
	}
	t.Cleanup(st.Close)
	return &Env{Cluster: c, NC: nc, Store: st, Dir: c.Dir}
}

// Options tune Start.
type Options struct {
	// SyncAlways fsyncs every write (slower; the production default).
	SyncAlways bool
	Config     streams.Config
}

// Start starts a server and opens a store; both stop when the test ends.
func Start(t testing.TB, opts ...Options) *Env {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	dir := t.TempDir()
	srv, err := streams.StartEmbedded(streams.EmbeddedOptions{DataDir: dir, Listen: "127.0.0.1:-1", SyncAlways: o.SyncAlways})
	if err != nil {
		t.Fatalf("start embedded server: %v", err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := srv.Connect()
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := streams.Open(ctx, nc, o.Config, nil)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(st.Close)
	return &Env{Server: srv, NC: nc, Store: st, Dir: dir}
}

// LastSeq returns the event stream's last sequence.
func (e *Env) LastSeq(t testing.TB) uint64 {
	t.Helper()
	seq, err := e.Store.LastSequence(context.Background())
	if err != nil {
		t.Fatalf("last sequence: %v", err)
	}
	return seq
}

// WaitRequestIndex waits until the store's request index exists on the
// event stream (its consumer is made in the background when the store
// opens) and has recorded every event.
func (e *Env) WaitRequestIndex(t testing.TB) {
	t.Helper()
	Wait(t, 30*time.Second, "request index caught up", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		lag, err := e.Store.RequestIndexLag(ctx)
		return err == nil && lag == 0
	})
}
