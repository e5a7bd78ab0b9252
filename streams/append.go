package streams

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
)

// errConflict means another writer extended the subject first.
var errConflict = errors.New("append conflict")

// errInFlight is the conflict of a replicated stream whose leader refuses an
// expectation on a subject while another write to it is still being stored
// (10164): that write is not visible yet, so a writer should wait a moment
// before it reads the head again.
var errInFlight = fmt.Errorf("%w: another write to the subject is in flight", errConflict)

// isConflict reports whether err is JetStream's wrong-last-sequence, told by
// its error code: 10071 on one server, 10164 while another write to the same
// subject is in flight on a replicated stream.
func isConflict(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode == jsErrWrongLastSequence || apiErr.ErrorCode == jsErrWrongLastSequenceWait
	}
	return false
}

func isInFlight(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jsErrWrongLastSequenceWait
}

func isDuplicateInProcess(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jsErrDuplicateInProcess
}

// appendResult is what an append stored.
type appendResult struct {
	Sequence  uint64
	Duplicate bool
}

// appendMsg publishes one event message with the subject's expected last
// sequence and a message id. It returns errConflict when another writer got
// there first.
func appendMsg(ctx context.Context, js jetstream.JetStream, m *nats.Msg, expected uint64, msgID string) (appendResult, error) {
	return publishExpecting(ctx, js, names.EventStream, "append event", m, expected, msgID)
}

// publishExpecting publishes m to stream with its subject's expected last
// sequence and (unless "") a message id, sent again while the failure is
// transient. It returns errConflict when another writer got there first,
// errInFlight when another write to the subject is still being stored.
func publishExpecting(ctx context.Context, js jetstream.JetStream, stream, what string, m *nats.Msg, expected uint64, msgID string) (appendResult, error) {
	opts := []jetstream.PublishOpt{jetstream.WithExpectLastSequencePerSubject(expected), jetstream.WithExpectStream(stream)}
	if msgID != "" {
		opts = append(opts, jetstream.WithMsgID(msgID))
	}
	var wait flightWait
	for {
		var ack *jetstream.PubAck
		err := retry(ctx, what, func(ctx context.Context) error {
			var err error
			ack, err = js.PublishMsg(ctx, m, opts...)
			return err
		})
		switch {
		case err == nil:
			return appendResult{Sequence: ack.Sequence, Duplicate: ack.Duplicate}, nil
		case isInFlight(err):
			return appendResult{}, errInFlight
		case isConflict(err):
			return appendResult{}, errConflict
		case isDuplicateInProcess(err):
			// The same message id is being stored right now, on a
			// replicated stream: a retry racing its original, or this very
			// publish sent again because its answer was late (a slow
			// quorum). Wait for it as for any write in flight, then ask
			// again: the answer is then the duplicate's. Past the wait the
			// outcome is unknown, which a retry with the same request id
			// settles.
			if wait.over() {
				return appendResult{}, unavailable(what, err)
			}
			if err := wait.pause(ctx); err != nil {
				return appendResult{}, unavailable(what, err)
			}
			continue
		case domain.ErrorCode(err) == domain.CodeUnavailable:
			return appendResult{}, err
		default:
			return appendResult{}, fmt.Errorf("publish %s: %w", m.Subject, err)
		}
	}
}

// inFlightWait bounds how long, in all, a command waits for another write to
// its subject that a replicated stream's leader is still storing (it refuses
// an expectation on the subject meanwhile, and a second publish of the same
// message id). That write has won nothing yet, so the wait is not a lost
// race: under load, or while a quorum is slow, storing one write can outlast
// every pause of maxAttempts together (about a quarter of a second), and a
// writer with no one else to race would be told the session "is changing
// too fast". The caller's deadline still applies.
const inFlightWait = 10 * time.Second

// flightWait paces a command's waits for a write in flight: up to 32 ms
// each (with jitter), inFlightWait in all from the first.
type flightWait struct {
	until time.Time
	waits int
}

// pause waits before the command looks again.
func (w *flightWait) pause(ctx context.Context) error {
	if w.until.IsZero() {
		w.until = time.Now().Add(inFlightWait)
	}
	w.waits++
	return conflictPause(ctx, min(w.waits-1, 5))
}

// over reports whether the waits took inFlightWait already.
func (w *flightWait) over() bool { return !w.until.IsZero() && time.Now().After(w.until) }

// givesBack reports whether an attempt refused in flight is not counted
// among a command's lost races: the head it read again has not moved, so
// the other write is still being stored, and the wait is not over.
func (w *flightWait) givesBack(moved bool) bool { return !moved && !w.over() }
