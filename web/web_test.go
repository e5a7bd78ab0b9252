package web_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/strand-dev/strand/client"
)

// get fetches a page as a user ("" for no credentials).
func (h *harness) get(t *testing.T, user, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, h.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, "pw-"+user)
	}
	return h.do(t, req)
}

func (h *harness) do(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// post sends a form as a user, with the headers a browser sends for a
// same-origin form unless hdr overrides them.
func (h *harness) post(t *testing.T, user, path string, form url.Values, hdr map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	req.SetBasicAuth(user, "pw-"+user)
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func TestApp_Pages(t *testing.T) {
	h := start(t)
	id := h.seed(t)
	h.waitStats(t, id)
	cases := []struct {
		name, path string
		status     int
		want       []string
	}{
		{"Sessions", "/", 200, []string{id[len(id)-8:], "team=web", "pending_approval"}},
		{"SessionsFilteredByStatus", "/?status=archived", 200, []string{"archived"}},
		{"SessionsFilteredByTag", "/?tag=team%3Dweb", 200, []string{id[len(id)-8:]}},
		{"Session", "/s/" + id, 200, []string{"draft", "Health: passing", "Commit is not allowed yet"}},
		{"SessionFile", "/s/" + id + "?path=src/main.go", 200, []string{`id="L3"`, "greet", `<span class="kn">import</span>`}},
		{"SessionAtCheckpoint", "/s/" + id + "?at=draft&path=src/main.go", 200, []string{"println"}},
		{"SessionAllEvents", "/s/" + id + "?events=all", 200, []string{"File written"}},
		{"Diff", "/s/" + id + "/diff", 200, []string{"src/main.go", `data-line="3"`, "row-add"}},
		{"DiffSinceCheckpoint", "/s/" + id + "/diff?from=draft", 200, []string{"docs/usage.md", "modified"}},
		{"Queue", "/queue", 200, []string{"Nothing waits"}},
		{"Overview", "/overview", 200, []string{"Sessions by status", `href="/?status=archived"`, "File written", "Recent events by actor", "<svg", "alice"}},
		// Seven events: the creation, four writes of three files, a
		// checkpoint, a health report.
		{"Stats", "/s/" + id + "/stats", 200, []string{"Figures of session", "<dt>Events</dt><dd>7</dd>", "<dt>Files changed</dt><dd>3</dd>",
			`aria-labelledby="c-types"`, "File written", `<td class="num">4</td>`, "alice", "Events per day", `aria-current="true">Per day`, "No approval was requested"}},
		{"StatsPerHour", "/s/" + id + "/stats?bucket=hour", 200, []string{"Events per hour", `aria-current="true">Per hour`}},
		{"StatsBadBucket", "/s/" + id + "/stats?bucket=week", 400, []string{"invalid_argument"}},
		{"StatsUnknownSession", "/s/01JAAAAAAAAAAAAAAAAAAAAAAA/stats", 404, []string{"not_found"}},
		{"Usage", "/usage", 200, []string{"<h1>Usage</h1>", "Sessions by status", "Stored bytes of the tenant", "What the figures mean",
			`<th scope="row">events</th>`, "session.create", `aria-current="page">Usage`}},
		{"UnknownSession", "/s/01JAAAAAAAAAAAAAAAAAAAAAAA", 404, []string{"not_found"}},
		{"BadTagFilter", "/?tag=nokey", 400, []string{"invalid_argument"}},
		{"BadPoint", "/s/" + id + "?at=nosuchcheckpoint", 404, []string{"not_found"}},
		{"LiveWithoutFrom", "/s/" + id + "/live", 400, []string{"invalid_argument"}},
		{"UnknownPage", "/nope", 404, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := h.get(t, "alice", tc.path)
			if status != tc.status {
				t.Fatalf("GET %s: got status %d, want %d\n%s", tc.path, status, tc.status, body)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("GET %s: the page lacks %q", tc.path, w)
				}
			}
		})
	}
	t.Run("UnauthenticatedGoesToSignIn", func(t *testing.T) {
		for _, user := range []string{"", "mallory"} {
			req, _ := http.NewRequest(http.MethodGet, h.srv.URL+"/s/"+id+"?path=src", nil)
			if user != "" {
				req.SetBasicAuth(user, "guess")
			}
			resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			want := "/login?next=%2Fs%2F" + id + "%3Fpath%3Dsrc"
			if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != want {
				t.Fatalf("user %q: got %d to %q, want 303 to %q", user, resp.StatusCode, resp.Header.Get("Location"), want)
			}
		}
	})
}

// flashOf follows a POST's redirect: the page it lands on, with the flash.
func (h *harness) follow(t *testing.T, user string, resp *http.Response) (string, string) {
	t.Helper()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST answered %d, want 303", resp.StatusCode)
	}
	loc := resp.Header.Get("Location")
	req, _ := http.NewRequest(http.MethodGet, h.srv.URL+loc, nil)
	req.SetBasicAuth(user, "pw-"+user)
	for _, ck := range resp.Cookies() {
		if !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode {
			t.Errorf("cookie %s: HttpOnly %v SameSite %v, want HttpOnly and Lax", ck.Name, ck.HttpOnly, ck.SameSite)
		}
		req.AddCookie(ck)
	}
	_, body := h.do(t, req)
	return loc, body
}

func TestApp_Actions(t *testing.T) {
	h := start(t)
	id := h.seed(t)
	ctx := context.Background()
	alice := h.clients["alice"]
	position := func() uint64 {
		s, err := alice.GetSession(ctx, id, "")
		if err != nil {
			t.Fatal(err)
		}
		return s.Session.Position
	}

	t.Run("CrossOriginPostIsRefused", func(t *testing.T) {
		before := position()
		resp := h.post(t, "alice", "/s/"+id+"/annotate", url.Values{"body": {"forged"}}, map[string]string{"Sec-Fetch-Site": "cross-site"})
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("cross-site POST: got %d, want 403", resp.StatusCode)
		}
		if after := position(); after != before {
			t.Fatalf("a refused POST moved the session from %d to %d", before, after)
		}
	})

	t.Run("AnnotateReplyResolve", func(t *testing.T) {
		resp := h.post(t, "bob", "/s/"+id+"/annotate", url.Values{"body": {"why fmt?"}, "path": {"src/main.go"}, "lines": {"3"}, "request_id": {"t-note"}, "next": {"/s/" + id + "/diff"}}, nil)
		loc, body := h.follow(t, "bob", resp)
		if loc != "/s/"+id+"/diff" || !strings.Contains(body, "Note added") || !strings.Contains(body, "why fmt?") {
			t.Fatalf("after annotating: at %s, flash or note missing", loc)
		}
		// The same form sent twice is stored once.
		before := position()
		h.post(t, "bob", "/s/"+id+"/annotate", url.Values{"body": {"why fmt?"}, "path": {"src/main.go"}, "lines": {"3"}, "request_id": {"t-note"}}, nil)
		if position() != before {
			t.Fatal("a resent form was stored twice")
		}
		notes, err := alice.Notes(ctx, client.NotesRequest{Session: id})
		if err != nil || len(notes.Notes) != 1 {
			t.Fatalf("notes: %v %+v", err, notes)
		}
		n := notes.Notes[0]
		if n.LineStart != 3 || n.LineEnd != 3 || n.Path != "src/main.go" || n.Actor != "bob" {
			t.Fatalf("note = %+v, want bob's on src/main.go line 3", n)
		}
		_, body = h.follow(t, "alice", h.post(t, "alice", "/s/"+id+"/annotate", url.Values{"body": {"for the demo"}, "reply_to": {n.ID}}, nil))
		if !strings.Contains(body, "Reply added") {
			t.Fatal("reply: no confirmation")
		}
		_, body = h.follow(t, "alice", h.post(t, "alice", "/s/"+id+"/notes/"+n.ID+"/resolve", nil, nil))
		if !strings.Contains(body, "Note resolved") {
			t.Fatal("resolve: no confirmation")
		}
		_, body = h.get(t, "alice", "/s/"+id+"/diff")
		if !strings.Contains(body, "for the demo") || !strings.Contains(body, "resolved by alice") || !strings.Contains(body, "Reopen") {
			t.Fatal("the diff does not show the reply and the resolved state")
		}
		_, body = h.follow(t, "bob", h.post(t, "bob", "/s/"+id+"/notes/"+n.ID+"/reopen", nil, nil))
		if !strings.Contains(body, "Note reopened") {
			t.Fatal("reopen: no confirmation")
		}
	})

	t.Run("BadInputIsAFlashNotAChange", func(t *testing.T) {
		before := position()
		for _, form := range []url.Values{
			{"body": {""}}, // empty note
			{"body": {"x"}, "path": {"src/main.go"}, "lines": {"a-b"}}, // bad range
			{"body": {"x"}, "path": {"../etc/passwd"}},                 // traversal
			{"body": {"x"}, "path": {"nope.go"}},                       // unknown path
			{"body": {"x\x00y"}, "path": {"src/main.go\x00"}},          // NUL
		} {
			_, body := h.follow(t, "alice", h.post(t, "alice", "/s/"+id+"/annotate", form, nil))
			if !strings.Contains(body, "flash-error") {
				t.Errorf("annotate %v: no error shown", form)
			}
		}
		if after := position(); after != before {
			t.Fatalf("refused forms moved the session from %d to %d", before, after)
		}
		resp := h.post(t, "alice", "/s/"+id+"/notes/x/explode", nil, nil)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("unknown verb: got %d, want 404", resp.StatusCode)
		}
		big := url.Values{"body": {strings.Repeat("x", 300<<10)}}
		if resp := h.post(t, "alice", "/s/"+id+"/annotate", big, nil); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("a 300 KiB form: got %d, want 400", resp.StatusCode)
		}
	})

	t.Run("NextStaysOnTheSite", func(t *testing.T) {
		for _, n := range []string{"https://evil.example/", "//evil.example/", `/\evil.example`} {
			resp := h.post(t, "alice", "/s/"+id+"/checkpoint", url.Values{"name": {"bad name!"}, "next": {n}}, nil)
			if loc := resp.Header.Get("Location"); loc != "/s/"+id {
				t.Errorf("next=%q redirected to %q, want the session page", n, loc)
			}
		}
	})

	t.Run("SelfApprovalAndStaleRequests", func(t *testing.T) {
		h.post(t, "alice", "/s/"+id+"/request", url.Values{"reason": {"commit"}, "group": {"leads"}}, nil)
		p, err := alice.Pending(ctx, client.PendingRequest{Session: id})
		if err != nil || len(p.Requests) != 1 {
			t.Fatalf("pending: %v %+v", err, p)
		}
		req := p.Requests[0].ID
		_, body := h.follow(t, "alice", h.post(t, "alice", "/s/"+id+"/approvals/"+req+"/grant", nil, nil))
		if !strings.Contains(body, "flash-error") || !strings.Contains(body, "forbidden") {
			t.Error("alice granted her own request, or was not told why not")
		}
		// The content moves: the request is stale, shown so, not grantable.
		if _, err := alice.Write(ctx, client.WriteRequest{Session: id, Path: "src/main.go", Content: []byte("package main\n")}); err != nil {
			t.Fatal(err)
		}
		_, body = h.get(t, "bob", "/s/"+id)
		if !strings.Contains(body, `badge state-stale`) || strings.Contains(body, `/approvals/`+req+`/grant`) {
			t.Error("bob's page does not mark the stale request, or offers to grant it")
		}
		_, body = h.follow(t, "bob", h.post(t, "bob", "/s/"+id+"/approvals/"+req+"/grant", nil, nil))
		if !strings.Contains(body, "approval_stale") {
			t.Error("granting a stale request was not refused with approval_stale")
		}
		if !strings.Contains(body, `id="commit" disabled`) {
			t.Error("commit is enabled without a usable approval")
		}
		// Outdated notes are marked: the note on line 3 was written on
		// content that has changed.
		_, body = h.get(t, "bob", "/s/"+id+"/diff")
		if !strings.Contains(body, `badge outdated`) {
			t.Error("the note on changed content is not marked outdated")
		}
	})
}

func TestApp_MergeAndCompare(t *testing.T) {
	h := start(t)
	id := h.seed(t)
	ctx := context.Background()
	alice := h.clients["alice"]
	f, err := alice.Fork(ctx, client.ForkRequest{Session: id})
	if err != nil {
		t.Fatal(err)
	}
	fork := f.Session.ID
	if _, err := alice.Write(ctx, client.WriteRequest{Session: fork, Path: "src/extra.go", Content: []byte("package main\n\nvar extra = 1\n")}); err != nil {
		t.Fatal(err)
	}
	h.waitListed(t, 5)
	_, body := h.get(t, "alice", "/s/"+id)
	if !strings.Contains(body, fork[len(fork)-8:]) {
		t.Error("the session page does not list its fork")
	}
	// Compare with another session: the fork's new file shows as deleted
	// from the fork's side to this one.
	_, body = h.get(t, "alice", "/s/"+id+"/diff?from="+fork)
	if !strings.Contains(body, "src/extra.go") || !strings.Contains(body, "change-deleted") {
		t.Error("the diff from the fork does not show src/extra.go deleted")
	}
	_, body = h.get(t, "alice", fmt.Sprintf("/s/%s/diff?from=%s@%d", id, fork, f.Session.Position))
	if !strings.Contains(body, "No changes between these points") {
		t.Error("the diff from the fork as it was forked is not empty")
	}
	_, body = h.follow(t, "alice", h.post(t, "alice", "/s/"+id+"/merge", url.Values{"from": {fork}}, nil))
	if !strings.Contains(body, "Merged") || !strings.Contains(body, "ev-SessionMerged") {
		t.Fatal("merging the fork: no confirmation or no merge in the timeline")
	}
	if _, _, err := alice.ReadAll(ctx, id, "src/extra.go", ""); err != nil {
		t.Fatalf("after the merge: %v", err)
	}
	// A restore shows in the timeline with where it went back to.
	if _, err := alice.Restore(ctx, client.RestoreRequest{Session: fork, To: client.AtPosition(f.Session.Position)}); err != nil {
		t.Fatal(err)
	}
	_, body = h.get(t, "alice", "/s/"+fork)
	if !strings.Contains(body, "ev-SessionRestored") || !strings.Contains(body, "back to position") {
		t.Error("the fork's timeline does not show its restore")
	}
}

func TestApp_Deny(t *testing.T) {
	h := start(t)
	id := h.seed(t)
	h.post(t, "alice", "/s/"+id+"/request", url.Values{"reason": {"commit"}}, nil)
	p, err := h.clients["alice"].Pending(context.Background(), client.PendingRequest{Session: id})
	if err != nil || len(p.Requests) != 1 {
		t.Fatalf("pending: %v %+v", err, p)
	}
	_, body := h.follow(t, "bob", h.post(t, "bob", "/s/"+id+"/approvals/"+p.Requests[0].ID+"/deny", url.Values{"comment": {"needs tests"}}, nil))
	if !strings.Contains(body, "Denied") || !strings.Contains(body, "badge state-denied") || !strings.Contains(body, "denied by bob") {
		t.Fatal("after denying: no confirmation, or the request is not shown denied")
	}
	if strings.Contains(body, "/approvals/"+p.Requests[0].ID+"/grant") {
		t.Error("a denied request is still offered for a grant")
	}
}

func TestApp_Live(t *testing.T) {
	h := start(t)
	id := h.seed(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := h.clients["alice"].GetSession(ctx, id, "")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/s/%s/live?from=%d", h.srv.URL, id, s.Session.Position), nil)
	req.SetBasicAuth("bob", "pw-bob")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("live: %d %s, want 200 text/event-stream", resp.StatusCode, ct)
	}
	r := bufio.NewReader(resp.Body)
	if line, err := r.ReadString('\n'); err != nil || line != ": live\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	w, err := h.clients["alice"].Write(ctx, client.WriteRequest{Session: id, Path: "later.txt", Content: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`data: {"position":%d,"type":"FileWritten","actor":"alice"}`, w.Position)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("the stream ended before the write's event: %v", err)
		}
		if strings.HasPrefix(line, "data: ") {
			if strings.TrimSpace(line) != want {
				t.Fatalf("got %q, want %q", strings.TrimSpace(line), want)
			}
			return
		}
	}
}

func TestApp_Login(t *testing.T) {
	h := start(t)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	signIn := func(user, pw, next string) *http.Response {
		form := url.Values{"user": {user}, "password": {pw}, "next": {next}}
		req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/login", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	resp := signIn("alice", "wrong", "/queue")
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/login?") {
		t.Fatalf("a wrong password: got %d to %q, want back to /login", resp.StatusCode, loc)
	}
	for _, ck := range resp.Cookies() {
		if ck.Name == loginCookie && ck.MaxAge >= 0 {
			t.Fatal("a wrong password set a login cookie")
		}
	}
	resp = signIn("alice", "pw-alice", "https://evil.example/")
	if loc := resp.Header.Get("Location"); loc != "/" {
		t.Errorf("next to another site: redirected to %q, want /", loc)
	}
	resp = signIn("alice", "pw-alice", "/queue")
	if loc := resp.Header.Get("Location"); loc != "/queue" {
		t.Fatalf("signed in: redirected to %q, want /queue", loc)
	}
	req, _ := http.NewRequest(http.MethodGet, h.srv.URL+"/queue", nil)
	for _, ck := range resp.Cookies() {
		req.AddCookie(ck)
	}
	status, body := h.do(t, req)
	if status != 200 || !strings.Contains(body, "Signed in as <strong>alice</strong>") || !strings.Contains(body, "Sign out") {
		t.Fatalf("after signing in: %d, page does not say who is signed in", status)
	}
}

// TestApp_LongHistory: the milestone timeline of a session with a long
// history reads a bounded number of events (the newest), and says when it
// did not reach the start.
func TestApp_LongHistory(t *testing.T) {
	t.Parallel() // the two slow tests overlap
	h := start(t)
	ctx := context.Background()
	alice := h.clients["alice"]
	s, err := alice.CreateSession(ctx, client.CreateSessionRequest{Owner: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	id := s.Session.ID
	if _, err := alice.CreateCheckpoint(ctx, client.CheckpointRequest{Session: id, Name: "early"}); err != nil {
		t.Fatal(err)
	}
	const writes = 1500
	for i := range writes {
		if _, err := alice.Write(ctx, client.WriteRequest{Session: id, Path: "log.txt", Content: []byte(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := alice.CreateCheckpoint(ctx, client.CheckpointRequest{Session: id, Name: "late"}); err != nil {
		t.Fatal(err)
	}
	status, body := h.get(t, "alice", "/s/"+id)
	if status != 200 || !strings.Contains(body, "late → position") {
		t.Fatalf("status %d; the newest checkpoint is not in the timeline", status)
	}
	t.Logf("first checkpoint shown: %v; cut notice: %v", strings.Contains(body, "early → position"), strings.Contains(body, "Older history is not searched"))
	if !strings.Contains(body, "early → position") && !strings.Contains(body, "Older history is not searched") {
		t.Error("the timeline neither reaches the first checkpoint nor says it stopped before it")
	}
}
