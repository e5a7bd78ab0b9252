package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/client"
)

// TestCLI_Audit drives the audit commands against a served store: they read
// the streams over NATS, not the service.
func TestCLI_Audit(t *testing.T) {
	t.Parallel()
	srv := startServe(t, t.TempDir())
	c := newCLI(t, srv.URL)
	cl := srv.Client(t)
	ctx := context.Background()

	s, err := cl.CreateSession(ctx, client.CreateSessionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	id := s.Session.ID
	must := func(_ client.ChangeReply, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(cl.Write(ctx, client.WriteRequest{Session: id, Path: "src/main.go", Content: []byte("package main\n")}))
	must(cl.Write(ctx, client.WriteRequest{Session: id, Path: "bin/run", Content: []byte("#!/bin/sh\n"), Mode: 0o755}))
	must(cl.Symlink(ctx, client.SymlinkRequest{Session: id, Path: "main", Target: "src/main.go"}))
	cp, err := cl.CreateCheckpoint(ctx, client.CheckpointRequest{Session: id, Name: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	must(cl.Write(ctx, client.WriteRequest{Session: id, Path: "src/main.go", Content: []byte("package main // v2\n")}))
	must(cl.Remove(ctx, client.RemoveRequest{Session: id, Path: "bin", Recursive: true}))

	t.Run("Verify", func(t *testing.T) {
		out := c.ok("audit", "verify")
		if !strings.HasPrefix(out, "OK: every session: 1 histories") {
			t.Fatalf("verify: %q", out)
		}
		var rep struct {
			Histories int               `json:"histories"`
			Findings  []json.RawMessage `json:"findings"`
		}
		c.okJSON(&rep, "audit", "verify", "--session", id)
		if rep.Histories != 1 || len(rep.Findings) != 0 {
			t.Fatalf("verify --session: %+v", rep)
		}
		heads := filepath.Join(t.TempDir(), "heads.jsonl")
		c.ok("audit", "verify", "--tenant", "default", "--heads", heads)
		if out := c.ok("audit", "verify", "--anchors", heads); !strings.HasPrefix(out, "OK:") {
			t.Fatalf("verify --anchors: %q", out)
		}
		if r := c.run("", "audit", "verify", "--all", "--session", id); r.Code != 2 {
			t.Fatalf("%v\nwant exit 2", r)
		}
		c.fail("not_found", "audit", "verify", "--stream-prefix", "NOPE")
	})
	t.Run("Replay", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "v1")
		out := c.ok("audit", "replay", id, "--at", "v1", "--to", dir)
		if !strings.Contains(out, "at position "+strconv.FormatUint(cp.Checkpoint.Position, 10)) {
			t.Fatalf("replay: %q", out)
		}
		if got, err := os.ReadFile(filepath.Join(dir, "main")); err != nil || string(got) != "package main\n" {
			t.Fatalf("main -> src/main.go at v1: %q %v", got, err)
		}
		if info, err := os.Stat(filepath.Join(dir, "bin/run")); err != nil || info.Mode().Perm() != 0o755 {
			t.Fatalf("bin/run: %v %v", info, err)
		}
		c.fail("already_exists", "audit", "replay", id, "--to", dir)
		c.ok("audit", "replay", id, "--to", dir, "--force")
		if _, err := os.Stat(filepath.Join(dir, "bin")); !os.IsNotExist(err) {
			t.Fatalf("at the head bin is removed, got %v", err)
		}
		at := filepath.Join(t.TempDir(), "at")
		c.ok("audit", "replay", id+"@"+strconv.FormatUint(cp.Position, 10), "--to", at)
		if _, err := os.Stat(filepath.Join(at, "bin/run")); err != nil {
			t.Fatalf("SESSION@POSITION: %v", err)
		}
		if r := c.run("", "audit", "replay", id); r.Code != 2 {
			t.Fatalf("%v\nwant exit 2 without --to", r)
		}
	})
	t.Run("Log", func(t *testing.T) {
		out := c.ok("audit", "log", "--session", id)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 7 {
			t.Fatalf("log: %d lines, want 7:\n%s", len(lines), out)
		}
		var first struct {
			Position uint64 `json:"position"`
			Type     string `json:"type"`
			Hash     string `json:"hash"`
		}
		if err := json.Unmarshal([]byte(lines[0]), &first); err != nil || first.Type != "SessionCreated" || len(first.Hash) != 64 {
			t.Fatalf("first line %q: %v", lines[0], err)
		}
		out = c.ok("audit", "log", "--type", "FileWritten", "--path", "src", "--timeline")
		if strings.Count(out, "FileWritten") != 2 || !strings.Contains(out, "write src/main.go") {
			t.Fatalf("timeline:\n%s", out)
		}
		if r := c.run("", "audit", "log", "--type", "Bogus"); r.Code != 2 {
			t.Fatalf("%v\nwant exit 2", r)
		}
		if r := c.run("", "audit", "log", "--since", "yesterday-ish"); r.Code != 2 {
			t.Fatalf("%v\nwant exit 2", r)
		}
	})
	t.Run("Blame", func(t *testing.T) {
		var changes []struct {
			Kind string `json:"kind"`
		}
		c.okJSON(&changes, "audit", "blame", id, "/src/main.go")
		if len(changes) != 2 || changes[0].Kind != "write" || changes[1].Kind != "write" {
			t.Fatalf("blame: %+v", changes)
		}
		if out := c.ok("audit", "blame", id, "bin/run"); !strings.Contains(out, "remove") {
			t.Fatalf("blame table:\n%s", out)
		}
	})
	t.Run("Tampered", func(t *testing.T) {
		// Last: an operator deletes an event from the live stream.
		nc, err := nats.Connect(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		st, err := js.Stream(ctx, "STRAND_EVENTS")
		if err != nil {
			t.Fatal(err)
		}
		if err := st.DeleteMsg(ctx, cp.Checkpoint.Position); err != nil {
			t.Fatal(err)
		}
		r := c.fail("internal", "audit", "verify")
		if !strings.Contains(r.Stdout, "FINDING default/"+id+" position "+strconv.FormatUint(cp.Position, 10)) ||
			!strings.Contains(r.Stdout, "version: version 5 follows version 3") || !strings.Contains(r.Stderr, "verification failed") {
			t.Fatalf("%v", r)
		}
		c.fail("internal", "audit", "replay", id, "--to", filepath.Join(t.TempDir(), "x"))
	})
}
