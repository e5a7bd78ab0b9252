package bench

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
	"github.com/strand-dev/strand/projections"
	"github.com/strand-dev/strand/streams"
)

// writeSize is the size of a small file written in row 1.
const writeSize = 160

// runWrite is row 1: small-file writes through the service (request,
// event appended with its expectation and the content inside it, reply) from 1, 16
// and 64 concurrent clients, each on a session of its own, against
// JetStream publishes of the same size with a per-subject expectation from
// as many publishers, each on a subject of its own. Each case also measures
// the floor (floor.go), in the same rounds, and shows Strand against it on
// a line of its own.
func runWrite(ctx context.Context, r *Runner) ([]Result, error) {
	envs := r.servers()
	var out []Result
	for _, e := range envs {
		if _, _, err := r.ensureBenchStream(ctx, e, kindRaw); err != nil {
			return out, err
		}
		floor, err := r.startFloor(e)
		if err != nil {
			return out, fmt.Errorf("%s: the floor service: %w", e.Name, err)
		}
		for _, c := range r.Sizes.WriteClients {
			res, err := r.writeCase(ctx, e, floor, c)
			if err != nil {
				floor.stop()
				return out, fmt.Errorf("%s, %d clients: %w", e.Name, c, err)
			}
			out = append(out, res...)
		}
		floor.stop()
		if e.Embedded != nil && !e.shared {
			res, err := r.writeReadModelsCase(ctx, e)
			if err != nil {
				return out, fmt.Errorf("%s, read models running: %w", e.Name, err)
			}
			out = append(out, res)
		}
	}
	return out, nil
}

// readModelsClients is how many clients write in row 1's case with the
// read models running.
const readModelsClients = 16

// writeReadModelsCase is row 1 as a deployment meets it: the writes of 16
// clients with the read models (the session views, the activity feed, the
// stats) running in the process as strand serve runs them, folding every
// event. No target: the are the service's own; this case says
// what the read models take from it (on a cluster that runs strand serve,
// the rows above already include them). The note counts the view and
// stats writes per write.
func (r *Runner) writeReadModelsCase(ctx context.Context, e *Env) (Result, error) {
	js := e.Store.JetStream()
	shareSyncs := e.Config.Replicas > 1 || e.Config.GroupCommitMin > 0
	m, err := projections.OpenReadModels(ctx, js, e.Config.Replicas, shareSyncs, streams.Retry, nil)
	if err != nil {
		return Result{}, err
	}
	if err := m.Start(ctx); err != nil {
		return Result{}, err
	}
	defer func() {
		m.Stop()
		// The durable consumers go, so that nothing follows the event
		// stream through the rows after this one.
		for _, spec := range m.Specs() {
			if st, err := projections.StatusOf(ctx, js, names.EventStream, spec); err == nil && st.Consumer != "" {
				_ = js.DeleteConsumer(ctx, names.EventStream, st.Consumer)
			}
		}
	}()
	// First caught up with the events of the cases before.
	if err := waitReadModels(ctx, js, m, 2*time.Minute); err != nil {
		return Result{}, err
	}
	last := func(stream string) uint64 {
		s, err := js.Stream(ctx, stream)
		if err != nil {
			return 0
		}
		return s.CachedInfo().State.LastSeq
	}
	const views, stats = "KV_" + names.SessionsBucket, "KV_" + names.StatsBucket
	ev0, v0, s0 := last(names.EventStream), last(views), last(stats)
	rs, err := r.writeCase(ctx, e, nil, readModelsClients)
	if err != nil {
		return Result{}, err
	}
	res := rs[0]
	if err := waitReadModels(ctx, js, m, 2*time.Minute); err != nil {
		return Result{}, err
	}
	ev := max(last(names.EventStream)-ev0, 1)
	res.Case = plural(readModelsClients, "client") + ", read models running"
	res.Target = nil
	res.Note = strings.TrimPrefix(res.Note+"; ", "; ") + fmt.Sprintf(
		"the session views, activity feed and stats folding every event in the same process, as strand serve runs them: %.2f view writes and %.2f stats writes per event",
		float64(last(views)-v0)/float64(ev), float64(last(stats)-s0)/float64(ev))
	return res, nil
}

// waitReadModels waits until every projection of m has folded the whole
// event stream (waitNoLag, one after the other).
func waitReadModels(ctx context.Context, js jetstream.JetStream, m *projections.ReadModels, limit time.Duration) error {
	for _, spec := range m.Specs() {
		if err := waitNoLag(ctx, js, names.EventStream, spec, limit); err != nil {
			return fmt.Errorf("read model %s: %w", spec.Name, err)
		}
	}
	return nil
}

// writeCase is row 1 with clients clients on e: the row's line and, given
// a floor service, the line of Strand against it.
func (r *Runner) writeCase(ctx context.Context, e *Env, floor *floorService, clients int) ([]Result, error) {
	sessions := make([]string, clients)
	for i := range sessions {
		s, err := e.Client.CreateSession(ctx, client.CreateSessionRequest{})
		if err != nil {
			return nil, err
		}
		sessions[i] = s.Session.ID
	}
	_, prefix := r.benchStream(kindRaw)
	subjects := make([]string, clients)
	last := make([]uint64, clients)
	for i := range subjects {
		subjects[i] = fmt.Sprintf("%sw%d-%d.%d", prefix, clients, time.Now().UnixNano(), i)
	}
	keys := make([]string, clients)
	for i := range keys {
		keys[i] = fmt.Sprintf("w%d-%d-%d", clients, time.Now().UnixNano(), i)
	}
	strand := func(ctx context.Context, w, i int) error {
		_, err := e.Client.Write(ctx, client.WriteRequest{
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
	floorWrite := func(ctx context.Context, w, i int) error { // measured only with a floor
		return floor.write(ctx, e.ClientNC, keys[w], sourceLike(uint64(w)<<32|uint64(i), writeSize))
	}
	d := r.Sizes.WriteRound
	// Warm the paths up, then alternate rounds so drift hits them alike.
	warm := max(d/3, 20*time.Millisecond)
	if _, err := measureRound(ctx, clients, warm, strand); err != nil {
		return nil, err
	}
	if floor != nil {
		if _, err := measureRound(ctx, clients, warm, floorWrite); err != nil {
			return nil, err
		}
	}
	if _, err := measureRound(ctx, clients, warm, raw); err != nil {
		return nil, err
	}
	var sRates, fRates, rRates []float64
	var sLat, fLat, rLat []time.Duration
	var shared streams.AppendStats // what group commit did in the Strand rounds
	for k := 0; k < r.Sizes.WriteRounds; k++ {
		before := e.Store.AppendStats()
		s, err := measureRound(ctx, clients, d, strand)
		if err != nil {
			return nil, err
		}
		after := e.Store.AppendStats()
		shared.Appended += after.Appended - before.Appended
		shared.Batches += after.Batches - before.Batches
		shared.Batched += after.Batched - before.Batched
		shared.Refused += after.Refused - before.Refused
		if floor != nil {
			f, err := measureRound(ctx, clients, d, floorWrite)
			if err != nil {
				return nil, err
			}
			fRates, fLat = append(fRates, f.rate()), append(fLat, f.lat...)
		}
		w, err := measureRound(ctx, clients, d, raw)
		if err != nil {
			return nil, err
		}
		sRates, rRates = append(sRates, s.rate()), append(rRates, w.rate())
		sLat, rLat = append(sLat, s.lat...), append(rLat, w.lat...)
	}
	res := Result{
		Case: plural(clients, "client"), Server: e.Name,
		Strand:  Figure{Value: median(sRates), Unit: "writes/s", P50Ms: percentile(sLat, 50), P99Ms: percentile(sLat, 99), Samples: len(sLat)},
		Raw:     &Figure{Value: median(rRates), Unit: "msgs/s", P50Ms: percentile(rLat, 50), P99Ms: percentile(rLat, 99), Samples: len(rLat)},
		RawWhat: "JetStream publish, same size, expected last subject sequence, a subject per publisher",
	}
	res.Ratio = ratio(res.Strand.Value, res.Raw.Value)
	res.Target = atLeast(res.Ratio, writeTarget(e.Name, clients), "throughput strand/raw")
	if clients == 1 {
		note, err := r.writeBreakdown(ctx, e, sessions[0])
		if err != nil {
			return nil, err
		}
		res.Note = note
	}
	if shared.Batches > 0 {
		res.Note = strings.TrimPrefix(res.Note+"; ", "; ") + fmt.Sprintf(
			"group commit: %d of %d appends (%.0f%%) stored in %d atomic batches, %.1f appends a batch, %d batches refused",
			shared.Batched, shared.Appended, 100*float64(shared.Batched)/float64(max(shared.Appended, 1)),
			shared.Batches, float64(shared.Batched)/float64(shared.Batches), shared.Refused)
	}
	if floor == nil {
		r.progressf("  %s %d clients: strand %.0f/s (p50 %.2f ms), raw %.0f/s (p50 %.2f ms), ratio %.2f",
			e.Name, clients, res.Strand.Value, res.Strand.P50Ms, res.Raw.Value, res.Raw.P50Ms, res.Ratio)
		return []Result{res}, nil
	}
	fl := Result{
		Case: plural(clients, "client") + ", against the floor", Server: e.Name,
		Strand:  res.Strand,
		Raw:     &Figure{Value: median(fRates), Unit: "writes/s", P50Ms: percentile(fLat, 50), P99Ms: percentile(fLat, 99), Samples: len(fLat)},
		RawWhat: "the floor: a service that appends each request's body as it came (expecting its subject's last sequence) and answers, over the same request/reply",
	}
	fl.Ratio = ratio(fl.Strand.Value, fl.Raw.Value)
	fl.Note = fmt.Sprintf("floor/raw %.2f: what strand/raw could reach if the service's own work cost nothing", ratio(fl.Raw.Value, res.Raw.Value))
	r.progressf("  %s %d clients: strand %.0f/s (p50 %.2f ms), floor %.0f/s, raw %.0f/s (p50 %.2f ms), ratio %.2f",
		e.Name, clients, res.Strand.Value, res.Strand.P50Ms, fl.Raw.Value, res.Raw.Value, res.Raw.P50Ms, res.Ratio)
	return []Result{res, fl}, nil
}

// writeTarget is row 1's target on the throughput ratio (issue 16, items 2
// and 7): with fsync 0.6 at 1 client and 0.8 at 16, and at 64 clients
// twice raw one-publish-per-write (fsyncs shared between writers); 0.5
// otherwise.
func writeTarget(server string, clients int) float64 {
	if server != "fsync" {
		return 0.5
	}
	switch {
	case clients <= 1:
		return 0.6
	case clients <= 16:
		return 0.8
	case clients >= 64:
		return 2
	}
	return 0.5
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

// writeBreakdown times, one at a time, the parts of a write: the request's
// hop to the service and back (a core NATS request of the same size to a
// responder on the service's connection), appending the event with the
// content inside it (Store.Change; a small write stores no blob, design
// record 0009), and the whole write through the service; what is left is
// the service's own work (JSON, dispatch, checks, hashing).
func (r *Runner) writeBreakdown(ctx context.Context, e *Env, session string) (string, error) {
	echo, stop, err := r.echoResponder(e)
	if err != nil {
		return "", err
	}
	defer stop()
	n := max(r.Sizes.WriteBreakdown, 1)
	// The direct appends go to a session of their own, so that the store's
	// cached head stays current whichever service instance takes the
	// writes.
	own, err := e.Client.CreateSession(ctx, client.CreateSessionRequest{})
	if err != nil {
		return "", err
	}
	var hop, change, whole, raw []time.Duration
	var last uint64
	_, prefix := r.benchStream(kindRaw)
	subject := fmt.Sprintf("%sbreakdown-%d", prefix, time.Now().UnixNano())
	for i := 0; i < n; i++ {
		data := sourceLike(uint64(1)<<40|uint64(i), writeSize)
		h := domain.Sum(data)
		steps := []struct {
			into *[]time.Duration
			fn   func() error
		}{
			{&hop, func() error { return echo(ctx, 2*writeSize+120) }},
			{&change, func() error {
				_, err := e.Store.Change(ctx, r.Tenant, own.Session.ID, r.meta(), func(*domain.Session) (domain.Command, error) {
					return domain.ChangeFiles{Ops: []domain.FileOp{{Kind: domain.OpWrite, Path: "breakdown.go", Content: h, Size: int64(len(data)), Data: data}}}, nil
				})
				return err
			}},
			{&whole, func() error {
				_, err := e.Client.Write(ctx, client.WriteRequest{Session: session, Path: "whole.go", Content: sourceLike(uint64(2)<<40|uint64(i), writeSize)})
				return err
			}},
			{&raw, func() error {
				m := nats.NewMsg(subject)
				m.Data = data
				ack, err := e.JS.PublishMsg(ctx, m, jetstream.WithExpectLastSequencePerSubject(last))
				if err == nil {
					last = ack.Sequence
				}
				return err
			}},
		}
		for _, st := range steps {
			d, err := clock(st.fn)
			if err != nil {
				return "", fmt.Errorf("write breakdown: %w", err)
			}
			*st.into = append(*st.into, d)
		}
	}
	us := func(ds []time.Duration) float64 { return latencyFigure(ds).Value * 1000 }
	rest := us(whole) - us(hop) - us(change)
	return fmt.Sprintf("one write at a time, medians: whole write %.0f µs = request hop %.0f + event append with inline content %.0f + service work %.0f (raw publish %.0f)",
		us(whole), us(hop), us(change), rest, us(raw)), nil
}
