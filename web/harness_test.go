package web_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/handlers"
	"github.com/strand-dev/strand/names"
	"github.com/strand-dev/strand/projections"
	"github.com/strand-dev/strand/streams/streamstest"
	"github.com/strand-dev/strand/web"
)

// harness is one embedded JetStream with the service and its session-views
// read model on it, and the app on an httptest server. Each user is a
// client with its own actor, picked by the request's basic-auth user (the
// password is not checked here: identity over HTTP is the gateway's job,
// the app only uses the client it is given).
type harness struct {
	env     *streamstest.Env
	srv     *httptest.Server
	clients map[string]*client.Client
}

const tenant = "acme"

func start(t testing.TB) *harness {
	t.Helper()
	env := streamstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	views, err := projections.OpenSessions(ctx, env.Store.JetStream(), names.EventStream, names.EventFilter("*"), 1, nil)
	if err != nil {
		t.Fatalf("open session views: %v", err)
	}
	if err := views.Start(ctx); err != nil {
		t.Fatalf("start session views: %v", err)
	}
	t.Cleanup(views.Stop)
	feed := projections.OpenActivity(env.Store.JetStream(), names.EventStream, names.EventFilter("*"), 1,
		projections.FeedConfig{Stream: names.FeedStream, Subject: names.FeedSubject}, nil)
	if err := feed.Start(ctx); err != nil {
		t.Fatalf("start activity feed: %v", err)
	}
	t.Cleanup(feed.Stop)
	stats, err := projections.OpenStats(ctx, env.Store.JetStream(), names.EventStream, names.EventFilter("*"), 1, nil)
	if err != nil {
		t.Fatalf("open stats: %v", err)
	}
	if err := stats.Start(ctx); err != nil {
		t.Fatalf("start stats: %v", err)
	}
	t.Cleanup(stats.Stop)
	figures := statsAdapter{views, stats}
	svc := handlers.NewService(env.Store, handlers.Options{Lister: viewsAdapter{views}, Reviews: viewsAdapter{views}, Activity: feedAdapter{feed},
		Stats: figures, Usage: figures})
	if err := svc.Start(env.NC); err != nil {
		t.Fatalf("start service: %v", err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	if err := env.NC.Flush(); err != nil {
		t.Fatalf("flush: %v", err)
	}
	h := &harness{env: env, clients: map[string]*client.Client{}}
	for _, u := range []string{"alice", "bob"} {
		c := client.NewClient(env.NC, tenant)
		c.Actor = u
		h.clients[u] = c
	}
	app, err := web.New(web.Options{ClientFor: h.clientFor, Login: h.login, Logout: h.logout})
	if err != nil {
		t.Fatalf("new app: %v", err)
	}
	h.srv = httptest.NewServer(app)
	t.Cleanup(h.srv.Close)
	return h
}

// The test's identities: each user's password is "pw-" + user. A login
// cookie names the user directly (the gateway's names a login it keeps).
const loginCookie = "strand_test_login"

func (h *harness) clientFor(r *http.Request) (*client.Client, error) {
	if u, pw, ok := r.BasicAuth(); ok && h.clients[u] != nil && pw == "pw-"+u {
		return h.clients[u], nil
	}
	if ck, err := r.Cookie(loginCookie); err == nil && h.clients[ck.Value] != nil {
		return h.clients[ck.Value], nil
	}
	return nil, web.ErrUnauthenticated
}

func (h *harness) login(w http.ResponseWriter, r *http.Request, c web.Credentials) error {
	if h.clients[c.User] == nil || c.Password != "pw-"+c.User {
		return web.ErrUnauthenticated
	}
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: c.User, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	return nil
}

func (h *harness) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

// viewsAdapter serves session.list and the review queue from the read
// model, as cmd/strand wires them.
type viewsAdapter struct{ v *projections.Sessions }

func (a viewsAdapter) ListSessions(ctx context.Context, tenant string, req client.ListSessionsRequest) (client.ListSessionsReply, error) {
	page, err := a.v.Query(ctx, tenant, projections.ListFilter{
		Status: req.Status, Tags: req.Tags, Owner: req.Owner, Parent: req.Parent, Source: req.Source,
		UpdatedSince: req.UpdatedSince, After: req.Cursor, Limit: req.Limit, Sort: req.Sort, Order: req.Order,
		Counts: req.Counts,
	})
	if err != nil {
		return client.ListSessionsReply{}, err
	}
	out := client.ListSessionsReply{Sessions: []client.SessionView{}, NextCursor: page.Next, Counts: page.Counts}
	for _, v := range page.Views {
		sv := client.SessionView{ID: v.ID, Tenant: v.Tenant, Status: v.Status, Owner: v.Owner, Tags: v.Tags,
			CreatedAt: v.CreatedAt, UpdatedAt: v.UpdatedAt, Position: v.Position, Root: v.Root}
		if o := v.Origin; o.Parent != "" || o.Source != "" {
			sv.Origin = &client.OriginView{Source: o.Source, Revision: o.Revision, Parent: o.Parent, Position: o.Position}
		}
		out.Sessions = append(out.Sessions, sv)
	}
	return out, nil
}

func (a viewsAdapter) CommitSession(ctx context.Context, tenant, commit string) (string, error) {
	return a.v.CommitSession(ctx, tenant, commit)
}

func (a viewsAdapter) PendingReviews(ctx context.Context, tenant, group string) (client.PendingReply, error) {
	items, err := a.v.Pending(ctx, tenant, group)
	if err != nil {
		return client.PendingReply{}, err
	}
	out := client.PendingReply{Requests: []client.ApprovalView{}}
	for _, it := range items {
		out.Requests = append(out.Requests, client.ApprovalView{ID: it.ID, Session: it.Session, Reason: it.Reason,
			Group: it.Group, Requester: it.Requester, Root: it.Root, Required: it.Required, State: domain.ApprovalPending,
			Grants: []client.DecisionView{}, CreatedAt: it.CreatedAt, Position: it.Position})
	}
	return out, nil
}

// feedAdapter serves activity.list from the activity feed.
type feedAdapter struct{ a *projections.Activity }

func (f feedAdapter) ActivityList(ctx context.Context, tenant string, req client.ActivityRequest) (client.ActivityReply, error) {
	page, err := f.a.List(ctx, tenant, req.Limit, req.Before)
	if err != nil {
		return client.ActivityReply{}, err
	}
	out := client.ActivityReply{Entries: []client.ActivityEntry{}, NextBefore: page.Before}
	for _, e := range page.Entries {
		out.Entries = append(out.Entries, client.ActivityEntry(e))
	}
	return out, nil
}

// statsAdapter serves session.stats and usage.get from the stats and
// session-views read models, as cmd/strand wires them (without the
// stream figures of the deployment, which the app only shows).
type statsAdapter struct {
	v *projections.Sessions
	s *projections.Stats
}

func (a statsAdapter) SessionStats(ctx context.Context, tenant, id, bucket string) (client.SessionStatsReply, uint64, error) {
	s, _, err := a.s.Session(ctx, tenant, id)
	if err != nil {
		return client.SessionStatsReply{}, 0, err
	}
	width := 24 * time.Hour
	if bucket == "hour" {
		width = time.Hour
	}
	r := client.SessionStatsReply{Session: id, Position: s.Applied, Events: s.Events, EventBytes: s.EventBytes,
		First: s.First, Last: s.Last, ByType: s.ByType, ByActor: s.ByActor, Bucket: bucket,
		FilesChanged: s.FilesChanged, ContentBytes: s.ContentBytes, MedianApprovalSeconds: s.MedianApprovalSeconds()}
	r.Timeline = append(r.Timeline, s.Timeline(width)...)
	r.Approvals = append(r.Approvals, s.Approvals...)
	return r, s.Version, nil
}

func (a statsAdapter) TenantUsage(ctx context.Context, tenant string) (client.UsageReply, error) {
	page, err := a.v.Query(ctx, tenant, projections.ListFilter{Counts: true, Limit: 1})
	if err != nil {
		return client.UsageReply{}, err
	}
	ts, err := a.s.Tenant(ctx, tenant)
	if err != nil {
		return client.UsageReply{}, err
	}
	r := client.UsageReply{SessionsByStatus: page.Counts, Events: uint64(ts.Events), ContentBytes: ts.ContentBytes,
		Storage: client.StorageUsage{EventBytes: ts.EventBytes, Blobs: ts.Blobs, BlobBytes: ts.BlobBytes, BlobBytesWritten: ts.BlobBytesWritten}}
	for status, n := range page.Counts {
		if status != "deleted" {
			r.Sessions += int64(n)
		}
	}
	if ts.BlobBytes > 0 {
		r.Storage.DedupRatio = float64(ts.BlobBytesWritten) / float64(ts.BlobBytes)
	}
	return r, nil
}

// waitStats waits until the stats read model folded the session's events
// up to its head.
func (h *harness) waitStats(t testing.TB, id string) client.SessionStatsReply {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		st, err := h.clients["alice"].SessionStats(ctx, client.SessionStatsRequest{Session: id})
		if err == nil && st.Behind == 0 && st.Events > 0 {
			return st
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the stats read model is behind on %s (last error %v)", id, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// mainGo is the file the review flow annotates (line 3 is the import).
const mainGo = `package main

import "fmt"

// greet says hello to someone by name.
func greet(name string) string {
	return fmt.Sprintf("hello, %s", name)
}

func main() {
	fmt.Println(greet("strand"))
}
`

const mainGoBefore = `package main

func main() {
	println("hello")
}
`

// seed makes what a reviewer finds: alice's session (a commit needs one
// grant) with a checkpoint, files changed since it, and a health report;
// a fork of it, and a few other sessions.
func (h *harness) seed(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	alice := h.clients["alice"]
	s, err := alice.CreateSession(ctx, client.CreateSessionRequest{Owner: "alice", Tags: map[string]string{"team": "web", "ticket": "STR-42"}, Policy: domain.Policy{"commit": 1}})
	if err != nil {
		t.Fatalf("create session: %v", err)
	}
	id := s.Session.ID
	write := func(p, content string) {
		t.Helper()
		if _, err := alice.Write(ctx, client.WriteRequest{Session: id, Path: p, Content: []byte(content)}); err != nil {
			t.Fatalf("write %s: %v", p, err)
		}
	}
	write("src/main.go", mainGoBefore)
	write("README.md", "# greeter\n\nSays hello.\n")
	if _, err := alice.CreateCheckpoint(ctx, client.CheckpointRequest{Session: id, Name: "draft", Note: "first cut"}); err != nil {
		t.Fatalf("checkpoint: %v", err)
	}
	write("src/main.go", mainGo)
	write("docs/usage.md", "Run `go run ./src`.\n")
	pass := true
	if _, err := alice.ReportHealth(ctx, client.HealthRequest{Session: id, Passing: &pass, Passed: 12, Summary: "go test ./..."}); err != nil {
		t.Fatalf("health: %v", err)
	}
	if _, err := alice.Fork(ctx, client.ForkRequest{Session: id, At: "draft"}); err != nil {
		t.Fatalf("fork: %v", err)
	}
	for i, tags := range []map[string]string{{"team": "api"}, {"team": "infra"}} {
		o, err := h.clients["bob"].CreateSession(ctx, client.CreateSessionRequest{Owner: "bob", Tags: tags})
		if err != nil {
			t.Fatalf("create other %d: %v", i, err)
		}
		if i == 1 {
			if _, err := h.clients["bob"].ArchiveSession(ctx, client.SessionRequest{Session: o.Session.ID}); err != nil {
				t.Fatalf("archive: %v", err)
			}
		}
	}
	h.waitListed(t, 4)
	h.waitFeed(t, 10)
	return id
}

// waitFeed waits until the activity feed holds n events of the tenant.
func (h *harness) waitFeed(t testing.TB, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		a, err := h.clients["alice"].Activity(ctx, client.ActivityRequest{Limit: client.MaxActivityLimit})
		if err == nil && len(a.Entries) >= n {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the activity feed holds fewer than %d events (last error %v)", n, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitListed waits until the session-views read model lists n sessions:
// it follows the stream, so it may lag a write.
func (h *harness) waitListed(t testing.TB, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		l, err := h.clients["alice"].ListSessions(ctx, client.ListSessionsRequest{Limit: 100})
		if err == nil && len(l.Sessions) >= n {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the read model lists fewer than %d sessions (last error %v)", n, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
