package projections

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/names"
)

// Rebuild folds a projection again from sequence 1 into a new generation,
// with any number of instances running it:
//
//  1. the control record moves to generation g+1, state resetting: no
//     instance joins until step 4;
//  2. the consumer of generation g is deleted, so every instance stops
//     folding into g and goes back to the control record;
//  3. Reset clears what the new generation cannot overwrite (a feed
//     stream, work items);
//  4. the consumer of g+1 is created at sequence 1, state rebuilding, and
//     the instances join it;
//  5. once its ack floor passes the stream's last sequence of step 1,
//     Sweep removes entries no event of g+1 rewrote, and the state is
//     running again.
//
// Entries carry the generation that wrote them: an apply treats an older
// generation's entry as absent and refuses to overwrite a newer one, so a
// stale instance that is still applying an event of g when step 1 happens
// cannot spoil g+1. Reads stay available during the rebuild and see entries
// of either generation.
//
// Rebuild returns after step 4 unless wait is set; then it waits for step 5
// (or ctx) and calls progress now and then.
func Rebuild(ctx context.Context, js jetstream.JetStream, stream string, replicas int, spec Spec, wait bool, progress func(Status)) (Status, error) {
	ctrl, err := openControl(ctx, js, replicas)
	if err != nil {
		return Status{}, err
	}
	key := controlKey(stream, spec.Name)
	c, rev, err := readControl(ctx, ctrl, key)
	if err != nil {
		return Status{}, err
	}
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return Status{}, fmt.Errorf("stream %s: %w", stream, err)
	}
	next := control{Gen: c.Gen + 1, State: StateResetting, Target: s.CachedInfo().State.LastSeq, Since: spec.now().UTC()}
	if err := writeControl(ctx, ctrl, key, next, rev); err != nil {
		return Status{}, err
	}
	// The generation's consumer, and the one it replaced if an instance of
	// the version before still has it (pinned.go).
	for _, name := range []string{spec.consumerName(c.Gen), durableName(spec.Durable, c.Gen)} {
		if err := js.DeleteConsumer(ctx, stream, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return Status{}, fmt.Errorf("delete consumer %s of generation %d: %w", name, c.Gen, err)
		}
	}
	if spec.Reset != nil {
		if err := spec.Reset(ctx, next.Gen); err != nil {
			return Status{}, fmt.Errorf("reset %s: %w", spec.Name, err)
		}
	}
	if _, err := js.CreateOrUpdateConsumer(ctx, stream, spec.consumerConfig(next.Gen)); err != nil {
		return Status{}, fmt.Errorf("create consumer of generation %d: %w", next.Gen, err)
	}
	if err := setState(ctx, ctrl, key, next.Gen, StateRebuilding); err != nil {
		return Status{}, err
	}
	if !wait {
		return StatusOf(ctx, js, stream, spec)
	}
	return Finish(ctx, js, stream, spec, progress)
}

// Finish waits until a rebuild caught up, sweeps what older generations
// left and marks the projection running. Rebuild with wait calls it; after a
// rebuild without wait, call it (or rebuild again) to finish.
func Finish(ctx context.Context, js jetstream.JetStream, stream string, spec Spec, progress func(Status)) (Status, error) {
	for {
		st, err := StatusOf(ctx, js, stream, spec)
		if err != nil {
			return st, err
		}
		if progress != nil {
			progress(st)
		}
		if st.State == StateRunning {
			return st, nil
		}
		if st.State == StateRebuilding && st.CaughtUp() {
			if spec.Sweep != nil {
				if err := spec.Sweep(ctx, st.Generation); err != nil {
					return st, fmt.Errorf("sweep %s: %w", spec.Name, err)
				}
			}
			kv, err := js.KeyValue(ctx, names.ControlBucket)
			if err != nil {
				return st, err
			}
			if err := setState(ctx, kv, controlKey(stream, spec.Name), st.Generation, StateRunning); err != nil {
				return st, err
			}
			st.State = StateRunning
			return st, nil
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// setState moves the control record of generation gen to a state.
func setState(ctx context.Context, kv jetstream.KeyValue, key string, gen uint64, state string) error {
	c, rev, err := readControl(ctx, kv, key)
	if err != nil {
		return err
	}
	if c.Gen != gen {
		return fmt.Errorf("control %s: generation %d replaced by %d (another rebuild)", key, gen, c.Gen)
	}
	c.State = state
	if state == StateRunning {
		c.Target = 0
	}
	return writeControl(ctx, kv, key, c, rev)
}
