package mcp_test

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/mcp"
	"github.com/strand-dev/strand/streams/streamstest"
)

var allTools = []string{
	"cache_get", "cache_put", "change_mode", "checkpoint_create", "checkpoint_list", "commit", "diff", "edit_file", "events",
	"list_files", "lock_acquire", "lock_release", "make_directory", "move", "read_file", "remove", "review_annotate",
	"review_request", "review_status", "search", "session_create", "session_fork", "session_get", "session_list",
	"session_restore", "write_file",
}

func toolNames(t *testing.T, cs *sdk.ClientSession) map[string]*sdk.Tool {
	t.Helper()
	out := map[string]*sdk.Tool{}
	for tool, err := range cs.Tools(context.Background(), nil) {
		if err != nil {
			t.Fatalf("list tools: %v", err)
		}
		out[tool.Name] = tool
	}
	return out
}

// TestServer_Tools drives every tool, and its errors, through the SDK's
// client over each transport.
func TestServer_Tools(t *testing.T) {
	t.Parallel()
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			e := startEnv(t)
			cs, _ := e.connect(t, tr, "test-agent", mcp.Options{}, nil)
			testTools(t, e, cs)
		})
	}
}

func testTools(t *testing.T, e *env, cs *sdk.ClientSession) {
	tools := toolNames(t, cs)
	var names []string
	for n, tool := range tools {
		names = append(names, n)
		if tool.Description == "" || tool.InputSchema == nil || tool.OutputSchema == nil || tool.Annotations == nil {
			t.Errorf("tool %s lacks a description, a schema or annotations: %+v", n, tool)
		}
	}
	slices.Sort(names)
	if !slices.Equal(names, allTools) {
		t.Fatalf("got tools %v, want %v", names, allTools)
	}
	if a := tools["read_file"].Annotations; !a.ReadOnlyHint {
		t.Errorf("read_file annotations %+v, want read-only", a)
	}
	if a := tools["remove"].Annotations; a.ReadOnlyHint || a.DestructiveHint == nil || !*a.DestructiveHint {
		t.Errorf("remove annotations %+v, want destructive", a)
	}
	if a := tools["checkpoint_create"].Annotations; a.ReadOnlyHint || a.DestructiveHint == nil || *a.DestructiveHint {
		t.Errorf("checkpoint_create annotations %+v, want additive", a)
	}

	var sess mcp.SessionResult
	callOK(t, cs, "session_create", map[string]any{"tags": map[string]string{"task": "demo"}}, &sess)
	id := sess.Session.ID
	if id == "" || sess.Session.Status != "active" {
		t.Fatalf("session_create gave %+v", sess)
	}
	s := func(args map[string]any) map[string]any {
		args["session"] = id
		return args
	}

	t.Run("Sessions", func(t *testing.T) {
		var got mcp.SessionResult
		if text := callOK(t, cs, "session_get", s(map[string]any{}), &got); !strings.Contains(text, id) || got.Session.ID != id {
			t.Errorf("session_get: %q %+v", text, got)
		}
		// The list is a read model: it catches up shortly after.
		waitFor(t, "session_list to show "+id, func() bool {
			var list mcp.SessionListResult
			callOK(t, cs, "session_list", map[string]any{"tags": map[string]string{"task": "demo"}}, &list)
			return len(list.Sessions) == 1 && list.Sessions[0].ID == id
		})
		callErr(t, cs, "session_get", map[string]any{"session": "nope"}, "invalid_argument")
		callErr(t, cs, "session_get", map[string]any{"session": "01M8639GP38ZZVG1GPASRX3QZR"}, "not_found")
		if res, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: "session_get", Arguments: map[string]any{}}); err != nil || !res.IsError || !strings.Contains(resultText(res), "session") {
			t.Errorf("session_get without a session: %v %+v, want a tool error naming session", err, res)
		}
	})

	var w mcp.ChangeResult
	t.Run("Files", func(t *testing.T) {
		callOK(t, cs, "write_file", s(map[string]any{"path": "notes/a.txt", "content": "hello\nworld\nworld\n"}), &w)
		var r mcp.ReadResult
		text := callOK(t, cs, "read_file", s(map[string]any{"path": "notes/a.txt"}), &r)
		if r.Hash != w.Hash || r.TotalLines != 3 || !strings.Contains(text, "     2\tworld\n") {
			t.Fatalf("read_file: %q %+v, want 3 lines with hash %s", text, r, w.Hash)
		}
		callOK(t, cs, "read_file", s(map[string]any{"path": "notes/a.txt", "offset": 2, "limit": 1}), &r)
		if r.StartLine != 2 || r.EndLine != 2 || r.Content != "world\n" {
			t.Errorf("read_file lines 2-2: %+v", r)
		}
		callErr(t, cs, "edit_file", s(map[string]any{"path": "notes/a.txt", "old_string": "world", "new_string": "there"}), "invalid_argument")
		callErr(t, cs, "edit_file", s(map[string]any{"path": "notes/a.txt", "old_string": "nowhere", "new_string": "x"}), "invalid_argument")
		callErr(t, cs, "edit_file", s(map[string]any{"path": "notes/a.txt", "old_string": "hello", "new_string": "x", "expected_hash": strings.Repeat("0", 64)}), "conflict")
		var ed mcp.ChangeResult
		callOK(t, cs, "edit_file", s(map[string]any{"path": "notes/a.txt", "old_string": "hello\nworld", "new_string": "hello\nthere", "expected_hash": w.Hash}), &ed)
		if ed.Replacements != 1 || ed.Hash == w.Hash {
			t.Errorf("edit_file: %+v", ed)
		}
		// The old hash is stale now: a write that expects it is a conflict.
		text = callErr(t, cs, "write_file", s(map[string]any{"path": "notes/a.txt", "content": "x", "expected_hash": w.Hash}), "conflict")
		if !strings.Contains(text, "read it again") {
			t.Errorf("conflict error %q does not say to read again", text)
		}
		w = ed
		callOK(t, cs, "make_directory", s(map[string]any{"path": "src"}), nil)
		callOK(t, cs, "write_file", s(map[string]any{"path": "src/main.go", "content": "package main\n\nfunc main() {}\n"}), nil)
		callOK(t, cs, "move", s(map[string]any{"from": "src/main.go", "to": "src/app.go"}), nil)
		var cm mcp.ChangeResult
		callOK(t, cs, "change_mode", s(map[string]any{"path": "src/app.go", "mode": "750"}), &cm)
		if got, err := e.c.Manifest(context.Background(), client.ManifestRequest{Session: id, Prefix: "src/"}); err != nil || len(got.Entries) != 1 || got.Entries[0].Mode != 0o750 || got.Position != cm.Position {
			t.Errorf("after change_mode 750: %+v, %v; want src/app.go with mode 750 at %d", got.Entries, err, cm.Position)
		}
		var l mcp.ListResult
		text = callOK(t, cs, "list_files", s(map[string]any{}), &l)
		if want := "notes/\nnotes/a.txt  18 bytes\nsrc/\nsrc/app.go  29 bytes\n"; text != want {
			t.Errorf("list_files: got %q, want %q", text, want)
		}
		callOK(t, cs, "list_files", s(map[string]any{"glob": "**/*.go"}), &l)
		if len(l.Entries) != 1 || l.Entries[0].Path != "src/app.go" {
			t.Errorf("list_files **/*.go: %+v", l.Entries)
		}
		callErr(t, cs, "read_file", s(map[string]any{"path": "src/main.go"}), "not_found")
		callErr(t, cs, "remove", s(map[string]any{"path": "src"}), "invalid_argument")
		callErr(t, cs, "read_file", s(map[string]any{"path": "../etc/passwd"}), "invalid_argument")
		callErr(t, cs, "write_file", s(map[string]any{"path": "x", "content": "y", "mode": "9z"}), "invalid_argument")
	})

	t.Run("Search", func(t *testing.T) {
		var r mcp.SearchResult
		text := callOK(t, cs, "search", s(map[string]any{"pattern": "th[a-z]+e"}), &r)
		if !strings.Contains(text, "notes/a.txt:2: there\n") || r.Matches != 1 {
			t.Errorf("search: %q %+v", text, r)
		}
		callOK(t, cs, "search", s(map[string]any{"pattern": "FUNC", "ignore_case": true, "glob": "*.go", "context": 1}), &r)
		if r.Matches != 1 || r.Files[0].Path != "src/app.go" || len(r.Files[0].Matches[0].Before) != 1 {
			t.Errorf("search -i with context: %+v", r)
		}
		callErr(t, cs, "search", s(map[string]any{"pattern": "a("}), "invalid_argument")
		// A missing required argument fails the schema, before the tool.
		if res, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: "search", Arguments: s(map[string]any{})}); err != nil || !res.IsError || !strings.Contains(resultText(res), "pattern") {
			t.Errorf("search without a pattern: %v %+v, want a tool error naming pattern", err, res)
		}
	})

	var cp mcp.CheckpointResult
	t.Run("CheckpointDiffRestore", func(t *testing.T) {
		callOK(t, cs, "checkpoint_create", s(map[string]any{"name": "before-risk", "note": "all good"}), &cp)
		callErr(t, cs, "checkpoint_create", s(map[string]any{"name": "before-risk"}), "already_exists")
		callOK(t, cs, "write_file", s(map[string]any{"path": "notes/a.txt", "content": "hello\nthere\nworld\nmore\n"}), nil)
		callOK(t, cs, "remove", s(map[string]any{"path": "src", "recursive": true}), nil)
		var d mcp.DiffResult
		text := callOK(t, cs, "diff", s(map[string]any{"from": "before-risk"}), &d)
		if !slices.Equal(d.Modified, []string{"notes/a.txt"}) || !slices.Equal(d.Deleted, []string{"src", "src/app.go"}) ||
			!strings.Contains(d.Unified, "+more") || !strings.Contains(text, "M notes/a.txt") {
			t.Errorf("diff from checkpoint: %q %+v", text, d)
		}
		callOK(t, cs, "diff", s(map[string]any{}), &d)
		if !slices.Equal(d.Added, []string{"notes", "notes/a.txt"}) && !slices.Equal(d.Added, []string{"notes/a.txt"}) {
			t.Errorf("diff against the base: added %v", d.Added)
		}
		callOK(t, cs, "diff", s(map[string]any{"from": "before-risk", "path": "notes/a.txt"}), &d)
		if !strings.HasPrefix(d.Unified, "--- ") {
			t.Errorf("diff of a path: unified %q", d.Unified)
		}
		var list mcp.CheckpointResult
		if text := callOK(t, cs, "checkpoint_list", s(map[string]any{}), &list); len(list.Checkpoints) != 1 || !strings.Contains(text, "before-risk at") {
			t.Errorf("checkpoint_list: %q %+v", text, list)
		}
		callOK(t, cs, "session_restore", s(map[string]any{"to": "before-risk"}), nil)
		var r mcp.ReadResult
		callOK(t, cs, "read_file", s(map[string]any{"path": "src/app.go"}), &r)
		callOK(t, cs, "read_file", s(map[string]any{"path": "notes/a.txt", "at": "before-risk"}), &r)
		if r.Hash != w.Hash {
			t.Errorf("read at the checkpoint: hash %s, want %s", r.Hash, w.Hash)
		}
		callErr(t, cs, "session_restore", s(map[string]any{"to": "no-such"}), "not_found")
		callErr(t, cs, "diff", s(map[string]any{"from": "no-such"}), "not_found")
	})

	t.Run("Fork", func(t *testing.T) {
		var f mcp.SessionResult
		callOK(t, cs, "session_fork", s(map[string]any{"tags": map[string]string{"task": "fork"}}), &f)
		if f.Session.ID == id || f.Session.Origin == nil || f.Session.Origin.Parent != id {
			t.Fatalf("session_fork: %+v", f.Session)
		}
		callOK(t, cs, "write_file", map[string]any{"session": f.Session.ID, "path": "fork.txt", "content": "only here\n"}, nil)
		var d mcp.DiffResult
		callOK(t, cs, "diff", map[string]any{"session": f.Session.ID, "from_session": id}, &d)
		if !slices.Equal(d.Added, []string{"fork.txt"}) || len(d.Modified)+len(d.Deleted) != 0 {
			t.Errorf("diff fork against parent: %+v", d)
		}
	})

	t.Run("Review", func(t *testing.T) {
		var n mcp.NoteResult
		callOK(t, cs, "review_annotate", s(map[string]any{"body": "why two worlds?", "path": "notes/a.txt", "line_start": 2, "line_end": 3}), &n)
		if n.ID == "" || n.LineStart != 2 || n.LineEnd != 3 {
			t.Errorf("review_annotate: %+v", n)
		}
		callErr(t, cs, "review_annotate", s(map[string]any{"body": "x", "path": "notes/a.txt", "line_start": 5, "line_end": 2}), "invalid_argument")
		var a mcp.ApprovalsResult
		callOK(t, cs, "review_request", s(map[string]any{"reason": "commit", "details": map[string]any{"summary": "demo"}}), &a)
		if len(a.Requests) != 1 || a.Requests[0].State != "pending" {
			t.Fatalf("review_request: %+v", a)
		}
		var st mcp.ApprovalsResult
		text := callOK(t, cs, "review_status", s(map[string]any{"request": a.Requests[0].ID}), &st)
		if len(st.Requests) != 1 || !strings.Contains(text, "pending") {
			t.Errorf("review_status: %q %+v", text, st)
		}
		callErr(t, cs, "review_status", s(map[string]any{"request": "01M8639GP38ZZVG1GPASRX3QZR"}), "not_found")
		var c mcp.CommitResult
		if text := callOK(t, cs, "commit", s(map[string]any{"message": "demo work"}), &c); c.ID == "" || !strings.Contains(text, "commit ") {
			t.Errorf("commit: %q %+v", text, c)
		}
		callErr(t, cs, "commit", s(map[string]any{"message": ""}), "invalid_argument")
	})

	t.Run("CacheAndLocks", func(t *testing.T) {
		var c mcp.CacheResult
		callOK(t, cs, "cache_put", s(map[string]any{"key": "build/status", "value": "green", "ttl": "1h"}), &c)
		rev := c.Rev
		callOK(t, cs, "cache_get", s(map[string]any{"key": "build/status"}), &c)
		if !c.Exists || c.Value != "green" || c.Rev != rev {
			t.Errorf("cache_get: %+v", c)
		}
		callErr(t, cs, "cache_put", s(map[string]any{"key": "build/status", "value": "red", "expected_rev": rev + 5}), "conflict")
		callErr(t, cs, "cache_get", s(map[string]any{"key": "absent"}), "not_found")
		var l mcp.LockResult
		callOK(t, cs, "lock_acquire", s(map[string]any{"path": "notes/a.txt", "ttl": "5m"}), &l)
		if l.Token == "" || !l.Active {
			t.Fatalf("lock_acquire: %+v", l)
		}
		callErr(t, cs, "write_file", s(map[string]any{"path": "notes/a.txt", "content": "no token"}), "locked")
		callOK(t, cs, "write_file", s(map[string]any{"path": "notes/a.txt", "content": "with token\n", "token": l.Token}), nil)
		callErr(t, cs, "lock_release", s(map[string]any{"path": "notes/a.txt"}), "invalid_argument")
		callOK(t, cs, "lock_release", s(map[string]any{"path": "notes/a.txt", "token": l.Token}), nil)
		callOK(t, cs, "write_file", s(map[string]any{"path": "notes/a.txt", "content": "free again\n"}), nil)
	})

	t.Run("Errors", func(t *testing.T) {
		unknown := "01M8639GP38ZZVG1GPASRX3QZR"
		for _, c := range []struct {
			tool string
			args map[string]any
			code string
		}{
			{"session_create", map[string]any{"source": "no-such-source"}, "not_found"},
			{"session_list", map[string]any{"status": "sleeping"}, "invalid_argument"},
			{"session_fork", map[string]any{"session": unknown}, "not_found"},
			{"session_restore", s(map[string]any{"to": "0"}), "invalid_argument"},
			{"make_directory", s(map[string]any{"path": "../x"}), "invalid_argument"},
			{"move", s(map[string]any{"from": "missing.txt", "to": "b.txt"}), "not_found"},
			{"change_mode", s(map[string]any{"path": "src/app.go", "mode": "rwx"}), "invalid_argument"},
			{"change_mode", s(map[string]any{"path": "missing.txt", "mode": "644"}), "not_found"},
			{"list_files", s(map[string]any{"glob": "[x"}), "invalid_argument"},
			{"checkpoint_list", map[string]any{"session": unknown}, "not_found"},
			{"checkpoint_create", s(map[string]any{"name": "bad name!"}), "invalid_argument"},
			{"review_request", s(map[string]any{"reason": ""}), "invalid_argument"},
			{"cache_put", s(map[string]any{"key": "", "value": "x"}), "invalid_argument"},
			{"lock_acquire", s(map[string]any{"path": "notes/a.txt", "ttl": "forever"}), "invalid_argument"},
			{"lock_release", s(map[string]any{"path": "notes/a.txt", "token": "not-a-token-at-all"}), "not_found"},
		} {
			callErr(t, cs, c.tool, c.args, c.code)
		}
	})

	t.Run("Events", func(t *testing.T) {
		var ev mcp.EventsResult
		text := callOK(t, cs, "events", s(map[string]any{"limit": 3}), &ev)
		if len(ev.Events) != 3 || !strings.Contains(text, "test-agent") {
			t.Fatalf("events: %q %+v", text, ev)
		}
		last := ev.Events[2]
		if last.Actor != "test-agent" || !slices.Equal(last.Paths, []string{"notes/a.txt"}) {
			t.Errorf("last event %+v, want a write of notes/a.txt by the client's name", last)
		}
		// The history's actor is the MCP client's name, on every change.
		page, err := e.c.Events(context.Background(), client.EventsRequest{Session: id})
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range page.Events {
			if ev.Actor != "test-agent" {
				t.Errorf("event %d %s by %q, want test-agent", ev.Position, ev.Type, ev.Actor)
			}
		}
		callErr(t, cs, "events", map[string]any{"session": "01M8639GP38ZZVG1GPASRX3QZR"}, "not_found")
	})
}

// TestServer_Pinned checks a server pinned to a session: no tool reaches
// another session, and the session's files are resources that follow its
// head, with change notifications.
func TestServer_Pinned(t *testing.T) {
	t.Parallel()
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			e := startEnv(t)
			ctx := context.Background()
			created, err := e.c.CreateSession(ctx, client.CreateSessionRequest{})
			if err != nil {
				t.Fatal(err)
			}
			id := created.Session.ID
			other, err := e.c.CreateSession(ctx, client.CreateSessionRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.c.Write(ctx, client.WriteRequest{Session: id, Path: "a.txt", Content: []byte("one\n")}); err != nil {
				t.Fatal(err)
			}
			listChanged := make(chan struct{}, 16)
			updated := make(chan string, 16)
			cs, _ := e.connect(t, tr, "pinned-agent", mcp.Options{Session: id, Actor: "olga"}, &sdk.ClientOptions{
				ResourceListChangedHandler: func(context.Context, *sdk.ResourceListChangedRequest) { listChanged <- struct{}{} },
				ResourceUpdatedHandler: func(_ context.Context, r *sdk.ResourceUpdatedNotificationRequest) {
					updated <- r.Params.URI
				},
			})

			tools := toolNames(t, cs)
			for _, n := range []string{"session_create", "session_list", "session_fork"} {
				if _, ok := tools[n]; ok {
					t.Errorf("pinned server offers %s", n)
				}
			}
			for n, tool := range tools {
				schema, _ := tool.InputSchema.(map[string]any)
				props, _ := schema["properties"].(map[string]any)
				if _, ok := props["session"]; ok {
					t.Errorf("pinned tool %s takes a session", n)
				}
			}
			// Naming a session is refused by the schema; the pinned one is used.
			res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "read_file", Arguments: map[string]any{"session": other.Session.ID, "path": "a.txt"}})
			if err != nil || !res.IsError {
				t.Errorf("read_file naming another session: %v %+v, want a tool error", err, res)
			}
			var r mcp.ReadResult
			callOK(t, cs, "read_file", map[string]any{"path": "a.txt"}, &r)
			if r.Content != "one\n" {
				t.Errorf("read_file in the pinned session: %+v", r)
			}
			callErr(t, cs, "diff", map[string]any{"from_session": other.Session.ID}, "forbidden")

			// Resources: the files, readable now and at a past position.
			uri := mcp.URI(id, "", "a.txt")
			lr, err := cs.ListResources(ctx, nil)
			if err != nil || len(lr.Resources) != 1 || lr.Resources[0].URI != uri {
				t.Fatalf("list resources: %v %+v, want %s", err, lr, uri)
			}
			rr, err := cs.ReadResource(ctx, &sdk.ReadResourceParams{URI: uri})
			if err != nil || len(rr.Contents) != 1 || rr.Contents[0].Text != "one\n" {
				t.Fatalf("read %s: %v %+v", uri, err, rr)
			}
			first := r.Position
			if err := cs.Subscribe(ctx, &sdk.SubscribeParams{URI: uri}); err != nil {
				t.Fatalf("subscribe: %v", err)
			}
			callOK(t, cs, "write_file", map[string]any{"path": "a.txt", "content": "two\n"}, nil)
			waitFor(t, "resources/updated for "+uri, func() bool {
				select {
				case got := <-updated:
					return got == uri
				default:
					return false
				}
			})
			past, err := cs.ReadResource(ctx, &sdk.ReadResourceParams{URI: mcp.URI(id, strconv.FormatUint(first, 10), "a.txt")})
			if err != nil || past.Contents[0].Text != "one\n" {
				t.Errorf("read a.txt@%d: %v %+v", first, err, past)
			}
			// A new file, written by someone else, changes the list.
			if _, err := e.c.Write(ctx, client.WriteRequest{Session: id, Path: "b.txt", Content: []byte("new\n")}); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "b.txt listed", func() bool {
				lr, err := cs.ListResources(ctx, nil)
				return err == nil && len(lr.Resources) == 2
			})
			select {
			case <-listChanged:
			case <-time.After(10 * time.Second):
				t.Errorf("no resources/list_changed after b.txt was added")
			}
			if _, err := cs.ReadResource(ctx, &sdk.ReadResourceParams{URI: mcp.URI(other.Session.ID, "", "a.txt")}); err == nil {
				t.Errorf("read a resource of another session: want an error")
			}
			// The actor option names who acts.
			var ev mcp.EventsResult
			callOK(t, cs, "events", map[string]any{"limit": 5}, &ev)
			for _, e := range ev.Events {
				if e.Paths != nil && slices.Contains(e.Paths, "a.txt") && e.Actor != "olga" && e.Position > first {
					t.Errorf("event %+v: actor %q, want olga", e, e.Actor)
				}
			}
		})
	}
}

// waitFor polls a condition until it holds or 15 seconds pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	streamstest.Wait(t, 15*time.Second, what, cond)
}
