package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
	"github.com/strand-dev/strand/projections"
	"github.com/strand-dev/strand/streams"
)

// runProjection is row 6: how fast each projection catches up with a
// stream of N events (of N/100 sessions, interleaved), measured by
// creating its durable consumer fresh and waiting until its lag is 0: the
// session views; the activity feed (same events); the review queue (the
// session views with their work items, on events that open and grant
// approval requests). The raw figure is an ordered consumer reading the
// same stream. The events are in streams of the bench's own (a projection
// takes its stream and filter as arguments), so each consumer sees exactly
// its N events; the views go to the projection's bucket under the bench
// tenant and are purged before every catch-up, the feed and the work items
// to streams of the bench's own, made anew each time, so each catch-up
// does the full work.
func runProjection(ctx context.Context, r *Runner) ([]Result, error) {
	var out []Result
	for _, e := range r.servers() {
		for _, c := range r.projectionCases() {
			res, err := r.projectionCase(ctx, e, c)
			if err != nil {
				return out, fmt.Errorf("%s, %s: %w", e.Name, c.name, err)
			}
			out = append(out, res)
		}
	}
	return out, nil
}

// projectionCase is one projection of row 6.
type projectionCase struct {
	name string
	// kind is the bench stream of its events.
	kind string
	// reviews fills the stream with approval requests and grants.
	reviews bool
	// out is the bench stream of its output (the feed, the work items),
	// made anew before each catch-up, outside its time: a projection that
	// catches up finds its streams there ("" for none).
	out string
	// start starts the projection on the stream and returns its spec.
	start func(ctx context.Context, e *Env, stream, filter string) (projections.Spec, func(), error)
}

func (r *Runner) projectionCases() []projectionCase {
	return []projectionCase{
		{name: "session views", kind: kindProj, start: r.startViews(false)},
		{name: "activity feed", kind: kindProj, out: kindFeed, start: r.startActivity},
		{name: "review queue", kind: kindReview, reviews: true, out: kindWork, start: r.startViews(true)},
	}
}

// startViews starts the session views, with work items on a bench stream
// made anew when work is set.
func (r *Runner) startViews(work bool) func(ctx context.Context, e *Env, stream, filter string) (projections.Spec, func(), error) {
	return func(ctx context.Context, e *Env, stream, filter string) (projections.Spec, func(), error) {
		p, err := projections.OpenSessions(ctx, e.Store.JetStream(), stream, filter, e.Config.Replicas, nil)
		if err != nil {
			return projections.Spec{}, nil, err
		}
		if work {
			name, prefix := r.benchStream(kindWork)
			p.EmitWork(projections.WorkConfig{Stream: name, Subject: func(tenant, kind string, more ...string) string {
				return prefix + strings.Join(append([]string{tenant, kind}, more...), ".")
			}, Retry: streams.Retry})
		}
		if shareSyncs(e) {
			p.ShareSyncs()
		}
		if err := p.Start(ctx); err != nil {
			return projections.Spec{}, nil, err
		}
		return p.Spec(), p.Stop, nil
	}
}

// startActivity starts the activity feed on a feed stream of the bench's
// own, made anew before (so that no message id of an earlier catch-up is
// remembered), kept as the service's is (newest entries per tenant).
func (r *Runner) startActivity(ctx context.Context, e *Env, stream, filter string) (projections.Spec, func(), error) {
	name, prefix := r.benchStream(kindFeed)
	a := projections.OpenActivity(e.Store.JetStream(), stream, filter, e.Config.Replicas,
		projections.FeedConfig{Stream: name, Subject: func(tenant string) string { return prefix + tenant }}, nil)
	if shareSyncs(e) {
		a.ShareSyncs()
	}
	if err := a.Start(ctx); err != nil {
		return projections.Spec{}, nil, err
	}
	return a.Spec(), a.Stop, nil
}

// shareSyncs says whether the projections share syncs on e's server, as
// strand serve decides: where group commit is on (a cluster, or an
// embedded server that fsyncs every write).
func shareSyncs(e *Env) bool {
	return e.Config.Replicas > 1 || e.Config.GroupCommitMin > 0
}

func (r *Runner) projectionCase(ctx context.Context, e *Env, c projectionCase) (Result, error) {
	n, sessions := r.Sizes.ProjectionEvents, max(r.Sizes.ProjectionSessions, 1)
	name, prefix := r.benchStream(c.kind)
	s, err := e.JS.Stream(ctx, name)
	if err == nil && s.CachedInfo().State.Msgs != uint64(n) {
		err = jetstream.ErrStreamNotFound // another row's, or a case of another size
	}
	if err != nil {
		if _, _, err := r.ensureBenchStream(ctx, e, c.kind); err != nil {
			return Result{}, err
		}
		if err := purgeStream(ctx, e.JS, name); err != nil {
			return Result{}, err
		}
		t0 := time.Now()
		if _, err := r.fillProjectionStream(ctx, e, prefix, n, sessions, c.reviews); err != nil {
			return Result{}, err
		}
		r.progressf("  %s: %s events of %d sessions stored in %.1fs", e.Name, count(n), sessions, time.Since(t0).Seconds())
	}
	if s, err = e.JS.Stream(ctx, name); err != nil {
		return Result{}, err
	}
	last := s.CachedInfo().State.LastSeq
	// sCPU and rCPU are the process's CPU (servers included) per event of
	// each catch-up and raw read: under load the wall-clock rates swing
	// with the scheduler, the CPU much less.
	var sRates, rRates, aRates, sCPU, rCPU []float64
	var workNote string
	var pubs []string
	// The floor of any projection on a shared durable consumer: the same
	// events through such a consumer that does nothing but acknowledge
	// each, timed to the same end (nothing pending, nothing unacked).
	acked := func() error {
		d, err := clock(func() error { return ackOnly(ctx, e.JS, name, n) })
		if err != nil {
			return fmt.Errorf("acknowledge only: %w", err)
		}
		aRates = append(aRates, float64(n)/d.Seconds())
		return nil
	}
	raw := func() error {
		var got int
		c0 := processCPU()
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
		rCPU = append(rCPU, float64(processCPU()-c0)/float64(time.Microsecond)/float64(n))
		return nil
	}
	// Raw reads before, between and after the catch-ups, so that drift
	// hits both alike.
	reps := max(r.Sizes.ProjectionReps, 1)
	for k := 0; k < reps; k++ {
		if err := raw(); err != nil {
			return Result{}, err
		}
		if err := acked(); err != nil {
			return Result{}, err
		}
		if err := r.resetViews(ctx, e, name); err != nil {
			return Result{}, err
		}
		if c.out != "" {
			if _, _, err := r.freshBenchStream(ctx, e, c.out); err != nil {
				return Result{}, err
			}
		}
		var stop func()
		c0 := processCPU()
		d, err := clock(func() error {
			spec, s, err := c.start(ctx, e, name, prefix+">")
			if err != nil {
				return err
			}
			stop = s
			return waitNoLag(ctx, e.Store.JetStream(), name, spec, 10*time.Minute)
		})
		if stop != nil {
			stop()
		}
		if err != nil {
			return Result{}, fmt.Errorf("catch-up: %w", err)
		}
		sRates = append(sRates, float64(n)/d.Seconds())
		sCPU = append(sCPU, float64(processCPU()-c0)/float64(time.Microsecond)/float64(n))
		r.progressf("  %s: %s caught up with %s events in %.2fs", e.Name, c.name, count(n), d.Seconds())
		if c.out == kindWork {
			held, published, open, err := r.checkWorkItems(ctx, e)
			if err != nil {
				return Result{}, err
			}
			if held != 2*open {
				return Result{}, fmt.Errorf("after the catch-up the work stream holds %d items for %d open requests, want 2 each", held, open)
			}
			pubs = append(pubs, count(published))
			workNote = fmt.Sprintf("; work items at lag 0: %s held (2 for each of the %s open requests, checked; last run), published in all: %s (each run)",
				count(held), count(open), strings.Join(pubs, ", "))
		}
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
		Case: fmt.Sprintf("%s: %s events, %d sessions", c.name, count(n), sessions), Server: e.Name,
		Strand:  Figure{Value: median(sRates), Unit: "events/s", Samples: len(sRates)},
		Raw:     &Figure{Value: median(rRates), Unit: "msgs/s", Samples: len(rRates)},
		RawWhat: "ordered consumer over the same stream",
		Note: fmt.Sprintf("%s: durable consumer created fresh, read model emptied, until lag is 0; CPU of the process (servers included) per event: %.1f µs catching up, %.1f µs raw (medians); a durable consumer that only acknowledges each event: %s msgs/s (%.2f of raw)",
			c.name, median(sCPU), median(rCPU), count(int(median(aRates))), ratio(median(aRates), median(rRates))) + workNote,
	}
	res.Ratio = ratio(res.Strand.Value, res.Raw.Value)
	res.Target = atLeast(res.Ratio, 0.5, "catch-up strand/raw")
	r.progressf("  %s: %s %.0f events/s, raw %.0f msgs/s, ratio %.3f", e.Name, c.name, res.Strand.Value, res.Raw.Value, res.Ratio)
	return res, nil
}

// checkWorkItems counts, after a review-queue catch-up, the items the work
// stream holds and has ever been given, and the open requests of the bench
// tenant's views.
func (r *Runner) checkWorkItems(ctx context.Context, e *Env) (held, published, open int, err error) {
	name, _ := r.benchStream(kindWork)
	s, err := e.JS.Stream(ctx, name)
	if err != nil {
		return 0, 0, 0, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, 0, 0, err
	}
	kv, err := e.JS.KeyValue(ctx, names.SessionsBucket)
	if err != nil {
		return 0, 0, 0, err
	}
	keys, err := kv.ListKeysFiltered(ctx, r.Tenant+".>")
	if err != nil {
		return 0, 0, 0, err
	}
	for key := range keys.Keys() {
		entry, err := kv.Get(ctx, key)
		if err != nil {
			return 0, 0, 0, err
		}
		var v projections.View
		if err := json.Unmarshal(entry.Value(), &v); err != nil {
			return 0, 0, 0, fmt.Errorf("view %s: %w", key, err)
		}
		open += len(v.Pending)
	}
	return int(info.State.Msgs), int(info.State.LastSeq), open, nil
}

// freshBenchStream deletes a bench stream and makes it anew.
func (r *Runner) freshBenchStream(ctx context.Context, e *Env, kind string) (name, prefix string, err error) {
	name, _ = r.benchStream(kind)
	if err := e.JS.DeleteStream(ctx, name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return "", "", err
	}
	s, prefix, err := r.ensureBenchStream(ctx, e, kind)
	if err != nil {
		return "", "", err
	}
	return s.CachedInfo().Config.Name, prefix, nil
}

// purgeStream empties a stream.
func purgeStream(ctx context.Context, js jetstream.JetStream, name string) error {
	s, err := js.Stream(ctx, name)
	if err != nil {
		return err
	}
	return s.Purge(ctx)
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

// ackOnly reads a stream of n events through a durable consumer made as a
// projection's is (explicit acknowledgements, pulls of pullMax), does
// nothing but acknowledge each, and returns once nothing is pending or
// unacknowledged; then deletes the consumer.
func ackOnly(ctx context.Context, js jetstream.JetStream, stream string, n int) error {
	name := "strandbench_ackonly_" + nuid.Next()
	cons, err := js.CreateConsumer(ctx, stream, jetstream.ConsumerConfig{
		Durable: name, AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverAllPolicy,
		MaxAckPending: 2 * projections.MaxBatch, AckWait: 30 * time.Second, MaxDeliver: -1,
	})
	if err != nil {
		return err
	}
	defer js.DeleteConsumer(context.Background(), stream, name) //nolint:errcheck // a bench scratch consumer
	cc, err := cons.Consume(func(msg jetstream.Msg) { _ = msg.Ack() }, jetstream.PullMaxMessages(1000))
	if err != nil {
		return err
	}
	defer cc.Stop()
	return waitConsumed(ctx, cons, 10*time.Minute)
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
	return waitConsumed(ctx, cons, limit)
}

// waitConsumed asks a consumer every millisecond until it has nothing
// pending and nothing unacknowledged.
func waitConsumed(ctx context.Context, cons jetstream.Consumer, limit time.Duration) error {
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
func (r *Runner) fillProjectionStream(ctx context.Context, e *Env, prefix string, n, sessions int, reviews bool) (uint64, error) {
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
		meta := r.meta()
		h := (i / sessions) % poolSize
		switch v := i / sessions; {
		case heads[k] == nil:
			cmd = domain.CreateSession{ID: r.ids.next(), Tenant: r.Tenant, Owner: "bench", Tags: map[string]string{"bench": "projection"}}
		case reviews && v%4 == 1:
			// Each session goes round: a write, a request, a
			// checkpoint, the request's grant by someone else. Request
			// ids are unique in the tenant, as the service's are
			// (ULIDs): the work items' ids are made of them, and ids
			// shared by sessions made the items of all but the first
			// duplicates that JetStream dropped.
			cmd = domain.RequestApproval{ID: fmt.Sprintf("r%d-%d", k, v), Reason: "commit", Group: fmt.Sprintf("g%d", k%3)}
		case reviews && v%4 == 3:
			cmd, meta.Actor = domain.GrantApproval{ID: fmt.Sprintf("r%d-%d", k, v-2)}, "reviewer"
		case reviews && v%4 == 2:
			cmd = domain.CreateCheckpoint{Name: fmt.Sprintf("c%d", v)}
		default:
			cmd = domain.ChangeFiles{Ops: []domain.FileOp{{Kind: domain.OpWrite, Path: filePath(i % 1000), Content: pool.hashes[h], Size: pool.sizes[h]}}}
		}
		ev, next, err := domain.Execute(heads[k], cmd, meta, nil)
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
