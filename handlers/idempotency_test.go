package handlers_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"testing"

	"github.com/strand-dev/strand/client"
)

// reply is what every mutating reply has in common, plus the whole body to
// compare a retry's answer with the first.
type reply struct {
	Position uint64 `json:"position"`
	Replayed bool   `json:"replayed"`
	raw      map[string]any
}

func (h *harness) mutate(t *testing.T, area, verb string, req any) reply {
	t.Helper()
	var raw json.RawMessage
	if err := h.c.Request(t.Context(), area, verb, req, &raw); err != nil {
		t.Fatalf("%s.%s %s: %v", area, verb, asJSON(req), err)
	}
	var r reply
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("%s.%s: reply %s: %v", area, verb, raw, err)
	}
	if err := json.Unmarshal(raw, &r.raw); err != nil {
		t.Fatalf("%s.%s: reply %s: %v", area, verb, raw, err)
	}
	delete(r.raw, "replayed")
	return r
}

func deletedName(raw map[string]any) map[string]any {
	cp, _ := raw["checkpoint"].(map[string]any)
	return map[string]any{"position": raw["position"], "name": cp["name"]}
}

// TestIdempotency sends every mutation with a request id, then retries it:
// at once, after later changes, and through a fresh service. Each retry
// answers as the first time, with replayed set, and stores nothing.
func TestIdempotency(t *testing.T) {
	t.Parallel()
	h := start(t)
	id := h.session(t)

	type step struct {
		area, verb string
		req        any
	}
	m := func(rid string) client.Mutation { return client.Mutation{RequestID: rid} }
	steps := []step{
		{"session", "tag", client.TagRequest{Mutation: m("tag"), Session: id, Set: map[string]string{"k": "v"}}},
		{"fs", "write", client.WriteRequest{Mutation: m("write"), Session: id, Path: "a.txt", Content: []byte("one")}},
		{"fs", "mkdir", client.MkdirRequest{Mutation: m("mkdir"), Session: id, Path: "d"}},
		{"fs", "symlink", client.SymlinkRequest{Mutation: m("symlink"), Session: id, Path: "l", Target: "a.txt"}},
		{"fs", "rename", client.RenameRequest{Mutation: m("rename"), Session: id, From: "a.txt", To: "d/a.txt"}},
		{"fs", "batch", client.BatchRequest{Mutation: m("batch"), Session: id, Ops: []client.BatchOp{
			{Op: "write", Path: "b.txt", Content: []byte("b")}, {Op: "mkdir", Path: "e"},
		}}},
		{"fs", "remove", client.RemoveRequest{Mutation: m("remove"), Session: id, Path: "e"}},
		// An overwrite with the same content is a new event, so a retry is
		// told apart only by its request id.
		{"fs", "write", client.WriteRequest{Mutation: m("write-again"), Session: id, Path: "b.txt", Content: []byte("b")}},
		{"checkpoint", "create", client.CheckpointRequest{Mutation: m("cp"), Session: id, Name: "cp", Note: "n"}},
		{"checkpoint", "create", client.CheckpointRequest{Mutation: m("cp2"), Session: id, Name: "cp2"}},
		{"checkpoint", "delete", client.CheckpointRequest{Mutation: m("cp2-delete"), Session: id, Name: "cp2"}},
		{"session", "restore", client.RestoreRequest{Mutation: m("restore"), Session: id, To: "cp"}},
		{"session", "fork", client.ForkRequest{Mutation: m("fork"), Session: id, At: "cp"}},
		{"session", "create", client.CreateSessionRequest{Mutation: m("create"), Tags: map[string]string{"x": "y"}}},
	}
	firsts := make([]reply, len(steps))
	retry := func(t *testing.T, what string, i int) {
		t.Helper()
		s := steps[i]
		h.unchanged(t, fmt.Sprintf("%s retry of %s.%s", what, s.area, s.verb), func() {
			r := h.mutate(t, s.area, s.verb, s.req)
			if !r.Replayed || r.Position != firsts[i].Position {
				t.Errorf("%s retry of %s.%s %s: got position %d replayed %v, want %d replayed", what, s.area, s.verb, asJSON(s.req), r.Position, r.Replayed, firsts[i].Position)
			}
			got, want := r.raw, firsts[i].raw
			if s.area == "checkpoint" && s.verb == "delete" {
				// The state after a delete no longer holds the checkpoint
				// and the event records only its name: a retry answers
				// with the name.
				got, want = deletedName(got), deletedName(want)
			}
			if !maps.EqualFunc(got, want, func(a, b any) bool { return asJSON(a) == asJSON(b) }) {
				t.Errorf("%s retry of %s.%s: answered\n%s\nwant the first answer\n%s", what, s.area, s.verb, asJSON(r.raw), asJSON(firsts[i].raw))
			}
		})
	}
	for i, s := range steps {
		r := h.mutate(t, s.area, s.verb, s.req)
		h.wantHead(t, s.area+"."+s.verb, r.Position)
		if r.Replayed {
			t.Errorf("%s.%s first attempt: replayed, want not", s.area, s.verb)
		}
		firsts[i] = r
		retry(t, "immediate", i)
	}
	for i := range steps {
		retry(t, "later", i)
	}
	h.restart(t)
	for i := range steps {
		retry(t, "fresh service", i)
	}

	t.Run("CreateReturnsTheSameSession", func(t *testing.T) {
		req := client.CreateSessionRequest{Mutation: m("create-once"), Owner: "erin"}
		first, err := h.c.CreateSession(t.Context(), req)
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		for range 3 {
			h.unchanged(t, "create retry", func() {
				again, err := h.c.CreateSession(t.Context(), req)
				if err != nil {
					t.Fatalf("create retry: %v", err)
				}
				if again.Session.ID != first.Session.ID || again.Position != first.Position || !again.Replayed {
					t.Errorf("create retry: got session %s at %d replayed %v, want %s at %d replayed", again.Session.ID, again.Position, again.Replayed, first.Session.ID, first.Position)
				}
			})
		}
		// Another tenant's request ids are its own.
		other, err := h.client("other").CreateSession(t.Context(), req)
		if err != nil {
			t.Fatalf("create for other: %v", err)
		}
		if other.Session.ID == first.Session.ID || other.Replayed {
			t.Errorf("other tenant with the same request id: got %s replayed %v, want a new session", other.Session.ID, other.Replayed)
		}
	})

	t.Run("AfterArchiveAndDelete", func(t *testing.T) {
		// A retry of a write that was applied before the session stopped
		// taking writes is answered from history, not refused.
		id := h.session(t)
		retried := []step{
			{"fs", "write", client.WriteRequest{Mutation: m("w"), Session: id, Path: "a.txt", Content: []byte("a")}},
			{"fs", "batch", client.BatchRequest{Mutation: m("b"), Session: id, Ops: []client.BatchOp{{Op: "write", Path: "b.txt", Content: []byte("b")}}}},
			{"fs", "mkdir", client.MkdirRequest{Mutation: m("d"), Session: id, Path: "d"}},
			{"session", "tag", client.TagRequest{Mutation: m("t"), Session: id, Set: map[string]string{"k": "v"}}},
		}
		first := make([]reply, len(retried))
		for i, s := range retried {
			first[i] = h.mutate(t, s.area, s.verb, s.req)
		}
		for _, end := range []string{"archive", "delete"} {
			if err := h.c.Request(t.Context(), "session", end, client.SessionRequest{Session: id}, nil); err != nil {
				t.Fatalf("%s: %v", end, err)
			}
			for i, s := range retried {
				h.unchanged(t, "retry after "+end, func() {
					r := h.mutate(t, s.area, s.verb, s.req)
					if !r.Replayed || r.Position != first[i].Position {
						t.Errorf("retry of %s.%s after %s: got position %d replayed %v, want %d replayed", s.area, s.verb, end, r.Position, r.Replayed, first[i].Position)
					}
				})
			}
		}
	})

	t.Run("SameIDOtherSession", func(t *testing.T) {
		// Request ids are scoped to the session they change.
		other := h.session(t)
		r := h.mutate(t, "fs", "write", client.WriteRequest{Mutation: m("write"), Session: other, Path: "a.txt", Content: []byte("x")})
		if r.Replayed {
			t.Errorf("write to %s with request id already used on %s: replayed, want applied", other, id)
		}
		h.wantHead(t, "write", r.Position)
	})
}
