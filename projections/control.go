package projections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/names"
)

// Projection states in the control record.
const (
	// StateRunning: the consumer of the current generation folds events.
	StateRunning = "running"
	// StateResetting: a rebuild has started a new generation and is clearing
	// what the old one left; no instance may join until it is done.
	StateResetting = "resetting"
	// StateRebuilding: the new generation's consumer is replaying the
	// stream from sequence 1.
	StateRebuilding = "rebuilding"
)

// control is a projection's record in ControlBucket.
type control struct {
	Gen   uint64 `json:"gen"`
	State string `json:"state"`
	// Target is the stream's last sequence when the rebuild started: once
	// the consumer's ack floor reaches it, the rebuild has caught up.
	Target uint64    `json:"target,omitempty"`
	Since  time.Time `json:"since,omitzero"`
}

func controlKey(stream, name string) string { return stream + "." + name }

func openControl(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.KeyValue, error) {
	return ensureBucket(ctx, js, jetstream.KeyValueConfig{
		Bucket:      names.ControlBucket,
		Description: "Strand projections: generation and state of every read model",
		History:     8,
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
	})
}

// readControl returns a projection's record and its revision (0: none yet,
// which is generation 0, running).
func readControl(ctx context.Context, kv jetstream.KeyValue, key string) (control, uint64, error) {
	e, err := kv.Get(ctx, key)
	// On a cluster, a bucket just created may not answer direct gets yet
	// (no responders): wait for it, boundedly.
	for i := 0; i < 50 && errors.Is(err, nats.ErrNoResponders) && ctx.Err() == nil; i++ {
		time.Sleep(100 * time.Millisecond)
		e, err = kv.Get(ctx, key)
	}
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return control{State: StateRunning}, 0, nil
	}
	if err != nil {
		return control{}, 0, fmt.Errorf("read control %s: %w", key, err)
	}
	var c control
	if err := json.Unmarshal(e.Value(), &c); err != nil {
		return control{}, 0, fmt.Errorf("decode control %s: %w", key, err)
	}
	if c.State == "" {
		c.State = StateRunning
	}
	return c, e.Revision(), nil
}

// writeControl stores a record if its revision is still rev.
func writeControl(ctx context.Context, kv jetstream.KeyValue, key string, c control, rev uint64) error {
	body, _ := json.Marshal(c)
	var err error
	if rev == 0 {
		_, err = kv.Create(ctx, key, body)
	} else {
		_, err = kv.Update(ctx, key, body, rev)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return fmt.Errorf("control %s changed concurrently (another rebuild?): %w", key, err)
	}
	return err
}

// durableName is the consumer of a generation. Generation 0 keeps the
// base name, so a deployment that never rebuilt keeps its consumer; every
// rebuild gets a new name, so an instance that has not noticed the rebuild
// yet pulls from a consumer that no longer exists instead of from the new
// one with a stale generation.
func durableName(base string, gen uint64) string {
	if gen == 0 {
		return base
	}
	return fmt.Sprintf("%s_g%d", base, gen)
}
