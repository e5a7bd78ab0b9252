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
	// two measures a round through both instances. The second one is
	// stopped between its rounds, so it first catches up with what the
	// first wrote alone (a short round, not timed), as an instance serving
	// all along would have: the row is about two instances at work, not
	// about one joining.
	var lost, followed uint64 // in the timed rounds through two instances
	two := func(ctx context.Context, d time.Duration) (round, time.Duration, error) {
		svc := handlers.NewService(st, handlers.Options{})
		if err := svc.Start(nc); err != nil {
			return round{}, 0, err
		}
		defer func() { _ = svc.Stop() }()
		if err := nc.Flush(); err != nil { // its subscriptions are in place
			return round{}, 0, err
		}
		if _, err := measureRound(ctx, instancesClients, max(d/5, 20*time.Millisecond), write); err != nil {
			return round{}, 0, err
		}
		c := processCPU()
		l, f := races(e.Store, st)
		t, err := measureRound(ctx, instancesClients, d, write)
		c = processCPU() - c
		l1, f1 := races(e.Store, st)
		lost, followed = lost+l1-l, followed+f1-f
		return t, c, err
	}
	// Warm both up (the second instance's store loads every session once).
	d := r.Sizes.WriteRound
	if _, err := measureRound(ctx, instancesClients, max(d/3, 20*time.Millisecond), write); err != nil {
		return Result{}, err
	}
	if _, _, err := two(ctx, max(d/3, 20*time.Millisecond)); err != nil {
		return Result{}, err
	}
	var oneRates, twoRates []float64
	var oneLat, twoLat []time.Duration
	lost, followed = 0, 0 // not the warm-up's
	writes := 0
	var oneCPU, twoCPU []float64 // µs of the process's CPU per write
	for k := 0; k < r.Sizes.WriteRounds; k++ {
		c0 := processCPU()
		o, err := measureRound(ctx, instancesClients, d, write)
		if err != nil {
			return Result{}, err
		}
		c1 := processCPU()
		t, c2, err := two(ctx, d)
		if err != nil {
			return Result{}, err
		}
		oneCPU = append(oneCPU, perOp(c1-c0, o.ops))
		twoCPU = append(twoCPU, perOp(c2, t.ops))
		writes += len(t.lat)
		oneRates, twoRates = append(oneRates, o.rate()), append(twoRates, t.rate())
		oneLat, twoLat = append(oneLat, o.lat...), append(twoLat, t.lat...)
	}
	res := Result{
		Case: fmt.Sprintf("%d clients, two instances", instancesClients), Server: e.Name,
		Strand:  Figure{Value: median(twoRates), Unit: "writes/s", P50Ms: percentile(twoLat, 50), P99Ms: percentile(twoLat, 99), Samples: len(twoLat)},
		Raw:     &Figure{Value: median(oneRates), Unit: "writes/s", P50Ms: percentile(oneLat, 50), P99Ms: percentile(oneLat, 99), Samples: len(oneLat)},
		RawWhat: "the same writes through one instance",
	}
	res.Note = fmt.Sprintf("CPU of the whole process (servers included) per write: %.0f µs through two instances, %.0f µs through one (medians of rounds); of %d writes through two instances, %d lost the append race, %d were decided on a head the live tail had brought up to date", median(twoCPU), median(oneCPU), writes, lost, followed)
	res.Ratio = ratio(res.Strand.Value, res.Raw.Value)
	res.Target = atLeast(res.Ratio, 0.9, "throughput two instances/one")
	r.progressf("  %s two instances: %.0f/s, one: %.0f/s, ratio %.2f", e.Name, res.Strand.Value, res.Raw.Value, res.Ratio)
	return res, nil
}

// races sums what the stores' Races report.
func races(stores ...*streams.Store) (lost, followed uint64) {
	for _, st := range stores {
		l, f := st.Races()
		lost, followed = lost+l, followed+f
	}
	return lost, followed
}

// perOp is d per operation in µs (0 without operations).
func perOp(d time.Duration, ops int) float64 {
	if ops == 0 {
		return 0
	}
	return float64(d.Microseconds()) / float64(ops)
}
