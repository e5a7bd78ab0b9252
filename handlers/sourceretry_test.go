package handlers_test

import (
	"context"
	"maps"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
	"github.com/strand-dev/strand/streams"
)

// TestSource_Retry applies source requests with request ids, changes the
// sources further (revisions, a delete), then retries each one, at once
// and through a fresh service: every retry is answered replayed with the
// first answer (the source as that request left it, not as it is now) and
// stores nothing. JetStream's duplicate window is a tenth of a second, so
// the answers come from the sources' own histories.
func TestSource_Retry(t *testing.T) {
	t.Parallel()
	h := start(t, harnessOptions{store: streams.Config{DuplicateWindow: 100 * time.Millisecond}})
	id := h.session(t)
	h.write(t, id, "a.txt", "one")
	m := func(rid string) client.Mutation { return client.Mutation{RequestID: rid} }
	type step struct {
		verb string
		req  any
	}
	steps := []step{
		{"create", client.SourceCreateRequest{Mutation: m("c1"), Name: "base", Blank: true, Description: "d"}},
		{"promote", client.PromoteRequest{Mutation: m("p1"), Name: "base", Session: id}},
		{"create", client.SourceCreateRequest{Mutation: m("c2"), Name: "gone"}},
		{"promote", client.PromoteRequest{Mutation: m("p2"), Name: "gone", Session: id}},
		{"delete", client.SourceRequest{Mutation: m("d1"), Name: "gone"}},
	}
	firsts := make([]reply, len(steps))
	for i, s := range steps {
		firsts[i] = h.mutate(t, "source", s.verb, s.req)
		if firsts[i].Replayed {
			t.Fatalf("source.%s %s first attempt: replayed", s.verb, asJSON(s.req))
		}
	}
	// Later changes: the state a retry must not answer with.
	h.write(t, id, "a.txt", "two")
	if _, err := h.c.Promote(t.Context(), client.PromoteRequest{Name: "base", Session: id}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.c.DeleteSource(t.Context(), client.SourceRequest{Mutation: m("d2"), Name: "base"}); err != nil {
		t.Fatal(err)
	}
	retry := func(what string) {
		t.Helper()
		before := sourceLastSeq(t, h)
		for i, s := range steps {
			r := h.mutate(t, "source", s.verb, s.req)
			if !r.Replayed {
				t.Errorf("%s retry of source.%s %s: not replayed", what, s.verb, asJSON(s.req))
			}
			if !maps.EqualFunc(r.raw, firsts[i].raw, func(a, b any) bool { return asJSON(a) == asJSON(b) }) {
				t.Errorf("%s retry of source.%s: answered\n%s\nwant the first answer\n%s", what, s.verb, asJSON(r.raw), asJSON(firsts[i].raw))
			}
		}
		if after := sourceLastSeq(t, h); after != before {
			t.Errorf("%s retries: source stream's last sequence %d -> %d, want unchanged", what, before, after)
		}
	}
	retry("later")
	h.restart(t)
	retry("fresh service")

	t.Run("ReusedForAnotherKind", func(t *testing.T) {
		if _, err := h.c.CreateSource(t.Context(), client.SourceCreateRequest{Mutation: m("x1"), Name: "reuse"}); err != nil {
			t.Fatal(err)
		}
		_, err := h.c.DeleteSource(t.Context(), client.SourceRequest{Mutation: m("x1"), Name: "reuse"})
		wantCode(t, "delete with the create's request id", err, domain.CodeConflict)
	})
}

// sourceLastSeq is the source stream's last sequence.
func sourceLastSeq(t *testing.T, h *harness) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	js, err := jetstream.New(h.env.NC)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, names.SourceStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.LastSeq
}
