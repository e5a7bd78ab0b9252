package streams

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
)

// TestSource_AnswerLost: a source event stored by an attempt whose answer
// was lost (the store's retry sends it again and finds the subject moved
// on; JetStream's duplicate window no help, as after a restart) is this
// request's own, answered as the first time: no already_exists for a
// create, no second revision for a change, even when another writer
// appended after it. A client's retry with the same request id is answered
// replayed, with the source as the first attempt left it.
func TestSource_AnswerLost(t *testing.T) {
	env := startEnv(t)
	ctx := context.Background()
	st := env.open(t)
	at := time.Unix(1700000000, 0).UTC()
	// publish stores an event as an earlier attempt would have.
	publish := func(e *domain.SourceEvent, expected uint64, withID bool) uint64 {
		t.Helper()
		body, err := encodeSourceEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		opts := []jetstream.PublishOpt{jetstream.WithExpectLastSequencePerSubject(expected)}
		if withID && e.RequestID != "" {
			opts = append(opts, jetstream.WithMsgID(sourceMsgID(e.Tenant, e.Source, e.RequestID)))
		}
		ack, err := st.js.PublishMsg(ctx, &nats.Msg{Subject: names.SourceSubject(e.Tenant, e.Source), Data: body}, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return ack.Sequence
	}
	revision := func(name, rid string, n uint64, tm time.Time) *domain.SourceEvent {
		return &domain.SourceEvent{Type: domain.RevisionAdded, Tenant: "acme", Source: name, Actor: "t", Time: tm.UnixNano(), RequestID: rid,
			Revision: &domain.Revision{Number: n, Root: domain.Tree{}.Hash().Bytes(), Tree: domain.Tree{}.Hash().Bytes(), Origin: domain.RevisionOrigin{Kind: domain.OriginBlank}}}
	}
	count := func(name string) uint64 {
		t.Helper()
		stream, err := st.js.Stream(ctx, names.SourceStream)
		if err != nil {
			t.Fatal(err)
		}
		subj := names.SourceSubject("acme", name)
		info, err := stream.Info(ctx, jetstream.WithSubjectFilter(subj))
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Subjects[subj]
	}

	t.Run("Create", func(t *testing.T) {
		e := domain.SourceEvent{Type: domain.SourceCreated, Tenant: "acme", Source: "made", Actor: "t", Time: at.UnixNano()}
		seq := publish(&e, 0, false)
		res, err := st.CreateSource(ctx, e)
		if err != nil || res.Sequence != seq || res.Replayed || res.Source.Name != "made" {
			t.Fatalf("the same create again: %+v, %v; want sequence %d, not replayed", res, err, seq)
		}
		withID := domain.SourceEvent{Type: domain.SourceCreated, Tenant: "acme", Source: "named", Actor: "t", Time: at.UnixNano(), RequestID: "c1"}
		seq = publish(&withID, 0, false)
		publish(revision("named", "other", 1, at), seq, false)
		retried := withID
		retried.Time = at.Add(time.Second).UnixNano()
		res, err = st.CreateSource(ctx, retried)
		if err != nil || res.Sequence != seq || !res.Replayed || len(res.Source.Revisions) != 0 {
			t.Fatalf("a retry with the same request id after a revision: %+v, %v; want sequence %d, replayed, no revision", res, err, seq)
		}
		another := withID
		another.RequestID = "c2"
		if _, err := st.CreateSource(ctx, another); domain.ErrorCode(err) != domain.CodeAlreadyExists {
			t.Fatalf("another request for the same name: %v, want already_exists", err)
		}
		if n := count("named"); n != 2 {
			t.Fatalf("events stored: %d, want 2", n)
		}
	})

	for _, c := range []struct {
		name, rid string
		withID    bool
	}{{"NoRequestID", "", false}, {"RequestID", "r1", false}, {"RequestIDRemembered", "r1", true}} {
		t.Run("Change/"+c.name, func(t *testing.T) {
			name := "change-" + c.name
			if _, err := st.CreateSource(ctx, domain.SourceEvent{Tenant: "acme", Source: name, Time: at.UnixNano()}); err != nil {
				t.Fatal(err)
			}
			var ours uint64
			calls := 0
			decide := func(s *domain.Source) (*domain.SourceEvent, error) {
				calls++
				e := revision(name, c.rid, uint64(len(s.Revisions))+1, at)
				if calls == 1 {
					// The first attempt is stored and its answer lost;
					// another writer appends before the retry.
					ours = publish(e, s.Sequence, c.withID)
					publish(revision(name, "", e.Revision.Number+1, at.Add(time.Second)), ours, false)
				}
				return e, nil
			}
			res, err := st.ChangeSource(ctx, "acme", name, c.rid, decide)
			if err != nil || res.Sequence != ours || res.Replayed || len(res.Source.Revisions) != 1 {
				t.Fatalf("change whose answer was lost: %+v, %v; want sequence %d, not replayed, the source with 1 revision", res, err, ours)
			}
			if calls != 1 {
				t.Fatalf("decided %d times, want once", calls)
			}
			if n := count(name); n != 3 {
				t.Fatalf("events stored: %d, want 3 (created, ours, the other writer's)", n)
			}
			if c.rid == "" {
				return
			}
			plain := func(s *domain.Source) (*domain.SourceEvent, error) {
				return revision(name, c.rid, uint64(len(s.Revisions))+1, at.Add(time.Hour)), nil
			}
			res, err = st.ChangeSource(ctx, "acme", name, c.rid, plain)
			if err != nil || res.Sequence != ours || !res.Replayed || len(res.Source.Revisions) != 1 {
				t.Fatalf("a client's retry: %+v, %v; want sequence %d, replayed, the source with 1 revision", res, err, ours)
			}
			del := func(s *domain.Source) (*domain.SourceEvent, error) {
				return &domain.SourceEvent{Type: domain.SourceDeleted, Tenant: "acme", Source: name, Time: at.UnixNano(), RequestID: c.rid}, nil
			}
			if _, err := st.ChangeSource(ctx, "acme", name, c.rid, del); domain.ErrorCode(err) != domain.CodeConflict {
				t.Fatalf("the request id reused for a delete: %v, want conflict", err)
			}
			if n := count(name); n != 3 {
				t.Fatalf("events stored after the retries: %d, want 3", n)
			}
		})
	}
}
