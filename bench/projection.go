package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
	"github.com/strand-dev/strand/projections"
)

// runProjection is row 6: how fast the session-views projection catches up
// with a stream of N events (of N/100 sessions, interleaved), measured by
// creating its durable consumer fresh and waiting until its lag is 0. The
// raw figure is an ordered consumer reading the same stream. The events
// are in a stream of the bench's own (the projection takes its stream and
// filter as arguments), so the consumer sees exactly the N events; the
// views go to the projection's bucket under the bench tenant and are
// purged before every catch-up, so each one does the full work.
func runProjection(ctx context.Context, r *Runner) ([]Result, error) {
	envs := r.servers()
	var out []Result
	for _, e := range envs {
		res, err := r.projectionCase(ctx, e)
		if err != nil {
			return out, fmt.Errorf("%s: %w", e.Name, err)
		}
		out = append(out, res)
	}
	return out, nil
}

func (r *Runner) projectionCase(ctx context.Context, e *Env) (Result, error) {
	n, sessions := r.Sizes.ProjectionEvents, max(r.Sizes.ProjectionSessions, 1)
	stream, prefix, err := r.ensureBenchStream(ctx, e, kindProj)
	if err != nil {
		return Result{}, err
	}
	name := stream.CachedInfo().Config.Name
	t0 := time.Now()
	last, err := r.fillProjectionStream(ctx, e, prefix, n, sessions)
	if err != nil {
		return Result{}, err
	}
	r.progressf("  %s: %s events of %d sessions stored in %.1fs", e.Name, count(n), sessions, time.Since(t0).Seconds())
	js := e.Store.JetStream()
	var sRates, rRates []float64
	raw := func() error {
		var got int
		d, err := clock(func() error {
			var err error
			got, err = readSubject(ctx, e.JS, name, "", 1, last)
			return err
		})
		if err != nil {
			return err
		}
		if got != n {
			return fmt.Errorf("ordered consumer read %d events, want %d", got, n)
		}
		rRates = append(rRates, float64(n)/d.Seconds())
		return nil
	}
	// Raw reads before, between and after the catch-ups, so that drift
	// hits both alike.
	reps := max(r.Sizes.ProjectionReps, 1)
	for k := 0; k < reps; k++ {
		if err := raw(); err != nil {
			return Result{}, err
		}
		if err := r.resetViews(ctx, e, name); err != nil {
			return Result{}, err
		}
		p, err := projections.OpenSessions(ctx, js, name, prefix+"*", e.Config.Replicas, nil)
		if err != nil {
			return Result{}, err
		}
		d, err := clock(func() error {
			if err := p.Start(ctx); err != nil {
				return err
			}
			return waitNoLag(ctx, js, name, p.Spec(), 10*time.Minute)
		})
		p.Stop()
		if err != nil {
			return Result{}, fmt.Errorf("catch-up: %w", err)
		}
		sRates = append(sRates, float64(n)/d.Seconds())
		r.progressf("  %s: projection caught up with %s events in %.2fs", e.Name, count(n), d.Seconds())
	}
	for len(rRates) < max(reps+1, 3) {
		if err := raw(); err != nil {
			return Result{}, err
		}
	}
	if err := deleteConsumers(ctx, e.JS, name); err != nil {
		return Result{}, err
	}
	res := Result{
		Case: fmt.Sprintf("%s events, %d sessions", count(n), sessions), Server: e.Name,
		Strand:  Figure{Value: median(sRates), Unit: "events/s", Samples: len(sRates)},
		Raw:     &Figure{Value: median(rRates), Unit: "msgs/s", Samples: len(rRates)},
		RawWhat: "ordered consumer over the same stream",
		Note:    "session views: durable consumer created fresh, views purged, until lag is 0",
	}
	res.Ratio = ratio(res.Strand.Value, res.Raw.Value)
	res.Target = atLeast(res.Ratio, 0.5, "catch-up strand/raw")
	r.progressf("  %s: projection %.0f events/s, raw %.0f msgs/s, ratio %.3f", e.Name, res.Strand.Value, res.Raw.Value, res.Ratio)
	return res, nil
}

// resetViews deletes the projection's consumer on the bench stream (every
// consumer of it: whatever generation the projection is at) and the bench
// tenant's views, so that the next catch-up starts from nothing.
func (r *Runner) resetViews(ctx context.Context, e *Env, stream string) error {
	if err := deleteConsumers(ctx, e.JS, stream); err != nil {
		return err
	}
	s, err := e.JS.Stream(ctx, "KV_"+names.SessionsBucket)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return s.Purge(ctx, jetstream.WithPurgeSubject("$KV."+names.SessionsBucket+"."+r.Tenant+".>"))
}

// deleteConsumers deletes every consumer of one of the bench's streams.
func deleteConsumers(ctx context.Context, js jetstream.JetStream, stream string) error {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return err
	}
	nameList := s.ConsumerNames(ctx)
	var all []string
	for n := range nameList.Name() {
		all = append(all, n)
	}
	if err := nameList.Err(); err != nil {
		return err
	}
	for _, n := range all {
		if err := s.DeleteConsumer(ctx, n); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return err
		}
	}
	return nil
}

// waitNoLag waits until a projection's consumer has nothing pending and
// nothing unacknowledged: everything is folded. It asks the consumer every
// millisecond (one API request, small next to a catch-up's thousands of
// deliveries and acks), so that the figure is not the polling interval's.
func waitNoLag(ctx context.Context, js jetstream.JetStream, stream string, spec projections.Spec, limit time.Duration) error {
	st, err := projections.StatusOf(ctx, js, stream, spec)
	if err != nil {
		return err
	}
	cons, err := js.Consumer(ctx, stream, st.Consumer)
	if err != nil {
		return fmt.Errorf("consumer %s: %w", st.Consumer, err)
	}
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		info, err := cons.Info(ctx)
		if err != nil {
			return err
		}
		if info.NumPending == 0 && info.NumAckPending == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return fmt.Errorf("still lagging after %s", limit)
}

// fillProjectionStream stores n events of the given number of sessions,
// interleaved (event k of every session, then event k+1), on the bench
// stream, and returns the last sequence. It stores them in atomic batches,
// so that a server that fsyncs every write fsyncs once per batch.
func (r *Runner) fillProjectionStream(ctx context.Context, e *Env, prefix string, n, sessions int) (uint64, error) {
	pool, err := r.contentPool(ctx, e)
	if err != nil {
		return 0, err
	}
	heads := make([]*domain.Session, sessions)
	batch := make([]*nats.Msg, 0, atomicBatchMax)
	var last uint64
	for i := 0; i < n; i++ {
		k := i % sessions
		var cmd domain.Command
		if heads[k] == nil {
			cmd = domain.CreateSession{ID: r.ids.next(), Tenant: r.Tenant, Owner: "bench", Tags: map[string]string{"bench": "projection"}}
		} else {
			h := (i / sessions) % poolSize
			cmd = domain.ChangeFiles{Ops: []domain.FileOp{{Kind: domain.OpWrite, Path: filePath(i % 1000), Content: pool.hashes[h], Size: pool.sizes[h]}}}
		}
		ev, next, err := domain.Execute(heads[k], cmd, r.meta(), nil)
		if err != nil {
			return 0, err
		}
		body, err := ev.Encode()
		if err != nil {
			return 0, err
		}
		next.Commit(ev, 0, domain.Sum(body))
		heads[k] = next
		m := eventMsg(r.Tenant, ev, body)
		m.Subject = prefix + ev.Session
		batch = append(batch, m)
		if len(batch) == atomicBatchMax || i == n-1 {
			if last, err = publishAtomic(ctx, e.ClientNC, batch); err != nil {
				return 0, err
			}
			batch = batch[:0]
		}
	}
	return last, nil
}

// atomicBatchMax is JetStream's limit of messages per atomic batch.
const atomicBatchMax = 1000

// publishAtomic stores msgs as one atomic batch (ADR-50, headers only:
// nats.go has no batch API) and returns the sequence of the last one.
func publishAtomic(ctx context.Context, nc *nats.Conn, msgs []*nats.Msg) (uint64, error) {
	id := nuid.Next()
	for i, m := range msgs {
		if m.Header == nil {
			m.Header = nats.Header{}
		}
		m.Header.Set(names.HeaderBatchID, id)
		m.Header.Set(names.HeaderBatchSequence, strconv.Itoa(i+1))
		last := i == len(msgs)-1
		if last {
			m.Header.Set(names.HeaderBatchCommit, "1")
		}
		if i > 0 && !last {
			if err := nc.PublishMsg(m); err != nil {
				return 0, err
			}
			continue
		}
		resp, err := nc.RequestMsgWithContext(ctx, m)
		if err != nil {
			return 0, fmt.Errorf("atomic batch: %w", err)
		}
		if !last && len(resp.Data) == 0 {
			continue
		}
		var ack struct {
			Seq   uint64              `json:"seq"`
			Count int                 `json:"count"`
			Error *jetstream.APIError `json:"error"`
		}
		if err := json.Unmarshal(resp.Data, &ack); err != nil {
			return 0, fmt.Errorf("atomic batch: %w", err)
		}
		if ack.Error != nil {
			return 0, fmt.Errorf("atomic batch: %w", ack.Error)
		}
		if !last {
			return 0, fmt.Errorf("atomic batch: unexpected reply %s", resp.Data)
		}
		if ack.Count != len(msgs) {
			return 0, fmt.Errorf("atomic batch stored %d of %d messages", ack.Count, len(msgs))
		}
		return ack.Seq, nil
	}
	return 0, errors.New("atomic batch: no messages")
}
