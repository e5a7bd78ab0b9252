package handlers_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/streams"
)

// TestIdempotency_Window applies thousands of requests with their own ids,
// interleaved on two sessions and with every kind of precondition, plus
// creates, forks and source requests; then restarts the service and retries
// every one of them in a random order. Each retry is answered as the first
// time (replayed, the original position), however many requests the
// session took since and whatever its preconditions say about the state
// now, and nothing is stored. JetStream's own duplicate window is a tenth
// of a second here, so the answers come from the request index.
func TestIdempotency_Window(t *testing.T) {
	t.Parallel()
	h := start(t, harnessOptions{store: streams.Config{DuplicateWindow: 100 * time.Millisecond, SnapshotEvery: 20}})
	ctx := t.Context()
	sessions := []string{h.session(t), h.session(t)}
	heads := map[string]uint64{}
	positions := map[string][]uint64{}
	hashes := map[string]string{}

	type sent struct {
		area, verb string
		req        any
		position   uint64
		session    string // what a create or fork made
	}
	var all []sent
	const writes = 1200
	for i := range writes {
		id := sessions[i%2]
		path := fmt.Sprintf("f%d.txt", i%7)
		req := client.WriteRequest{Mutation: client.Mutation{RequestID: fmt.Sprintf("w%d", i)}, Session: id, Path: path, Content: fmt.Appendf(nil, "v%d", i)}
		switch i % 3 {
		case 0:
			req.ExpectedPosition = heads[id]
		case 1:
			req.ExpectedHash = hashes[id+path]
		}
		r, err := h.c.Write(ctx, req)
		if err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		heads[id], hashes[id+path] = r.Position, r.Hash
		positions[id] = append(positions[id], r.Position)
		all = append(all, sent{area: "fs", verb: "write", req: req, position: r.Position})
	}
	for i := range 20 {
		m := client.Mutation{RequestID: fmt.Sprintf("c%d", i)}
		c, err := h.c.CreateSession(ctx, client.CreateSessionRequest{Mutation: m})
		if err != nil {
			t.Fatalf("create %d: %v", i, err)
		}
		all = append(all, sent{area: "session", verb: "create", req: client.CreateSessionRequest{Mutation: m}, position: c.Position, session: c.Session.ID})
		fm := client.Mutation{RequestID: fmt.Sprintf("k%d", i)}
		freq := client.ForkRequest{Mutation: fm, Session: sessions[i%2], At: client.At(fmt.Sprint(positions[sessions[i%2]][i*25]))}
		f, err := h.c.Fork(ctx, freq)
		if err != nil {
			t.Fatalf("fork %d: %v", i, err)
		}
		all = append(all, sent{area: "session", verb: "fork", req: freq, position: f.Position, session: f.Session.ID})
	}
	for i := range 5 {
		name := fmt.Sprintf("src%d", i)
		for _, verb := range []string{"create", "delete"} {
			var req any = client.SourceRequest{Mutation: client.Mutation{RequestID: verb + name}, Name: name}
			if verb == "create" {
				req = client.SourceCreateRequest{Mutation: client.Mutation{RequestID: verb + name}, Name: name}
			}
			var r client.SourceReply
			if err := h.c.Request(ctx, "source", verb, req, &r); err != nil {
				t.Fatalf("source.%s %s: %v", verb, name, err)
			}
			all = append(all, sent{area: "source", verb: verb, req: req})
		}
	}
	h.env.WaitRequestIndex(t)
	h.restart(t)

	rand.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	h.unchanged(t, "every retry", func() {
		for _, s := range all {
			switch s.area {
			case "fs":
				var r client.ChangeReply
				if err := h.c.Request(ctx, s.area, s.verb, s.req, &r); err != nil {
					t.Fatalf("retry of %s: %v", asJSON(s.req), err)
				}
				if !r.Replayed || r.Position != s.position {
					t.Fatalf("retry of %s: got position %d replayed %v, want %d replayed", asJSON(s.req), r.Position, r.Replayed, s.position)
				}
			case "session":
				var r client.SessionReply
				if err := h.c.Request(ctx, s.area, s.verb, s.req, &r); err != nil {
					t.Fatalf("retry of session.%s %s: %v", s.verb, asJSON(s.req), err)
				}
				if !r.Replayed || r.Position != s.position || r.Session.ID != s.session {
					t.Fatalf("retry of session.%s %s: got %s at %d replayed %v, want %s at %d replayed", s.verb, asJSON(s.req), r.Session.ID, r.Position, r.Replayed, s.session, s.position)
				}
			case "source":
				var r client.SourceReply
				if err := h.c.Request(ctx, s.area, s.verb, s.req, &r); err != nil {
					t.Fatalf("retry of source.%s %s: %v", s.verb, asJSON(s.req), err)
				}
				if !r.Replayed {
					t.Fatalf("retry of source.%s %s: not replayed", s.verb, asJSON(s.req))
				}
			}
		}
	})

	t.Run("NewIDStillChecked", func(t *testing.T) {
		// A request with a new id and the stale expectation is refused.
		_, err := h.c.Write(ctx, client.WriteRequest{Mutation: client.Mutation{RequestID: "fresh", ExpectedPosition: heads[sessions[0]] - 1}, Session: sessions[0], Path: "x", Content: []byte("x")})
		wantCode(t, "write with a new id and a stale position", err, domain.CodeConflict)
	})
}
