package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/strand-dev/strand/client"
)

func sha(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// mutation runs a mutating command with --json, checks that the reply
// carries a "position" after *last, advances *last, and decodes the reply
// into v (when not nil).
func (c *cli) mutation(last *uint64, v any, stdin string, args ...string) {
	c.t.Helper()
	r := c.run(stdin, append(args, "--json")...)
	if r.Code != 0 {
		c.t.Fatalf("%v\nwant exit 0", r)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(r.Stdout), &raw); err != nil {
		c.t.Fatalf("%v\noutput is not a JSON object: %v", r, err)
	}
	var pos uint64
	if err := json.Unmarshal(raw["position"], &pos); err != nil || pos == 0 {
		c.t.Fatalf("%v\nwant a non-zero \"position\" in the reply", r)
	}
	if last != nil {
		if pos <= *last {
			c.t.Fatalf("%v\ngot position %d, want it after %d", r, pos, *last)
		}
		*last = pos
	}
	if v != nil {
		if err := json.Unmarshal([]byte(r.Stdout), v); err != nil {
			c.t.Fatalf("%v\ndecode: %v", r, err)
		}
	}
}

func TestServe_ReadyAndStop(t *testing.T) {
	t.Parallel()
	s := startServe(t, t.TempDir(), "--log-level", "info")
	if !strings.HasPrefix(s.URL, "nats://127.0.0.1:") || strings.HasSuffix(s.URL, ":0") {
		t.Errorf("Ready URL = %q, want nats://127.0.0.1:<random port>", s.URL)
	}
	if out := s.Stdout.String(); !strings.Contains(out, "fsync true") {
		t.Errorf("serve stdout = %q, want fsync on by default", out)
	}
	// The embedded server holds the event stream's one copy: reads at the
	// head are direct gets (design record 0021).
	if log := s.Stderr.String(); !strings.Contains(log, `msg="reads at the head" direct_get=true`) {
		t.Errorf("serve log lacks reads at the head with direct gets:\n%s", log)
	}
	s.Stop(t)
	// After Stop the port no longer answers.
	newCLI(t, s.URL).fail("unavailable", "session", "list")
}

func TestCLI_Session(t *testing.T) {
	t.Parallel()
	s := startServe(t, t.TempDir())
	c := newCLI(t, s.URL)
	cl := s.Client(t)
	ctx := context.Background()

	var last uint64
	var created client.SessionReply
	c.mutation(&last, &created, "", "session", "create", "--tag", "team=blue", "--tag", "env=dev", "--owner", "olga")
	id := created.Session.ID
	if id == "" || created.Session.Status != "active" || created.Session.Owner != "olga" ||
		created.Session.Tags["team"] != "blue" || created.Position != created.Session.Position {
		t.Fatalf("session create = %+v, want an active session owned by olga with tag team=blue", created)
	}

	t.Run("Get", func(t *testing.T) {
		var got client.SessionReply
		c.okJSON(&got, "session", "get", id)
		if got.Session.ID != id || got.Session.Root != created.Session.Root || got.Position != last {
			t.Errorf("session get = %+v, want id %s root %s position %d", got.Session, id, created.Session.Root, last)
		}
		// The table names the fields.
		out := c.ok("session", "get", id)
		for _, want := range []string{"id", id, "status", "active", "team=blue"} {
			if !strings.Contains(out, want) {
				t.Errorf("session get table lacks %q:\n%s", want, out)
			}
		}
		// What the CLI made, the Go client sees.
		r, err := cl.GetSession(ctx, id, "")
		if err != nil || r.Session.Root != created.Session.Root {
			t.Errorf("client GetSession = %+v, %v; want root %s", r.Session, err, created.Session.Root)
		}
	})

	t.Run("Tag", func(t *testing.T) {
		var got client.SessionReply
		c.mutation(&last, &got, "", "session", "tag", id, "stage=review", "--remove", "env")
		if got.Session.Tags["stage"] != "review" || got.Session.Tags["team"] != "blue" {
			t.Errorf("tags after tag = %v, want stage=review and team=blue", got.Session.Tags)
		}
		if _, ok := got.Session.Tags["env"]; ok {
			t.Errorf("tags after --remove env = %v, want no env", got.Session.Tags)
		}
	})

	t.Run("List", func(t *testing.T) {
		other, err := cl.CreateSession(ctx, client.CreateSessionRequest{Tags: map[string]string{"team": "red"}})
		if err != nil {
			t.Fatal(err)
		}
		// The list is a projection: it catches up shortly after a write.
		var ids []string
		waitFor(t, "session list --tag team=blue to show "+id, func() bool {
			var l client.ListSessionsReply
			c.okJSON(&l, "session", "list", "--tag", "team=blue")
			ids = ids[:0]
			for _, s := range l.Sessions {
				ids = append(ids, s.ID)
			}
			return slices.Contains(ids, id)
		})
		if slices.Contains(ids, other.Session.ID) {
			t.Errorf("session list --tag team=blue = %v, want no %s (team=red)", ids, other.Session.ID)
		}
		waitFor(t, "session list table to show both sessions", func() bool {
			out := c.ok("session", "list")
			return strings.Contains(out, id) && strings.Contains(out, other.Session.ID)
		})
	})

	t.Run("ArchiveAndDelete", func(t *testing.T) {
		var a client.SessionReply
		c.mutation(&last, &a, "", "session", "archive", id)
		if a.Session.Status != "archived" {
			t.Errorf("status after archive = %q, want archived", a.Session.Status)
		}
		r := c.run("x", "fs", "write", id, "late.txt")
		if r.Code != 1 || !strings.HasPrefix(r.Stderr, "strand: ") || !strings.Contains(r.Stderr, "archived") {
			t.Errorf("%v\nwant a write to an archived session refused with exit 1, saying it is archived", r)
		}
		waitFor(t, "session list --status archived to show "+id, func() bool {
			var l client.ListSessionsReply
			c.okJSON(&l, "session", "list", "--status", "archived")
			return len(l.Sessions) == 1 && l.Sessions[0].ID == id
		})

		var d client.SessionReply
		c.mutation(&last, &d, "", "session", "delete", id)
		if d.Session.Status != "deleted" {
			t.Errorf("status after delete = %q, want deleted", d.Session.Status)
		}
		c.fail("not_found", "session", "get", id)
		// History stays: the session as it was is still readable.
		var past client.SessionReply
		c.okJSON(&past, "session", "get", id+"@"+strconv.FormatUint(created.Position, 10))
		if past.Session.Status != "active" || past.Session.Root != created.Session.Root {
			t.Errorf("session get %s@%d = %+v, want the active session as created", id, created.Position, past.Session)
		}
	})
}

func TestCLI_FS(t *testing.T) {
	t.Parallel()
	s := startServe(t, t.TempDir())
	c := newCLI(t, s.URL)
	cl := s.Client(t)
	ctx := context.Background()
	created, err := cl.CreateSession(ctx, client.CreateSessionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	id := created.Session.ID
	last := created.Position

	// Binary content with NULs, no trailing newline, and big enough to go up
	// in several chunks.
	bin := make([]byte, 1<<20+123)
	for i := range bin {
		bin[i] = byte(i * 7)
	}
	binFile := filepath.Join(t.TempDir(), "blob.bin")
	if err := os.WriteFile(binFile, bin, 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("WriteStdin", func(t *testing.T) {
		var r client.ChangeReply
		c.mutation(&last, &r, "hello\n", "fs", "write", id, "/docs/hello.txt")
		if r.Path != "docs/hello.txt" || r.Hash != sha([]byte("hello\n")) || r.Size != 6 || r.Session != id {
			t.Errorf("fs write = %+v, want docs/hello.txt with hash %s size 6", r, sha([]byte("hello\n")))
		}
	})
	t.Run("WriteFromFile", func(t *testing.T) {
		var r client.ChangeReply
		c.mutation(&last, &r, "", "fs", "write", id, "data/blob.bin", "--from", binFile, "--mode", "600")
		if r.Hash != sha(bin) || r.Size != int64(len(bin)) {
			t.Errorf("fs write --from = %+v, want hash %s size %d", r, sha(bin), len(bin))
		}
	})
	t.Run("CatRawBytes", func(t *testing.T) {
		if out := c.ok("fs", "cat", id, "docs/hello.txt"); out != "hello\n" {
			t.Errorf("fs cat docs/hello.txt = %q, want %q", out, "hello\n")
		}
		if out := c.ok("fs", "cat", id, "/data/blob.bin"); out != string(bin) {
			t.Errorf("fs cat data/blob.bin: got %d bytes (sha %s), want %d bytes (sha %s)", len(out), sha([]byte(out)), len(bin), sha(bin))
		}
	})
	t.Run("Ls", func(t *testing.T) {
		var m client.ManifestReply
		c.okJSON(&m, "fs", "ls", id)
		got := map[string]client.EntryView{}
		for _, e := range m.Entries {
			got[e.Path] = e
		}
		if e := got["data/blob.bin"]; e.Kind != "file" || e.Mode != 0o600 || e.Size != int64(len(bin)) || e.Hash != sha(bin) {
			t.Errorf("fs ls: data/blob.bin = %+v, want a 0600 file of %d bytes", e, len(bin))
		}
		if e := got["docs"]; e.Kind != "dir" {
			t.Errorf("fs ls: docs = %+v, want a dir", e)
		}
		if m.Position != last {
			t.Errorf("fs ls position = %d, want %d", m.Position, last)
		}
		var p client.ManifestReply
		c.okJSON(&p, "fs", "ls", id, "docs/")
		if len(p.Entries) != 1 || p.Entries[0].Path != "docs/hello.txt" {
			t.Errorf("fs ls %s docs/ = %+v, want only docs/hello.txt", id, p.Entries)
		}
		out := c.ok("fs", "ls", id)
		for _, want := range []string{"PATH", "docs/", "docs/hello.txt", "0600"} {
			if !strings.Contains(out, want) {
				t.Errorf("fs ls table lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("MkdirLnMvRm", func(t *testing.T) {
		c.mutation(&last, nil, "", "fs", "mkdir", id, "a/b/c")
		c.mutation(&last, nil, "x", "fs", "write", id, "a/b/c/x.txt")
		c.mutation(&last, nil, "", "fs", "ln", id, "docs/hello.txt", "link")
		if out := c.ok("fs", "cat", id, "link"); out != "hello\n" {
			t.Errorf("fs cat link = %q, want the target's %q", out, "hello\n")
		}
		c.mutation(&last, nil, "", "fs", "chmod", id, "0750", "a/b")
		c.mutation(&last, nil, "", "fs", "chmod", id, "0", "link") // the link's target
		for _, bad := range []string{"rwx", "17777", "8", ""} {
			if r := c.run("", "fs", "chmod", id, bad, "a"); r.Code != 2 || !strings.Contains(r.Stderr, "octal mode") {
				t.Errorf("fs chmod with mode %q: %v, want a usage error (exit 2)", bad, r)
			}
		}
		c.fail("not_found", "fs", "chmod", id, "644", "nowhere")
		modes, err := cl.Manifest(ctx, client.ManifestRequest{Session: id})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range modes.Entries {
			if want, ok := map[string]uint32{"a/b": 0o750, "docs/hello.txt": 0}[e.Path]; ok && e.Mode != want {
				t.Errorf("after fs chmod: %s has mode %o, want %o", e.Path, e.Mode, want)
			}
		}
		c.mutation(&last, nil, "", "fs", "mv", id, "docs/hello.txt", "docs/moved.txt")
		c.fail("not_found", "fs", "cat", id, "docs/hello.txt")
		c.fail("invalid_argument", "fs", "rm", id, "a")
		c.mutation(&last, nil, "", "fs", "rm", "-r", id, "a")

		m, err := cl.Manifest(ctx, client.ManifestRequest{Session: id})
		if err != nil {
			t.Fatal(err)
		}
		var paths []string
		for _, e := range m.Entries {
			paths = append(paths, e.Path+":"+e.Kind)
		}
		want := []string{"data:dir", "data/blob.bin:file", "docs:dir", "docs/moved.txt:file", "link:symlink"}
		if !slices.Equal(paths, want) {
			t.Errorf("tree after mkdir/ln/mv/rm -r = %v, want %v", paths, want)
		}
		if m.Position != last {
			t.Errorf("manifest position = %d, want the last reply's %d", m.Position, last)
		}
	})
	t.Run("ClientWriteCLIRead", func(t *testing.T) {
		r, err := cl.Write(ctx, client.WriteRequest{Session: id, Path: "from-go.txt", Content: []byte("go\x00client")})
		if err != nil {
			t.Fatal(err)
		}
		if out := c.ok("fs", "cat", id, "from-go.txt", "--at", strconv.FormatUint(r.Position, 10)); out != "go\x00client" {
			t.Errorf("fs cat from-go.txt = %q, want %q", out, "go\x00client")
		}
	})
}

func TestCLI_History(t *testing.T) {
	t.Parallel()
	s := startServe(t, t.TempDir())
	c := newCLI(t, s.URL)

	var created client.SessionReply
	var last uint64
	c.mutation(&last, &created, "", "session", "create")
	id := created.Session.ID
	var w1, w2 client.ChangeReply
	c.mutation(&last, &w1, "v1", "fs", "write", id, "f.txt")
	var cp client.CheckpointReply
	c.mutation(&last, &cp, "", "checkpoint", "create", id, "first", "--note", "before v2")
	if cp.Checkpoint.Name != "first" || cp.Checkpoint.Position != w1.Position || cp.Checkpoint.Note != "before v2" {
		t.Fatalf("checkpoint create = %+v, want first -> %d with the note", cp.Checkpoint, w1.Position)
	}
	c.mutation(&last, &w2, "v2", "fs", "write", id, "f.txt")
	c.mutation(&last, nil, "other", "fs", "write", id, "g.txt")
	at1 := strconv.FormatUint(w1.Position, 10)

	t.Run("CheckpointList", func(t *testing.T) {
		var l client.CheckpointListReply
		c.okJSON(&l, "checkpoint", "list", id)
		if len(l.Checkpoints) != 1 || l.Checkpoints[0].Name != "first" || l.Checkpoints[0].Position != w1.Position {
			t.Errorf("checkpoint list = %+v, want [first -> %d]", l.Checkpoints, w1.Position)
		}
		if out := c.ok("checkpoint", "list", id); !strings.Contains(out, "first") || !strings.Contains(out, "before v2") {
			t.Errorf("checkpoint list table = %q, want first and its note", out)
		}
	})
	t.Run("CatAt", func(t *testing.T) {
		for _, tc := range []struct{ args []string }{
			{[]string{"fs", "cat", id, "f.txt", "--at", at1}},
			{[]string{"fs", "cat", id, "f.txt", "--at", "first"}},
			{[]string{"fs", "cat", id + "@first", "f.txt"}},
			{[]string{"fs", "cat", id + "@" + at1, "f.txt"}},
		} {
			if out := c.ok(tc.args...); out != "v1" {
				t.Errorf("strand %s = %q, want v1", strings.Join(tc.args, " "), out)
			}
		}
		if out := c.ok("fs", "cat", id, "f.txt"); out != "v2" {
			t.Errorf("fs cat at the head = %q, want v2", out)
		}
		c.fail("not_found", "fs", "cat", id, "g.txt", "--at", "first")
	})
	t.Run("Events", func(t *testing.T) {
		var ev client.EventsReply
		c.okJSON(&ev, "events", id)
		var types []string
		prev := ""
		for i, e := range ev.Events {
			types = append(types, e.Type)
			if e.Session != id || e.Actor != "anonymous" {
				t.Errorf("event %d = %+v, want session %s actor anonymous", i, e, id)
			}
			if e.Prev != prev {
				t.Errorf("event %d prev = %q, want the hash of the one before, %q", i, e.Prev, prev)
			}
			prev = e.Hash
		}
		want := []string{"SessionCreated", "FileWritten", "CheckpointCreated", "FileWritten", "FileWritten"}
		if !slices.Equal(types, want) {
			t.Errorf("events types = %v, want %v", types, want)
		}
		if n := len(ev.Events); n > 0 && ev.Events[n-1].Position != last {
			t.Errorf("last event position = %d, want %d", ev.Events[n-1].Position, last)
		}
		var upTo client.EventsReply
		c.okJSON(&upTo, "events", id, "--at", "first")
		if len(upTo.Events) != 2 {
			t.Errorf("events --at first: got %d events, want 2", len(upTo.Events))
		}
		if out := c.ok("events", id); !strings.Contains(out, "write f.txt") || !strings.Contains(out, "checkpoint first") {
			t.Errorf("events table lacks the write and the checkpoint:\n%s", out)
		}
	})
	t.Run("ForkAt", func(t *testing.T) {
		var f client.SessionReply
		c.mutation(nil, &f, "", "session", "fork", id, "--at", "first")
		if f.Session.ID == id || f.Session.Origin == nil || f.Session.Origin.Parent != id || f.Session.Origin.Position != w1.Position {
			t.Fatalf("session fork --at first = %+v, want a new session with origin %s@%d", f.Session, id, w1.Position)
		}
		if out := c.ok("fs", "cat", f.Session.ID, "f.txt"); out != "v1" {
			t.Errorf("fs cat in the fork = %q, want v1", out)
		}
		c.mutation(nil, nil, "fork only", "fs", "write", f.Session.ID, "f.txt")
		if out := c.ok("fs", "cat", id, "f.txt"); out != "v2" {
			t.Errorf("parent f.txt after writing the fork = %q, want v2", out)
		}
		var byPos client.SessionReply
		c.mutation(nil, &byPos, "", "session", "fork", id+"@"+at1)
		if out := c.ok("fs", "cat", byPos.Session.ID, "f.txt"); out != "v1" {
			t.Errorf("fs cat in fork %s@%s = %q, want v1", id, at1, out)
		}
	})
	t.Run("RestoreTo", func(t *testing.T) {
		var then client.SessionReply
		c.okJSON(&then, "session", "get", id, "--at", at1)
		var r client.SessionReply
		c.mutation(&last, &r, "", "session", "restore", id, "--to", "first")
		if r.Session.Root != then.Session.Root {
			t.Errorf("root after restore --to first = %s, want the root at %s, %s", r.Session.Root, at1, then.Session.Root)
		}
		if out := c.ok("fs", "cat", id, "f.txt"); out != "v1" {
			t.Errorf("fs cat after restore = %q, want v1", out)
		}
		c.fail("not_found", "fs", "cat", id, "g.txt")
		// A restore is an event too: it can be undone by another.
		c.mutation(&last, nil, "", "session", "restore", id, "--to", strconv.FormatUint(w2.Position+1, 10))
		if out := c.ok("fs", "cat", id, "g.txt"); out != "other" {
			t.Errorf("fs cat g.txt after restoring forward = %q, want other", out)
		}
	})
	t.Run("CheckpointRm", func(t *testing.T) {
		c.mutation(&last, nil, "", "checkpoint", "rm", id, "first")
		var l client.CheckpointListReply
		c.okJSON(&l, "checkpoint", "list", id)
		if len(l.Checkpoints) != 0 {
			t.Errorf("checkpoint list after rm = %+v, want none", l.Checkpoints)
		}
		c.fail("not_found", "fs", "cat", id, "f.txt", "--at", "first")
		// Positions stay readable without the name.
		if out := c.ok("fs", "cat", id, "f.txt", "--at", at1); out != "v1" {
			t.Errorf("fs cat --at %s after checkpoint rm = %q, want v1", at1, out)
		}
	})
}

func TestCLI_GlobalFlagsAndEnv(t *testing.T) {
	t.Parallel()
	s := startServe(t, t.TempDir())
	cl := s.Client(t)
	ctx := context.Background()

	t.Run("FlagsBeforeAndAfterPositionals", func(t *testing.T) {
		c := newCLI(t, "")
		var r client.SessionReply
		c.okJSON(&r, "session", "create", "--server", s.URL)
		id := r.Session.ID
		for _, args := range [][]string{
			{"fs", "write", "--json", id, "--server", s.URL, "p.txt", "--actor", "ann"},
			{"fs", "write", "--server", s.URL, "--tenant", "default", id, "p.txt", "--json", "--actor", "ann"},
			{"--json", "fs", "write", id, "p.txt", "--server", s.URL},
		} {
			// Global flags may also come before the group's name.
			res := c.run("p", args...)
			var w client.ChangeReply
			if res.Code != 0 || json.Unmarshal([]byte(res.Stdout), &w) != nil || w.Position == 0 {
				t.Errorf("%v\nwant exit 0 and a JSON reply with a position", res)
			}
		}
		ev, err := cl.Events(ctx, client.EventsRequest{Session: id})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(ev.Events); n != 4 || ev.Events[1].Actor != "ann" || ev.Events[2].Actor != "ann" || ev.Events[3].Actor != "anonymous" {
			t.Errorf("events = %+v, want a create, two writes by ann and one by anonymous", ev.Events)
		}
	})

	t.Run("Env", func(t *testing.T) {
		c := &cli{t: t, env: map[string]string{
			"STRAND_SERVER": s.URL, "STRAND_TENANT": "acme", "STRAND_ACTOR": "alice",
		}}
		var r client.SessionReply
		c.okJSON(&r, "session", "create")
		id := r.Session.ID
		if r.Session.Tenant != "acme" || r.Session.Owner != "alice" {
			t.Fatalf("session create with STRAND_TENANT=acme STRAND_ACTOR=alice = %+v, want tenant acme owner alice", r.Session)
		}
		var w client.ChangeReply
		c.okJSON(&w, "fs", "write", id, "by-env.txt")
		c.okJSON(&w, "fs", "write", id, "by-flag.txt", "--actor", "bob")
		var ev client.EventsReply
		c.okJSON(&ev, "events", id)
		var actors []string
		for _, e := range ev.Events {
			actors = append(actors, e.Actor)
			if e.Tenant != "acme" {
				t.Errorf("event %d tenant = %q, want acme", e.Position, e.Tenant)
			}
		}
		if want := []string{"alice", "alice", "bob"}; !slices.Equal(actors, want) {
			t.Errorf("event actors = %v, want %v (env, env, --actor overrides env)", actors, want)
		}
		// Tenants are namespaces: the default tenant does not see acme's session.
		if _, err := cl.GetSession(ctx, id, ""); client.ErrorCode(err) != "not_found" {
			t.Errorf("GetSession in tenant default of an acme session: err = %v, want not_found", err)
		}
		acme := client.NewClient(cl.Conn(), "acme")
		if got, err := acme.GetSession(ctx, id, ""); err != nil || got.Session.ID != id {
			t.Errorf("GetSession in tenant acme = %+v, %v; want %s", got.Session, err, id)
		}
		// --tenant beats STRAND_TENANT.
		c.fail("not_found", "session", "get", id, "--tenant", "default")
		// A tenant that cannot be part of a subject is a usage error.
		bad := &cli{t: t, env: map[string]string{"STRAND_SERVER": s.URL, "STRAND_TENANT": "a.b"}}
		if res := bad.run("", "session", "get", id); res.Code != 2 {
			t.Errorf("%v\nwant exit 2 for STRAND_TENANT=a.b", res)
		}
		// STRAND_SERVER is where the CLI goes: a dead one is unavailable.
		dead := &cli{t: t, env: map[string]string{"STRAND_SERVER": "nats://127.0.0.1:1"}}
		dead.fail("unavailable", "session", "get", id)
	})
}

func TestCLI_Errors(t *testing.T) {
	t.Parallel()
	s := startServe(t, t.TempDir())
	c := newCLI(t, s.URL)
	var r client.SessionReply
	c.okJSON(&r, "session", "create")
	id := r.Session.ID

	t.Run("FailureExits1", func(t *testing.T) {
		for _, tc := range []struct {
			code, message string
			args          []string
		}{
			{"invalid_argument", `session "nope" is not a valid id`, []string{"session", "get", "nope"}},
			{"not_found", "session not found", []string{"session", "get", "01ARZ3NDEKTSV4RRFFQ69G5FAV"}},
			{"not_found", "", []string{"fs", "cat", id, "missing.txt"}},
			{"not_found", "", []string{"fs", "cat", id, "x", "--at", "no-such-checkpoint"}},
			{"invalid_argument", "", []string{"fs", "write", id, "../escape"}},
			{"conflict", "", []string{"fs", "write", id, "x.txt", "--expect-position", "99999"}},
		} {
			res := c.fail(tc.code, tc.args...)
			if tc.message != "" && res.Stderr != "strand: "+tc.code+": "+tc.message+"\n" {
				t.Errorf("%v\nwant stderr %q", res, "strand: "+tc.code+": "+tc.message)
			}
			if res.Stdout != "" {
				t.Errorf("%v\nwant nothing on stdout", res)
			}
		}
		// A refused request changed nothing.
		var ev client.EventsReply
		c.okJSON(&ev, "events", id)
		if len(ev.Events) != 1 {
			t.Errorf("events after refused requests = %d, want only the create", len(ev.Events))
		}
	})

	t.Run("UsageExits2", func(t *testing.T) {
		// None of these needs a server: they fail before connecting, with or
		// without a reachable one.
		for _, server := range []string{s.URL, "nats://127.0.0.1:1"} {
			uc := newCLI(t, "")
			for _, args := range [][]string{
				{},
				{"frobnicate"},
				{"session"},
				{"session", "frobnicate"},
				{"session", "get"},
				{"session", "get", id, "extra"},
				{"session", "create", "--bogus"},
				{"session", "list", "--limit", "many"},
				{"session", "create", "--tag", "novalue"},
				{"session", "restore", id},
				{"fs", "cat", id},
				{"fs", "write", id, "f", "--mode", "999"},
				{"fs", "mv", id, "a"},
				{"checkpoint", "create", id},
				{"events"},
				{"serve", "extra-argument"},
				{"serve", "--log-level", "chatty"},
				{"serve", "--state-idle", "-1m"},
				{"serve", "--state-idle", "soon"},
			} {
				if len(args) > 0 && args[0] != "serve" {
					args = append(args, "--server", server)
				}
				res := uc.run("", args...)
				if res.Code != 2 {
					t.Errorf("%v\nwant exit 2 (usage)", res)
				}
				if len(args) > 1 && !strings.Contains(res.Stderr, "strand: ") {
					t.Errorf("%v\nwant the problem on stderr", res)
				}
			}
		}
	})

	t.Run("HelpExits0", func(t *testing.T) {
		uc := newCLI(t, "")
		for _, args := range [][]string{{"help"}, {"--help"}, {"session", "--help"}, {"fs", "write", "-h"}} {
			res := uc.run("", args...)
			if res.Code != 0 {
				t.Errorf("%v\nwant exit 0", res)
			}
			if !strings.Contains(res.Stdout+res.Stderr, "strand") && !strings.Contains(res.Stdout+res.Stderr, "-from") {
				t.Errorf("%v\nwant usage text", res)
			}
		}
	})

	t.Run("Idempotent", func(t *testing.T) {
		var a, b client.ChangeReply
		c.okJSON(&a, "fs", "write", id, "once.txt", "--request-id", "req-1")
		c.okJSON(&b, "fs", "write", id, "once.txt", "--request-id", "req-1")
		if b.Position != a.Position || !b.Replayed {
			t.Errorf("retry with the same --request-id = %+v, want position %d replayed", b, a.Position)
		}
	})
}

func TestServe_RestartKeepsEverything(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// Snapshots every 3 events, so that the restarted server loads some
	// sessions from a snapshot and replays the rest.
	s1 := startServe(t, dir, "--snapshot-every", "3")
	c := newCLI(t, s1.URL)
	cl := s1.Client(t)
	ctx := context.Background()

	type file struct {
		session, path, content string
		at                     uint64
	}
	var files []file
	var ids []string
	for i := range 3 {
		var r client.SessionReply
		c.okJSON(&r, "session", "create", "--tag", "n="+strconv.Itoa(i))
		id := r.Session.ID
		ids = append(ids, id)
		for j := range 4 + i*3 {
			p := "dir" + strconv.Itoa(j%2) + "/f" + strconv.Itoa(j) + ".txt"
			content := strings.Repeat(id[:6]+" "+p+"\n", j+1)
			w, err := cl.Write(ctx, client.WriteRequest{Session: id, Path: p, Content: []byte(content)})
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, file{id, p, content, w.Position})
		}
	}
	c.ok("checkpoint", "create", ids[0], "mid")
	c.ok("fs", "write", ids[0], "late.txt") // empty stdin: an empty file
	c.ok("fs", "mv", ids[1], "dir0", "moved")
	var fork client.SessionReply
	c.okJSON(&fork, "session", "fork", ids[2], "--at", strconv.FormatUint(files[len(files)-3].at, 10))
	ids = append(ids, fork.Session.ID)
	c.ok("session", "restore", ids[0], "--to", "mid")
	c.ok("session", "archive", ids[1])
	var deleted client.SessionReply
	c.okJSON(&deleted, "session", "create")
	c.ok("session", "delete", deleted.Session.ID)

	type snapshot struct {
		get    client.SessionReply
		events []client.EventView
		ls     client.ManifestReply
	}
	capture := func(c *cli, id string) snapshot {
		t.Helper()
		var s snapshot
		c.okJSON(&s.get, "session", "get", id)
		c.okJSON(&s.ls, "fs", "ls", id)
		var ev client.EventsReply
		c.okJSON(&ev, "events", id)
		s.events = ev.Events
		return s
	}
	before := map[string]snapshot{}
	for _, id := range ids {
		before[id] = capture(c, id)
	}
	var deletedEvents client.EventsReply
	c.okJSON(&deletedEvents, "events", deleted.Session.ID)
	s1.Stop(t)

	s2 := startServe(t, dir)
	c2 := newCLI(t, s2.URL)
	for _, id := range ids {
		after := capture(c2, id)
		b := before[id]
		if after.get.Session.Root != b.get.Session.Root || after.get.Position != b.get.Position {
			t.Errorf("session %s after restart: root %s position %d, want root %s position %d",
				id, after.get.Session.Root, after.get.Position, b.get.Session.Root, b.get.Position)
		}
		bj, _ := json.Marshal(b)
		aj, _ := json.Marshal(after)
		if !bytes.Equal(aj, bj) {
			t.Errorf("session %s after restart differs:\n got %s\nwant %s", id, aj, bj)
		}
	}
	c2.fail("not_found", "session", "get", deleted.Session.ID)
	var de client.EventsReply
	c2.okJSON(&de, "events", deleted.Session.ID)
	if len(de.Events) != len(deletedEvents.Events) {
		t.Errorf("events of the deleted session after restart = %d, want %d", len(de.Events), len(deletedEvents.Events))
	}
	// Every file as written, read at the position where it was written.
	for _, f := range files {
		at := strconv.FormatUint(f.at, 10)
		if out := c2.ok("fs", "cat", f.session, f.path, "--at", at); out != f.content {
			t.Errorf("fs cat %s %s --at %s after restart = %q, want %q", f.session, f.path, at, out, f.content)
		}
	}
	// Checkpoints survive: late.txt came after mid, so it is not there.
	c2.fail("not_found", "fs", "cat", ids[0], "late.txt", "--at", "mid")
	// The projection is rebuilt or resumed: the list still knows every session.
	waitFor(t, "session list after restart to show all sessions", func() bool {
		var l client.ListSessionsReply
		c2.okJSON(&l, "session", "list")
		n := 0
		for _, s := range l.Sessions {
			if slices.Contains(ids, s.ID) {
				n++
			}
		}
		return n == len(ids)
	})
	// And history goes on where it stopped.
	var w client.ChangeReply
	c2.okJSON(&w, "fs", "write", ids[2], "after-restart.txt")
	if w.Position <= before[ids[3]].get.Position {
		t.Errorf("position of a write after restart = %d, want after every earlier one", w.Position)
	}
	var ev client.EventsReply
	c2.okJSON(&ev, "events", ids[2])
	n := len(ev.Events)
	if n < 2 || ev.Events[n-1].Prev != ev.Events[n-2].Hash {
		t.Errorf("the event after restart does not chain to the one before it")
	}
}

// TestCLI_EveryCommandParsesBeforeDialing runs every client command with a
// flag it does not know and no server: each must say so as a usage error
// (exit 2) without trying to connect, and answer -h with exit 0.
func TestCLI_EveryCommandParsesBeforeDialing(t *testing.T) {
	t.Parallel()
	c := newCLI(t, "nats://127.0.0.1:1")
	var lines [][]string
	for _, g := range commands {
		for _, cmd := range g.cmds {
			lines = append(lines, []string{g.name, cmd.name})
		}
	}
	lines = append(lines, []string{"events"}, []string{"diff"}, []string{"checkout"}, []string{"status"}, []string{"push"}, []string{"pull"}, []string{"run"}, []string{"mcp"})
	for _, line := range lines {
		res := c.run("", append(slices.Clone(line), "--no-such-flag")...)
		if res.Code != 2 || strings.Contains(res.Stderr, "unavailable") {
			t.Errorf("%v\nwant exit 2 for an unknown flag, before connecting", res)
		}
		help := newCLI(t, "").run("", append(slices.Clone(line), "-h")...)
		if help.Code != 0 || !strings.Contains(help.Stderr, "-server") {
			t.Errorf("%v\nwant exit 0 and the flags for -h", help)
		}
	}
}

// TestCLI_ZeroMain checks that a Main built without NewMain (no Getenv hook)
// reads the real environment instead of panicking.
func TestCLI_ZeroMain(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	m := &Main{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr}
	if code := m.Run(context.Background(), []string{"session", "get"}); code != 2 {
		t.Errorf("zero Main: session get without a session: exit %d, want 2; stderr %q", code, stderr.String())
	}
}
