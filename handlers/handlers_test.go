package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/handlers"
	"github.com/strand-dev/strand/names"
	"github.com/strand-dev/strand/projections"
	"github.com/strand-dev/strand/streams"
	"github.com/strand-dev/strand/streams/streamstest"
)

// harness is one embedded JetStream with the service on it and a client for
// tenant "acme". Every top-level test gets its own, so tests may run in
// parallel while LastSeq comparisons inside one test stay exact.
type harness struct {
	env *streamstest.Env
	svc *handlers.Service
	c   *client.Client
	// opts are the service's options and store the store's, kept for
	// restart.
	opts  handlers.Options
	store streams.Config
	// root is the test that owns the harness: what the harness starts
	// stops when it ends, not when a subtest does.
	root *testing.T
}

type harnessOptions struct {
	service handlers.Options
	// list wires the session-views projection for session.list.
	list bool
	// store configures the store (and the streams it provisions).
	store streams.Config
}

func start(t *testing.T, opts ...harnessOptions) *harness {
	t.Helper()
	var o harnessOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	// The suite's backend: one server, or with STRAND_TEST_BACKEND=cluster
	// three servers and three replicas (.ci/run runs a part of the suite
	// there).
	env := streamstest.StartSuite(t, streamstest.Options{Config: o.store})
	if o.list {
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
		o.service.Lister = sessionLister{views}
		o.service.Reviews = sessionLister{views}
	}
	h := &harness{env: env, c: client.NewClient(env.NC, "acme"), opts: o.service, store: o.store, root: t}
	h.svc = startService(t, t, env, env.Store, o.service)
	return h
}

func startService(t, owner *testing.T, env *streamstest.Env, store *streams.Store, opts handlers.Options) *handlers.Service {
	t.Helper()
	svc := handlers.NewService(store, opts)
	if err := svc.Start(env.NC); err != nil {
		t.Fatalf("start service: %v", err)
	}
	owner.Cleanup(func() { _ = svc.Stop() })
	// The server has the service's subscriptions once a flush returns.
	if err := env.NC.Flush(); err != nil {
		t.Fatalf("flush: %v", err)
	}
	return svc
}

// restart replaces the service with one on a new store over the same
// streams: no cached state survives, so every answer after it comes from
// replaying the stream (and snapshots).
func (h *harness) restart(t *testing.T) {
	t.Helper()
	if err := h.svc.Stop(); err != nil {
		t.Fatalf("stop service: %v", err)
	}
	h.svc = startService(t, h.root, h.env, openStore(t, h), h.opts)
}

// openStore opens another store on the harness's streams, with empty caches.
func openStore(t *testing.T, h *harness) *streams.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store, err := streams.Open(ctx, h.env.NC, h.store, nil)
	if err != nil {
		t.Fatalf("open another store: %v", err)
	}
	h.root.Cleanup(store.Close)
	return store
}

// client returns a client for another tenant on the same connection.
func (h *harness) client(tenant string) *client.Client {
	return client.NewClient(h.env.NC, tenant)
}

// session creates a session and returns its id.
func (h *harness) session(t *testing.T) string {
	t.Helper()
	r, err := h.c.CreateSession(t.Context(), client.CreateSessionRequest{})
	if err != nil {
		t.Fatalf("create session: %v", err)
	}
	return r.Session.ID
}

// write writes a file and checks that the reply's position is the new last
// event of the stream.
func (h *harness) write(t *testing.T, id, path, content string) client.ChangeReply {
	t.Helper()
	r, err := h.c.Write(t.Context(), client.WriteRequest{Session: id, Path: path, Content: []byte(content)})
	if err != nil {
		t.Fatalf("write %s %q: %v", id, path, err)
	}
	h.wantHead(t, fmt.Sprintf("write %q", path), r.Position)
	return r
}

// read returns a file's whole content at a point (empty: the head).
func (h *harness) read(t *testing.T, id, path string, at client.At) string {
	t.Helper()
	data, _, err := h.c.ReadAll(t.Context(), id, path, at)
	if err != nil {
		t.Fatalf("read %s %q at %q: %v", id, path, at, err)
	}
	return string(data)
}

// wantHead checks that a mutating reply carries the position of the event
// it appended: the stream's last sequence.
func (h *harness) wantHead(t *testing.T, what string, got uint64) {
	t.Helper()
	if want := h.env.LastSeq(t); got != want || got == 0 {
		t.Fatalf("%s: reply position %d, want the new last sequence %d", what, got, want)
	}
}

// unchanged runs fn and fails when the event stream grew meanwhile.
func (h *harness) unchanged(t *testing.T, what string, fn func()) {
	t.Helper()
	before := h.env.LastSeq(t)
	fn()
	if after := h.env.LastSeq(t); after != before {
		t.Errorf("%s: last sequence %d -> %d, want unchanged", what, before, after)
	}
}

// wantCode fails unless err carries the wanted code.
func wantCode(t *testing.T, what string, err error, want domain.Code) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error, want %s", what, want)
		return
	}
	if got := client.ErrorCode(err); got != want {
		t.Errorf("%s: code %s (%v), want %s", what, got, err, want)
	}
}

// paths returns the paths of manifest entries.
func paths(es []client.EntryView) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Path
	}
	return out
}

// manifest lists every entry of a session at a point, one page at a time.
func (h *harness) manifest(t *testing.T, id string, at client.At) []string {
	t.Helper()
	var out []string
	req := client.ManifestRequest{Session: id, At: at}
	for {
		r, err := h.c.Manifest(t.Context(), req)
		if err != nil {
			t.Fatalf("manifest %s at %q: %v", id, at, err)
		}
		out = append(out, paths(r.Entries)...)
		if r.NextCursor == "" {
			return out
		}
		req.After = r.NextCursor
	}
}

func asJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// neverID is a valid session id that no test creates.
const neverID = "01ARZ3NDEKTSV4RRFFQ69G5FAV"

// sessionLister is the adapter that cmd/strand wires for session.list; the
// handlers tests cannot import cmd, so it is repeated here. The projection
// is embedded so that whatever else it offers the Lister passes through.
type sessionLister struct{ *projections.Sessions }

func (l sessionLister) ListSessions(ctx context.Context, tenant string, req client.ListSessionsRequest) (client.ListSessionsReply, error) {
	views, next, err := l.List(ctx, tenant, projections.ListFilter{
		Status: req.Status, Tags: req.Tags, Owner: req.Owner, Parent: req.Parent, Source: req.Source,
		UpdatedSince: req.UpdatedSince, After: req.Cursor, Limit: req.Limit,
	})
	if err != nil {
		return client.ListSessionsReply{}, err
	}
	out := client.ListSessionsReply{Sessions: []client.SessionView{}, NextCursor: next}
	for _, v := range views {
		sv := client.SessionView{
			ID: v.ID, Tenant: v.Tenant, Status: v.Status, Owner: v.Owner, Tags: v.Tags,
			CreatedAt: v.CreatedAt, UpdatedAt: v.UpdatedAt, Position: v.Position, Start: v.Start,
			Version: v.Version, Root: v.Root,
		}
		if o := v.Origin; o.Parent != "" || o.Source != "" {
			sv.Origin = &client.OriginView{Source: o.Source, Revision: o.Revision, Parent: o.Parent, Position: o.Position}
		}
		out.Sessions = append(out.Sessions, sv)
	}
	return out, nil
}

// eventually retries check until it returns "" or the deadline passes, for
// read models that lag behind the event stream.
func eventually(t *testing.T, what string, check func() string) {
	t.Helper()
	eventuallyWithin(t, 10*time.Second, what, check)
}

// eventuallyWithin checks every 20ms until check returns "" and fails with
// its last message after d: the one wait of the handler tests.
func eventuallyWithin(t *testing.T, d time.Duration, what string, check func() string) {
	t.Helper()
	var msg string
	if !streamstest.Poll(d, func() bool { msg = check(); return msg == "" }) {
		t.Fatalf("%s: after %s: %s", what, d, msg)
	}
}

func joined(ss []string) string { return "[" + strings.Join(ss, " ") + "]" }
