package handlers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/handlers"
	"github.com/strand-dev/strand/names"
)

func limited(t *testing.T, lc handlers.LimitsConfig) *harness {
	t.Helper()
	return start(t, harnessOptions{service: handlers.Options{Limits: &lc}})
}

// TestLimits_RequestsPerSecond runs on a clock that stands still, so no
// token comes back however long a loaded machine takes between requests.
func TestLimits_RequestsPerSecond(t *testing.T) {
	now := time.Now().UTC()
	lc := handlers.LimitsConfig{Tenants: map[string]handlers.Limits{"acme": {RequestsPerSecond: 0.5, Burst: 3}}}
	h := start(t, harnessOptions{service: handlers.Options{Limits: &lc, Now: func() time.Time { return now }}})
	ctx := t.Context()
	h.c.RetryWait = 0  // see the refusals rather than wait them out
	id := h.session(t) // one token
	for i := range 2 {
		if _, err := h.c.GetSession(ctx, id, ""); err != nil {
			t.Fatalf("request %d within the burst: %v", i+2, err)
		}
	}
	_, err := h.c.GetSession(ctx, id, "")
	wantCode(t, "request beyond the burst", err, domain.CodeUnavailable)
	if err != nil && !strings.Contains(err.Error(), "rate limited") {
		t.Errorf("error %q, want it to say rate limited", err)
	}
	h.unchanged(t, "write while rate limited", func() {
		_, err := h.c.Write(ctx, client.WriteRequest{Session: id, Path: "a", Content: []byte("a")})
		wantCode(t, "write while rate limited", err, domain.CodeUnavailable)
	})
	// Buckets are per tenant: globex has the default rate.
	if _, err := h.client("globex").CreateSession(ctx, client.CreateSessionRequest{}); err != nil {
		t.Errorf("another tenant while acme is limited: %v", err)
	}
}

// TestLimits_RetryAfter: a refusal by the rate limit says when to come
// back, and a client with a RetryWait waits and gets its answer: bulk work
// (checkout, export) is slowed to the tenant's rate, never refused.
func TestLimits_RetryAfter(t *testing.T) {
	h := limited(t, handlers.LimitsConfig{Tenants: map[string]handlers.Limits{"acme": {RequestsPerSecond: 20, Burst: 1}}})
	ctx := t.Context()
	h.c.RetryWait = 10 * time.Second
	id := h.session(t)
	start := time.Now()
	for i := range 6 {
		if _, err := h.c.GetSession(ctx, id, ""); err != nil {
			t.Fatalf("request %d with retries: %v", i, err)
		}
	}
	// Six requests beyond a burst of one at 20 per second take at least
	// five intervals of 50 ms (less a little for the clock's grain).
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("6 requests at 20/s took %v, want them spread out by the rate limit", d)
	}
	// The refusal itself, seen raw: unavailable with Strand-Retry-After.
	var saw bool
	for range 5 {
		resp, err := h.env.NC.Request(names.Subject("acme", "session", "get"), []byte(`{"session":"`+id+`"}`), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if v := resp.Header.Get(names.HeaderRetryAfter); v != "" {
			saw = true
			if !strings.Contains(string(resp.Data), `"unavailable"`) {
				t.Errorf("refusal with %s: %s, want code unavailable", names.HeaderRetryAfter, resp.Data)
			}
			if resp.Header.Get(names.HeaderNotApplied) != "true" {
				t.Errorf("refusal by the rate limit without %s: true", names.HeaderNotApplied)
			}
		}
	}
	if !saw {
		t.Error("5 raw requests at once beyond a burst of 1: none carried " + names.HeaderRetryAfter)
	}
	// A client whose budget is shorter than the wait gets the refusal.
	h.c.RetryWait = time.Millisecond
	var refused bool
	for range 5 {
		if _, err := h.c.GetSession(ctx, id, ""); domain.ErrorCode(err) == domain.CodeUnavailable || client.ErrorCode(err) == domain.CodeUnavailable {
			refused = true
		}
	}
	if !refused {
		t.Error("a client with a 1 ms retry budget was never refused")
	}
}

func TestLimits_RequestBytes(t *testing.T) {
	h := limited(t, handlers.LimitsConfig{Tenants: map[string]handlers.Limits{"acme": {RequestBytes: 1024}}})
	id := h.session(t)
	h.unchanged(t, "large write", func() {
		_, err := h.c.Write(t.Context(), client.WriteRequest{Session: id, Path: "big", Content: bytes.Repeat([]byte("x"), 2048)})
		wantCode(t, "write of a body over request_bytes", err, domain.CodeTooLarge)
	})
	if err := h.client("globex").Request(t.Context(), "session", "create", map[string]string{"owner": strings.Repeat("o", 200)}, nil); err != nil {
		t.Errorf("globex has the default request size: %v", err)
	}
}

func TestLimits_Sessions(t *testing.T) {
	h := limited(t, handlers.LimitsConfig{Default: handlers.Limits{Sessions: 2}})
	ctx := t.Context()
	first := h.session(t)
	h.session(t)
	h.unchanged(t, "third session", func() {
		_, err := h.c.CreateSession(ctx, client.CreateSessionRequest{})
		wantCode(t, "create beyond the session limit", err, domain.CodeTooLarge)
		_, err = h.c.Fork(ctx, client.ForkRequest{Session: first})
		wantCode(t, "fork beyond the session limit", err, domain.CodeTooLarge)
	})
	// Reads and writes in existing sessions go on.
	h.write(t, first, "a.txt", "a")
	if _, err := h.client("globex").CreateSession(ctx, client.CreateSessionRequest{}); err != nil {
		t.Errorf("globex has its own count: %v", err)
	}
}

func TestLimits_BytesStored(t *testing.T) {
	h := limited(t, handlers.LimitsConfig{Tenants: map[string]handlers.Limits{"acme": {BytesStored: 100}}})
	ctx := t.Context()
	id := h.session(t)
	h.write(t, id, "a", strings.Repeat("a", 60))
	h.write(t, id, "b", strings.Repeat("b", 60)) // 60 < 100 when it was checked
	h.unchanged(t, "write over the quota", func() {
		_, err := h.c.Write(ctx, client.WriteRequest{Session: id, Path: "c", Content: []byte("c")})
		wantCode(t, "write with 120 of 100 bytes stored", err, domain.CodeTooLarge)
	})
	// What does not add content still works: reads, removals, checkpoints.
	if _, err := h.c.Remove(ctx, client.RemoveRequest{Session: id, Path: "a"}); err != nil {
		t.Errorf("remove over the quota: %v", err)
	}
	// The count is shared by every instance through a JetStream counter.
	eventually(t, "bytes counter", func() string {
		stream, err := h.env.Store.JetStream().Stream(ctx, names.UsageStream)
		if err != nil {
			return err.Error()
		}
		m, err := stream.GetLastMsgForSubject(ctx, names.UsageSubject("acme"))
		if err != nil {
			return err.Error()
		}
		var v struct {
			Val string `json:"val"`
		}
		_ = json.Unmarshal(m.Data, &v)
		if v.Val != "120" {
			return "counter " + string(m.Data) + ", want 120"
		}
		return ""
	})
	// A new instance (empty memory) reads the count and refuses too.
	h.restart(t)
	h.unchanged(t, "write over the quota after a restart", func() {
		_, err := h.c.Write(ctx, client.WriteRequest{Session: id, Path: "c", Content: []byte("c")})
		wantCode(t, "write after a restart", err, domain.CodeTooLarge)
	})
}

func TestLimits_Parse(t *testing.T) {
	lc, err := handlers.ParseLimits([]byte(`{"default": {"sessions": 10, "requests_per_second": 5},
		"tenants": {"acme": {"sessions": -1, "burst": 7}}}`))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	acme, other := lc.For("acme"), lc.For("globex")
	if acme.Sessions != -1 || acme.RequestsPerSecond != 5 || acme.Burst != 7 || acme.BytesStored != handlers.DefaultLimits.BytesStored {
		t.Errorf("acme limits %+v: want sessions -1, rps 5 (default), burst 7, bytes from DefaultLimits", acme)
	}
	if other.Sessions != 10 || other.RequestBytes != handlers.DefaultLimits.RequestBytes {
		t.Errorf("globex limits %+v: want the file's default over DefaultLimits", other)
	}
	for _, bad := range []string{
		`{"default": {"sessions": -2}}`,
		`{"default": {"requests_per_second": -0.5}}`,
		`{"default": {"session": 1}}`,
		`{"tenants": {"Bad Tenant": {}}}`,
		`{"default": {}} {}`,
		`[]`,
	} {
		if _, err := handlers.ParseLimits([]byte(bad)); err == nil {
			t.Errorf("ParseLimits(%s): no error", bad)
		}
	}
}

// logBuffer is a slog destination that tests read while the service writes.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestService_LogsNoSecrets captures the service's log at debug level while
// lock tokens travel in requests, succeed, fail, and fail internally, and
// checks that no token appears in it.
func TestService_LogsNoSecrets(t *testing.T) {
	var logs logBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := start(t, harnessOptions{service: handlers.Options{Log: log, Limits: &handlers.LimitsConfig{}}})
	ctx := t.Context()
	id := h.session(t)
	const chosen = "tok-CHOSEN-7a1f0c55e2d94b1b"
	acq, err := h.c.Lock(ctx, "acquire", client.LockRequest{Session: id, Path: "src", Subtree: true})
	if err != nil {
		t.Fatalf("acquire: %v", err)
	}
	generated := acq.Lock.Token
	if len(generated) < 16 {
		t.Fatalf("acquire returned token %q", generated)
	}
	if _, err := h.c.Lock(ctx, "acquire", client.LockRequest{Mutation: client.Mutation{Token: chosen}, Session: id, Path: "docs"}); err != nil {
		t.Fatalf("acquire with a chosen token: %v", err)
	}
	if _, err := h.c.Write(ctx, client.WriteRequest{Mutation: client.Mutation{Token: generated}, Session: id, Path: "src/a.go", Content: []byte("package a")}); err != nil {
		t.Fatalf("write with the token: %v", err)
	}
	_, err = h.c.Write(ctx, client.WriteRequest{Mutation: client.Mutation{Token: chosen}, Session: id, Path: "src/b.go", Content: []byte("b")})
	wantCode(t, "write with another lock's token", err, domain.CodeLocked)
	_, err = h.c.Lock(ctx, "renew", client.LockRequest{Mutation: client.Mutation{Token: generated + "x"}, Session: id, Path: "src"})
	if err == nil {
		t.Errorf("renew with a wrong token: no error")
	}
	// Malformed bodies carrying a token.
	_ = h.c.RequestRaw(ctx, "fs", "write", []byte(`{"token":"`+chosen+`","session":42}`), nil)
	_ = h.c.RequestRaw(ctx, "lock", "release", []byte(`{"token":"`+chosen+`", "bogus": true}`), nil)
	// Internal errors are logged with their cause: make the event stream
	// vanish and send tokens at it.
	h.restart(t) // no cached head: the write must read the stream
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := h.env.Store.JetStream().DeleteStream(dctx, "STRAND_EVENTS"); err != nil {
		t.Fatalf("delete event stream: %v", err)
	}
	for _, tok := range []string{generated, chosen} {
		_, err := h.c.Write(ctx, client.WriteRequest{Mutation: client.Mutation{Token: tok}, Session: id, Path: "src/c.go", Content: []byte("c")})
		if err == nil {
			t.Errorf("write without an event stream succeeded")
		}
		_, _ = h.c.Lock(ctx, "release", client.LockRequest{Mutation: client.Mutation{Token: tok}, Session: id, Path: "src"})
	}
	out := logs.String()
	if !strings.Contains(out, "request failed") {
		t.Errorf("the service logged no internal error; the test did not reach the path it checks:\n%s", out)
	}
	for _, tok := range []string{generated, chosen} {
		if strings.Contains(out, tok) {
			t.Errorf("the service log contains a lock token:\n%s", out)
		}
	}
}
