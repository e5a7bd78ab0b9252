package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/handlers"
	"github.com/strand-dev/strand/names"
)

// natsCLI finds the standard nats command-line tool: on PATH, or where
// .ci/install-tools.sh puts it (go install: $GOBIN or $GOPATH/bin).
func natsCLI(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("nats"); err == nil {
		return p
	}
	for _, v := range []string{"GOBIN", "GOPATH"} {
		out, err := exec.Command("go", "env", v).Output()
		dir := strings.TrimSpace(string(out))
		if err != nil || dir == "" {
			continue
		}
		if v == "GOPATH" {
			dir = filepath.Join(filepath.SplitList(dir)[0], "bin")
		}
		p := filepath.Join(dir, "nats")
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	t.Skip("the nats CLI (natscli v0.5.0) is not installed: run .ci/install-tools.sh, or go install github.com/nats-io/natscli/nats@v0.5.0")
	return ""
}

// TestInterop_NatsCLI checks that the standard nats tool, knowing nothing of
// Strand, discovers the service and talks to it with plain JSON.
func TestInterop_NatsCLI(t *testing.T) {
	t.Parallel()
	bin := natsCLI(t)
	s := startServe(t, t.TempDir())
	home := t.TempDir() // no saved nats contexts of whoever runs the tests
	nats := func(args ...string) (string, string, error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, append([]string{"--server", s.URL}, args...)...)
		cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+home, "NATS_CONTEXT=")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}

	t.Run("MicroLs", func(t *testing.T) {
		out, errOut, err := nats("micro", "ls")
		if err != nil {
			t.Fatalf("nats micro ls: %v\n%s%s", err, out, errOut)
		}
		if !strings.Contains(out, names.ServiceName) || !strings.Contains(out, handlers.Version) {
			t.Errorf("nats micro ls = %q, want the service %q version %s", out, names.ServiceName, handlers.Version)
		}
	})

	var id string
	t.Run("ReqSessionCreate", func(t *testing.T) {
		out, errOut, err := nats("req", "strand.v1.default.session.create", "{}")
		if err != nil {
			t.Fatalf("nats req session.create: %v\n%s%s", err, out, errOut)
		}
		var r client.SessionReply
		if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &r); err != nil || r.Session.ID == "" || r.Position == 0 {
			t.Fatalf("nats req session.create answered %q (%v), want JSON with session.id and position", out, err)
		}
		id = r.Session.ID
		// The session is as real to the Go client and the strand CLI.
		got, err := s.Client(t).GetSession(context.Background(), id, "")
		if err != nil || got.Session.ID != id {
			t.Errorf("GetSession(%s) = %+v, %v", id, got.Session, err)
		}
	})

	t.Run("ReqWriteThenCat", func(t *testing.T) {
		if id == "" {
			t.Skip("no session")
		}
		body, _ := json.Marshal(map[string]any{
			"session": id, "path": "from-nats.txt",
			"content": base64.StdEncoding.EncodeToString([]byte("written by the nats CLI\n")),
		})
		out, errOut, err := nats("req", "strand.v1.default.fs.write", string(body))
		if err != nil {
			t.Fatalf("nats req fs.write: %v\n%s%s", err, out, errOut)
		}
		var w client.ChangeReply
		if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &w); err != nil || w.Position == 0 {
			t.Fatalf("nats req fs.write answered %q (%v), want JSON with a position", out, err)
		}
		if got := newCLI(t, s.URL).ok("fs", "cat", id, "from-nats.txt"); got != "written by the nats CLI\n" {
			t.Errorf("strand fs cat of a file written with nats req = %q", got)
		}
	})

	t.Run("ReqError", func(t *testing.T) {
		out, errOut, err := nats("req", "strand.v1.default.session.get", `{"session":"nope"}`)
		if err != nil {
			t.Fatalf("nats req session.get: %v\n%s%s", err, out, errOut)
		}
		var eb client.ErrorBody
		if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &eb); err != nil || eb.Error.Code != "invalid_argument" {
			t.Errorf("nats req session.get with a bad id answered %q (%v), want an invalid_argument error body", out, err)
		}
		if !strings.Contains(errOut, "Nats-Service-Error-Code: 400") {
			t.Errorf("nats req stderr = %q, want the micro error header Nats-Service-Error-Code: 400", errOut)
		}
	})

	t.Run("MicroStats", func(t *testing.T) {
		out, errOut, err := nats("micro", "stats", names.ServiceName, "--json")
		if err != nil {
			t.Fatalf("nats micro stats: %v\n%s%s", err, out, errOut)
		}
		var stats []struct {
			Name      string `json:"name"`
			Endpoints []struct {
				Name        string `json:"name"`
				NumRequests int    `json:"num_requests"`
			} `json:"endpoints"`
		}
		if err := json.Unmarshal([]byte(out), &stats); err != nil || len(stats) == 0 {
			t.Fatalf("nats micro stats --json = %q (%v)", out, err)
		}
		n := 0
		for _, e := range stats[0].Endpoints {
			if e.Name == "session_create" {
				n = e.NumRequests
			}
		}
		if id != "" && n < 1 {
			t.Errorf("micro stats: session_create num_requests = %d, want at least 1", n)
		}
	})
}
