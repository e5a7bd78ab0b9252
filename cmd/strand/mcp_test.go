package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/mcp"
)

// runMCP runs `strand mcp ARGS` in the process with pipes for stdin and
// stdout; it returns the client's ends and a function that stops the
// command and returns its exit code.
func runMCP(t *testing.T, server string, stdout io.Writer, args ...string) (io.WriteCloser, func() int) {
	t.Helper()
	inR, inW := io.Pipe()
	m := NewMain(inR, stdout, &syncBuffer{})
	m.Getenv = func(string) string { return "" }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- m.Run(ctx, append(append([]string{"mcp"}, args...), "--server", server)) }()
	var once sync.Once
	code := -1
	stop := func() int {
		once.Do(func() {
			cancel()
			_ = inW.Close()
			select {
			case code = <-done:
			case <-time.After(15 * time.Second):
				t.Errorf("strand mcp did not stop")
			}
		})
		return code
	}
	t.Cleanup(func() { stop() })
	return inW, stop
}

// TestCLI_MCP runs `strand mcp` over stdio pinned to a session, and over
// streamable HTTP pinned to a fork, with the Go SDK's client.
func TestCLI_MCP(t *testing.T) {
	t.Parallel()
	s := startServe(t, t.TempDir())
	cl := s.Client(t)
	ctx := context.Background()
	created, err := cl.CreateSession(ctx, client.CreateSessionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	id := created.Session.ID

	t.Run("Stdio", func(t *testing.T) {
		outR, outW := io.Pipe()
		in, stop := runMCP(t, s.URL, outW, "--session", id)
		cs, err := sdk.NewClient(&sdk.Implementation{Name: "cli-test"}, nil).Connect(ctx, &sdk.IOTransport{Reader: outR, Writer: in}, nil)
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "write_file", Arguments: map[string]any{"path": "hello.txt", "content": "hi\n"}})
		if err != nil || res.IsError {
			t.Fatalf("write_file: %v %+v", err, res)
		}
		page, err := cl.Events(ctx, client.EventsRequest{Session: id})
		if err != nil {
			t.Fatal(err)
		}
		if last := page.Events[len(page.Events)-1]; last.Actor != "cli-test" {
			t.Errorf("the write's actor is %q, want the MCP client's name cli-test", last.Actor)
		}
		_ = cs.Close()
		if code := stop(); code != 0 {
			t.Errorf("strand mcp exited %d when its client went away, want 0", code)
		}
	})

	t.Run("HTTPFork", func(t *testing.T) {
		out := &syncBuffer{}
		_, stop := runMCP(t, s.URL, out, "--fork", id, "--http", "127.0.0.1:0", "--actor", "agent-7")
		re := regexp.MustCompile(`streamable HTTP on (http://\S+) \(session (\w+)\)`)
		var m []string
		waitFor(t, "strand mcp --http to listen", func() bool {
			m = re.FindStringSubmatch(out.String())
			return m != nil
		})
		fork := m[2]
		if fork == id {
			t.Fatalf("--fork pinned the server to %s itself", id)
		}
		cs, err := sdk.NewClient(&sdk.Implementation{Name: "http-test"}, nil).Connect(ctx, &sdk.StreamableClientTransport{Endpoint: m[1], MaxRetries: -1}, nil)
		if err != nil {
			t.Fatalf("connect to %s: %v", m[1], err)
		}
		defer cs.Close()
		res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "session_get", Arguments: map[string]any{}})
		if err != nil || res.IsError {
			t.Fatalf("session_get: %v %+v", err, res)
		}
		var got mcp.SessionResult
		if err := remarshal(res.StructuredContent, &got); err != nil || got.Session.ID != fork || got.Session.Origin == nil || got.Session.Origin.Parent != id {
			t.Errorf("session_get on the --fork server: %+v, %v; want %s forked from %s", got, err, fork, id)
		}
		res, err = cs.CallTool(ctx, &sdk.CallToolParams{Name: "write_file", Arguments: map[string]any{"path": "x.txt", "content": "x"}})
		if err != nil || res.IsError {
			t.Fatalf("write_file: %v %+v", err, res)
		}
		page, err := cl.Events(ctx, client.EventsRequest{Session: fork})
		if err != nil {
			t.Fatal(err)
		}
		if last := page.Events[len(page.Events)-1]; last.Actor != "agent-7" {
			t.Errorf("with --actor the write's actor is %q, want agent-7", last.Actor)
		}
		if code := stop(); code != 0 {
			t.Errorf("strand mcp --http exited %d on interrupt, want 0", code)
		}
	})

	t.Run("RunWithSecret", func(t *testing.T) {
		value := "v-81c2-from-the-embedded-key"
		if _, err := cl.PutSecret(ctx, client.SecretRequest{Name: "TOK", Value: &value}); err != nil {
			t.Fatal(err)
		}
		outR, outW := io.Pipe()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		metricsAddr := ln.Addr().String()
		ln.Close()
		in, stop := runMCP(t, s.URL, outW, "--session", id, "--allow-run", "--secret", "TOK=MY_TOK", "--cache", t.TempDir(), "--metrics", metricsAddr)
		cs, err := sdk.NewClient(&sdk.Implementation{Name: "run-test"}, nil).Connect(ctx, &sdk.IOTransport{Reader: outR, Writer: in}, nil)
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		defer cs.Close()
		res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "run_command", Arguments: map[string]any{
			"command": []string{"sh", "-c", `test "$MY_TOK" = "$(printf 'v-81c2-from-the-embedded-key')" && echo "got $MY_TOK" && echo ran > ran.txt`}}})
		if err != nil || res.IsError {
			t.Fatalf("run_command: %v %+v", err, res)
		}
		var got mcp.RunResult
		if err := remarshal(res.StructuredContent, &got); err != nil || got.ExitCode != 0 || got.Output != "got [secret TOK]\n" || got.Changes != 1 {
			t.Errorf("run_command through strand mcp --allow-run: %+v, %v", got, err)
		}
		// run_command checked out a working copy and pushed: strand mcp
		// --metrics counts both.
		resp, err := http.Get("http://" + metricsAddr + "/metrics")
		if err != nil {
			t.Fatalf("scrape strand mcp --metrics: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, want := range []string{"strand_workcopy_checkouts_total ", "strand_workcopy_pushes_total ", `strand_workcopy_failures_total{op="push"}`} {
			i := strings.Index(string(body), "\n"+want)
			if i < 0 {
				t.Errorf("strand mcp's metrics lack %s", want)
				continue
			}
			if want != `strand_workcopy_failures_total{op="push"}` && strings.HasPrefix(string(body[i+1+len(want):]), "0\n") {
				t.Errorf("%s is 0 after a run_command", want)
			}
		}
		_ = cs.Close()
		if code := stop(); code != 0 {
			t.Errorf("strand mcp exited %d", code)
		}
	})

	t.Run("BadArgs", func(t *testing.T) {
		c := newCLI(t, s.URL)
		if r := c.run("", "mcp", "--session", id, "--fork", id); r.Code != 2 {
			t.Errorf("%v\nwant exit 2 for --session with --fork", r)
		}
		if r := c.run("", "mcp", "--session", id, "--secret", "TOK"); r.Code != 2 || !strings.Contains(r.Stderr, "--allow-run") {
			t.Errorf("%v\nwant exit 2 for --secret without --allow-run", r)
		}
		if r := c.run("", "mcp", "--session", id, "--allow-run", "--secret", "TOK="); r.Code != 2 {
			t.Errorf("%v\nwant exit 2 for --secret TOK=", r)
		}
		c.fail("not_found", "mcp", "--session", "01M8639GP38ZZVG1GPASRX3QZR")
	})
}

// TestMCP_OutsideClient runs the official MCP TypeScript SDK against
// `strand mcp --session S` over stdio (.ci/mcpclient/client.mjs; .ci
// installs it with npm ci). Without node or the installed package it is
// skipped, except in CI (CI=true), where that is a failure.
func TestMCP_OutsideClient(t *testing.T) {
	t.Parallel()
	dir, err := filepath.Abs("../../.ci/mcpclient")
	if err != nil {
		t.Fatal(err)
	}
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(dir, "node_modules", "@modelcontextprotocol", "sdk", "package.json"))
	}
	if err != nil {
		msg := "the outside MCP client needs node and `npm ci` in .ci/mcpclient (bash .ci/install-mcpclient.sh): " + err.Error()
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	s := startServe(t, t.TempDir())
	created, err := s.Client(t).CreateSession(context.Background(), client.CreateSessionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The test binary doubles as strand (TestMain, STRAND_TEST_MAIN).
	cmd := exec.CommandContext(ctx, node, "client.mjs", os.Args[0], "--", "mcp", "--session", created.Session.ID)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "STRAND_TEST_MAIN=1", "STRAND_SERVER="+s.URL, "STRAND_TENANT=default", "STRAND_ACTOR=")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.HasSuffix(strings.TrimSpace(string(out)), "ok") {
		t.Fatalf("node client.mjs: %v\n%s", err, out)
	}
}

// remarshal decodes a structured tool result into out.
func remarshal(v any, out any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}

func TestMCP_LoopbackDefault(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"8931", "127.0.0.1:8931"},
		{":8931", "127.0.0.1:8931"},
		{"0.0.0.0:8931", "0.0.0.0:8931"},
		{"[::1]:0", "[::1]:0"},
	} {
		if got := loopbackDefault(c.in); got != c.want {
			t.Errorf("loopbackDefault(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
