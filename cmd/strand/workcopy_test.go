package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strand-dev/strand/client"
)

// TestCLI_WorkingCopy drives checkout, status, diff, push and pull through
// the real Main against strand serve, on real directories.
func TestCLI_WorkingCopy(t *testing.T) {
	t.Parallel()
	s := startServe(t, t.TempDir())
	c := newCLI(t, s.URL)
	c.env = map[string]string{"STRAND_CACHE_DIR": t.TempDir()}
	cl := s.Client(t)
	ctx := t.Context()
	var sess client.SessionReply
	c.okJSON(&sess, "session", "create")
	id := sess.Session.ID
	if _, err := cl.Batch(ctx, client.BatchRequest{Session: id, Ops: []client.BatchOp{
		{Op: "write", Path: "main.go", Content: []byte("package main\n\nfunc main() {}\n")},
		{Op: "write", Path: "run.sh", Content: []byte("#!/bin/sh\n"), Mode: 0o755},
	}}); err != nil {
		t.Fatal(err)
	}
	a, b := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	out := c.ok("checkout", id, a)
	if !strings.Contains(out, id) {
		t.Fatalf("checkout printed %q, want the session", out)
	}
	if out := c.ok("status", a); !strings.Contains(out, "nothing to push") {
		t.Fatalf("status of a fresh checkout: %q", out)
	}
	must(t, os.WriteFile(filepath.Join(a, "main.go"), []byte("package main\n\nfunc main() { println(1) }\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(a, "new.txt"), []byte("new\n"), 0o644))
	out = c.ok("status", a)
	for _, want := range []string{"modified  main.go", "added     new.txt"} {
		if !strings.Contains(out, want) {
			t.Fatalf("status = %q, want %q", out, want)
		}
	}
	out = c.ok("diff", a)
	for _, want := range []string{"--- a/main.go", "+++ b/main.go", "-func main() {}", "+func main() { println(1) }", "+++ b/new.txt"} {
		if !strings.Contains(out, want) {
			t.Fatalf("diff = %q, want %q", out, want)
		}
	}
	c.ok("checkout", id, b)
	out = c.ok("push", a, "--checkpoint", "first-push", "--message", "from a")
	if !strings.Contains(out, "first-push") {
		t.Fatalf("push printed %q", out)
	}
	if out := c.ok("status", a); !strings.Contains(out, "nothing to push") {
		t.Fatalf("status after push: %q", out)
	}
	// b is behind: its push is refused, a pull brings a's work, then it goes.
	must(t, os.WriteFile(filepath.Join(b, "from-b.txt"), []byte("b\n"), 0o644))
	c.fail("conflict", "push", b)
	out = c.ok("pull", b)
	if !strings.Contains(out, "2 updated") {
		t.Fatalf("pull printed %q, want 2 updated", out)
	}
	c.ok("push", b)
	// A conflicting edit: pull exits 1 with conflict and lists the path.
	c.ok("pull", a)
	must(t, os.WriteFile(filepath.Join(a, "new.txt"), []byte("from a\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(b, "new.txt"), []byte("from b\n"), 0o644))
	c.ok("push", a)
	r := c.fail("conflict", "pull", b)
	if !strings.Contains(r.Stdout, "CONFLICT new.txt") {
		t.Fatalf("%v\nwant the conflict listed", r)
	}
	if out := c.ok("status", b); !strings.Contains(out, "conflict  new.txt") {
		t.Fatalf("status with a conflict: %q", out)
	}
	c.fail("conflict", "push", b)
	must(t, os.WriteFile(filepath.Join(b, "new.txt"), []byte("from both\n"), 0o644))
	c.ok("push", b)
	got, _, err := cl.ReadAll(ctx, id, "new.txt", "")
	must(t, err)
	if string(got) != "from both\n" {
		t.Fatalf("new.txt in the session: %q", got)
	}
	// Bad input: no such directory, not a working copy.
	c.fail("already_exists", "checkout", id, a) // not empty
	if r := c.run("", "status", t.TempDir()); r.Code != 1 || !strings.Contains(r.Stderr, "not a working copy") {
		t.Fatalf("%v\nwant not a working copy", r)
	}
}

// TestCLI_Run: strand run with a real shell script that edits, adds and
// deletes files and exits non-zero; strand exits with its code, the fork
// holds its work, the health report says what happened.
func TestCLI_Run(t *testing.T) {
	t.Parallel()
	s := startServe(t, t.TempDir())
	c := newCLI(t, s.URL)
	c.env = map[string]string{"STRAND_CACHE_DIR": t.TempDir()}
	cl := s.Client(t)
	ctx := t.Context()
	var sess client.SessionReply
	c.okJSON(&sess, "session", "create")
	base := sess.Session.ID
	if _, err := cl.Batch(ctx, client.BatchRequest{Session: base, Ops: []client.BatchOp{
		{Op: "write", Path: "keep.txt", Content: []byte("keep\n")}, {Op: "write", Path: "drop.txt", Content: []byte("drop\n")},
	}}); err != nil {
		t.Fatal(err)
	}
	// The harness appends --server last, which for run would be the
	// command's: this one puts it before "--".
	cr := newCLI(t, "")
	cr.env = c.env
	srv := []string{"--server", s.URL}
	script := filepath.Join(t.TempDir(), "agent.sh")
	must(t, os.WriteFile(script, []byte("#!/bin/sh\necho edited >> keep.txt\necho added > added.txt\nrm drop.txt\necho \"session $STRAND_SESSION\"\nexit 7\n"), 0o755))
	r := cr.run("", append(srv, "run", base, "--fork", "--json", "--", script)...)
	if r.Code != 7 {
		t.Fatalf("%v\nwant exit 7, the script's", r)
	}
	// stdout holds the script's line, then the outcome as JSON.
	i := strings.Index(r.Stdout, "{")
	if i < 0 || !strings.HasPrefix(r.Stdout, "session ") {
		t.Fatalf("%v\nwant the script's output then JSON", r)
	}
	var out struct {
		Session  string `json:"session"`
		Parent   string `json:"parent"`
		ExitCode int    `json:"exit_code"`
		Changes  int    `json:"changes"`
	}
	must(t, json.Unmarshal([]byte(r.Stdout[i:]), &out))
	if out.Parent != base || out.ExitCode != 7 || out.Changes != 3 || !strings.Contains(r.Stdout, "session "+out.Session) {
		t.Fatalf("outcome %+v from %v", out, r)
	}
	got, _, err := cl.ReadAll(ctx, out.Session, "keep.txt", "")
	must(t, err)
	if string(got) != "keep\nedited\n" {
		t.Fatalf("keep.txt in the fork: %q", got)
	}
	if _, _, err := cl.ReadAll(ctx, out.Session, "drop.txt", ""); client.ErrorCode(err) != "not_found" {
		t.Fatalf("drop.txt in the fork: %v, want not_found", err)
	}
	h, err := cl.Health(ctx, client.HealthRequest{Session: out.Session})
	must(t, err)
	if h.Health == nil || h.Health.Passing || !strings.Contains(h.Health.Summary, "exit 7") || !strings.Contains(h.Health.Summary, script) {
		t.Fatalf("health: %+v", h.Health)
	}
	// Three forks at once, each with its own session, and a table.
	r = cr.run("", append(srv, "run", base, "--fork", "--count", "3", "--", "sh", "-c", `echo "$STRAND_SESSION" > who.txt`)...)
	if r.Code != 0 {
		t.Fatalf("%v\nwant exit 0", r)
	}
	for _, want := range []string{"RUN", "1 ", "2 ", "3 ", "passed"} {
		if !strings.Contains(r.Stdout, want) {
			t.Fatalf("%v\nwant the table to hold %q", r, want)
		}
	}
	if strings.Count(r.Stdout, "passed") != 3 {
		t.Fatalf("%v\nwant 3 passed runs", r)
	}
	// Usage mistakes, before any connection.
	for _, args := range [][]string{{"run", base}, {"run", "--", "true"}, {"run", base, "--count", "2", "--", "true"}} {
		if r := c.run("", args...); r.Code != 2 {
			t.Errorf("%v\nwant exit 2", r)
		}
	}
	// A command that does not exist: 127, and a failing health report.
	if r := cr.run("", append(srv, "run", base, "--fork", "--", "/no/such/command")...); r.Code != 127 {
		t.Errorf("%v\nwant exit 127", r)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
