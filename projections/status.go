package projections

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/names"
)

// Status is a projection's position and lag, read from its consumer.
type Status struct {
	Name       string `json:"name"`
	Stream     string `json:"stream"`
	Consumer   string `json:"consumer"`
	Filter     string `json:"filter"`
	Generation uint64 `json:"generation"`
	// State is running, resetting or rebuilding.
	State string `json:"state"`
	// Position is the consumer's ack floor: every event at or below it is
	// applied.
	Position uint64 `json:"position"`
	// Delivered is the stream sequence of the last event handed out.
	Delivered uint64 `json:"delivered"`
	// Pending counts matching events not handed out yet.
	Pending uint64 `json:"pending"`
	// AckPending counts events handed out and not yet applied.
	AckPending  int `json:"ack_pending"`
	Redelivered int `json:"redelivered"`
	// Waiting counts pull requests waiting at the server: one while a
	// batch projection is idle, mostly none while events keep coming (it
	// takes them in a pull every 10 ms, paced.go).
	Waiting int `json:"waiting"`
	// Holder is the instance that folds a batch projection (its lease's
	// holder: host, process id and a unique suffix), and Renewed when it
	// last renewed the lease (every second while it folds); empty when no
	// instance holds it.
	Holder  string    `json:"holder,omitempty"`
	Renewed time.Time `json:"renewed,omitzero"`
	// Lag is Pending + AckPending: events still to fold.
	Lag uint64 `json:"lag"`
	// StreamLast is the event stream's last sequence.
	StreamLast uint64 `json:"stream_last"`
	// RebuildTarget is where a rebuild counts as caught up.
	RebuildTarget uint64    `json:"rebuild_target,omitempty"`
	Since         time.Time `json:"since,omitzero"`
	Error         string    `json:"error,omitempty"`
}

// CaughtUp reports whether a rebuild has applied every event that existed
// when it started.
func (s Status) CaughtUp() bool {
	return s.Error == "" && (s.Position >= s.RebuildTarget || (s.Pending == 0 && s.AckPending == 0))
}

// StatusOf reads a projection's status from its control record and its
// consumer; it needs no running instance.
func StatusOf(ctx context.Context, js jetstream.JetStream, stream string, spec Spec) (Status, error) {
	st := Status{Name: spec.Name, Stream: stream, Filter: spec.Filter, State: StateRunning}
	if kv, err := js.KeyValue(ctx, names.ControlBucket); err == nil {
		c, _, err := readControl(ctx, kv, controlKey(stream, spec.Name))
		if err != nil {
			return st, err
		}
		st.Generation, st.State, st.RebuildTarget, st.Since = c.Gen, c.State, c.Target, c.Since
		if spec.ApplyBatch != nil {
			switch e, err := kv.Get(ctx, leaseKey(stream, spec.Name)); {
			case err == nil:
				st.Holder, st.Renewed = string(e.Value()), e.Created()
			case !errors.Is(err, jetstream.ErrKeyNotFound):
				return st, fmt.Errorf("read the lease of %s: %w", spec.Name, err)
			}
		}
	} else if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return st, fmt.Errorf("open %s: %w", names.ControlBucket, err)
	}
	st.Consumer = spec.consumerName(st.Generation)
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return st, fmt.Errorf("stream %s: %w", stream, err)
	}
	st.StreamLast = s.CachedInfo().State.LastSeq
	cons, err := js.Consumer(ctx, stream, st.Consumer)
	if legacy := durableName(spec.Durable, st.Generation); errors.Is(err, jetstream.ErrConsumerNotFound) && legacy != st.Consumer {
		// No instance of this version has run it yet: the consumer of the
		// version before (one acknowledgement per event) says where it is.
		if c, lerr := js.Consumer(ctx, stream, legacy); lerr == nil {
			st.Consumer, cons, err = legacy, c, nil
		}
	}
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		st.Error = "consumer not found"
		st.Lag = st.StreamLast
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("consumer %s: %w", st.Consumer, err)
	}
	info := cons.CachedInfo()
	st.Position = info.AckFloor.Stream
	st.Delivered = info.Delivered.Stream
	st.Pending = info.NumPending
	st.AckPending = info.NumAckPending
	st.Redelivered = info.NumRedelivered
	st.Waiting = info.NumWaiting
	st.Lag = info.NumPending + uint64(info.NumAckPending)
	return st, nil
}
