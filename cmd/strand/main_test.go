package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/streams/streamstest"
)

// TestMain doubles as the strand binary: with STRAND_TEST_MAIN=1 the test
// binary runs Main on the arguments after "--" and exits with its code. The
// crash test starts the server that way as a real process it can SIGKILL,
// without building a separate binary.
func TestMain(m *testing.M) {
	if os.Getenv("STRAND_TEST_MAIN") == "1" {
		args := os.Args[1:]
		for i, a := range os.Args {
			if a == "--" {
				args = os.Args[i+1:]
				break
			}
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := NewMain(os.Stdin, os.Stdout, os.Stderr).Run(ctx, args)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// syncBuffer is a bytes.Buffer that a running serve may write while the test
// reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testServer is a `strand serve` running in the test process.
type testServer struct {
	URL string
	// HTTP is the URL of the HTTP front ("" when it is off).
	HTTP           string
	Dir            string
	Stdout, Stderr *syncBuffer

	cancel  context.CancelFunc
	done    chan int
	stopped bool
}

// startServe runs Main.Run(serve) on dir with a random port and waits until
// its Ready hook reports the client URL. The server is stopped at cleanup.
func startServe(t testing.TB, dir string, extra ...string) *testServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &testServer{Dir: dir, Stdout: &syncBuffer{}, Stderr: &syncBuffer{}, cancel: cancel, done: make(chan int, 1)}
	ready := make(chan string, 1)
	m := NewMain(strings.NewReader(""), s.Stdout, s.Stderr)
	m.Getenv = func(string) string { return "" }
	m.Ready = func(url string) { ready <- url }
	m.ReadyHTTP = func(url string) { s.HTTP = url }
	args := append([]string{"serve", "--data", dir, "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--log-level", "warn"}, extra...)
	go func() { s.done <- m.Run(ctx, args) }()
	select {
	case s.URL = <-ready:
	case code := <-s.done:
		cancel()
		t.Fatalf("serve exited with %d before it was ready; stderr:\n%s", code, s.Stderr)
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatalf("serve not ready after 60s; stderr:\n%s", s.Stderr)
	}
	if !strings.Contains(s.Stdout.String(), "serving on "+s.URL) {
		t.Errorf("serve stdout = %q, want it to say %q", s.Stdout, "serving on "+s.URL)
	}
	t.Cleanup(func() { s.Stop(t) })
	return s
}

// Stop cancels serve's context and checks that Run returns 0.
func (s *testServer) Stop(t testing.TB) {
	t.Helper()
	if s.stopped {
		return
	}
	s.stopped = true
	s.cancel()
	select {
	case code := <-s.done:
		if code != 0 {
			t.Errorf("serve: Run returned %d after cancel, want 0; stderr:\n%s", code, s.Stderr)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("serve: Run did not return within 30s of cancel")
	}
}

// Client connects the typed Go client to the server as tenant "default".
func (s *testServer) Client(t testing.TB) *client.Client {
	t.Helper()
	nc, err := nats.Connect(s.URL, nats.Name("strand-test"))
	if err != nil {
		t.Fatalf("connect to %s: %v", s.URL, err)
	}
	t.Cleanup(nc.Close)
	return client.NewClient(nc, "default")
}

// result is what one CLI run printed and returned.
type result struct {
	Args           []string
	Stdout, Stderr string
	Code           int
}

func (r result) String() string {
	return fmt.Sprintf("strand %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(r.Args, " "), r.Code, r.Stdout, r.Stderr)
}

// cli runs CLI commands as separate Main instances in the test process.
type cli struct {
	t      testing.TB
	server string            // appended as --server when not empty
	env    map[string]string // what Getenv sees (nothing else of the real environment)
}

func newCLI(t testing.TB, server string) *cli { return &cli{t: t, server: server} }

// run runs one command line with stdin and returns what it printed.
func (c *cli) run(stdin string, args ...string) result {
	c.t.Helper()
	var stdout, stderr bytes.Buffer
	m := NewMain(strings.NewReader(stdin), &stdout, &stderr)
	m.Getenv = func(k string) string { return c.env[k] }
	if c.server != "" {
		args = append(args, "--server", c.server)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code := m.Run(ctx, args)
	return result{Args: args, Stdout: stdout.String(), Stderr: stderr.String(), Code: code}
}

// ok runs a command that must succeed and returns its standard output.
func (c *cli) ok(args ...string) string {
	c.t.Helper()
	r := c.run("", args...)
	if r.Code != 0 {
		c.t.Fatalf("%v\nwant exit 0", r)
	}
	return r.Stdout
}

// okJSON runs a command with --json that must succeed and decodes its output.
func (c *cli) okJSON(v any, args ...string) {
	c.t.Helper()
	out := c.ok(append(args, "--json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		c.t.Fatalf("strand %s: output is not JSON: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// fail runs a command that must fail with exit code 1 and the given error
// code, printed as "strand: <code>: <message>".
func (c *cli) fail(code string, args ...string) result {
	c.t.Helper()
	r := c.run("", args...)
	if r.Code != 1 {
		c.t.Fatalf("%v\nwant exit 1", r)
	}
	if !strings.HasPrefix(r.Stderr, "strand: "+code+": ") || strings.Count(r.Stderr, "\n") != 1 {
		c.t.Fatalf("%v\nwant stderr to be one line \"strand: %s: <message>\"", r, code)
	}
	return r
}

// waitFor polls cond until it is true or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	streamstest.Wait(t, 15*time.Second, what, cond)
}
