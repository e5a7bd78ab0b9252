package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/names"
)

// httpAs sends requests to a serve's HTTP front with one user's basic-auth
// credentials ("" for none).
type httpAs struct {
	t        *testing.T
	base     string
	user, pw string
	client   *http.Client
}

func (h httpAs) post(path, body string, out any) (int, string) {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.base+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if h.user != "" {
		req.SetBasicAuth(h.user, h.pw)
	}
	c := h.client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		h.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode == 200 {
		if err := json.Unmarshal(data, out); err != nil {
			h.t.Fatalf("POST %s: %s: %v", path, data, err)
		}
	}
	return resp.StatusCode, string(data)
}

// wantCode checks a status and the error code of its body.
func wantCode(t *testing.T, what string, status int, body string, wantStatus int, wantCode string) {
	t.Helper()
	var eb client.ErrorBody
	_ = json.Unmarshal([]byte(body), &eb)
	if status != wantStatus || eb.Error.Code != wantCode {
		t.Errorf("%s: %d %s, want %d %s", what, status, body, wantStatus, wantCode)
	}
}

// TestServe_HTTPIdentity runs `strand serve --config deploy/auth/strand.conf`
// and drives its HTTP front as the users of that file: the credentials of
// each request become its NATS identity, so NATS and the service keep
// tenants apart and refuse self-approval exactly as over NATS.
func TestServe_HTTPIdentity(t *testing.T) {
	pw := map[string]string{}
	for user, env := range map[string]string{
		"strand": "STRAND_SERVICE_PASSWORD", "alice": "ACME_ALICE_PASSWORD",
		"bob": "ACME_BOB_PASSWORD", "carol": "GLOBEX_CAROL_PASSWORD",
	} {
		pw[user] = "Pw-" + user + "-41d2"
		t.Setenv(env, pw[user])
	}
	srv := startServe(t, t.TempDir(), "--config", filepath.Join("..", "..", "deploy", "auth", "strand.conf"), "--no-limits")
	if srv.HTTP == "" {
		t.Fatal("serve reported no HTTP address")
	}
	as := func(user string) httpAs { return httpAs{t: t, base: srv.HTTP, user: user, pw: pw[user]} }
	alice, bob, carol, nobody := as("alice"), as("bob"), as("carol"), as("")

	var created client.SessionReply
	if st, body := alice.post("/v1/acme/session/create", `{}`, &created); st != 200 {
		t.Fatalf("alice creates: %d %s", st, body)
	}
	id := created.Session.ID
	if created.Session.Owner != "alice" {
		t.Errorf("owner %q, want alice: the actor is the HTTP user", created.Session.Owner)
	}

	t.Run("Unauthenticated", func(t *testing.T) {
		st, body := nobody.post("/v1/acme/session/list", `{}`, nil)
		wantCode(t, "no credentials", st, body, 401, "forbidden")
		bad := httpAs{t: t, base: srv.HTTP, user: "alice", pw: "wrong"}
		st, body = bad.post("/v1/acme/session/list", `{}`, nil)
		wantCode(t, "wrong password", st, body, 401, "forbidden")
	})
	t.Run("ClaimingAnotherActor", func(t *testing.T) {
		st, body := alice.post("/v1/acme/session/create", `{"actor":"bob"}`, nil)
		wantCode(t, "alice claims bob", st, body, 403, "forbidden")
	})
	t.Run("OtherTenant", func(t *testing.T) {
		// NATS refuses carol's publish to strand.v1.acme.>: the gateway
		// turns the permission violation into forbidden at once.
		st, body := carol.post("/v1/acme/session/get", `{"session":"`+id+`"}`, nil)
		wantCode(t, "carol reads acme", st, body, 403, "forbidden")
		st, body = carol.post("/v1/acme/session/list", `{}`, nil)
		wantCode(t, "carol lists acme", st, body, 403, "forbidden")
		// In her own tenant, alice's session does not exist.
		st, body = carol.post("/v1/globex/session/get", `{"session":"`+id+`"}`, nil)
		wantCode(t, "carol reads the id in globex", st, body, 404, "not_found")
		var list client.ListSessionsReply
		if st, body := carol.post("/v1/globex/session/list", `{}`, &list); st != 200 || len(list.Sessions) != 0 {
			t.Errorf("carol's list: %d %s, want 200 and no session", st, body)
		}
		req, _ := http.NewRequest(http.MethodGet, srv.HTTP+"/v1/acme/files/"+id+"/x", nil)
		req.SetBasicAuth("carol", pw["carol"])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 403 {
			t.Errorf("carol downloads from acme: %d, want 403", resp.StatusCode)
		}
	})
	t.Run("NoSelfApproval", func(t *testing.T) {
		var ar client.ApprovalReply
		if st, body := alice.post("/v1/acme/review/request", `{"session":"`+id+`","reason":"commit"}`, &ar); st != 200 {
			t.Fatalf("request: %d %s", st, body)
		}
		grant := `{"session":"` + id + `","request":"` + ar.Request.ID + `"}`
		st, body := alice.post("/v1/acme/review/grant", grant, nil)
		wantCode(t, "alice grants her own request", st, body, 403, "forbidden")
		var granted client.ApprovalReply
		if st, body := bob.post("/v1/acme/review/grant", grant, &granted); st != 200 || string(granted.Request.State) != "granted" {
			t.Errorf("bob grants: %d %s, want granted", st, body)
		}
	})
	t.Run("Login", func(t *testing.T) {
		jar, _ := cookiejar.New(nil)
		browser := httpAs{t: t, base: srv.HTTP, client: &http.Client{Jar: jar}}
		st, body := browser.post("/v1/login", `{"user":"bob","password":"nope","tenant":"acme"}`, nil)
		wantCode(t, "login with a wrong password", st, body, 401, "forbidden")

		req, _ := http.NewRequest(http.MethodPost, srv.HTTP+"/v1/login", strings.NewReader(`{"user":"bob","password":"`+pw["bob"]+`","tenant":"acme"}`))
		req.Header.Set("Content-Type", "application/json")
		resp, err := browser.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		var cookie *http.Cookie
		for _, c := range resp.Cookies() {
			if c.Name == "strand_session" {
				cookie = c
			}
		}
		if resp.StatusCode != 200 || cookie == nil {
			t.Fatalf("login: %d, cookie %v", resp.StatusCode, cookie)
		}
		if !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode || strings.Contains(cookie.Value, pw["bob"]) {
			t.Errorf("cookie %+v: want HttpOnly, SameSite=Lax, no secret in it", cookie)
		}
		var got client.SessionReply
		if st, body := browser.post("/v1/acme/session/get", `{"session":"`+id+`"}`, &got); st != 200 || got.Session.ID != id {
			t.Errorf("get with the login cookie: %d %s", st, body)
		}
		// The same request from another site's page: refused before it
		// reaches the service (CSRF).
		req, _ = http.NewRequest(http.MethodPost, srv.HTTP+"/v1/acme/session/tag", strings.NewReader(`{"session":"`+id+`","tags":{"x":"y"}}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		resp, err = browser.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		wantCode(t, "cross-site POST with the cookie", resp.StatusCode, string(data), 403, "forbidden")
		// Logged out, the cookie names nobody.
		if st, _ := browser.post("/v1/logout", ``, nil); st != 204 {
			t.Errorf("logout: %d", st)
		}
		st, body = browser.post("/v1/acme/session/get", `{"session":"`+id+`"}`, nil)
		wantCode(t, "after logout", st, body, 401, "forbidden")
	})
}

// TestServe_UsageAndStats: strand session stats and strand usage report a
// session's and a tenant's figures, the same over HTTP.
func TestServe_UsageAndStats(t *testing.T) {
	srv := startServe(t, t.TempDir())
	c := newCLI(t, srv.URL)
	var created client.SessionReply
	c.okJSON(&created, "session", "create", "--actor", "alice")
	id := created.Session.ID
	c.run("hello\n", "fs", "write", id, "a.txt", "--actor", "alice")
	// Twice the same 4 KiB: over the inline size, so it goes to the
	// blob store, once.
	same := strings.Repeat("same\n", 820)
	c.run(same, "fs", "write", id, "b/c.txt", "--actor", "bob")
	c.run(same, "fs", "write", id, "b/d.txt", "--actor", "bob")
	var ar client.ApprovalReply
	c.okJSON(&ar, "review", "request", id, "--reason", "commit", "--actor", "alice")
	c.ok("review", "grant", id, ar.Request.ID, "--actor", "bob")

	// The figures are a projection: wait until it folded every event.
	var st client.SessionStatsReply
	waitFor(t, "the stats projection to fold the session", func() bool {
		c.okJSON(&st, "session", "stats", id, "--bucket", "hour")
		return st.Behind == 0 && st.Events == 6
	})
	if st.ContentBytes != int64(6+2*len(same)) {
		t.Errorf("stats content bytes %d, want %d", st.ContentBytes, 6+2*len(same))
	}
	if st.Events != 6 || st.ByType["FileWritten"] != 3 || st.ByActor["alice"] != 3 || st.ByActor["bob"] != 3 {
		t.Errorf("stats: %d events, by type %v, by actor %v; want 6, 3 FileWritten, alice 3, bob 3", st.Events, st.ByType, st.ByActor)
	}
	if st.FilesChanged != 3 {
		t.Errorf("files changed %d, want 3", st.FilesChanged)
	}
	sum := 0
	for _, b := range st.Timeline {
		sum += b.Events
	}
	if sum != st.Events || len(st.Timeline) == 0 {
		t.Errorf("timeline %v sums to %d, want %d", st.Timeline, sum, st.Events)
	}
	if len(st.Approvals) != 1 || st.Approvals[0].Decision != "granted" || st.Approvals[0].Seconds < 0 || st.Approvals[0].Requester != "alice" {
		t.Errorf("approvals %+v, want one granted request of alice's", st.Approvals)
	}
	if out := c.ok("session", "stats", id); !strings.Contains(out, "files changed") || !strings.Contains(out, "granted after") {
		t.Errorf("session stats table:\n%s", out)
	}
	c.fail("invalid_argument", "session", "stats", id, "--bucket", "week")
	c.fail("not_found", "session", "stats", "01J0000000000000000000000Z")

	// The session list is a projection: wait until it has the session.
	var u client.UsageReply
	// The stats projection's sums reach each instance's memory through a
	// watch of its bucket, a moment after the projection acknowledged
	// the events: wait for the figures themselves.
	waitFor(t, "usage to count the session", func() bool {
		c.okJSON(&u, "usage")
		return u.Sessions == 1 && u.Behind == 0 && u.Storage.Blobs == 1 && u.ContentBytes == int64(6+2*len(same))
	})
	n := 0
	for _, k := range u.SessionsByStatus {
		n += k
	}
	if u.Events != 6 || n != 1 || u.Requests["session.create"] != 1 {
		t.Errorf("usage: events %d, by status %v, requests %v; want 6, one session, one session.create", u.Events, u.SessionsByStatus, u.Requests)
	}
	if want := int64(6 + 2*len(same)); u.ContentBytes != want {
		t.Errorf("usage content bytes %d, want %d: every write counts", u.ContentBytes, want)
	}
	// One tenant: its events are the whole event stream, byte for byte.
	if u.Storage.EventBytes != int64(u.Deployment.EventBytes) || st.EventBytes != u.Storage.EventBytes {
		t.Errorf("event bytes: tenant %d, session %d, stream %d; want all three equal", u.Storage.EventBytes, st.EventBytes, u.Deployment.EventBytes)
	}
	// The 4 KiB content was written twice and is stored once.
	if u.Storage.Blobs != 1 || u.Storage.BlobBytes != int64(len(same)) || u.Storage.BlobBytesWritten != int64(2*len(same)) || u.Storage.DedupRatio != 2 {
		t.Errorf("storage %+v: want one blob of %d bytes written twice, dedup ratio 2", u.Storage, len(same))
	}
	if u.Deployment.BlobBytes < uint64(len(same)) {
		t.Errorf("deployment %+v: want the blob stream to hold the 4 KiB blob", u.Deployment)
	}
	var viaHTTP client.UsageReply
	if code, body := (httpAs{t: t, base: srv.HTTP}).post("/v1/default/usage/get", `{}`, &viaHTTP); code != 200 || viaHTTP.Events != 6 {
		t.Errorf("usage over HTTP: %d %s", code, body)
	}
	// Another tenant has nothing.
	c.okJSON(&u, "usage", "--tenant", "other")
	if u.Sessions != 0 || u.Events != 0 || u.ContentBytes != 0 || u.Storage != (client.StorageUsage{}) || u.Deployment.EventBytes == 0 {
		t.Errorf("usage of an empty tenant: %+v; want nothing of its own, the deployment's streams", u)
	}
}

// TestDoctor: strand doctor passes against a running serve, and against
// nothing it fails and says what to fix.
func TestDoctor(t *testing.T) {
	srv := startServe(t, t.TempDir())
	c := newCLI(t, srv.URL)
	var results []checkResult
	c.okJSON(&results, "doctor", "--http", srv.HTTP)
	if len(results) != len(doctorChecks) {
		t.Fatalf("doctor ran %d checks, want %d", len(results), len(doctorChecks))
	}
	_, noFuse := os.Stat("/dev/fuse")
	for _, r := range results {
		if r.Check == "mount" && noFuse != nil && r.Status == checkWarn {
			continue // a machine without FUSE cannot mount: a warning
		}
		if r.Status != checkOK {
			t.Errorf("check %s: %s (%s), want ok", r.Check, r.Status, r.Detail)
		}
	}
	if out := c.ok("doctor", "--http", srv.HTTP); !strings.Contains(out, "1 instance(s) of strand answer") {
		t.Errorf("doctor table:\n%s", out)
	}
	// /metrics has the deployment's figures and the HTTP requests doctor
	// made, and this instance's appends (the two sessions made here).
	c.ok("session", "create")
	c.ok("session", "create")
	resp, err := http.Get(srv.HTTP + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`strand_stream_bytes{stream="STRAND_EVENTS"}`, `strand_consumer_pending{consumer="strand_proj_sessions_ackall",stream="STRAND_EVENTS"}`,
		`strand_projection_lag{projection="sessions"}`, "strand_work_queue_depth", "strand_dead_letters", "strand_state_cache_heads", "strand_state_cache_trims_total", "strand_heap_live_bytes", "go_gc_duration_seconds",
		`strand_http_requests_total{code="200",endpoint="openapi"}`, "strand_jetstream_up 1",
		"strand_group_commit_batches_total", "strand_group_commit_events_total", "strand_group_commit_refused_total",
		"strand_append_races_lost_total", "strand_append_races_followed_total",
		"strand_blob_batches_total", "strand_blob_batched_total", "strand_blob_batches_refused_total",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics has no %s", want)
		}
	}
	var appended float64
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "strand_events_appended_total "); ok {
			appended, _ = strconv.ParseFloat(v, 64)
		}
	}
	if appended < 2 {
		t.Errorf("strand_events_appended_total %v, want at least the 2 sessions created", appended)
	}

	t.Run("NoHTTP", func(t *testing.T) {
		r := c.run("", "doctor", "--http", "http://127.0.0.1:1")
		if r.Code != 1 || !strings.Contains(r.Stdout, "fix http:") || !strings.Contains(r.Stderr, "1 of 8 checks failed") {
			t.Errorf("doctor with no HTTP front: %v", r)
		}
	})
	t.Run("NoServer", func(t *testing.T) {
		r := newCLI(t, "nats://127.0.0.1:1").run("", "doctor", "--http", "")
		if r.Code != 1 || !strings.Contains(r.Stdout, "fix nats: start the server") {
			t.Errorf("doctor with no server: %v", r)
		}
	})
	// A mirror of the event stream that answers direct gets could answer
	// a read at a head from behind (design record 0021): a warning.
	t.Run("DirectMirror", func(t *testing.T) {
		js, err := jetstream.New(srv.Client(t).Conn())
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "EVENTS_COPY", Mirror: &jetstream.StreamSource{Name: names.EventStream}, AllowDirect: true, MirrorDirect: true}); err != nil {
			t.Fatal(err)
		}
		defer js.DeleteStream(ctx, "EVENTS_COPY") //nolint:errcheck // the test's own stream
		var rs []checkResult
		r := c.run("", "doctor", "--http", "", "--json")
		if err := json.Unmarshal([]byte(r.Stdout), &rs); err != nil {
			t.Fatalf("%v: %v", r, err)
		}
		found := false
		for _, x := range rs {
			if x.Check == "streams" {
				found = true
				if x.Status != checkWarn || !strings.Contains(x.Detail, "EVENTS_COPY") || !strings.Contains(x.Fix, "mirror_direct") {
					t.Errorf("streams check beside a mirror with mirror_direct: %+v, want a warning naming it", x)
				}
			}
		}
		if !found {
			t.Errorf("no streams check: %v", r)
		}
	})
	t.Run("Replicas", func(t *testing.T) {
		var rs []checkResult
		r := c.run("", "doctor", "--http", "", "--replicas", "3", "--json")
		if err := json.Unmarshal([]byte(r.Stdout), &rs); err != nil {
			t.Fatalf("%v: %v", r, err)
		}
		for _, x := range rs {
			if x.Check == "streams" && (x.Status != checkWarn || !strings.Contains(x.Detail, "want R3")) {
				t.Errorf("streams check with --replicas 3 on R1: %+v, want a warning", x)
			}
		}
	})
}
