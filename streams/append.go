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
	opts := []jetstream.PublishOpt{jetstream.WithExpectLastSequencePerSubject(expected), jetstream.WithExpectStream(names.EventStream)}
	if msgID != "" {
		opts = append(opts, jetstream.WithMsgID(msgID))
	}
	for attempt := 0; ; attempt++ {
		var ack *jetstream.PubAck
		err := retry(ctx, "append event", func(ctx context.Context) error {
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
		case isDuplicateInProcess(err) && attempt < 50:
			// The same message id is being stored right now (a retry racing
			// its original on a replicated stream): wait, then ask again.
			select {
			case <-ctx.Done():
				return appendResult{}, ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
			continue
		case domain.ErrorCode(err) == domain.CodeUnavailable:
			return appendResult{}, err
		default:
			return appendResult{}, fmt.Errorf("publish %s: %w", m.Subject, err)
		}
	}
}
