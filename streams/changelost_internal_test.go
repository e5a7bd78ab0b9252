package streams

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
)

// TestChange_AnswerLostOthersAfter: a change without a request id whose
// first attempt was stored but not answered (a publish the store's retry
// sent again across a leader's death), after which another writer
// appended to the session. Its next attempt finds the subject moved on,
// and the head is the other writer's event: the change must find its own
// event right after the position it expected and answer with it, not
// decide and store the command a second time (as TestFault_ClusterNodeKilled
// once saw: an unanswered write stored twice). With group commit and
// without.
func TestChange_AnswerLostOthersAfter(t *testing.T) {
	env := startEnv(t)
	ctx := context.Background()
	at := time.Unix(1700000000, 0).UTC()
	for i, groupCommit := range []bool{true, false} {
		name := map[bool]string{true: "GroupCommit", false: "OneByOne"}[groupCommit]
		t.Run(name, func(t *testing.T) {
			st := env.open(t)
			if !groupCommit {
				st.commit = nil
			}
			session := []string{"01J00000000000000000000SG0", "01J00000000000000000000SG1"}[i]
			meta := func(n int) domain.Meta {
				return domain.Meta{EventID: session[:24] + string(rune('A'+n)) + "0", Actor: "t", Time: at.Add(time.Duration(n) * time.Second)}
			}
			if _, err := st.Create(ctx, meta(0), domain.CreateSession{ID: session, Tenant: "acme"}); err != nil {
				t.Fatal(err)
			}
			write := func(path string) domain.Command {
				return domain.ChangeFiles{Ops: []domain.FileOp{{Kind: domain.OpWrite, Path: path, Content: domain.Sum([]byte(path)), Size: int64(len(path))}}}
			}
			publish := func(s *domain.Session, cmd domain.Command, m domain.Meta) (*domain.Session, uint64) {
				ev, next, err := domain.Execute(s, cmd, m, nil)
				if err != nil {
					t.Fatal(err)
				}
				body, err := ev.Encode()
				if err != nil {
					t.Fatal(err)
				}
				ack, err := st.js.PublishMsg(ctx, eventMsg(ev, body), jetstream.WithExpectLastSequencePerSubject(s.Position))
				if err != nil {
					t.Fatal(err)
				}
				next.Commit(ev, ack.Sequence, domain.Sum(body))
				return next, ack.Sequence
			}
			var ours, theirs uint64
			calls := 0
			res, err := st.Change(ctx, "acme", session, meta(1), func(s *domain.Session) (domain.Command, error) {
				calls++
				if calls == 1 {
					// The first attempt is stored and its answer lost;
					// another writer appends before the next attempt.
					var after *domain.Session
					after, ours = publish(s, write("ours.txt"), meta(1))
					_, theirs = publish(after, write("theirs.txt"), meta(2))
				}
				return write("ours.txt"), nil
			})
			if err != nil || res.Position != ours {
				t.Fatalf("change whose answer was lost: position %d, %v; want %d (theirs at %d)", res.Position, err, ours, theirs)
			}
			if calls != 1 {
				t.Errorf("decided %d times, want once", calls)
			}
			if res.Session.Position != ours || res.Session.Tree.Lookup("ours.txt") == nil || res.Session.Tree.Lookup("theirs.txt") != nil {
				t.Errorf("the state answered: position %d, want the state right after its own event at %d", res.Session.Position, ours)
			}
			subject := names.EventSubject("acme", session)
			info, err := st.events.Info(ctx, jetstream.WithSubjectFilter(subject))
			if err != nil || info.State.Subjects[subject] != 3 {
				t.Fatalf("events stored: %v, %v; want 3 (created, ours, theirs)", info.State.Subjects[subject], err)
			}
			// A change that really lost the race still decides again.
			res, err = st.Change(ctx, "acme", session, meta(3), func(*domain.Session) (domain.Command, error) { return write("later.txt"), nil })
			if err != nil || res.Position <= theirs {
				t.Fatalf("a later change: position %d, %v; want after %d", res.Position, err, theirs)
			}
		})
	}
}
