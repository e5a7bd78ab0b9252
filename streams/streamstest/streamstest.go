// Package streamstest runs a real JetStream for tests: an embedded
// nats-server on a random port with storage in the test's temp folder, the
// way nats-server tests itself.
package streamstest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/strand-dev/strand/streams"
)

// Env is a running embedded server with a store on it.
type Env struct {
	Server *streams.Embedded
	NC     *nats.Conn
	Store  *streams.Store
	Dir    string
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
