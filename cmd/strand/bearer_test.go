package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/strand-dev/strand/client"
)

// calloutConfig is a nats-server configuration whose tenant users come
// from an auth callout: the server hands a client's connect options
// (here its token) to a service in account AUTH, which answers with a
// user JWT naming the user and its account. This is how NATS maps bearer
// tokens to identities; the tenant accounts are those of
// deploy/auth/strand.conf.
const calloutConfig = `
accounts {
  STRAND {
    jetstream: enabled
    exports: [
      {service: "strand.v1.acme.>", accounts: [ACME]}
      {stream: "strand.watch.acme.>", accounts: [ACME]}
      {service: "strand.v1.globex.>", accounts: [GLOBEX]}
      {stream: "strand.watch.globex.>", accounts: [GLOBEX]}
    ]
  }
  ACME {
    imports: [
      {service: {account: STRAND, subject: "strand.v1.acme.>"}, share: true}
      {stream: {account: STRAND, subject: "strand.watch.acme.>"}}
    ]
  }
  GLOBEX {
    imports: [
      {service: {account: STRAND, subject: "strand.v1.globex.>"}, share: true}
      {stream: {account: STRAND, subject: "strand.watch.globex.>"}}
    ]
  }
  AUTH {
    users: [{user: auth, password: %q}]
  }
}
authorization {
  auth_callout {
    issuer: %s
    auth_users: [auth]
    account: AUTH
  }
}
`

// bearerUser is who a token stands for.
type bearerUser struct{ name, account, tenant string }

// runCallout answers the server's authorization requests from a token
// table, as an operator's auth service would; it runs until the test ends.
func runCallout(t *testing.T, url, password string, issuer nkeys.KeyPair, tokens map[string]bearerUser) {
	t.Helper()
	nc, err := nats.Connect(url, nats.UserInfo("auth", password))
	if err != nil {
		t.Fatalf("callout connects: %v", err)
	}
	t.Cleanup(nc.Close)
	_, err = nc.Subscribe("$SYS.REQ.USER.AUTH", func(m *nats.Msg) {
		req, err := jwt.DecodeAuthorizationRequestClaims(string(m.Data))
		if err != nil {
			t.Errorf("callout: %v", err)
			return
		}
		res := jwt.NewAuthorizationResponseClaims(req.UserNkey)
		res.Audience = req.Server.ID
		if u, ok := tokens[req.ConnectOptions.Token]; ok {
			uc := jwt.NewUserClaims(req.UserNkey)
			uc.Name, uc.Audience = u.name, u.account
			uc.Pub.Allow.Add("strand.v1." + u.tenant + ".>")
			uc.Sub.Allow.Add("_INBOX.>", "strand.watch."+u.tenant+".>")
			if res.Jwt, err = uc.Encode(issuer); err != nil {
				t.Errorf("callout: encode user: %v", err)
				return
			}
		} else {
			res.Error = "unknown token"
		}
		out, err := res.Encode(issuer)
		if err != nil {
			t.Errorf("callout: encode response: %v", err)
			return
		}
		_ = m.Respond([]byte(out))
	})
	if err != nil {
		t.Fatalf("callout subscribes: %v", err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// bearerPost posts to the HTTP front with a bearer token ("" for none).
func bearerPost(t *testing.T, base, token, path, body string, out any) (int, string) {
	t.Helper()
	h := httpAs{t: t, base: base, client: &http.Client{Transport: bearerTransport(token)}}
	return h.post(path, body, out)
}

type bearerTransport string

func (b bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if b != "" {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+string(b))
	}
	return http.DefaultTransport.RoundTrip(r)
}

// TestServe_HTTPBearer: a bearer token given over HTTP becomes the NATS
// identity of the gateway's requests (through an auth callout that knows
// the token), so tenants stay apart and nobody approves their own request,
// as with basic auth; without credentials the server with accounts
// refuses.
func TestServe_HTTPBearer(t *testing.T) {
	issuer, err := nkeys.CreateAccount()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := issuer.PublicKey()
	authPassword := "Pw-auth-7c1e"
	conf := filepath.Join(t.TempDir(), "callout.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(calloutConfig, authPassword, pub)), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startServe(t, t.TempDir(), "--config", conf, "--no-limits")
	tokens := map[string]bearerUser{
		"tok-alice-3f9a": {"alice", "ACME", "acme"},
		"tok-bob-81c2":   {"bob", "ACME", "acme"},
		"tok-carol-5d07": {"carol", "GLOBEX", "globex"},
	}
	runCallout(t, srv.URL, authPassword, issuer, tokens)
	post := func(token, path, body string, out any) (int, string) {
		return bearerPost(t, srv.HTTP, token, path, body, out)
	}
	const alice, bob, carol = "tok-alice-3f9a", "tok-bob-81c2", "tok-carol-5d07"

	var created client.SessionReply
	if st, body := post(alice, "/v1/acme/session/create", `{}`, &created); st != 200 {
		t.Fatalf("alice creates with her token: %d %s", st, body)
	}
	id := created.Session.ID
	if created.Session.Owner != "alice" {
		t.Errorf("owner %q, want alice: the actor is the token's user", created.Session.Owner)
	}

	t.Run("Unauthenticated", func(t *testing.T) {
		st, body := post("", "/v1/acme/session/list", `{}`, nil)
		wantCode(t, "no credentials", st, body, 401, "forbidden")
		st, body = post("tok-nobody", "/v1/acme/session/list", `{}`, nil)
		wantCode(t, "an unknown token", st, body, 401, "forbidden")
	})
	t.Run("OtherTenant", func(t *testing.T) {
		st, body := post(carol, "/v1/acme/session/get", `{"session":"`+id+`"}`, nil)
		wantCode(t, "carol reads acme", st, body, 403, "forbidden")
		st, body = post(carol, "/v1/acme/session/list", `{}`, nil)
		wantCode(t, "carol lists acme", st, body, 403, "forbidden")
		st, body = post(carol, "/v1/globex/session/get", `{"session":"`+id+`"}`, nil)
		wantCode(t, "carol reads the id in globex", st, body, 404, "not_found")
		var list client.ListSessionsReply
		if st, body := post(carol, "/v1/globex/session/list", `{}`, &list); st != 200 || len(list.Sessions) != 0 {
			t.Errorf("carol's list: %d %s, want 200 and no session", st, body)
		}
		// The list is a projection: wait until it has the session.
		waitFor(t, "bob's list in acme to show alice's session", func() bool {
			st, body := post(bob, "/v1/acme/session/list", `{}`, nil)
			return st == 200 && strings.Contains(body, id)
		})
	})
	t.Run("NoSelfApproval", func(t *testing.T) {
		var ar client.ApprovalReply
		if st, body := post(alice, "/v1/acme/review/request", `{"session":"`+id+`","reason":"commit"}`, &ar); st != 200 {
			t.Fatalf("request: %d %s", st, body)
		}
		grant := `{"session":"` + id + `","request":"` + ar.Request.ID + `"}`
		st, body := post(alice, "/v1/acme/review/grant", grant, nil)
		wantCode(t, "alice grants her own request", st, body, 403, "forbidden")
		st, body = post(alice, "/v1/acme/review/grant", `{"session":"`+id+`","request":"`+ar.Request.ID+`","actor":"bob"}`, nil)
		wantCode(t, "alice claims to be bob", st, body, 403, "forbidden")
		var granted client.ApprovalReply
		if st, body := post(bob, "/v1/acme/review/grant", grant, &granted); st != 200 || string(granted.Request.State) != "granted" {
			t.Errorf("bob grants: %d %s, want granted", st, body)
		}
	})
}
