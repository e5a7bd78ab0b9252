package handlers_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/handlers"
	"github.com/strand-dev/strand/keyring"
	"github.com/strand-dev/strand/names"
)

func ring(t *testing.T, ids ...string) (*keyring.Ring, []string) {
	t.Helper()
	var lines []string
	for _, id := range ids {
		l, err := keyring.NewKeyLine(id)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, l)
	}
	r, err := keyring.Parse(strings.Join(lines, "\n"))
	if err != nil {
		t.Fatal(err)
	}
	return r, lines
}

func str(s string) *string { return &s }

// streamHolds reports whether any stored message of a stream contains b.
func streamHolds(t *testing.T, h *harness, stream string, b []byte) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := h.env.Store.JetStream().Stream(ctx, stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue // deleted or purged
		}
		if bytes.Contains(m.Data, b) || bytes.Contains([]byte(asJSON(m.Header)), b) {
			return true
		}
	}
	return false
}

func TestSecret_PutGetList(t *testing.T) {
	r, _ := ring(t, "k1")
	h := start(t, harnessOptions{service: handlers.Options{Secrets: r}})
	ctx := t.Context()
	s := h.session(t)
	const tenantValue, sessionValue = "tenant-value-7f3a9c", "session-value-2b8e41"

	put, err := h.c.PutSecret(ctx, client.SecretRequest{Name: "API_KEY", Value: str(tenantValue), Mutation: client.Mutation{Actor: "ops"}})
	if err != nil {
		t.Fatalf("put tenant secret: %v", err)
	}
	if put.Value != "" || put.Secret.Version != 1 || put.Secret.Scope != "tenant" || put.Secret.Size != len(tenantValue) {
		t.Fatalf("put reply = %+v, want version 1, scope tenant, no value", put)
	}
	if _, err := h.c.PutSecret(ctx, client.SecretRequest{Session: s, Name: "TOKEN", Value: str(sessionValue)}); err != nil {
		t.Fatalf("put session secret: %v", err)
	}

	t.Run("TenantScope", func(t *testing.T) {
		got, err := h.c.GetSecret(ctx, client.SecretRequest{Name: "API_KEY"})
		if err != nil || got.Value != tenantValue || got.Secret.Version != 1 {
			t.Fatalf("get = %+v, %v; want %q version 1", got, err, tenantValue)
		}
		_, err = h.c.GetSecret(ctx, client.SecretRequest{Name: "TOKEN"})
		wantCode(t, "a session's secret through the tenant scope", err, domain.CodeNotFound)
	})
	t.Run("SessionSeesItsOwnAndTheTenants", func(t *testing.T) {
		got, err := h.c.GetSecret(ctx, client.SecretRequest{Session: s, Name: "TOKEN"})
		if err != nil || got.Value != sessionValue || got.Secret.Scope != "session" {
			t.Fatalf("get = %+v, %v; want %q", got, err, sessionValue)
		}
		got, err = h.c.GetSecret(ctx, client.SecretRequest{Session: s, Name: "API_KEY"})
		if err != nil || got.Value != tenantValue || got.Secret.Scope != "tenant" {
			t.Fatalf("get tenant secret through session = %+v, %v; want %q", got, err, tenantValue)
		}
		other := h.session(t)
		_, err = h.c.GetSecret(ctx, client.SecretRequest{Session: other, Name: "TOKEN"})
		wantCode(t, "another session's secret", err, domain.CodeNotFound)
	})
	t.Run("ListHasNoValues", func(t *testing.T) {
		l, err := h.c.ListSecrets(ctx, client.SecretListRequest{Session: s})
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Secrets) != 2 || l.Secrets[0].Name != "TOKEN" || l.Secrets[1].Name != "API_KEY" {
			t.Fatalf("list = %s, want TOKEN (session) then API_KEY (tenant)", asJSON(l))
		}
		if j := asJSON(l); strings.Contains(j, tenantValue) || strings.Contains(j, sessionValue) {
			t.Fatalf("list shows a value: %s", j)
		}
	})
	t.Run("ScopeSubject", func(t *testing.T) {
		// Asking for a session's secret on the tenant scope's subject is
		// refused: permissions on subjects mean something.
		var reply client.SecretReply
		err := h.c.Request(ctx, "secret", "get."+names.SecretScopeTenant, client.SecretRequest{Session: s, Name: "TOKEN"}, &reply)
		wantCode(t, "session secret on the tenant subject", err, domain.CodeForbidden)
		err = h.c.Request(ctx, "secret", "get."+h.session(t), client.SecretRequest{Session: s, Name: "TOKEN"}, &reply)
		wantCode(t, "session secret on another session's subject", err, domain.CodeForbidden)
	})
	t.Run("ReadsAreAudited", func(t *testing.T) {
		log, err := h.c.TenantLog(ctx, client.TenantLogRequest{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		var reads []string
		for _, e := range log.Events {
			if e.Type == domain.SecretRead {
				reads = append(reads, e.Secret.Name+"@"+e.Secret.Session+"<"+e.Secret.Via)
			}
		}
		want := "API_KEY@<|TOKEN@" + s + "<|API_KEY@<" + s
		if got := strings.Join(reads, "|"); !strings.HasPrefix(got, want) {
			t.Fatalf("audited reads = %s, want them to start %s", got, want)
		}
	})
	t.Run("NoPlaintextAnywhere", func(t *testing.T) {
		for _, stream := range []string{names.EventStream, names.TenantLogStream, "KV_" + names.SecretBucket, names.BlobStream} {
			for _, v := range []string{tenantValue, sessionValue} {
				if streamHolds(t, h, stream, []byte(v)) {
					t.Errorf("stream %s holds the plain value %q", stream, v)
				}
			}
		}
	})
	t.Run("DeleteKeepsVersions", func(t *testing.T) {
		if _, err := h.c.DeleteSecret(ctx, client.SecretRequest{Name: "API_KEY"}); err != nil {
			t.Fatal(err)
		}
		_, err := h.c.GetSecret(ctx, client.SecretRequest{Name: "API_KEY"})
		wantCode(t, "get after delete", err, domain.CodeNotFound)
		_, err = h.c.DeleteSecret(ctx, client.SecretRequest{Name: "API_KEY"})
		wantCode(t, "delete twice", err, domain.CodeNotFound)
		p, err := h.c.PutSecret(ctx, client.SecretRequest{Name: "API_KEY", Value: str("again")})
		if err != nil || p.Secret.Version != 2 {
			t.Fatalf("put after delete = %+v, %v; want version 2", p, err)
		}
		kvs, err := h.env.Store.JetStream().Stream(ctx, "KV_"+names.SecretBucket)
		if err != nil {
			t.Fatal(err)
		}
		info, err := kvs.Info(ctx, jetstream.WithSubjectFilter("$KV."+names.SecretBucket+".acme.t.API_KEY"))
		if err != nil {
			t.Fatal(err)
		}
		if n := info.State.Subjects["$KV."+names.SecretBucket+".acme.t.API_KEY"]; n != 1 {
			t.Errorf("the secret bucket holds %d messages of API_KEY, want 1 (no older ciphertext)", n)
		}
	})
	t.Run("RetryIsStoredOnce", func(t *testing.T) {
		before, _ := h.c.TenantLog(ctx, client.TenantLogRequest{Limit: 1000})
		req := client.SecretRequest{Name: "RETRIED", Value: str("v"), Mutation: client.Mutation{RequestID: "put-retried-1"}}
		for i := 0; i < 3; i++ {
			p, err := h.c.PutSecret(ctx, req)
			if err != nil || p.Secret.Version != 1 {
				t.Fatalf("try %d: %+v, %v; want version 1", i, p, err)
			}
		}
		after, _ := h.c.TenantLog(ctx, client.TenantLogRequest{Limit: 1000})
		if got := len(after.Events) - len(before.Events); got != 1 {
			t.Fatalf("three tries of one request added %d log entries, want 1", got)
		}
	})
}

func TestSecret_BadInput(t *testing.T) {
	r, _ := ring(t, "k1")
	h := start(t, harnessOptions{service: handlers.Options{Secrets: r}})
	ctx := t.Context()
	const value = "do-not-echo-9d2f"
	cases := []struct {
		name string
		req  client.SecretRequest
		want domain.Code
	}{
		{"NoName", client.SecretRequest{Value: str(value)}, domain.CodeInvalidArgument},
		{"Dots", client.SecretRequest{Name: "a.b", Value: str(value)}, domain.CodeInvalidArgument},
		{"Traversal", client.SecretRequest{Name: "../x", Value: str(value)}, domain.CodeInvalidArgument},
		{"NULName", client.SecretRequest{Name: "A\x00B", Value: str(value)}, domain.CodeInvalidArgument},
		{"LongName", client.SecretRequest{Name: strings.Repeat("A", 129), Value: str(value)}, domain.CodeInvalidArgument},
		{"ValueAsName", client.SecretRequest{Name: value, Value: str(value)}, domain.CodeInvalidArgument},
		{"NoValue", client.SecretRequest{Name: "A"}, domain.CodeInvalidArgument},
		{"EmptyValue", client.SecretRequest{Name: "A", Value: str("")}, domain.CodeInvalidArgument},
		{"NULValue", client.SecretRequest{Name: "A", Value: str(value + "\x00")}, domain.CodeInvalidArgument},
		{"HugeValue", client.SecretRequest{Name: "A", Value: str(value + strings.Repeat("x", domain.MaxSecretBytes))}, domain.CodeTooLarge},
		{"BadSession", client.SecretRequest{Session: "../../etc", Name: "A", Value: str(value)}, domain.CodeInvalidArgument},
		{"UnknownSession", client.SecretRequest{Session: "01HZZZZZZZZZZZZZZZZZZZZZZZ", Name: "A", Value: str(value)}, domain.CodeNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := h.c.TenantLog(ctx, client.TenantLogRequest{Limit: 1000})
			_, err := h.c.PutSecret(ctx, tc.req)
			wantCode(t, tc.name, err, tc.want)
			if err != nil && strings.Contains(err.Error(), value) {
				t.Errorf("the refusal repeats the value: %v", err)
			}
			after, _ := h.c.TenantLog(ctx, client.TenantLogRequest{Limit: 1000})
			if len(after.Events) != len(before.Events) {
				t.Errorf("a refused put added to the tenant log")
			}
		})
	}
	t.Run("WrongTypesAndUnknownFields", func(t *testing.T) {
		for _, body := range []string{`{"name":"A","value":42}`, `{"name":"A","value":"x","colour":"red"}`, `[]`, `"x"`, ``} {
			var reply client.SecretReply
			err := h.c.RequestRaw(ctx, "secret", "put", []byte(body), &reply)
			wantCode(t, body, err, domain.CodeInvalidArgument)
		}
	})
	t.Run("NoKey", func(t *testing.T) {
		h2 := start(t)
		_, err := h2.c.PutSecret(ctx, client.SecretRequest{Name: "A", Value: str(value)})
		wantCode(t, "put without a key", err, domain.CodeUnavailable)
	})
}

// TestSecret_Rotation follows docs/security.md: add a new key first, reseal,
// then drop the old key.
func TestSecret_Rotation(t *testing.T) {
	old, oldLines := ring(t, "k1")
	h := start(t, harnessOptions{service: handlers.Options{Secrets: old}})
	ctx := t.Context()
	s := h.session(t)
	for _, req := range []client.SecretRequest{{Name: "A", Value: str("alpha")}, {Session: s, Name: "B", Value: str("beta")}} {
		if _, err := h.c.PutSecret(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	newLine, err := keyring.NewKeyLine("k2")
	if err != nil {
		t.Fatal(err)
	}
	both, err := keyring.Parse(newLine + "\n" + oldLines[0])
	if err != nil {
		t.Fatal(err)
	}
	only, err := keyring.Parse(newLine)
	if err != nil {
		t.Fatal(err)
	}
	get := func(what string, req client.SecretRequest, want string) {
		t.Helper()
		got, err := h.c.GetSecret(ctx, req)
		if err != nil || got.Value != want {
			t.Fatalf("%s: %+v, %v; want %q", what, got, err, want)
		}
	}

	h.opts.Secrets = only
	h.restart(t)
	_, err = h.c.GetSecret(ctx, client.SecretRequest{Name: "A"})
	wantCode(t, "get under a ring without the sealing key", err, domain.CodeInternal)

	h.opts.Secrets = both
	h.restart(t)
	get("old value under both keys", client.SecretRequest{Name: "A"}, "alpha")
	rk, err := h.c.RekeySecrets(ctx, client.Mutation{})
	if err != nil || rk.Resealed != 2 || rk.Key != "k2" {
		t.Fatalf("rekey = %+v, %v; want 2 resealed under k2", rk, err)
	}
	if rk, err = h.c.RekeySecrets(ctx, client.Mutation{}); err != nil || rk.Resealed != 0 {
		t.Fatalf("second rekey = %+v, %v; want nothing left to reseal", rk, err)
	}

	h.opts.Secrets = only
	h.restart(t)
	get("tenant secret after the old key is gone", client.SecretRequest{Name: "A"}, "alpha")
	get("session secret after the old key is gone", client.SecretRequest{Session: s, Name: "B"}, "beta")
}

// TestSecret_SealedValuesAreBound shows that a sealed value copied to
// another secret's key does not open (the AAD binds tenant, scope, name and
// version).
func TestSecret_SealedValuesAreBound(t *testing.T) {
	r, _ := ring(t, "k1")
	h := start(t, harnessOptions{service: handlers.Options{Secrets: r}})
	ctx := t.Context()
	for _, n := range []string{"A", "B"} {
		if _, err := h.c.PutSecret(ctx, client.SecretRequest{Name: n, Value: str("value-" + n)}); err != nil {
			t.Fatal(err)
		}
	}
	kv, err := h.env.Store.JetStream().KeyValue(ctx, names.SecretBucket)
	if err != nil {
		t.Fatal(err)
	}
	a, err := kv.Get(ctx, "acme.t.A")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "acme.t.B", a.Value()); err != nil {
		t.Fatal(err)
	}
	_, err = h.c.GetSecret(ctx, client.SecretRequest{Name: "B"})
	wantCode(t, "a value moved to another name", err, domain.CodeInternal)
	if _, err := kv.Get(ctx, "acme.t.A"); err != nil && err != jetstream.ErrKeyNotFound {
		t.Fatal(err)
	}
}

// TestSecret_Fork: a fork sees its tenant's secrets but not its parent's
// own, unless it asks for them.
func TestSecret_Fork(t *testing.T) {
	r, _ := ring(t, "k1")
	h := start(t, harnessOptions{service: handlers.Options{Secrets: r}})
	ctx := t.Context()
	parent := h.session(t)
	for _, req := range []client.SecretRequest{{Name: "SHARED", Value: str("tenant")}, {Session: parent, Name: "OWN", Value: str("parent-only")}} {
		if _, err := h.c.PutSecret(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	plain, err := h.c.Fork(ctx, client.ForkRequest{Session: parent})
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.c.GetSecret(ctx, client.SecretRequest{Session: plain.Session.ID, Name: "OWN"})
	wantCode(t, "the parent's secret in a plain fork", err, domain.CodeNotFound)
	if got, err := h.c.GetSecret(ctx, client.SecretRequest{Session: plain.Session.ID, Name: "SHARED"}); err != nil || got.Value != "tenant" {
		t.Fatalf("tenant secret in a fork = %+v, %v", got, err)
	}
	asked, err := h.c.Fork(ctx, client.ForkRequest{Session: parent, InheritSecrets: true})
	if err != nil {
		t.Fatal(err)
	}
	got, err := h.c.GetSecret(ctx, client.SecretRequest{Session: asked.Session.ID, Name: "OWN"})
	if err != nil || got.Value != "parent-only" || got.Secret.Session != asked.Session.ID || got.Secret.Version != 1 {
		t.Fatalf("inherited secret = %+v, %v; want the fork's own copy", got, err)
	}
	// The copies are the fork's own: changing one leaves the parent's.
	if _, err := h.c.PutSecret(ctx, client.SecretRequest{Session: asked.Session.ID, Name: "OWN", Value: str("changed")}); err != nil {
		t.Fatal(err)
	}
	if got, _ := h.c.GetSecret(ctx, client.SecretRequest{Session: parent, Name: "OWN"}); got.Value != "parent-only" {
		t.Fatalf("parent's secret after the fork changed its copy = %q", got.Value)
	}
}
