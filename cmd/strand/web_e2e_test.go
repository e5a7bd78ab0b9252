package main

import (
	"encoding/base64"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/web/webtest"
)

// TestServe_WebReview drives the review app of a real `strand serve` in
// Chromium, with NATS accounts (deploy/auth/strand.conf) and without. alice
// and bob sign in through the app's sign-in page (the gateway's login),
// each in a browser context of their own; what they do is recorded under
// their names, so the service can refuse alice's grant of her own request
// and accept bob's.
func TestServe_WebReview(t *testing.T) {
	b := webtest.Browser(t)
	pw := map[string]string{}
	for user, env := range map[string]string{
		"strand": "STRAND_SERVICE_PASSWORD", "alice": "ACME_ALICE_PASSWORD", "bob": "ACME_BOB_PASSWORD", "carol": "GLOBEX_CAROL_PASSWORD",
	} {
		pw[user] = "Pw-" + user + "-41d2"
		t.Setenv(env, pw[user])
	}
	for _, mode := range []struct {
		name string
		args []string
	}{
		{"Accounts", []string{"--config", filepath.Join("..", "..", "deploy", "auth", "strand.conf"), "--no-limits"}},
		{"NoAccounts", []string{"--no-limits"}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			srv := startServe(t, t.TempDir(), mode.args...)
			api := httpAs{t: t, base: srv.HTTP, user: "alice", pw: pw["alice"]}
			var created client.SessionReply
			if st, body := api.post("/v1/acme/session/create", `{"policy":{"commit":1}}`, &created); st != 200 {
				t.Fatalf("create: %d %s", st, body)
			}
			id := created.Session.ID
			content := base64.StdEncoding.EncodeToString([]byte("package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(1) }\n"))
			if st, body := api.post("/v1/acme/fs/write", `{"session":"`+id+`","path":"main.go","content":"`+content+`"}`, nil); st != 200 {
				t.Fatalf("write: %d %s", st, body)
			}
			alice := webtest.SignIn(t, b, srv.HTTP, "acme", "alice", pw["alice"])
			bob := webtest.SignIn(t, b, srv.HTTP, "acme", "bob", pw["bob"])
			who := webtest.Get(t, alice, "read who is signed in", chromedp.Text(`.who`))
			if !strings.Contains(who, "alice") || !strings.Contains(who, "acme") {
				t.Errorf("the header says %q, want alice of acme", who)
			}
			webtest.Run(t, alice, "request approval",
				chromedp.Navigate(srv.HTTP+"/s/"+id),
				chromedp.Click(`details.request summary`),
				chromedp.Click(`details.request button[type="submit"]`),
				chromedp.WaitVisible(`.card.state-pending`),
			)
			if n := webtest.Get(t, alice, "count grant forms", chromedp.Evaluate[int](`document.querySelectorAll("form.decide").length`)); n != 0 {
				t.Errorf("alice is offered %d grant forms on her own request", n)
			}
			webtest.Run(t, bob, "grant it",
				chromedp.Navigate(srv.HTTP+"/s/"+id),
				chromedp.WaitVisible(`form.decide`),
				chromedp.Click(`form.decide button.primary`),
				chromedp.WaitVisible(`.card.state-granted`),
			)
			webtest.Run(t, alice, "see commit enabled, commit",
				chromedp.WaitEnabled(`#commit`),
				chromedp.SendKeys(`form.commit input[name="message"]`, "through the gateway"),
				chromedp.Click(`#commit`),
				chromedp.WaitVisible(`#timeline .ev-CommitCreated`),
			)
			var commits client.CommitListReply
			if st, body := api.post("/v1/acme/commit/list", `{"session":"`+id+`"}`, &commits); st != 200 || len(commits.Commits) != 1 || commits.Commits[0].Author != "alice" {
				t.Fatalf("commits: %d %s, want one by alice", st, body)
			}
		})
	}
}
