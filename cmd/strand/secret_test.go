package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCLI_Secret runs the embedded default with no set-up: its key file is
// made on first start with mode 0600, and survives a restart.
func TestCLI_Secret(t *testing.T) {
	dir := t.TempDir()
	srv := startServe(t, dir)
	c := newCLI(t, srv.URL)
	fi, err := os.Stat(filepath.Join(dir, "secret.key"))
	if err != nil {
		t.Fatalf("embedded default made no key file: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %o, want 600", fi.Mode().Perm())
	}
	var created struct{ Session struct{ ID string } }
	c.okJSON(&created, "session", "create")
	s := created.Session.ID
	if r := c.run("tenant-secret-from-stdin\n", "secret", "put", "API_KEY"); r.Code != 0 || strings.Contains(r.Stdout, "tenant-secret") {
		t.Fatalf("%v\nwant exit 0 without the value", r)
	}
	c.ok("secret", "put", s, "TOKEN", "session-secret")
	if got := c.ok("secret", "get", "API_KEY"); got != "tenant-secret-from-stdin\n" {
		t.Fatalf("secret get = %q", got)
	}
	if got := c.ok("secret", "get", s, "API_KEY"); got != "tenant-secret-from-stdin\n" {
		t.Fatalf("tenant secret through the session = %q", got)
	}
	list := c.ok("secret", "list", s)
	if !strings.Contains(list, "TOKEN") || !strings.Contains(list, "API_KEY") || strings.Contains(list, "session-secret") {
		t.Fatalf("secret list =\n%s", list)
	}
	r := c.run("", "secret", "put", "bad.name", "do-not-echo")
	if r.Code == 0 || !strings.Contains(r.Stderr, "invalid_argument") || strings.Contains(r.Stderr, "do-not-echo") {
		t.Fatalf("%v\nwant invalid_argument without the value", r)
	}
	c.ok("group", "set", "leads", "bob", "carol")
	if got := c.ok("group", "get", "leads"); got != "leads: bob carol\n" {
		t.Fatalf("group get = %q", got)
	}
	log := c.ok("tenant", "log")
	for _, want := range []string{"SecretPut", "SecretRead", "GroupSet", "API_KEY (tenant) v1 via " + s} {
		if !strings.Contains(log, want) {
			t.Errorf("tenant log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, "session-secret") || strings.Contains(log, "tenant-secret-from") {
		t.Errorf("tenant log shows a value:\n%s", log)
	}

	// The tenant log is in audit's reach: printed and verified straight
	// from the streams.
	if out := c.ok("audit", "log", "--tenant-log", "--timeline"); !strings.Contains(out, "SecretRead") || !strings.Contains(out, "TOKEN (session "+s+") v1") || strings.Contains(out, "session-secret") {
		t.Errorf("audit log --tenant-log =\n%s", out)
	}
	if out := c.ok("audit", "verify", "--all"); !strings.Contains(out, "OK") || !strings.Contains(out, "1 tenant log(s)") {
		t.Errorf("audit verify --all =\n%s", out)
	}

	srv.Stop(t)
	srv = startServe(t, dir)
	c = newCLI(t, srv.URL)
	if got := c.ok("secret", "get", s, "TOKEN"); got != "session-secret\n" {
		t.Fatalf("after restart: secret get = %q", got)
	}
}

// TestCLI_RunSecret: strand run --secret gives the command a secret as an
// environment variable; the value reaches neither the output, the health
// report nor the session.
func TestCLI_RunSecret(t *testing.T) {
	t.Parallel()
	srv := startServe(t, t.TempDir())
	c := newCLI(t, srv.URL)
	c.env = map[string]string{"STRAND_CACHE_DIR": t.TempDir()}
	var created struct{ Session struct{ ID string } }
	c.okJSON(&created, "session", "create")
	s := created.Session.ID
	c.ok("secret", "put", "API_KEY", "value-for-the-run-41c7")
	c.ok("secret", "put", s, "TOKEN", "session-token-88a2")
	script := filepath.Join(t.TempDir(), "agent.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n[ \"$KEY\" = value-for-the-run-41c7 ] || exit 3\n[ \"$TOKEN\" = session-token-88a2 ] || exit 4\necho ran > out.txt\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cr := newCLI(t, "")
	cr.env = c.env
	r := cr.run("", "--server", srv.URL, "run", s, "--fork", "--secret", "API_KEY=KEY", "--secret", "TOKEN", "--", script)
	if r.Code != 0 {
		t.Fatalf("%v\nwant exit 0: the script saw both secrets", r)
	}
	if strings.Contains(r.Stdout+r.Stderr, "value-for-the-run") || strings.Contains(r.Stdout+r.Stderr, "session-token") {
		t.Fatalf("a secret's value was printed:\n%v", r)
	}
	if out := c.ok("events", s); strings.Contains(out, "value-for-the-run") {
		t.Fatalf("a secret's value is in the history")
	}
	if r := cr.run("", "--server", srv.URL, "run", s, "--secret", "MISSING", "--", script); r.Code == 0 || !strings.Contains(r.Stderr, "not_found") {
		t.Fatalf("%v\nwant not_found for a missing secret, before anything runs", r)
	}
}

// TestCLI_CommitSummaryFiles: commit summary and commit show list the
// changed paths with their line counts.
func TestCLI_CommitSummaryFiles(t *testing.T) {
	t.Parallel()
	srv := startServe(t, t.TempDir())
	c := newCLI(t, srv.URL)
	var created struct{ Session struct{ ID string } }
	c.okJSON(&created, "session", "create")
	s := created.Session.ID
	if r := c.run("one\ntwo\nthree\n", "fs", "write", s, "src/a.go"); r.Code != 0 {
		t.Fatal(r)
	}
	if r := c.run("x\n", "fs", "write", s, "z.txt"); r.Code != 0 {
		t.Fatal(r)
	}
	out := c.ok("commit", "summary", s, "--limit", "1")
	for _, want := range []string{"CHANGE", "added", "src/a.go", "+3 -0", "more: strand commit summary " + s + " --offset 1"} {
		if !strings.Contains(out, want) {
			t.Errorf("commit summary lacks %q:\n%s", want, out)
		}
	}
	var cm struct{ Commit struct{ ID string } }
	c.okJSON(&cm, "commit", "create", s, "--message", "m")
	show := c.ok("commit", "show", cm.Commit.ID, "--session", s)
	if !strings.Contains(show, "src/a.go") || !strings.Contains(show, "+3 -0") {
		t.Errorf("commit show lacks the changed file:\n%s", show)
	}
}
