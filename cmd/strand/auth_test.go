package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

// TestServe_Config runs `strand serve --config deploy/auth/strand.conf
// --limits FILE` and drives it with the CLI's --user and STRAND_PASSWORD,
// the way docs/security.md tells operators and users to.
func TestServe_Config(t *testing.T) {
	pw := map[string]string{}
	for user, env := range map[string]string{
		"strand": "STRAND_SERVICE_PASSWORD", "alice": "ACME_ALICE_PASSWORD",
		"bob": "ACME_BOB_PASSWORD", "carol": "GLOBEX_CAROL_PASSWORD",
	} {
		pw[user] = "Pw-" + user + "-7f3c9a"
		t.Setenv(env, pw[user]) // read by nats-server's configuration parser
	}
	limits := filepath.Join(t.TempDir(), "limits.json")
	if err := os.WriteFile(limits, []byte(`{"tenants": {"acme": {"sessions": 2}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startServe(t, t.TempDir(), "--config", filepath.Join("..", "..", "deploy", "auth", "strand.conf"), "--limits", limits)

	as := func(user string) *cli {
		c := newCLI(t, srv.URL)
		c.env = map[string]string{"STRAND_USER": user, "STRAND_PASSWORD": pw[user], "STRAND_TENANT": "acme"}
		if user == "carol" {
			c.env["STRAND_TENANT"] = "globex"
		}
		return c
	}
	alice, carol := as("alice"), as("carol")

	var created struct {
		Session struct {
			ID    string `json:"id"`
			Owner string `json:"owner"`
		} `json:"session"`
	}
	alice.okJSON(&created, "session", "create")
	if created.Session.Owner != "alice" {
		t.Errorf("owner %q, want alice: the actor comes from authentication", created.Session.Owner)
	}

	t.Run("ClaimingAnotherActor", func(t *testing.T) {
		alice.fail("forbidden", "session", "create", "--actor", "bob")
	})
	t.Run("OtherTenant", func(t *testing.T) {
		// NATS drops alice's publish to strand.v1.globex.>: no answer.
		nc, err := nats.Connect(srv.URL, nats.UserInfo("alice", pw["alice"]))
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
		defer cancel()
		_, err = client.NewClient(nc, "globex").GetSession(ctx, created.Session.ID, "")
		if code := client.ErrorCode(err); code != domain.CodeUnavailable {
			t.Errorf("alice gets a session of globex: %v, want unavailable (no answer)", err)
		}
	})
	t.Run("NoCredentials", func(t *testing.T) {
		r := newCLI(t, srv.URL).fail("unavailable", "session", "list", "--tenant", "acme")
		if !strings.Contains(strings.ToLower(r.Stderr), "authorization") {
			t.Errorf("stderr %q, want an authorization error", r.Stderr)
		}
	})
	t.Run("WrongPassword", func(t *testing.T) {
		c := newCLI(t, srv.URL)
		c.env = map[string]string{"STRAND_PASSWORD": "guess-" + pw["alice"]}
		r := c.fail("unavailable", "session", "list", "--tenant", "acme", "--user", "alice")
		if strings.Contains(r.Stderr, pw["alice"]) {
			t.Errorf("the password appears in the error: %q", r.Stderr)
		}
	})
	t.Run("SessionLimit", func(t *testing.T) {
		alice.ok("session", "create")
		r := alice.fail("too_large", "session", "create")
		if !strings.Contains(r.Stderr, "limit is 2") {
			t.Errorf("stderr %q, want it to name the limit", r.Stderr)
		}
		// Another tenant has the default limit.
		carol.ok("session", "create")
		carol.ok("session", "create")
		carol.ok("session", "create")
	})

	srv.Stop(t)
	for user, p := range pw {
		for name, out := range map[string]string{"stdout": srv.Stdout.String(), "stderr": srv.Stderr.String()} {
			if strings.Contains(out, p) {
				t.Errorf("serve's %s contains %s's password", name, user)
			}
		}
	}
}

func TestServe_ConfigFlagsChecked(t *testing.T) {
	c := newCLI(t, "")
	for _, args := range [][]string{
		{"serve", "--config", "x.conf", "--nats", "nats://127.0.0.1:1"},
		{"serve", "--user", "strand"},
		{"serve", "--limits", "l.json", "--no-limits"},
	} {
		if r := c.run("", args...); r.Code != 2 {
			t.Errorf("%v\nwant exit 2", r)
		}
	}
}

func TestRedactURLs(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"nats://127.0.0.1:4222", "nats://127.0.0.1:4222"},
		{"nats://alice:s3cret@h1:4222,nats://alice:s3cret@h2:4222", "nats://alice:REDACTED@h1:4222,nats://alice:REDACTED@h2:4222"},
		{"nats://t0ken@h:4222", "nats://REDACTED@h:4222"},
		{"tls://u:p%40ss@h", "tls://u:REDACTED@h"},
	} {
		if got := redactURLs(tc.in); got != tc.want {
			t.Errorf("redactURLs(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
