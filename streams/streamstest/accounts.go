package streamstest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/strand-dev/strand/streams"
)

// Accounts is one embedded server with n accounts, A0 to A<n-1>, each with
// JetStream: n deployments' worth of streams (each account may hold a
// STRAND_EVENTS of its own) on one server and one disk. Benchmarks use it
// to measure several event streams without a sharded store (design
// record 0019).
type Accounts struct {
	Server *streams.Embedded
}

// StartAccounts starts the server; it stops when the test ends.
func StartAccounts(t testing.TB, n int, o Options) *Accounts {
	t.Helper()
	dir := t.TempDir()
	var conf strings.Builder
	fmt.Fprintf(&conf, "jetstream { store_dir: %q }\naccounts {\n", filepath.Join(dir, "js"))
	for k := range n {
		fmt.Fprintf(&conf, "  A%d { jetstream: enabled, users: [{user: u%d, password: p}] }\n", k, k)
	}
	conf.WriteString("}\n")
	cf := filepath.Join(dir, "s.conf")
	if err := os.WriteFile(cf, []byte(conf.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	srv, err := streams.StartEmbedded(streams.EmbeddedOptions{DataDir: dir, Listen: "127.0.0.1:-1", SyncAlways: o.SyncAlways, ConfigFile: cf, ServiceAccount: "A0"})
	if err != nil {
		t.Fatalf("start embedded server: %v", err)
	}
	t.Cleanup(srv.Shutdown)
	return &Accounts{Server: srv}
}

// Connect connects to account k; the connection closes when the test ends.
func (a *Accounts) Connect(t testing.TB, k int) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(a.Server.ClientURL(), nats.UserInfo("u"+strconv.Itoa(k), "p"))
	if err != nil {
		t.Fatalf("connect to account A%d: %v", k, err)
	}
	t.Cleanup(nc.Close)
	return nc
}
