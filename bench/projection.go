package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/domain"
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
	envs := []*Env{r.Durable}
	if r.Fast != r.Durable {
		envs = append(envs, r.Fast)
	}
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
	for k := 0; k < r.Sizes.ProjectionReps; k++ {
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
			return waitNoLag(ctx, p, 10*time.Minute)
		})
		p.Stop()
		if err != nil {
			return Result{}, fmt.Errorf("catch-up: %w", err)
		}
		sRates = append(sRates, float64(n)/d.Seconds())
		r.progressf("  %s: projection caught up with %s events in %.2fs", e.Name, count(n), d.Seconds())
	}
	for k := 0; k < max(r.Sizes.ProjectionReps, 3); k++ {
		var got int
		d, err := clock(func() error {
			var err error
			got, err = readSubject(ctx, e.JS, name, "", 1, last)
			return err
		})
		if err != nil {
			return Result{}, err
		}
		if got != n {
			return Result{}, fmt.Errorf("ordered consumer read %d events, want %d", got, n)
		}
		rRates = append(rRates, float64(n)/d.Seconds())
	}
	if err := e.JS.DeleteConsumer(ctx, name, projections.SessionsConsumer); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
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

// resetViews deletes the projection's consumer on the bench stream and the
// bench tenant's views, so that the next catch-up starts from nothing.
func (r *Runner) resetViews(ctx context.Context, e *Env, stream string) error {
	if err := e.JS.DeleteConsumer(ctx, stream, projections.SessionsConsumer); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return err
	}
	s, err := e.JS.Stream(ctx, "KV_"+projections.SessionsBucket)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return s.Purge(ctx, jetstream.WithPurgeSubject("$KV."+projections.SessionsBucket+"."+r.Tenant+".>"))
}

// waitNoLag waits until the projection has folded everything.
func waitNoLag(ctx context.Context, p *projections.Sessions, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		lag, err := p.Lag(ctx)
		if err != nil {
			return err
		}
		if lag == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return fmt.Errorf("still lagging after %s", limit)
}

// fillProjectionStream stores n events of the given number of sessions,
// interleaved (event k of every session, then event k+1), on the bench
// stream, and returns the last sequence.
func (r *Runner) fillProjectionStream(ctx context.Context, e *Env, prefix string, n, sessions int) (uint64, error) {
	pool, err := r.contentPool(ctx, e)
	if err != nil {
		return 0, err
	}
	heads := make([]*domain.Session, sessions)
	var pending []jetstream.PubAckFuture
	var last uint64
	drain := func(keep int) error {
		for len(pending) > keep {
			select {
			case a := <-pending[0].Ok():
				last = a.Sequence
			case err := <-pending[0].Err():
				return err
			case <-ctx.Done():
				return ctx.Err()
			}
			pending = pending[1:]
		}
		return nil
	}
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
		f, err := e.JS.PublishMsgAsync(m)
		if err != nil {
			return 0, err
		}
		pending = append(pending, f)
		if len(pending) >= 2048 {
			if err := drain(1024); err != nil {
				return 0, err
			}
		}
	}
	if err := drain(0); err != nil {
		return 0, err
	}
	return last, nil
}
