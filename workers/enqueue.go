package workers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Enqueue puts a work item on the work stream. A non-empty id makes it
// idempotent within the stream's duplicate window: the same id is stored
// once, and the first item's sequence is returned.
func Enqueue(ctx context.Context, js jetstream.JetStream, subject string, body []byte, id string) (uint64, error) {
	m := nats.NewMsg(subject)
	m.Data = body
	var opts []jetstream.PublishOpt
	if id != "" {
		opts = append(opts, jetstream.WithMsgID(id))
	}
	ack, err := js.PublishMsg(ctx, m, opts...)
	if err != nil {
		return 0, fmt.Errorf("enqueue %s: %w", subject, err)
	}
	return ack.Sequence, nil
}

// Every enqueues an item on subject now and then once per interval until
// ctx ends. The item id names the interval (subject.<n>), so several
// processes scheduling the same job enqueue it once per interval as long
// as they run within the stream's duplicate window of each other.
func Every(ctx context.Context, js jetstream.JetStream, subject string, every time.Duration, body func() []byte, log *slog.Logger) {
	schedule(ctx, js, subject, every, body, log, wallClock{})
}

// clock is the time a schedule reads and waits on.
type clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

// wallClock is the system's clock.
type wallClock struct{}

func (wallClock) Now() time.Time                         { return time.Now() }
func (wallClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// schedule is Every on a clock.
func schedule(ctx context.Context, js jetstream.JetStream, subject string, every time.Duration, body func() []byte, log *slog.Logger, clk clock) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for {
		n := clk.Now().UnixNano() / int64(every)
		_, err := Enqueue(ctx, js, subject, body(), fmt.Sprintf("%s.%d", subject, n))
		switch {
		case err == nil, ctx.Err() != nil:
		case inProcess(err):
			// Another instance is storing this interval's item right now.
			log.Debug("schedule: enqueued by another instance", "subject", subject)
		default:
			log.Warn("schedule", "subject", subject, "err", err)
		}
		next := time.Unix(0, (n+1)*int64(every))
		select {
		case <-ctx.Done():
			return
		case <-clk.After(next.Sub(clk.Now())):
		}
	}
}

// inProcess reports a publish refused because another one with the same
// message id is being stored (10158): the item will be there.
func inProcess(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == 10158
}
