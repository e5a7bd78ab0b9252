package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/handlers"
)

// writeSize is the size of a small file written in row 1.
const writeSize = 160

// runWrite is row 1: small-file writes through the service (request,
// content stored, event appended with its expectation, reply) from 1, 16
// and 64 concurrent clients, each on a session of its own, against
// JetStream publishes of the same size with a per-subject expectation from
// as many publishers, each on a subject of its own.
func runWrite(ctx context.Context, r *Runner) ([]Result, error) {
	envs := []*Env{r.Durable}
	if r.Fast != r.Durable {
		envs = append(envs, r.Fast)
	}
	var out []Result
	for _, e := range envs {
		if _, _, err := r.ensureBenchStream(ctx, e, kindRaw); err != nil {
			return out, err
		}
		for _, c := range r.Sizes.WriteClients {
			res, err := r.writeCase(ctx, e, c)
			if err != nil {
				return out, fmt.Errorf("%s, %d clients: %w", e.Name, c, err)
			}
			out = append(out, res)
		}
	}
	return out, nil
}

func (r *Runner) writeCase(ctx context.Context, e *Env, clients int) (Result, error) {
	sessions := make([]string, clients)
	for i := range sessions {
		s, err := e.Client.CreateSession(ctx, handlers.CreateSessionRequest{})
		if err != nil {
			return Result{}, err
		}
		sessions[i] = s.Session.ID
	}
	_, prefix := r.benchStream(kindRaw)
	subjects := make([]string, clients)
	last := make([]uint64, clients)
	for i := range subjects {
		subjects[i] = fmt.Sprintf("%sw%d-%d.%d", prefix, clients, time.Now().UnixNano(), i)
	}
	strand := func(ctx context.Context, w, i int) error {
		_, err := e.Client.Write(ctx, handlers.WriteRequest{
			Session: sessions[w], Path: fmt.Sprintf("src/file%02d.go", i%50),
			Content: sourceLike(uint64(w)<<32|uint64(i), writeSize),
		})
		return err
	}
	raw := func(ctx context.Context, w, i int) error {
		m := nats.NewMsg(subjects[w])
		m.Data = sourceLike(uint64(w)<<32|uint64(i), writeSize)
		ack, err := e.JS.PublishMsg(ctx, m, jetstream.WithExpectLastSequencePerSubject(last[w]))
		if err != nil {
			return err
		}
		last[w] = ack.Sequence
		return nil
	}
	d := r.Sizes.WriteRound
	// Warm both paths up, then alternate rounds so drift hits both alike.
	warm := max(d/3, 20*time.Millisecond)
	if _, err := measureRound(ctx, clients, warm, strand); err != nil {
		return Result{}, err
	}
	if _, err := measureRound(ctx, clients, warm, raw); err != nil {
		return Result{}, err
	}
	var sRates, rRates []float64
	var sLat, rLat []time.Duration
	for k := 0; k < r.Sizes.WriteRounds; k++ {
		s, err := measureRound(ctx, clients, d, strand)
		if err != nil {
			return Result{}, err
		}
		w, err := measureRound(ctx, clients, d, raw)
		if err != nil {
			return Result{}, err
		}
		sRates, rRates = append(sRates, s.rate()), append(rRates, w.rate())
		sLat, rLat = append(sLat, s.lat...), append(rLat, w.lat...)
	}
	res := Result{
		Case: fmt.Sprintf("%d clients", clients), Server: e.Name,
		Strand:  Figure{Value: median(sRates), Unit: "writes/s", P50Ms: percentile(sLat, 50), P99Ms: percentile(sLat, 99), Samples: len(sLat)},
		Raw:     &Figure{Value: median(rRates), Unit: "msgs/s", P50Ms: percentile(rLat, 50), P99Ms: percentile(rLat, 99), Samples: len(rLat)},
		RawWhat: "JetStream publish, same size, expected last subject sequence, a subject per publisher",
	}
	res.Ratio = ratio(res.Strand.Value, res.Raw.Value)
	res.Target = atLeast(res.Ratio, 0.5, "throughput strand/raw")
	r.progressf("  %s %d clients: strand %.0f/s (p50 %.2f ms), raw %.0f/s (p50 %.2f ms), ratio %.2f",
		e.Name, clients, res.Strand.Value, res.Strand.P50Ms, res.Raw.Value, res.Raw.P50Ms, res.Ratio)
	return res, nil
}

// round is what one measuring round did.
type round struct {
	ops     int
	elapsed time.Duration
	lat     []time.Duration
}

func (r round) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.ops) / r.elapsed.Seconds()
}

// maxOpsPerWorker bounds a round however fast the operation is.
const maxOpsPerWorker = 1_000_000

// measureRound runs op from n workers until d has passed and returns the
// operations done, the time taken and every latency.
func measureRound(ctx context.Context, n int, d time.Duration, op func(ctx context.Context, worker, i int) error) (round, error) {
	ctx, cancel := context.WithTimeout(ctx, d+time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	lats := make([][]time.Duration, n)
	errs := make([]error, n)
	start := time.Now()
	deadline := start.Add(d)
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < maxOpsPerWorker && time.Now().Before(deadline); i++ {
				t0 := time.Now()
				if err := op(ctx, w, i); err != nil {
					errs[w] = err
					return
				}
				lats[w] = append(lats[w], time.Since(t0))
			}
		}(w)
	}
	wg.Wait()
	res := round{elapsed: time.Since(start)}
	for w := 0; w < n; w++ {
		if errs[w] != nil {
			return res, errs[w]
		}
		res.ops += len(lats[w])
		res.lat = append(res.lat, lats[w]...)
	}
	return res, nil
}
