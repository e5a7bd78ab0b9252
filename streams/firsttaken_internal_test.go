package streams

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
)

// TestAppendFirst_AnswerLost: the first event of a session stored by an
// attempt whose answer was lost, with JetStream's duplicate window no help
// (a restarted server's), is found by the next attempt: the same event is
// this request's own, an event with the same request id a retry's first
// attempt; another session's event is already_exists.
func TestAppendFirst_AnswerLost(t *testing.T) {
	env := startEnv(t)
	ctx := context.Background()
	st := env.open(t)
	at := time.Unix(1700000000, 0).UTC()
	newEvent := func(eventID, requestID string) (*domain.Event, *domain.Session, []byte, domain.Meta) {
		meta := domain.Meta{EventID: eventID, RequestID: requestID, Actor: "t", Time: at}
		ev, next, err := domain.Execute(nil, domain.CreateSession{ID: "01J0000000000000000000000S", Tenant: "acme"}, meta, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, err := ev.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return ev, next, body, meta
	}
	ev, next, body, meta := newEvent("01J00000000000000000000001", "r1")
	// The first attempt, stored without its message id: as if the server
	// forgot it.
	ack, err := st.js.PublishMsg(ctx, eventMsg(ev, body), jetstream.WithExpectLastSequencePerSubject(0))
	if err != nil {
		t.Fatal(err)
	}
	res, err := st.appendFirst(ctx, ev, next, meta)
	if err != nil || res.Position != ack.Sequence || res.Replayed {
		t.Fatalf("the same event again: %+v, %v; want position %d, not replayed", res, err, ack.Sequence)
	}
	ev2, next2, _, meta2 := newEvent("01J00000000000000000000002", "r1")
	res, err = st.appendFirst(ctx, ev2, next2, meta2)
	if err != nil || res.Position != ack.Sequence || !res.Replayed {
		t.Fatalf("a retry with the same request id: %+v, %v; want position %d, replayed", res, err, ack.Sequence)
	}
	ev3, next3, _, meta3 := newEvent("01J00000000000000000000003", "r2")
	if _, err := st.appendFirst(ctx, ev3, next3, meta3); domain.ErrorCode(err) != domain.CodeAlreadyExists {
		t.Fatalf("another request for the same session id: %v, want already_exists", err)
	}
	if info, err := st.events.Info(ctx, jetstream.WithSubjectFilter(names.EventSubject("acme", ev.Session))); err != nil || info.State.Msgs != 1 {
		t.Fatalf("events stored: %v, %v; want 1", info, err)
	}
}
