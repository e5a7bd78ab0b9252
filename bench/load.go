package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
	"github.com/strand-dev/strand/streams"
)

// noSnapshots is a snapshot interval no session reaches.
const noSnapshots = 1 << 62

// runLoad is row 3: loading a session with 100,000 events into a fresh
// store (nothing cached), without snapshots (a replay of every event) and
// with them, at the head (a snapshot is exactly there) and one event before
// it (the worst case: the newest snapshot is SnapshotEvery-1 events back).
// The raw figure reads the same messages without decoding or folding them:
// the whole subject through an ordered consumer, or the snapshot's
// reference, its body and the events after it.
func runLoad(ctx context.Context, r *Runner) ([]Result, error) {
	e := r.Fast
	n := r.Sizes.LoadEvents
	b, err := r.session(ctx, e, historySpec{Files: forkFiles, Events: n})
	if err != nil {
		return nil, err
	}
	if err := r.verify(ctx, e, b); err != nil {
		return nil, err
	}
	id := b.Head.ID
	every := e.Config.SnapshotEvery
	head := b.Head.Position
	worstV := uint64(n) - 1
	if worstV%every != every-1 {
		// Pick the version just before a snapshot: the longest tail.
		worstV = uint64(n)/every*every - 1
	}
	if worstV == 0 || worstV > uint64(n) {
		worstV = uint64(n)
	}
	worst := b.Positions[worstV-1]
	cases := []struct {
		name     string
		every    uint64
		position uint64
		version  uint64
		target   bool
	}{
		{"no snapshots, head", noSnapshots, head, uint64(n), false},
		{"snapshots, head", every, head, uint64(n), true},
		{fmt.Sprintf("snapshots, %d events after the newest", worstV%every), every, worst, worstV, true},
	}
	var out []Result
	for _, c := range cases {
		var sd, rd []time.Duration
		reps := r.Sizes.LoadReps
		if c.every == noSnapshots {
			reps = max(r.Sizes.LoadReplayReps, 1)
		}
		for k := 0; k < reps; k++ {
			st, err := streams.Open(ctx, e.NC, streams.Config{Replicas: e.Config.Replicas, SnapshotEvery: c.every}, nil)
			if err != nil {
				return out, err
			}
			var got *domain.Session
			d, err := clock(func() error {
				var err error
				got, err = st.At(ctx, r.Tenant, id, c.position)
				return err
			})
			st.Close()
			if err != nil {
				return out, fmt.Errorf("%s: %w", c.name, err)
			}
			if got.Version != c.version {
				return out, fmt.Errorf("%s: loaded version %d, want %d", c.name, got.Version, c.version)
			}
			sd = append(sd, d)
			d, err = clock(func() error { return r.rawLoad(ctx, e, id, c.every, c.version, c.position) })
			if err != nil {
				return out, fmt.Errorf("%s (raw): %w", c.name, err)
			}
			rd = append(rd, d)
		}
		sf, rf := latencyFigure(sd), latencyFigure(rd)
		res := Result{Case: c.name, Server: e.Name, Strand: sf, Raw: &rf, Ratio: ratio(sf.Value, rf.Value),
			Note: fmt.Sprintf("%s events, fresh store per load", count(n))}
		if c.every == noSnapshots {
			res.RawWhat = "ordered consumer over the session's subject, every message, no decoding"
		} else {
			res.RawWhat = "KV get of the snapshot reference + get of its body + ordered consumer over the events after it"
		}
		if c.target {
			res.Target = atMost(sf.Value, 50, "cold load", " ms")
		}
		r.progressf("  %s: strand %.1f ms, raw %.1f ms", c.name, sf.Value, rf.Value)
		out = append(out, res)
	}
	return out, nil
}

// rawLoad reads what a cold load reads, without decoding it: the newest
// snapshot at or before version (its reference in the bucket and its body
// in the blob store), then every event after it up to position.
func (r *Runner) rawLoad(ctx context.Context, e *Env, id string, every, version, position uint64) error {
	from := uint64(1)
	if snapV := version / every * every; snapV > 0 {
		kv, err := e.JS.KeyValue(ctx, names.SnapshotBucket)
		if err != nil {
			return err
		}
		entry, err := kv.Get(ctx, r.Tenant+"."+id+"."+strconv.FormatUint(snapV, 10))
		if err != nil {
			return fmt.Errorf("snapshot reference: %w", err)
		}
		var ref struct {
			Blob     []byte `msgpack:"b"`
			Position uint64 `msgpack:"p"`
		}
		if err := domain.DecodeMsgpack(entry.Value(), &ref); err != nil {
			return fmt.Errorf("snapshot reference: %w", err)
		}
		h, ok := domain.HashFromBytes(ref.Blob)
		if !ok {
			return errors.New("snapshot reference: bad hash")
		}
		blobs, err := e.JS.Stream(ctx, names.BlobStream)
		if err != nil {
			return err
		}
		if _, err := blobs.GetLastMsgForSubject(ctx, names.BlobSubject(h.String())); err != nil {
			return fmt.Errorf("snapshot body: %w", err)
		}
		from = ref.Position + 1
	}
	if from > position {
		return nil
	}
	_, err := readSubject(ctx, e.JS, names.EventStream, names.EventSubject(r.Tenant, id), from, position)
	return err
}

// readSubject reads the messages of a subject (every subject when empty)
// with sequences in [from, to] through an ordered consumer, streaming (the
// fastest way JetStream delivers a range), and returns how many it read.
func readSubject(ctx context.Context, js jetstream.JetStream, stream, subject string, from, to uint64) (int, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return 0, err
	}
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: from}
	if subject != "" {
		cfg.FilterSubjects = []string{subject}
	}
	cons, err := s.OrderedConsumer(ctx, cfg)
	if err != nil {
		return 0, err
	}
	defer func() {
		if ci := cons.CachedInfo(); ci != nil {
			s.DeleteConsumer(context.Background(), ci.Name) //nolint:errcheck // ordered consumers also expire
		}
	}()
	it, err := cons.Messages(jetstream.PullMaxMessages(1000))
	if err != nil {
		return 0, err
	}
	defer it.Stop()
	n := 0
	for {
		msg, err := it.Next(jetstream.NextMaxWait(30 * time.Second))
		if err != nil {
			return n, fmt.Errorf("read %s from %d: %w", stream, from, err)
		}
		md, err := msg.Metadata()
		if err != nil {
			return n, err
		}
		if md.Sequence.Stream > to {
			return n, nil
		}
		n++
		if md.Sequence.Stream == to || md.NumPending == 0 {
			return n, nil
		}
		if ctx.Err() != nil {
			return n, ctx.Err()
		}
	}
}
