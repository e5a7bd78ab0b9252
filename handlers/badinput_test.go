package handlers_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/handlers"
)

// endpoint is one request subject with a body that is valid but for the
// session it names.
type endpoint struct {
	area, verb string
	body       func(session string) string
}

func (e endpoint) String() string { return e.area + "." + e.verb }

// sessionEndpoints are every endpoint that names a session.
var sessionEndpoints = []endpoint{
	{"session", "get", func(s string) string { return `{"session":"` + s + `"}` }},
	{"session", "archive", func(s string) string { return `{"session":"` + s + `"}` }},
	{"session", "delete", func(s string) string { return `{"session":"` + s + `"}` }},
	{"session", "tag", func(s string) string { return `{"session":"` + s + `","set":{"k":"v"}}` }},
	{"session", "fork", func(s string) string { return `{"session":"` + s + `"}` }},
	{"session", "restore", func(s string) string { return `{"session":"` + s + `","to":"cp"}` }},
	{"fs", "manifest", func(s string) string { return `{"session":"` + s + `"}` }},
	{"fs", "read", func(s string) string { return `{"session":"` + s + `","path":"a.txt"}` }},
	{"fs", "write", func(s string) string { return `{"session":"` + s + `","path":"a.txt","content":"aGk="}` }},
	{"fs", "upload", func(s string) string { return `{"session":"` + s + `","data":"aGk="}` }},
	{"fs", "mkdir", func(s string) string { return `{"session":"` + s + `","path":"d"}` }},
	{"fs", "remove", func(s string) string { return `{"session":"` + s + `","path":"a.txt"}` }},
	{"fs", "rename", func(s string) string { return `{"session":"` + s + `","from":"a.txt","to":"b.txt"}` }},
	{"fs", "symlink", func(s string) string { return `{"session":"` + s + `","path":"l","target":"a.txt"}` }},
	{"fs", "chmod", func(s string) string { return `{"session":"` + s + `","path":"a.txt","mode":384}` }},
	{"fs", "batch", func(s string) string { return `{"session":"` + s + `","ops":[{"op":"mkdir","path":"d"}]}` }},
	{"events", "list", func(s string) string { return `{"session":"` + s + `"}` }},
	{"checkpoint", "create", func(s string) string { return `{"session":"` + s + `","name":"cp2"}` }},
	{"checkpoint", "list", func(s string) string { return `{"session":"` + s + `"}` }},
	{"checkpoint", "delete", func(s string) string { return `{"session":"` + s + `","name":"cp"}` }},
}

// allEndpoints adds those that name no session.
var allEndpoints = append([]endpoint{
	{"session", "create", func(string) string { return `{}` }},
	{"session", "list", func(string) string { return `{}` }},
}, sessionEndpoints...)

// TestBadInput_Body sends malformed bodies to every endpoint: each answers
// invalid_argument and appends nothing.
func TestBadInput_Body(t *testing.T) {
	t.Parallel()
	h := start(t, harnessOptions{list: true})
	ctx := t.Context()
	id := h.session(t)
	h.write(t, id, "a.txt", "hi")

	bodies := []struct{ name, body string }{
		{"Malformed", `{"session":`},
		{"NotJSON", `session=x`},
		{"Array", `[]`},
		{"ArrayOfObject", `[{"session":"` + id + `"}]`},
		{"Null", `null`},
		{"String", `"` + id + `"`},
		{"Number", `5`},
		{"TrailingGarbage", `{"session":"` + id + `"} garbage`},
		{"TrailingObject", `{"session":"` + id + `"}{}`},
		{"TrailingComma", `{"session":"` + id + `",}`},
		{"UnknownField", `{"session":"` + id + `","bogus":1}`},
		{"UnknownFieldOnly", `{"bogus":true}`},
		{"WrongTypeSession", `{"session":5}`},
		{"WrongTypeLimit", `{"session":"` + id + `","limit":"ten"}`},
	}
	for _, ep := range allEndpoints {
		t.Run(ep.String(), func(t *testing.T) {
			for _, b := range bodies {
				h.unchanged(t, ep.String()+" "+b.body, func() {
					err := h.c.RequestRaw(ctx, ep.area, ep.verb, []byte(b.body), nil)
					wantCode(t, fmt.Sprintf("%s %s %q", ep, b.name, b.body), err, domain.CodeInvalidArgument)
				})
			}
		})
	}
}

// TestBadInput_Session names no session, a malformed one and one that was
// never created, through every endpoint that takes a session.
func TestBadInput_Session(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx := t.Context()
	id := h.session(t)
	h.write(t, id, "a.txt", "hi")
	if _, err := h.c.CreateCheckpoint(ctx, client.CheckpointRequest{Session: id, Name: "cp"}); err != nil {
		t.Fatalf("checkpoint: %v", err)
	}

	cases := []struct {
		name string
		body func(ep endpoint) string
		want domain.Code
	}{
		{"EmptyBody", func(endpoint) string { return `` }, domain.CodeInvalidArgument},
		{"Whitespace", func(endpoint) string { return " \n\t" }, domain.CodeInvalidArgument},
		{"EmptyObject", func(endpoint) string { return `{}` }, domain.CodeInvalidArgument},
		{"EmptySession", func(ep endpoint) string { return ep.body("") }, domain.CodeInvalidArgument},
		{"NotAnID", func(ep endpoint) string { return ep.body("not-a-session") }, domain.CodeInvalidArgument},
		{"Wildcard", func(ep endpoint) string { return ep.body("*") }, domain.CodeInvalidArgument},
		{"SubjectToken", func(ep endpoint) string { return ep.body(id + ".x") }, domain.CodeInvalidArgument},
		{"TooLong", func(ep endpoint) string { return ep.body(id + "0") }, domain.CodeInvalidArgument},
		{"Overflow", func(ep endpoint) string { return ep.body("ZZZZZZZZZZZZZZZZZZZZZZZZZZ") }, domain.CodeInvalidArgument},
		{"NeverCreated", func(ep endpoint) string { return ep.body(neverID) }, domain.CodeNotFound},
		{"NeverCreatedLower", func(ep endpoint) string { return ep.body(strings.ToLower(neverID)) }, domain.CodeNotFound},
	}
	for _, ep := range sessionEndpoints {
		t.Run(ep.String(), func(t *testing.T) {
			for _, c := range cases {
				body := c.body(ep)
				h.unchanged(t, ep.String()+" "+body, func() {
					err := h.c.RequestRaw(ctx, ep.area, ep.verb, []byte(body), nil)
					wantCode(t, fmt.Sprintf("%s %s %q", ep, c.name, body), err, c.want)
				})
			}
		})
	}

	t.Run("BadTenant", func(t *testing.T) {
		for _, tenant := range []string{"ACME", "-acme", "a_very_long_tenant_name_that_goes_on_and_on_and_on_past_sixty_four_chars"} {
			_, err := h.client(tenant).GetSession(ctx, id, "")
			wantCode(t, "get through tenant "+tenant, err, domain.CodeInvalidArgument)
		}
	})
}

// TestBadInput_Paths sends invalid paths to every field that holds one.
func TestBadInput_Paths(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx := t.Context()
	id := h.session(t)
	h.write(t, id, "a.txt", "hi")
	h.write(t, id, "a/b.txt", "hi")
	before := h.manifest(t, id, "")

	bad := []struct{ name, path string }{
		{"DotDot", "../x"},
		{"DotDotDeep", "a/../../b"},
		{"DotDotInside", "a/../b"},
		{"DotDotAbsolute", "/../etc/passwd"},
		{"NUL", "a\x00b"},
		{"Newline", "a\nb"},
		{"Backslash", `a\b`},
		{"TooLong", strings.Repeat("a/", 2500)},
		{"LongComponent", strings.Repeat("x", 256)},
		{"TooDeep", strings.Repeat("d/", 65) + "f"},
	}
	fields := []struct {
		name string
		area string
		verb string
		req  func(p string) any
	}{
		{"read", "fs", "read", func(p string) any { return client.ReadRequest{Session: id, Path: p} }},
		{"manifest prefix", "fs", "manifest", func(p string) any { return client.ManifestRequest{Session: id, Prefix: p} }},
		{"manifest after", "fs", "manifest", func(p string) any { return client.ManifestRequest{Session: id, After: p} }},
		{"write", "fs", "write", func(p string) any { return client.WriteRequest{Session: id, Path: p, Content: []byte("x")} }},
		{"mkdir", "fs", "mkdir", func(p string) any { return client.MkdirRequest{Session: id, Path: p} }},
		{"remove", "fs", "remove", func(p string) any { return client.RemoveRequest{Session: id, Path: p, Recursive: true} }},
		{"rename from", "fs", "rename", func(p string) any { return client.RenameRequest{Session: id, From: p, To: "z"} }},
		{"rename to", "fs", "rename", func(p string) any { return client.RenameRequest{Session: id, From: "a.txt", To: p} }},
		{"symlink", "fs", "symlink", func(p string) any { return client.SymlinkRequest{Session: id, Path: p, Target: "a.txt"} }},
		{"batch", "fs", "batch", func(p string) any {
			return client.BatchRequest{Session: id, Ops: []client.BatchOp{{Op: "mkdir", Path: "ok"}, {Op: "write", Path: p, Content: []byte("x")}}}
		}},
		{"batch rename to", "fs", "batch", func(p string) any {
			return client.BatchRequest{Session: id, Ops: []client.BatchOp{{Op: "mkdir", Path: "ok"}, {Op: "rename", Path: "a.txt", To: p}}}
		}},
	}
	for _, f := range fields {
		t.Run(f.name, func(t *testing.T) {
			for _, b := range bad {
				h.unchanged(t, f.name+" "+b.name, func() {
					err := h.c.Request(ctx, f.area, f.verb, f.req(b.path), nil)
					wantCode(t, fmt.Sprintf("%s path %s %.40q", f.name, b.name, b.path), err, domain.CodeInvalidArgument)
				})
			}
		})
	}
	t.Run("Root", func(t *testing.T) {
		for _, f := range fields[3:] { // the mutations and read
			for _, p := range []string{"", "/", ".", "./"} {
				if f.name == "rename to" || f.name == "batch rename to" {
					continue // covered by rename's own refusals
				}
				h.unchanged(t, f.name+" root", func() {
					err := h.c.Request(ctx, f.area, f.verb, f.req(p), nil)
					wantCode(t, fmt.Sprintf("%s path %q", f.name, p), err, domain.CodeInvalidArgument)
				})
			}
		}
		_, err := h.c.Read(ctx, client.ReadRequest{Session: id, Path: "/"})
		wantCode(t, "read /", err, domain.CodeInvalidArgument)
	})
	if after := h.manifest(t, id, ""); !slices.Equal(after, before) {
		t.Errorf("tree changed by refused requests: got %v, want %v", after, before)
	}
}

// TestBadInput_Mutation checks the fields every mutation shares.
func TestBadInput_Mutation(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx := t.Context()
	id := h.session(t)
	w := h.write(t, id, "a.txt", "hi")

	bad := []struct {
		name string
		m    string
		want domain.Code
	}{
		{"RequestIDSpace", `"request_id":"a b"`, domain.CodeInvalidArgument},
		{"RequestIDDot", `"request_id":"a.b"`, domain.CodeInvalidArgument},
		{"RequestIDWildcard", `"request_id":">"`, domain.CodeInvalidArgument},
		{"RequestIDLong", `"request_id":"` + strings.Repeat("r", 129) + `"`, domain.CodeInvalidArgument},
		{"RequestIDType", `"request_id":7`, domain.CodeInvalidArgument},
		{"ActorNewline", `"actor":"a\nb"`, domain.CodeInvalidArgument},
		{"ActorLong", `"actor":"` + strings.Repeat("a", 300) + `"`, domain.CodeInvalidArgument},
		{"ExpectedPositionNegative", `"expected_position":-1`, domain.CodeInvalidArgument},
		{"ExpectedPositionString", `"expected_position":"1"`, domain.CodeInvalidArgument},
		{"ExpectedPositionStale", fmt.Sprintf(`"expected_position":%d`, w.Position-1), domain.CodeConflict},
		{"ExpectedPositionFuture", fmt.Sprintf(`"expected_position":%d`, w.Position+100), domain.CodeConflict},
	}
	muts := []endpoint{
		{"session", "archive", func(m string) string { return `{"session":"` + id + `",` + m + `}` }},
		{"session", "delete", func(m string) string { return `{"session":"` + id + `",` + m + `}` }},
		{"session", "tag", func(m string) string { return `{"session":"` + id + `","set":{"k":"v"},` + m + `}` }},
		{"session", "restore", func(m string) string { return fmt.Sprintf(`{"session":"%s","to":%d,%s}`, id, w.Position, m) }},
		{"fs", "write", func(m string) string { return `{"session":"` + id + `","path":"b.txt","content":"aGk=",` + m + `}` }},
		{"fs", "mkdir", func(m string) string { return `{"session":"` + id + `","path":"d",` + m + `}` }},
		{"fs", "remove", func(m string) string { return `{"session":"` + id + `","path":"a.txt",` + m + `}` }},
		{"fs", "rename", func(m string) string { return `{"session":"` + id + `","from":"a.txt","to":"c.txt",` + m + `}` }},
		{"fs", "symlink", func(m string) string { return `{"session":"` + id + `","path":"l","target":"a.txt",` + m + `}` }},
		{"fs", "batch", func(m string) string { return `{"session":"` + id + `","ops":[{"op":"mkdir","path":"d"}],` + m + `}` }},
		{"checkpoint", "create", func(m string) string { return `{"session":"` + id + `","name":"cp",` + m + `}` }},
	}
	for _, ep := range muts {
		t.Run(ep.String(), func(t *testing.T) {
			for _, b := range bad {
				body := ep.body(b.m)
				h.unchanged(t, body, func() {
					err := h.c.RequestRaw(ctx, ep.area, ep.verb, []byte(body), nil)
					wantCode(t, fmt.Sprintf("%s %s %.120s", ep, b.name, body), err, b.want)
				})
			}
		})
	}
	// Creates and forks take the same fields.
	for _, b := range bad[:7] {
		for _, ep := range []endpoint{
			{"session", "create", func(m string) string { return `{` + m + `}` }},
			{"session", "fork", func(m string) string { return `{"session":"` + id + `",` + m + `}` }},
		} {
			body := ep.body(b.m)
			h.unchanged(t, body, func() {
				err := h.c.RequestRaw(ctx, ep.area, ep.verb, []byte(body), nil)
				wantCode(t, fmt.Sprintf("%s %s %.120s", ep, b.name, body), err, b.want)
			})
		}
	}
}

// TestBadInput_State checks refusals that depend on the session's state.
func TestBadInput_State(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx := t.Context()
	id := h.session(t)
	w := h.write(t, id, "a.txt", "hi")
	h.write(t, id, "dir/b.txt", "b")
	if _, err := h.c.CreateCheckpoint(ctx, client.CheckpointRequest{Session: id, Name: "cp"}); err != nil {
		t.Fatalf("checkpoint: %v", err)
	}
	otherSession := h.session(t)
	otherW := h.write(t, otherSession, "o.txt", "other")
	archived := h.session(t)
	if _, err := h.c.ArchiveSession(ctx, client.SessionRequest{Session: archived}); err != nil {
		t.Fatalf("archive: %v", err)
	}
	deleted := h.session(t)
	if _, err := h.c.DeleteSession(ctx, client.SessionRequest{Session: deleted}); err != nil {
		t.Fatalf("delete: %v", err)
	}
	head := h.env.LastSeq(t)
	before := h.manifest(t, id, "")
	at := func(p uint64) client.At { return client.AtPosition(p) }

	cases := []struct {
		name string
		area string
		verb string
		req  any
		want domain.Code
	}{
		{"StaleExpectedHash", "fs", "write", client.WriteRequest{Session: id, Path: "a.txt", Content: []byte("x"), ExpectedHash: sha("old")}, domain.CodeConflict},
		{"ExpectedHashOfMissing", "fs", "write", client.WriteRequest{Session: id, Path: "new", Content: []byte("x"), ExpectedHash: sha("hi")}, domain.CodeConflict},
		{"ExpectedAbsentButPresent", "fs", "write", client.WriteRequest{Session: id, Path: "a.txt", Content: []byte("x"), ExpectedHash: "absent"}, domain.CodeConflict},
		{"MalformedExpectedHash", "fs", "write", client.WriteRequest{Session: id, Path: "a.txt", Content: []byte("x"), ExpectedHash: "xyz"}, domain.CodeInvalidArgument},
		{"StaleExpectedPosition", "fs", "write", client.WriteRequest{Session: id, Path: "a.txt", Content: []byte("x"), Mutation: client.Mutation{ExpectedPosition: w.Position}}, domain.CodeConflict},
		{"WriteToDeleted", "fs", "write", client.WriteRequest{Session: deleted, Path: "a.txt", Content: []byte("x")}, domain.CodeNotFound},
		{"UploadToDeleted", "fs", "upload", client.UploadRequest{Session: deleted, Data: []byte("x")}, domain.CodeNotFound},
		{"BatchToDeleted", "fs", "batch", client.BatchRequest{Session: deleted, Ops: []client.BatchOp{{Op: "mkdir", Path: "d"}}}, domain.CodeNotFound},
		{"WriteToArchived", "fs", "write", client.WriteRequest{Session: archived, Path: "a.txt", Content: []byte("x")}, domain.CodeConflict},
		{"UploadToArchived", "fs", "upload", client.UploadRequest{Session: archived, Data: []byte("x")}, domain.CodeConflict},
		{"MkdirToArchived", "fs", "mkdir", client.MkdirRequest{Session: archived, Path: "d"}, domain.CodeConflict},
		{"MkdirExisting", "fs", "mkdir", client.MkdirRequest{Session: id, Path: "dir"}, domain.CodeAlreadyExists},
		{"MkdirOverFile", "fs", "mkdir", client.MkdirRequest{Session: id, Path: "a.txt"}, domain.CodeAlreadyExists},
		{"WriteOverDir", "fs", "write", client.WriteRequest{Session: id, Path: "dir", Content: []byte("x")}, domain.CodeInvalidArgument},
		{"WriteBelowFile", "fs", "write", client.WriteRequest{Session: id, Path: "a.txt/x", Content: []byte("x")}, domain.CodeInvalidArgument},
		{"UploadTooLarge", "fs", "upload", client.UploadRequest{Session: id, Data: make([]byte, 512<<10+1)}, domain.CodeTooLarge},
		{"CheckpointAllDigits", "checkpoint", "create", client.CheckpointRequest{Session: id, Name: "123"}, domain.CodeInvalidArgument},
		{"CheckpointEmptyName", "checkpoint", "create", client.CheckpointRequest{Session: id, Name: ""}, domain.CodeInvalidArgument},
		{"CheckpointBadName", "checkpoint", "create", client.CheckpointRequest{Session: id, Name: "a b"}, domain.CodeInvalidArgument},
		{"CheckpointLongName", "checkpoint", "create", client.CheckpointRequest{Session: id, Name: strings.Repeat("n", 129)}, domain.CodeInvalidArgument},
		{"CheckpointLongNote", "checkpoint", "create", client.CheckpointRequest{Session: id, Name: "n", Note: strings.Repeat("n", 16<<10+1)}, domain.CodeInvalidArgument},
		{"CheckpointExists", "checkpoint", "create", client.CheckpointRequest{Session: id, Name: "cp"}, domain.CodeAlreadyExists},
		{"CheckpointAtOtherSession", "checkpoint", "create", client.CheckpointRequest{Session: id, Name: "x", At: at(otherW.Position)}, domain.CodeNotFound},
		{"CheckpointAtFuture", "checkpoint", "create", client.CheckpointRequest{Session: id, Name: "x", At: at(head + 100)}, domain.CodeNotFound},
		{"CheckpointAtZero", "checkpoint", "create", client.CheckpointRequest{Session: id, Name: "x", At: "0"}, domain.CodeInvalidArgument},
		{"CheckpointAtMissingName", "checkpoint", "create", client.CheckpointRequest{Session: id, Name: "x", At: "nope"}, domain.CodeNotFound},
		{"CheckpointDeleteMissing", "checkpoint", "delete", client.CheckpointRequest{Session: id, Name: "nope"}, domain.CodeNotFound},
		{"CheckpointDeleteWithAt", "checkpoint", "delete", client.CheckpointRequest{Session: id, Name: "cp", At: "1"}, domain.CodeInvalidArgument},
		{"RestoreToOtherSession", "session", "restore", client.RestoreRequest{Session: id, To: at(otherW.Position)}, domain.CodeNotFound},
		{"RestoreToFuture", "session", "restore", client.RestoreRequest{Session: id, To: at(head + 100)}, domain.CodeNotFound},
		{"RestoreToZero", "session", "restore", client.RestoreRequest{Session: id, To: "0"}, domain.CodeInvalidArgument},
		{"RestoreToNothing", "session", "restore", client.RestoreRequest{Session: id}, domain.CodeInvalidArgument},
		{"RestoreToMissingCheckpoint", "session", "restore", client.RestoreRequest{Session: id, To: "nope"}, domain.CodeNotFound},
		{"RestoreToBadName", "session", "restore", client.RestoreRequest{Session: id, To: "no pe"}, domain.CodeInvalidArgument},
		{"ForkAtOtherSession", "session", "fork", client.ForkRequest{Session: id, At: at(otherW.Position)}, domain.CodeNotFound},
		{"ForkAtMissingCheckpoint", "session", "fork", client.ForkRequest{Session: id, At: "nope"}, domain.CodeNotFound},
		{"ForkDeleted", "session", "fork", client.ForkRequest{Session: deleted}, domain.CodeNotFound},
		{"ForkBadTag", "session", "fork", client.ForkRequest{Session: id, Tags: map[string]string{"": "v"}}, domain.CodeInvalidArgument},
		{"CreateBadTag", "session", "create", client.CreateSessionRequest{Tags: map[string]string{"a b": "v"}}, domain.CodeInvalidArgument},
		{"CreateLongOwner", "session", "create", client.CreateSessionRequest{Owner: strings.Repeat("o", 300)}, domain.CodeInvalidArgument},
		{"GetAtOtherSession", "session", "get", client.GetSessionRequest{Session: id, At: at(otherW.Position)}, domain.CodeNotFound},
		{"GetAtFuture", "session", "get", client.GetSessionRequest{Session: id, At: at(head + 100)}, domain.CodeNotFound},
		{"ReadAtOtherSession", "fs", "read", client.ReadRequest{Session: id, Path: "a.txt", At: at(otherW.Position)}, domain.CodeNotFound},
		{"EventsAtOtherSession", "events", "list", client.EventsRequest{Session: id, At: at(otherW.Position)}, domain.CodeNotFound},
		{"EventsLimitNegative", "events", "list", client.EventsRequest{Session: id, Limit: -1}, domain.CodeInvalidArgument},
		{"EventsLimitHuge", "events", "list", client.EventsRequest{Session: id, Limit: client.MaxEventsLimit + 1}, domain.CodeInvalidArgument},
		{"ManifestLimitNegative", "fs", "manifest", client.ManifestRequest{Session: id, Limit: -1}, domain.CodeInvalidArgument},
		{"ManifestLimitHuge", "fs", "manifest", client.ManifestRequest{Session: id, Limit: client.MaxManifestLimit + 1}, domain.CodeInvalidArgument},
		{"TagNothing", "session", "tag", client.TagRequest{Session: id}, domain.CodeInvalidArgument},
		{"RemoveMissing", "fs", "remove", client.RemoveRequest{Session: id, Path: "nope"}, domain.CodeNotFound},
		{"RemoveNonEmptyDir", "fs", "remove", client.RemoveRequest{Session: id, Path: "dir"}, domain.CodeInvalidArgument},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h.unchanged(t, c.name, func() {
				err := h.c.Request(ctx, c.area, c.verb, c.req, nil)
				wantCode(t, fmt.Sprintf("%s.%s %.200s", c.area, c.verb, asJSON(c.req)), err, c.want)
			})
		})
	}

	t.Run("Batch", func(t *testing.T) {
		batches := []struct {
			name string
			ops  []client.BatchOp
			want domain.Code
		}{
			{"Empty", nil, domain.CodeInvalidArgument},
			{"UnknownOp", []client.BatchOp{{Op: "mkdir", Path: "n1"}, {Op: "chown", Path: "a.txt"}}, domain.CodeInvalidArgument},
			{"LastRemovesMissing", []client.BatchOp{{Op: "write", Path: "n1", Content: []byte("x")}, {Op: "mkdir", Path: "n2"}, {Op: "remove", Path: "nope"}}, domain.CodeNotFound},
			{"SecondStaleHash", []client.BatchOp{{Op: "write", Path: "a.txt", Content: []byte("new")}, {Op: "write", Path: "dir/b.txt", Content: []byte("x"), ExpectedHash: sha("old")}}, domain.CodeConflict},
			{"SeesEarlierOps", []client.BatchOp{{Op: "write", Path: "n1", Content: []byte("x")}, {Op: "mkdir", Path: "n1"}}, domain.CodeAlreadyExists},
			{"RemovedThenRenamed", []client.BatchOp{{Op: "remove", Path: "a.txt"}, {Op: "rename", Path: "a.txt", To: "z"}}, domain.CodeNotFound},
			{"MkdirWithContent", []client.BatchOp{{Op: "mkdir", Path: "n1", Content: []byte("x")}}, domain.CodeInvalidArgument},
			{"BadChunk", []client.BatchOp{{Op: "write", Path: "n1", Content: []byte("x")}, {Op: "write", Path: "n2", Chunks: []string{sha("never uploaded")}}}, domain.CodeNotFound},
			{"TooMany", func() []client.BatchOp {
				ops := make([]client.BatchOp, domain.MaxBatchOps+1)
				for i := range ops {
					ops[i] = client.BatchOp{Op: "mkdir", Path: fmt.Sprintf("m%d", i)}
				}
				return ops
			}(), domain.CodeTooLarge},
		}
		for _, b := range batches {
			h.unchanged(t, "batch "+b.name, func() {
				_, err := h.c.Batch(ctx, client.BatchRequest{Session: id, Ops: b.ops})
				wantCode(t, "batch "+b.name+" "+asJSON(b.ops), err, b.want)
			})
		}
	})

	if after := h.manifest(t, id, ""); !slices.Equal(after, before) {
		t.Errorf("tree changed by refused requests: got %v, want %v", after, before)
	}
	if got := h.read(t, id, "a.txt", ""); got != "hi" {
		t.Errorf("a.txt changed by refused requests: got %q, want hi", got)
	}
}

// TestBadInput_TooLarge checks the request size limits.
func TestBadInput_TooLarge(t *testing.T) {
	t.Parallel()
	h := start(t, harnessOptions{service: handlers.Options{MaxRequestBytes: 1024}})
	ctx := t.Context()
	id := h.session(t)
	h.unchanged(t, "oversized requests", func() {
		big := strings.Repeat("x", 2048)
		for _, ep := range allEndpoints {
			body := `{"pad":"` + big + `"}`
			err := h.c.RequestRaw(ctx, ep.area, ep.verb, []byte(body), nil)
			wantCode(t, fmt.Sprintf("%s with a %d-byte body", ep, len(body)), err, domain.CodeTooLarge)
		}
		_, err := h.c.Write(ctx, client.WriteRequest{Session: id, Path: "a", Content: []byte(big)})
		wantCode(t, "write 2 KiB with MaxRequestBytes 1024", err, domain.CodeTooLarge)
		// Beyond the server's max_payload the client refuses on its own.
		err = h.c.RequestRaw(ctx, "fs", "write", make([]byte, 9<<20), nil)
		wantCode(t, "a 9 MiB body", err, domain.CodeTooLarge)
	})
	// Just under the limit still works.
	if _, err := h.c.Write(ctx, client.WriteRequest{Session: id, Path: "a", Content: []byte("small")}); err != nil {
		t.Errorf("small write: %v", err)
	}
}

// TestBadInput_Timeout runs a service whose requests time out before they
// start: every endpoint answers unavailable at once and stores nothing.
func TestBadInput_Timeout(t *testing.T) {
	t.Parallel()
	h := start(t)
	id := h.session(t)
	h.write(t, id, "a.txt", "hi")
	// Every body below would succeed without the timeout.
	if _, err := h.c.CreateCheckpoint(t.Context(), client.CheckpointRequest{Session: id, Name: "cp"}); err != nil {
		t.Fatalf("checkpoint: %v", err)
	}
	if err := h.svc.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	h.svc = startService(t, t, h.env, h.env.Store, handlers.Options{Timeout: time.Nanosecond})
	h.unchanged(t, "timed-out requests", func() {
		for _, ep := range allEndpoints {
			body := ep.body(id)
			err := h.c.RequestRaw(t.Context(), ep.area, ep.verb, []byte(body), nil)
			wantCode(t, fmt.Sprintf("%s %s with a 1ns timeout", ep, body), err, domain.CodeUnavailable)
		}
	})
}
