package streams

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/domain"
)

// Riding through failover.
//
// While a stream's leader is being elected (its node was killed or
// restarted, or cut off from the others), JetStream answers its requests
// with no responders, with a 503 API error, or not at all. Every JetStream
// request the store makes on behalf of a caller goes through retry: a
// transient failure is tried again, with jittered exponential backoff and
// each attempt bounded by attemptTimeout (doubled on each of the first
// three retries), until the caller's context ends;
// then the caller gets unavailable (retryable), never internal. Retrying
// is safe: appends carry their expected sequence and message id (a write
// whose answer was lost is found, not stored twice: see Change), blob puts
// are content-addressed and expect an empty subject, and reads change
// nothing.

// attemptTimeout bounds one attempt of a JetStream request, so that a
// request sent to a leader that died without answering is sent again to
// the next one instead of waiting out the caller's deadline.
const attemptTimeout = 2 * time.Second

// JetStream API error codes that mean "not now" rather than "no".
const (
	jsErrTemporarilyUnavailable = 10008 // JetStream system temporarily unavailable
	jsErrClusterNotAssigned     = 10007
	jsErrClusterCannotHandle    = 10009
	jsErrStreamOffline          = 10118
	jsErrStreamOfflineReason    = 10194
	jsErrExpectedLastSeqUnavail = 10163 // expected last sequence per subject temporarily unavailable
)

// JetStream API error codes of a write refused for want of space.
const (
	jsErrAccountResources = 10002 // resource limits exceeded for account
	jsErrInsufficient     = 10023 // insufficient resources
	jsErrStorageResources = 10047 // insufficient storage resources available
	jsErrStoreFailed      = 10077 // the stream's store refused: maximum bytes or messages exceeded, disk errors
)

// full reports whether err is JetStream refusing a write because a stream
// or the account reached its limits, or the disk is full. Such a write
// stored nothing; it succeeds again once space is freed or limits raised.
func full(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	switch apiErr.ErrorCode {
	case jsErrAccountResources, jsErrInsufficient, jsErrStorageResources, jsErrStoreFailed:
		return true
	}
	return false
}

// storageFull is what a caller gets for a write that JetStream refused for
// want of space: unavailable, saying what is full.
func storageFull(what string, err error) error {
	var apiErr *jetstream.APIError
	reason := "no space left"
	if errors.As(err, &apiErr) && apiErr.Description != "" {
		reason = apiErr.Description
	}
	return &domain.Error{Code: domain.CodeUnavailable,
		Message: what + ": the event store refused the write for want of space (" + reason + "); nothing was stored; retry once space is freed or limits are raised",
		Err:     err}
}

// transient reports whether err is a JetStream failure that a leader
// election, a restarting node or a reconnecting connection explains, so
// that the same request may succeed a moment later.
func transient(err error) bool {
	if err == nil {
		return false
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case jsErrTemporarilyUnavailable, jsErrClusterNotAssigned, jsErrClusterCannotHandle,
			jsErrStreamOffline, jsErrStreamOfflineReason, jsErrExpectedLastSeqUnavail:
			return true
		}
		return apiErr.Code == 503 && apiErr.ErrorCode == 0
	}
	return errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, nats.ErrConnectionReconnecting) ||
		errors.Is(err, nats.ErrDisconnected) ||
		errors.Is(err, jetstream.ErrConsumerLeadershipChanged)
}

// RetryAfter is the pause a caller that got unavailable should wait before
// trying again: about one leader election.
const RetryAfter = 2 * time.Second

// unavailable is what a caller gets when JetStream did not answer before
// its context ended.
func unavailable(what string, err error) error {
	return &domain.Error{Code: domain.CodeUnavailable,
		Message:    what + ": the event store did not answer in time (a stream leader is being elected, or the storage is unreachable); retry after " + RetryAfter.String(),
		Err:        err,
		RetryAfter: RetryAfter}
}

// Retry is retry for the composition roots to hand to the projections and
// workers (which may not import this package): op is tried again while its
// failure is transient, each attempt bounded, until ctx ends.
func Retry(ctx context.Context, what string, op func(ctx context.Context) error) error {
	return retry(ctx, what, op)
}

// retry runs op until it succeeds, fails for a reason that is not
// transient, or ctx ends. Each attempt gets a context bounded by
// attemptTimeout. A failure that outlives ctx is unavailable.
func retry(ctx context.Context, what string, op func(ctx context.Context) error) error {
	for attempt := 0; ; attempt++ {
		// Later attempts get longer, so that a machine too loaded to
		// answer within attemptTimeout is still waited for.
		actx, cancel := context.WithTimeout(ctx, attemptTimeout<<min(attempt, 3))
		err := op(actx)
		cancel()
		if full(err) {
			return storageFull(what, err)
		}
		if err == nil || !transient(err) {
			return err
		}
		if ctx.Err() != nil {
			return unavailable(what, err)
		}
		t := time.NewTimer(backoff(attempt, 10*time.Millisecond, 500*time.Millisecond))
		select {
		case <-ctx.Done():
			t.Stop()
			return unavailable(what, err)
		case <-t.C:
		}
	}
}

// streamInfo reads a stream's state with its subjects matching filter,
// through retry: each request bounded and sent again while the failure is
// transient (one sent while no leader answers may never be answered).
func (st *Store) streamInfo(ctx context.Context, name, filter, what string) (jetstream.Stream, *jetstream.StreamInfo, error) {
	var stream jetstream.Stream
	var info *jetstream.StreamInfo
	err := retry(ctx, what, func(ctx context.Context) error {
		var err error
		if stream, err = st.js.Stream(ctx, name); err != nil {
			return err
		}
		info, err = stream.Info(ctx, jetstream.WithSubjectFilter(filter))
		return err
	})
	if err != nil {
		return nil, nil, domain.Wrap(err, what)
	}
	return stream, info, nil
}
