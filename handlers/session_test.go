package handlers_test

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/oklog/ulid/v2"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
)

func TestSession_Create(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx := t.Context()

	t.Run("Default", func(t *testing.T) {
		r, err := h.c.CreateSession(ctx, client.CreateSessionRequest{})
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		h.wantHead(t, "create", r.Position)
		s := r.Session
		if _, err := ulid.ParseStrict(s.ID); err != nil {
			t.Errorf("id %q is not a ULID: %v", s.ID, err)
		}
		if s.Tenant != "acme" || s.Status != "active" || s.Owner != "anonymous" {
			t.Errorf("got tenant %q status %q owner %q, want acme active anonymous", s.Tenant, s.Status, s.Owner)
		}
		if s.Position != r.Position || s.Start != r.Position || s.Version != 1 {
			t.Errorf("got position %d start %d version %d, want %d %d 1", s.Position, s.Start, s.Version, r.Position, r.Position)
		}
		if s.Origin != nil {
			t.Errorf("got origin %+v, want none", *s.Origin)
		}
		if s.Root == "" || s.CreatedAt.IsZero() {
			t.Errorf("got root %q created_at %v, want both set", s.Root, s.CreatedAt)
		}
	})

	t.Run("OwnerAndTags", func(t *testing.T) {
		tags := map[string]string{"team": "core", "ticket": "STR-1"}
		r, err := h.c.CreateSession(ctx, client.CreateSessionRequest{Owner: "bob", Tags: tags})
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		if r.Session.Owner != "bob" || !maps.Equal(r.Session.Tags, tags) {
			t.Errorf("got owner %q tags %v, want bob %v", r.Session.Owner, r.Session.Tags, tags)
		}
	})

	t.Run("ActorHeaderIsOwner", func(t *testing.T) {
		c := h.client("acme")
		c.Actor = "alice"
		r, err := c.CreateSession(ctx, client.CreateSessionRequest{})
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		if r.Session.Owner != "alice" {
			t.Errorf("got owner %q, want alice (from the %s header)", r.Session.Owner, names.HeaderActor)
		}
		evs, err := c.Events(ctx, client.EventsRequest{Session: r.Session.ID})
		if err != nil {
			t.Fatalf("events: %v", err)
		}
		if len(evs.Events) != 1 || evs.Events[0].Actor != "alice" || evs.Events[0].Type != string(domain.SessionCreated) {
			t.Errorf("got events %s, want one SessionCreated by alice", asJSON(evs.Events))
		}
	})

	t.Run("UnknownSource", func(t *testing.T) {
		h.unchanged(t, "create from unknown source", func() {
			_, err := h.c.CreateSession(ctx, client.CreateSessionRequest{Source: "nope"})
			wantCode(t, "create source nope", err, domain.CodeNotFound)
		})
	})
}

func TestSession_Get(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx := t.Context()
	id := h.session(t)
	first := h.write(t, id, "a.txt", "one")
	if _, err := h.c.CreateCheckpoint(ctx, client.CheckpointRequest{Session: id, Name: "v1", Note: "first"}); err != nil {
		t.Fatalf("checkpoint: %v", err)
	}
	last := h.write(t, id, "a.txt", "two")

	t.Run("Head", func(t *testing.T) {
		r, err := h.c.GetSession(ctx, id, "")
		if err != nil {
			t.Fatalf("get: %v", err)
		}
		if r.Position != last.Position || r.Session.Position != last.Position || r.Session.Root != last.Root {
			t.Errorf("got position %d/%d root %s, want %d root %s", r.Position, r.Session.Position, r.Session.Root, last.Position, last.Root)
		}
		if r.Session.Version != 4 {
			t.Errorf("got version %d, want 4 (create, write, checkpoint, write)", r.Session.Version)
		}
		if len(r.Session.Checkpoints) != 1 || r.Session.Checkpoints[0].Name != "v1" || r.Session.Checkpoints[0].Position != first.Position || r.Session.Checkpoints[0].Note != "first" {
			t.Errorf("got checkpoints %s, want v1 at %d with note", asJSON(r.Session.Checkpoints), first.Position)
		}
	})

	t.Run("LowercaseID", func(t *testing.T) {
		r, err := h.c.GetSession(ctx, strings.ToLower(id), "")
		if err != nil {
			t.Fatalf("get %q: %v", strings.ToLower(id), err)
		}
		if r.Session.ID != id {
			t.Errorf("got id %q, want %q", r.Session.ID, id)
		}
	})

	for _, at := range []client.At{client.AtPosition(first.Position), "v1"} {
		t.Run("At/"+string(at), func(t *testing.T) {
			r, err := h.c.GetSession(ctx, id, at)
			if err != nil {
				t.Fatalf("get at %q: %v", at, err)
			}
			if r.Position != first.Position || r.Session.Root != first.Root || r.Session.Version != 2 {
				t.Errorf("get at %q: got position %d root %s version %d, want %d %s 2", at, r.Position, r.Session.Root, r.Session.Version, first.Position, first.Root)
			}
		})
	}
}

func TestSession_List(t *testing.T) {
	t.Parallel()
	h := start(t, harnessOptions{list: true})
	ctx := t.Context()
	create := func(tags map[string]string) string {
		r, err := h.c.CreateSession(ctx, client.CreateSessionRequest{Tags: tags})
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		return r.Session.ID
	}
	a1 := create(map[string]string{"team": "a"})
	a2 := create(map[string]string{"team": "a"})
	b1 := create(map[string]string{"team": "b"})
	archived := create(map[string]string{"team": "b"})
	deleted := create(nil)
	if _, err := h.c.ArchiveSession(ctx, client.SessionRequest{Session: archived}); err != nil {
		t.Fatalf("archive: %v", err)
	}
	if _, err := h.c.DeleteSession(ctx, client.SessionRequest{Session: deleted}); err != nil {
		t.Fatalf("delete: %v", err)
	}
	fork, err := h.c.Fork(ctx, client.ForkRequest{Session: b1, Owner: "frank"})
	if err != nil {
		t.Fatalf("fork: %v", err)
	}
	forked := fork.Session.ID
	other, err := h.client("other").CreateSession(ctx, client.CreateSessionRequest{})
	if err != nil {
		t.Fatalf("create for other: %v", err)
	}

	list := func(c *client.Client, req client.ListSessionsRequest) []string {
		t.Helper()
		var ids []string
		for {
			r, err := c.ListSessions(ctx, req)
			if err != nil {
				t.Fatalf("list %s: %v", asJSON(req), err)
			}
			for _, s := range r.Sessions {
				ids = append(ids, s.ID)
			}
			if r.NextCursor == "" {
				return ids
			}
			req.Cursor = r.NextCursor
		}
	}
	tests := []struct {
		name   string
		tenant string
		req    client.ListSessionsRequest
		want   []string
	}{
		{"All", "acme", client.ListSessionsRequest{}, []string{a1, a2, b1, archived, forked}},
		{"Paged", "acme", client.ListSessionsRequest{Limit: 1}, []string{a1, a2, b1, archived, forked}},
		{"PagedBy2", "acme", client.ListSessionsRequest{Limit: 2}, []string{a1, a2, b1, archived, forked}},
		{"Parent", "acme", client.ListSessionsRequest{Parent: b1}, []string{forked}},
		{"Owner", "acme", client.ListSessionsRequest{Owner: "frank"}, []string{forked}},
		{"Tag", "acme", client.ListSessionsRequest{Tags: map[string]string{"team": "a"}}, []string{a1, a2}},
		{"TagPaged", "acme", client.ListSessionsRequest{Tags: map[string]string{"team": "b"}, Limit: 1}, []string{b1, archived}},
		{"Archived", "acme", client.ListSessionsRequest{Status: "archived"}, []string{archived}},
		{"Deleted", "acme", client.ListSessionsRequest{Status: "deleted"}, []string{deleted}},
		{"OtherTenant", "other", client.ListSessionsRequest{}, []string{other.Session.ID}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := h.client(tt.tenant)
			eventually(t, "list "+asJSON(tt.req), func() string {
				if got := list(c, tt.req); !slices.Equal(got, tt.want) {
					return "got " + joined(got) + ", want " + joined(tt.want)
				}
				return ""
			})
		})
	}

	t.Run("View", func(t *testing.T) {
		var got client.SessionView
		eventually(t, "archived session view", func() string {
			r, err := h.c.ListSessions(ctx, client.ListSessionsRequest{Status: "archived"})
			if err != nil || len(r.Sessions) != 1 {
				return "no archived session listed"
			}
			got = r.Sessions[0]
			return ""
		})
		head, err := h.c.GetSession(ctx, archived, "")
		if err != nil {
			t.Fatalf("get: %v", err)
		}
		want := head.Session
		if got.ID != want.ID || got.Status != "archived" || got.Position != want.Position || got.Root != want.Root || got.Version != want.Version || !maps.Equal(got.Tags, want.Tags) {
			t.Errorf("listed %s, want it to agree with session.get %s", asJSON(got), asJSON(want))
		}
	})

	t.Run("BadInput", func(t *testing.T) {
		for _, body := range []string{`{"limit":-1}`, `{"limit":1001}`, `{"status":"sleeping"}`, `{"cursor":5}`} {
			err := h.c.RequestRaw(ctx, "session", "list", []byte(body), nil)
			wantCode(t, "list "+body, err, domain.CodeInvalidArgument)
		}
	})

	t.Run("NoLister", func(t *testing.T) {
		h2 := start(t)
		_, err := h2.c.ListSessions(ctx, client.ListSessionsRequest{})
		wantCode(t, "list without a lister", err, domain.CodeUnavailable)
	})
}

func TestSession_Archive(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx := t.Context()
	id := h.session(t)
	h.write(t, id, "a.txt", "kept")

	r, err := h.c.ArchiveSession(ctx, client.SessionRequest{Session: id})
	if err != nil {
		t.Fatalf("archive: %v", err)
	}
	h.wantHead(t, "archive", r.Position)
	if r.Session.Status != "archived" {
		t.Errorf("got status %q, want archived", r.Session.Status)
	}

	t.Run("ReadsWork", func(t *testing.T) {
		if got := h.read(t, id, "a.txt", ""); got != "kept" {
			t.Errorf("read a.txt: got %q, want kept", got)
		}
		g, err := h.c.GetSession(ctx, id, "")
		if err != nil || g.Session.Status != "archived" {
			t.Errorf("get: got %+v, %v; want status archived", g.Session, err)
		}
	})

	t.Run("WritesConflict", func(t *testing.T) {
		h.unchanged(t, "writes to an archived session", func() {
			_, err := h.c.Write(ctx, client.WriteRequest{Session: id, Path: "b.txt", Content: []byte("x")})
			wantCode(t, "write", err, domain.CodeConflict)
			_, err = h.c.Mkdir(ctx, client.MkdirRequest{Session: id, Path: "d"})
			wantCode(t, "mkdir", err, domain.CodeConflict)
			_, err = h.c.Remove(ctx, client.RemoveRequest{Session: id, Path: "a.txt"})
			wantCode(t, "remove", err, domain.CodeConflict)
			_, err = h.c.Restore(ctx, client.RestoreRequest{Session: id, To: client.AtPosition(r.Session.Start)})
			wantCode(t, "restore", err, domain.CodeConflict)
			_, err = h.c.ArchiveSession(ctx, client.SessionRequest{Session: id})
			wantCode(t, "archive again", err, domain.CodeConflict)
		})
	})
}

func TestSession_Delete(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx := t.Context()
	id := h.session(t)
	w := h.write(t, id, "a.txt", "gone")

	r, err := h.c.DeleteSession(ctx, client.SessionRequest{Session: id})
	if err != nil {
		t.Fatalf("delete: %v", err)
	}
	h.wantHead(t, "delete", r.Position)
	if r.Session.Status != "deleted" {
		t.Errorf("got status %q, want deleted", r.Session.Status)
	}

	t.Run("HeadIsNotFound", func(t *testing.T) {
		h.unchanged(t, "requests to a deleted session", func() {
			_, err := h.c.GetSession(ctx, id, "")
			wantCode(t, "get", err, domain.CodeNotFound)
			_, err = h.c.Read(ctx, client.ReadRequest{Session: id, Path: "a.txt"})
			wantCode(t, "read", err, domain.CodeNotFound)
			_, err = h.c.Manifest(ctx, client.ManifestRequest{Session: id})
			wantCode(t, "manifest", err, domain.CodeNotFound)
			_, err = h.c.Write(ctx, client.WriteRequest{Session: id, Path: "b.txt", Content: []byte("x")})
			wantCode(t, "write", err, domain.CodeNotFound)
			_, err = h.c.Mkdir(ctx, client.MkdirRequest{Session: id, Path: "d"})
			wantCode(t, "mkdir", err, domain.CodeNotFound)
			_, err = h.c.TagSession(ctx, client.TagRequest{Session: id, Set: map[string]string{"k": "v"}})
			wantCode(t, "tag", err, domain.CodeNotFound)
			_, err = h.c.DeleteSession(ctx, client.SessionRequest{Session: id})
			wantCode(t, "delete again", err, domain.CodeNotFound)
			_, err = h.c.Fork(ctx, client.ForkRequest{Session: id})
			wantCode(t, "fork at head", err, domain.CodeNotFound)
		})
	})

	t.Run("PastStillReads", func(t *testing.T) {
		// History is kept for forks and audit; a read at a position
		// answers as it always did.
		if got := h.read(t, id, "a.txt", client.AtPosition(w.Position)); got != "gone" {
			t.Errorf("read at %d: got %q, want gone", w.Position, got)
		}
	})
}

func TestSession_Tag(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx := t.Context()
	id := h.session(t)

	steps := []struct {
		req  client.TagRequest
		want map[string]string
	}{
		{client.TagRequest{Set: map[string]string{"a": "1", "b": "2"}}, map[string]string{"a": "1", "b": "2"}},
		{client.TagRequest{Set: map[string]string{"c": "3"}, Remove: []string{"a"}}, map[string]string{"b": "2", "c": "3"}},
		{client.TagRequest{Set: map[string]string{"b": "two"}}, map[string]string{"b": "two", "c": "3"}},
		{client.TagRequest{Remove: []string{"b", "missing"}}, map[string]string{"c": "3"}},
	}
	for _, s := range steps {
		s.req.Session = id
		r, err := h.c.TagSession(ctx, s.req)
		if err != nil {
			t.Fatalf("tag %s: %v", asJSON(s.req), err)
		}
		h.wantHead(t, "tag "+asJSON(s.req), r.Position)
		g, err := h.c.GetSession(ctx, id, "")
		if err != nil {
			t.Fatalf("get: %v", err)
		}
		if !maps.Equal(r.Session.Tags, s.want) || !maps.Equal(g.Session.Tags, s.want) {
			t.Errorf("tag %s: reply tags %v, get tags %v, want %v", asJSON(s.req), r.Session.Tags, g.Session.Tags, s.want)
		}
	}

	for _, body := range []string{
		`{"session":"` + id + `"}`,
		`{"session":"` + id + `","set":{"bad key":"v"}}`,
		`{"session":"` + id + `","set":{"k":"v\u0000"}}`,
		`{"session":"` + id + `","remove":["*"]}`,
		`{"session":"` + id + `","set":{"k":1}}`,
	} {
		h.unchanged(t, "tag "+body, func() {
			err := h.c.RequestRaw(ctx, "session", "tag", []byte(body), nil)
			wantCode(t, "tag "+body, err, domain.CodeInvalidArgument)
		})
	}
}

// TestTenant_Isolation checks that the service answers a session of one
// tenant as unknown to every other tenant, whatever the endpoint.
func TestTenant_Isolation(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx := t.Context()
	id := h.session(t)
	w := h.write(t, id, "secret.txt", "acme only")
	if _, err := h.c.CreateCheckpoint(ctx, client.CheckpointRequest{Session: id, Name: "cp"}); err != nil {
		t.Fatalf("checkpoint: %v", err)
	}
	other := h.client("other")
	otherID, err := other.CreateSession(ctx, client.CreateSessionRequest{})
	if err != nil {
		t.Fatalf("create for other: %v", err)
	}
	pos := client.AtPosition(w.Position)

	h.unchanged(t, "cross-tenant requests", func() {
		calls := []struct {
			name string
			call func() error
		}{
			{"get", func() error { _, err := other.GetSession(ctx, id, ""); return err }},
			{"get at position", func() error { _, err := other.GetSession(ctx, id, pos); return err }},
			{"get at checkpoint", func() error { _, err := other.GetSession(ctx, id, "cp"); return err }},
			{"read", func() error {
				_, err := other.Read(ctx, client.ReadRequest{Session: id, Path: "secret.txt"})
				return err
			}},
			{"read at position", func() error {
				_, err := other.Read(ctx, client.ReadRequest{Session: id, Path: "secret.txt", At: pos})
				return err
			}},
			{"manifest", func() error { _, err := other.Manifest(ctx, client.ManifestRequest{Session: id}); return err }},
			{"events", func() error { _, err := other.Events(ctx, client.EventsRequest{Session: id}); return err }},
			{"checkpoints", func() error {
				_, err := other.ListCheckpoints(ctx, client.CheckpointListRequest{Session: id})
				return err
			}},
			{"write", func() error {
				_, err := other.Write(ctx, client.WriteRequest{Session: id, Path: "x", Content: []byte("x")})
				return err
			}},
			{"upload", func() error { _, err := other.Upload(ctx, id, []byte("x")); return err }},
			{"mkdir", func() error { _, err := other.Mkdir(ctx, client.MkdirRequest{Session: id, Path: "d"}); return err }},
			{"tag", func() error {
				_, err := other.TagSession(ctx, client.TagRequest{Session: id, Set: map[string]string{"k": "v"}})
				return err
			}},
			{"archive", func() error { _, err := other.ArchiveSession(ctx, client.SessionRequest{Session: id}); return err }},
			{"delete", func() error { _, err := other.DeleteSession(ctx, client.SessionRequest{Session: id}); return err }},
			{"fork", func() error { _, err := other.Fork(ctx, client.ForkRequest{Session: id}); return err }},
			{"fork at position", func() error { _, err := other.Fork(ctx, client.ForkRequest{Session: id, At: pos}); return err }},
			{"restore own session to acme's position", func() error {
				_, err := other.Restore(ctx, client.RestoreRequest{Session: otherID.Session.ID, To: pos})
				return err
			}},
			{"checkpoint own session at acme's position", func() error {
				_, err := other.CreateCheckpoint(ctx, client.CheckpointRequest{Session: otherID.Session.ID, Name: "steal", At: pos})
				return err
			}},
			{"checkpoint create", func() error {
				_, err := other.CreateCheckpoint(ctx, client.CheckpointRequest{Session: id, Name: "x"})
				return err
			}},
		}
		for _, c := range calls {
			wantCode(t, "tenant other: "+c.name, c.call(), domain.CodeNotFound)
		}
	})

	// And acme still sees everything.
	if got := h.read(t, id, "secret.txt", ""); got != "acme only" {
		t.Errorf("acme read: got %q, want %q", got, "acme only")
	}
}
