package mcp_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/contentcache"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/handlers"
	"github.com/strand-dev/strand/keyring"
	"github.com/strand-dev/strand/mcp"
)

// TestServer_RunCommand runs real commands through run_command, with
// secrets injected as environment variables: the command sees the values,
// the model never does (not in the text, not in the structured result),
// each read is in the tenant log, and what the command changed is recorded
// in the session (or its fork).
func TestServer_RunCommand(t *testing.T) {
	t.Parallel()
	line, err := keyring.NewKeyLine("k1")
	if err != nil {
		t.Fatal(err)
	}
	ring, err := keyring.Parse(line)
	if err != nil {
		t.Fatal(err)
	}
	e := startEnvWith(t, handlers.Options{Secrets: ring})
	ctx := context.Background()
	created, err := e.c.CreateSession(ctx, client.CreateSessionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	id := created.Session.ID
	if _, err := e.c.Write(ctx, client.WriteRequest{Session: id, Path: "a.txt", Content: []byte("one\n")}); err != nil {
		t.Fatal(err)
	}
	const token, pass = "tok-3f9a-very-secret", "pw-session-only-77"
	for _, p := range []client.SecretRequest{
		{Name: "API_TOKEN", Value: ptr(token)},
		{Session: id, Name: "DB_PASS", Value: ptr(pass)},
	} {
		if _, err := e.c.PutSecret(ctx, p); err != nil {
			t.Fatalf("put secret %s: %v", p.Name, err)
		}
	}

	// Off unless configured.
	plain, _ := e.connect(t, "stdio", "agent", mcp.Options{}, nil)
	if _, ok := toolNames(t, plain)["run_command"]; ok {
		t.Fatal("run_command offered without RunConfig")
	}

	cache, err := contentcache.Open(t.TempDir(), 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	run := &mcp.RunConfig{Cache: cache, MaxTimeout: time.Minute,
		Secrets: []mcp.SecretEnv{{Name: "API_TOKEN", Env: "TOKEN"}, {Name: "DB_PASS", Env: "DB_PASS"}}}
	cs, _ := e.connect(t, "stdio", "runner", mcp.Options{Run: run}, nil)
	tool := toolNames(t, cs)["run_command"]
	if tool == nil {
		t.Fatal("run_command not offered")
	}
	if !strings.Contains(tool.Description, "TOKEN (secret API_TOKEN)") || strings.Contains(tool.Description, token) {
		t.Errorf("description does not name the variables, or shows a value: %q", tool.Description)
	}

	var r mcp.RunResult
	text := callOK(t, cs, "run_command", map[string]any{"session": id, "command": []string{"sh", "-c",
		`test "$TOKEN" = ` + token + ` && test "$DB_PASS" = ` + pass + ` && echo ok > result.txt; cat a.txt; echo "token is $TOKEN"; echo "to stderr" >&2; exit 3`}}, &r)
	if r.ExitCode != 3 || r.Changes != 1 || r.Session != id || r.Checkpoint == "" {
		t.Errorf("run: %+v", r)
	}
	if !strings.Contains(r.Output, "one\n") || !strings.Contains(r.Output, "token is [secret API_TOKEN]") || !strings.Contains(r.Output, "to stderr") {
		t.Errorf("output %q", r.Output)
	}
	b, _ := json.Marshal(r)
	for _, v := range []string{token, pass} {
		if strings.Contains(text, v) || strings.Contains(string(b), v) {
			t.Errorf("a secret value reached the model: %s / %s", text, b)
		}
	}
	got, err := e.c.Read(ctx, client.ReadRequest{Session: id, Path: "result.txt"})
	if err != nil || string(got.Content) != "ok\n" {
		t.Fatalf("result.txt after the run: %q %v (the command did not see both secrets)", got.Content, err)
	}

	// Each run reads each secret it injects once, audited in the tenant log.
	log, err := e.c.TenantLog(ctx, client.TenantLogRequest{})
	if err != nil {
		t.Fatal(err)
	}
	reads := map[string]int{}
	for _, ev := range log.Events {
		if ev.Type == domain.SecretRead && ev.Secret != nil {
			reads[ev.Secret.Name]++
			if ev.Actor != "runner" {
				t.Errorf("secret read by %q, want the MCP client runner", ev.Actor)
			}
		}
	}
	if reads["API_TOKEN"] != 1 || reads["DB_PASS"] != 1 {
		t.Errorf("secret reads in the tenant log: %v, want one of each", reads)
	}

	// A subset: only what the call names.
	callOK(t, cs, "run_command", map[string]any{"session": id, "secrets": []string{"API_TOKEN"},
		"command": []string{"sh", "-c", `test -z "$DB_PASS" && test -n "$TOKEN"`}}, &r)
	if r.ExitCode != 0 {
		t.Errorf("run with a subset of secrets: exit %d, output %q", r.ExitCode, r.Output)
	}

	// A fork gets the secrets read through the session it was forked from,
	// and its changes stay in the fork.
	callOK(t, cs, "run_command", map[string]any{"session": id, "fork": true,
		"command": []string{"sh", "-c", `test "$DB_PASS" = ` + pass + ` && echo forked > f.txt`}}, &r)
	if r.ExitCode != 0 || r.Parent != id || r.Session == id || r.Changes != 1 {
		t.Fatalf("forked run: %+v", r)
	}
	if _, err := e.c.Read(ctx, client.ReadRequest{Session: r.Session, Path: "f.txt"}); err != nil {
		t.Errorf("f.txt in the fork: %v", err)
	}
	if _, err := e.c.Read(ctx, client.ReadRequest{Session: id, Path: "f.txt"}); client.ErrorCode(err) != domain.CodeNotFound {
		t.Errorf("f.txt in the original: %v, want not_found", err)
	}

	// A command past its timeout is stopped; the run still answers.
	start := time.Now()
	callOK(t, cs, "run_command", map[string]any{"session": id, "timeout": "1s", "command": []string{"sleep", "30"}}, &r)
	if !r.Interrupted || time.Since(start) > 20*time.Second {
		t.Errorf("timed-out run: %+v after %s", r, time.Since(start))
	}

	// Bad input: clear codes, no value in any refusal.
	for _, c := range []struct {
		args map[string]any
		code string
	}{
		{map[string]any{"session": id, "command": []string{}}, "invalid_argument"},
		{map[string]any{"session": id, "command": []string{"true", "a\x00b"}}, "invalid_argument"},
		{map[string]any{"session": id, "command": []string{"true"}, "timeout": "soon"}, "invalid_argument"},
		{map[string]any{"session": id, "command": []string{"true"}, "timeout": "1h"}, "invalid_argument"},
		{map[string]any{"session": id, "command": []string{"true"}, "secrets": []string{"NOPE"}}, "forbidden"},
		{map[string]any{"session": "01M8639GP38ZZVG1GPASRX3QZR", "command": []string{"true"}}, "not_found"},
	} {
		msg := callErr(t, cs, "run_command", c.args, c.code)
		if strings.Contains(msg, token) || strings.Contains(msg, pass) {
			t.Errorf("refusal %q shows a secret value", msg)
		}
	}

	// A pinned server's run may not fork away from its session.
	pinned, _ := e.connect(t, "stdio", "runner", mcp.Options{Session: id, Run: run}, nil)
	schema, _ := toolNames(t, pinned)["run_command"].InputSchema.(map[string]any)
	props, _ := schema["properties"].(map[string]any)
	if _, ok := props["fork"]; ok {
		t.Error("pinned run_command takes fork")
	}
	if _, ok := props["session"]; ok {
		t.Error("pinned run_command takes a session")
	}
	callOK(t, pinned, "run_command", map[string]any{"command": []string{"sh", "-c", "echo pinned > p.txt"}}, &r)
	if r.Session != id || r.Changes != 1 {
		t.Errorf("pinned run: %+v", r)
	}
}

func ptr(s string) *string { return &s }
