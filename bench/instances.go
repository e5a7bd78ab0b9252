package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/handlers"
	"github.com/strand-dev/strand/streams"
)

// instancesClients is how many clients row 10 writes with.
const instancesClients = 16

// runInstances is row 10: small-file writes from 16 clients, each on a
// session of its own, through one service instance, and through two
// instances sharing the same sessions (a second store and service on a
// connection of their own, in the same queue group, so the requests of
// one session alternate between instances whose cached heads go stale).
// The raw figure is the one-instance throughput: the target is about what
// a second instance costs, not about JetStream.
func runInstances(ctx context.Context, r *Runner) ([]Result, error) {
	envs := r.servers()
	var out []Result
	for _, e := range envs {
		if e.shared || e.Embedded == nil {
			continue // a cluster's instances are not the bench's to add
		}
		res, err := r.instancesCase(ctx, e)
		if err != nil {
			return out, fmt.Errorf("%s: %w", e.Name, err)
		}
		out = append(out, res)
	}
	return out, nil
}

func (r *Runner) instancesCase(ctx context.Context, e *Env) (Result, error) {
	sessions := make([]string, instancesClients)
	for i := range sessions {
		s, err := e.Client.CreateSession(ctx, client.CreateSessionRequest{})
		if err != nil {
			return Result{}, err
		}
		sessions[i] = s.Session.ID
	}
	nc, err := e.Embedded.Connect(nats.Name("strand-bench-second-instance"))
	if err != nil {
		return Result{}, err
	}
	defer nc.Close()
	octx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	st, err := streams.Open(octx, nc, e.Config, nil)
	if err != nil {
		return Result{}, err
	}
	defer st.Close()
	write := func(ctx context.Context, w, i int) error {
		_, err := e.Client.Write(ctx, client.WriteRequest{
			Session: sessions[w], Path: fmt.Sprintf("src/file%02d.go", i%50),
			Content: sourceLike(uint64(w)<<32|uint64(i), writeSize),
		})
		return err
	}
	two := func(ctx context.Context, d time.Duration) (round, error) {
		svc := handlers.NewService(st, handlers.Options{})
		if err := svc.Start(nc); err != nil {
			return round{}, err
		}
		defer func() { _ = svc.Stop() }()
		if err := nc.Flush(); err != nil { // its subscriptions are in place
			return round{}, err
		}
		return measureRound(ctx, instancesClients, d, write)
	}
	// Warm both up (the second instance's store loads every session once).
	d := r.Sizes.WriteRound
	if _, err := measureRound(ctx, instancesClients, max(d/3, 20*time.Millisecond), write); err != nil {
		return Result{}, err
	}
	if _, err := two(ctx, max(d/3, 20*time.Millisecond)); err != nil {
		return Result{}, err
	}
	var oneRates, twoRates []float64
	var oneLat, twoLat []time.Duration
	for k := 0; k < r.Sizes.WriteRounds; k++ {
		o, err := measureRound(ctx, instancesClients, d, write)
		if err != nil {
			return Result{}, err
		}
		t, err := two(ctx, d)
		if err != nil {
			return Result{}, err
		}
		oneRates, twoRates = append(oneRates, o.rate()), append(twoRates, t.rate())
		oneLat, twoLat = append(oneLat, o.lat...), append(twoLat, t.lat...)
	}
	res := Result{
		Case: fmt.Sprintf("%d clients, two instances", instancesClients), Server: e.Name,
		Strand:  Figure{Value: median(twoRates), Unit: "writes/s", P50Ms: percentile(twoLat, 50), P99Ms: percentile(twoLat, 99), Samples: len(twoLat)},
		Raw:     &Figure{Value: median(oneRates), Unit: "writes/s", P50Ms: percentile(oneLat, 50), P99Ms: percentile(oneLat, 99), Samples: len(oneLat)},
		RawWhat: "the same writes through one instance",
	}
	res.Ratio = ratio(res.Strand.Value, res.Raw.Value)
	res.Target = atLeast(res.Ratio, 0.9, "throughput two instances/one")
	r.progressf("  %s two instances: %.0f/s, one: %.0f/s, ratio %.2f", e.Name, res.Strand.Value, res.Raw.Value, res.Ratio)
	return res, nil
}
