package projections

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Delivery is one event handed to a projection's Apply.
type Delivery struct {
	// Seq is the event's stream sequence: its position.
	Seq     uint64
	Subject string
	Header  nats.Header
	Data    []byte
	// Gen is the generation the runner folds into: entries written by an
	// older generation are to be treated as absent, entries of a newer one
	// mean this runner is stale (return ErrStaleGeneration).
	Gen uint64
	// Delivered counts the deliveries of this event (1 the first time).
	Delivered uint64
	// Pending is how many events the consumer still had to deliver after
	// this one when it was delivered (NumPending): above 0 for the last
	// event of a batch, the projection is catching up.
	Pending uint64
}

// Errors an Apply returns to steer the runner.
var (
	// ErrGap means an earlier event of the same entry has not been applied
	// yet and could not be read from the stream to fold first (the
	// projections fill gaps themselves: gap.go), or only part of a long
	// gap was: the event is handed back and delivered again shortly.
	ErrGap = errors.New("projection: an earlier event of this entry is not applied yet")
	// ErrStaleGeneration means the read model has moved to a newer
	// generation (a rebuild): the runner rejoins.
	ErrStaleGeneration = errors.New("projection: a newer generation owns this entry")
	// ErrRevisit means the event is applied but left its entry with work
	// for a later delivery of it (the session views' deferred work items,
	// work.go): it is handed back at once and comes again with a later
	// batch. Unlike an acknowledgement it survives a crash: the consumer
	// delivers it again to whichever instance runs next.
	ErrRevisit = errors.New("projection: applied; deliver again to finish the entry's work")
)

// Spec describes a projection to the runtime.
type Spec struct {
	// Name identifies the projection in status and rebuild (sessions,
	// reviews, activity).
	Name string
	// Durable is the base name of its durable consumer; generation g > 0
	// uses Durable_g<g>.
	Durable     string
	Description string
	// Filter selects the events it folds.
	Filter string
	// Apply folds one event into the read model. It must be idempotent:
	// the same event may arrive twice, and on several instances at once.
	Apply func(ctx context.Context, d Delivery) error
	// ApplyBatch, when set, folds the events the instance has at hand at
	// once (up to MaxBatch, in stream order), so that a read model entry is
	// written once per batch rather than once per event while the
	// projection catches up. It returns one error per delivery, with
	// Apply's meaning; it must be as idempotent as Apply. A projection with
	// ApplyBatch has one applier (the batch is its parallelism: it writes
	// its entries together), and the events of the next batch arrive while
	// one is applied, so the slower the writes the larger the batches.
	ApplyBatch func(ctx context.Context, ds []Delivery) []error
	// Key partitions events: events with the same key are applied in
	// stream order by one goroutine of an instance (nil: the subject).
	Key func(subject string) string
	// Partitions is how many goroutines apply events one at a time
	// (default 8; a projection with ApplyBatch has one).
	Partitions int
	// AckWait is how long an event handed to an instance that went away
	// waits before another gets it (default 30s); a batch projection's
	// lease passes on after half of it unrenewed (at least 3 s,
	// leaseTTL). Every instance must use the same.
	AckWait time.Duration
	// Linger is how long a live batch projection, while events keep
	// coming, waits after a batch's first event for more (default
	// liveLinger): the longer, the fewer read model writes under a
	// steady flow of writes, and the later they show.
	Linger time.Duration
	// Reset runs during a rebuild while no consumer exists: it clears what
	// the new generation cannot simply overwrite (optional).
	Reset func(ctx context.Context, gen uint64) error
	// Sweep runs once a rebuild caught up: it removes entries that older
	// generations wrote and the new one did not (optional).
	Sweep func(ctx context.Context, gen uint64) error
	// Now is the clock that stamps a rebuild's start and judges a rebuild
	// stuck in its reset (staleReset); nil: the wall clock.
	Now func() time.Time
}

// now reads the spec's clock.
func (s Spec) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// consumerConfig is the durable consumer of a generation. Every instance
// asks for exactly this, so CreateOrUpdateConsumer from any number of them
// lands on the same consumer. A batch projection's consumer acknowledges
// cumulatively (batchacks.go).
func (s Spec) consumerConfig(gen uint64) jetstream.ConsumerConfig {
	cfg := jetstream.ConsumerConfig{
		Durable:       s.consumerName(gen),
		Description:   s.Description,
		FilterSubject: s.Filter,
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		MaxAckPending: 1000, // one event at a time: its partitions hold few
		AckWait:       s.ackWait(),
		MaxDeliver:    -1,
	}
	if s.ApplyBatch != nil {
		cfg.AckPolicy = jetstream.AckAllPolicy
		cfg.MaxAckPending = maxAckPending
	}
	return cfg
}

// maxAckPending bounds the events handed out to a batch projection and not
// yet applied: room for the batch being applied and the next one arriving
// meanwhile.
const maxAckPending = 2 * MaxBatch

// Runner runs one projection on this instance: it joins the projection's
// durable consumer (shared with every other instance), applies what it is
// given, and rejoins when a rebuild replaces the consumer.
type Runner struct {
	js     jetstream.JetStream
	stream string
	spec   Spec
	ctrl   jetstream.KeyValue
	log    *slog.Logger

	// lease is held by the one instance that folds a batch projection
	// (lease.go); nil for a projection applied one event at a time, which
	// every instance folds.
	lease *lease

	mu      sync.Mutex
	gen     uint64
	cc      jetstream.ConsumeContext
	parts   []chan jetstream.Msg
	workers sync.WaitGroup

	stop chan struct{}
	done chan struct{}
}

// StartRunner starts a projection on a stream. It returns once the
// projection's consumer is joined (or the start context ends), or at once
// when another instance holds a batch projection's lease (this one then
// stands by to take over).
func StartRunner(ctx context.Context, js jetstream.JetStream, stream string, replicas int, spec Spec, log *slog.Logger) (*Runner, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if spec.Partitions <= 0 {
		spec.Partitions = 8
	}
	if spec.ApplyBatch != nil {
		spec.Partitions = 1
	}
	if spec.Key == nil {
		spec.Key = func(s string) string { return s }
	}
	ctrl, err := openControl(ctx, js, replicas)
	if err != nil {
		return nil, err
	}
	r := &Runner{js: js, stream: stream, spec: spec, ctrl: ctrl, log: log.With("projection", spec.Name),
		stop: make(chan struct{}), done: make(chan struct{})}
	if spec.ApplyBatch != nil {
		r.lease = newLease(ctrl, stream, spec.Name, spec.leaseTTL())
		if !r.lease.try(ctx) {
			// Another instance folds it; this one stands by (supervise).
			r.log.Debug("standing by: another instance holds the lease")
			go r.supervise()
			return r, nil
		}
	}
	for {
		err := r.join(ctx)
		if err == nil {
			break
		}
		if !errors.Is(err, errNotJoinable) {
			r.releaseLease()
			return nil, err
		}
		select {
		case <-ctx.Done():
			r.releaseLease()
			return nil, fmt.Errorf("projection %s: %w (a rebuild is resetting it)", spec.Name, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
	go r.supervise()
	return r, nil
}

var errNotJoinable = errors.New("projection is being reset")

// staleReset is how long a rebuild may stay in StateResetting before
// instances stop waiting for it.
const staleReset = 2 * time.Minute

// join reads the control record and consumes the current generation's
// consumer with fresh appliers.
func (r *Runner) join(ctx context.Context) error {
	c, _, err := readControl(ctx, r.ctrl, controlKey(r.stream, r.spec.Name))
	if err != nil {
		return err
	}
	if c.State == StateResetting {
		// A rebuild is clearing the old generation. One that has not moved
		// on for long died half-way: join rather than stay down (entries
		// carry their generation, and the feed's reader drops repeats),
		// and leave the state for the next rebuild to finish.
		if r.spec.now().Sub(c.Since) < staleReset {
			return errNotJoinable
		}
		r.log.Warn("a rebuild stopped while resetting; joining its generation anyway (rebuild again to finish)",
			"gen", c.Gen, "since", c.Since)
	}
	var cons jetstream.Consumer
	if r.spec.ApplyBatch != nil {
		cons, err = r.openBatch(ctx, c.Gen)
	} else {
		cons, err = r.js.CreateOrUpdateConsumer(ctx, r.stream, r.spec.consumerConfig(c.Gen))
	}
	if err != nil {
		return fmt.Errorf("projection %s: consumer: %w", r.spec.Name, err)
	}
	parts := make([]chan jetstream.Msg, r.spec.Partitions)
	opts := []jetstream.PullConsumeOpt{jetstream.PullMaxMessages(pullMax), jetstream.PullExpiry(r.spec.pullExpiryOf()),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if !errors.Is(err, jetstream.ErrNoHeartbeat) {
				r.log.Debug("consume", "err", err)
			}
		})}
	if r.spec.ApplyBatch != nil {
		// Room for a whole batch while the one before is applied.
		parts[0] = make(chan jetstream.Msg, MaxBatch)
		r.workers.Add(1)
		go r.batchApplier(parts[0], c.Gen, newAcks(cons))
	} else {
		for i := range parts {
			parts[i] = make(chan jetstream.Msg, 64)
			r.workers.Add(1)
			go r.applier(parts[i], c.Gen)
		}
	}
	handle := func(msg jetstream.Msg) {
		h := fnv.New32a()
		h.Write([]byte(r.spec.Key(msg.Subject())))
		parts[h.Sum32()%uint32(len(parts))] <- msg
	}
	var cc jetstream.ConsumeContext
	if r.spec.ApplyBatch != nil {
		// A batch projection, once caught up, takes its events in paced
		// pulls (paced.go), every liveLinger (or its own linger when
		// shorter): one that lingers longer (the stats) gathers several
		// pulls into a batch, where pulls as far apart would add their
		// pause to its delay.
		cc = pace(cons, handle, min(cmp.Or(r.spec.Linger, liveLinger), liveLinger), r.spec.pullExpiryOf(), r.log, opts...)
	} else {
		cc, err = cons.Consume(handle, opts...)
	}
	if err != nil {
		for _, p := range parts {
			close(p)
		}
		r.workers.Wait()
		return fmt.Errorf("projection %s: consume: %w", r.spec.Name, err)
	}
	r.mu.Lock()
	r.gen, r.cc, r.parts = c.Gen, cc, parts
	r.mu.Unlock()
	r.log.Debug("joined", "consumer", r.spec.consumerName(c.Gen), "gen", c.Gen)
	return nil
}

// leave stops consuming, lets the appliers finish what they were given and
// waits for them.
func (r *Runner) leave() {
	r.mu.Lock()
	cc, parts := r.cc, r.parts
	r.cc, r.parts = nil, nil
	r.mu.Unlock()
	if cc == nil {
		return
	}
	// Drain hands over what was pulled; an applier finishes each event
	// within Apply's timeout, so this ends.
	cc.Drain()
	<-cc.Closed()
	for _, p := range parts {
		close(p)
	}
	r.workers.Wait()
}

// supervise rejoins when the consumer goes away (a rebuild deleted it) or
// the control record names another generation.
func (r *Runner) supervise() {
	defer close(r.done)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		r.mu.Lock()
		cc, gen := r.cc, r.gen
		r.mu.Unlock()
		var closed <-chan struct{}
		if cc != nil {
			closed = cc.Closed()
		}
		select {
		case <-r.stop:
			r.leave()
			r.releaseLease()
			return
		case <-closed:
			r.rejoin("consumer closed")
		case <-tick.C:
			if r.lease != nil && !r.keepLease() {
				continue
			}
			if cc == nil {
				r.rejoin("not joined")
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			c, _, err := readControl(ctx, r.ctrl, controlKey(r.stream, r.spec.Name))
			cancel()
			if err == nil && c.Gen != gen {
				r.rejoin("new generation")
			}
		}
	}
}

// releaseLease gives a batch projection's lease up, if held.
func (r *Runner) releaseLease() {
	if r.lease == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r.lease.release(ctx)
}

// keepLease renews the lease of a batch projection, or tries to take it
// over when standing by, and joins or leaves its consumer accordingly. It
// reports whether this instance folds the projection.
func (r *Runner) keepLease() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if r.lease.held {
		if r.lease.renew(ctx) {
			return true
		}
		r.log.Info("lost the projection's lease; standing by")
		r.leave()
		return false
	}
	if !r.lease.try(ctx) {
		return false
	}
	r.log.Info("took the projection's lease over")
	r.rejoin("lease taken")
	return true
}

func (r *Runner) rejoin(why string) {
	r.leave()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.join(ctx); err != nil && !errors.Is(err, errNotJoinable) {
		r.log.Warn("rejoin failed; will retry", "why", why, "err", err)
	}
}

// Bounds of one batch handed to ApplyBatch: events, bytes of events, and
// how long the applier gathers one while the consumer says more are
// pending. A catch-up folds batches of up to MaxBatch events, so a read
// model entry touched all along is written once per MaxBatch events.
const (
	MaxBatch      = 32768
	maxBatchBytes = 32 << 20
	maxGather     = time.Second
	// gatherIdle is how long the applier waits for the next event the
	// consumer said was pending (it may be between two pulls, or with an
	// instance that just lost the projection's lease). A
	// pause between two pulls on a busy machine must not cut a catch-up
	// into more batches (each a write, with fsync a sync, per view); live
	// traffic never waits (nothing is pending).
	gatherIdle = 100 * time.Millisecond
	// liveLinger is how long a live projection (nothing pending) waits
	// for more events after the first of a batch, while events keep
	// coming (the batch before was handed over less than liveBusy, or
	// twice the linger, ago); Spec.Linger changes it.
	// Without it, every event of a busy moment was a batch of its own: a
	// view write and a stats write per event (110,480 events of bench row
	// 1 against strand serve made 98,660 view writes and 97,126 stats
	// writes), which more than halved what the service could write. An
	// event after a quiet spell is applied at once.
	liveLinger = 10 * time.Millisecond
	liveBusy   = 100 * time.Millisecond
)

// pullMax is how many events a runner asks its consumer for at a time.
const pullMax = 1000

// pullExpiry is how long one pull request of a runner lasts. The server
// sends heartbeats at half of it, and the client pulls again when two are
// missed: so a pull lost to a consumer's leader election (a node killed,
// a consumer just created on a cluster) stalls the projection this long,
// instead of nats.go's default 30 s. Between events it costs a pull
// request per runner this often.
const pullExpiry = 5 * time.Second

// received is an event as the applier holds it.
type received struct {
	msg jetstream.Msg
	md  *jetstream.MsgMetadata
}

// applier applies the events of its partition one at a time, in the order
// they came, and acknowledges each (a projection without ApplyBatch; a
// batch projection has batchApplier).
func (r *Runner) applier(in <-chan jetstream.Msg, gen uint64) {
	defer r.workers.Done()
	for msg := range in {
		md, err := msg.Metadata()
		if err != nil {
			_ = msg.Term()
			continue
		}
		d := Delivery{Seq: md.Sequence.Stream, Subject: msg.Subject(), Header: msg.Headers(), Data: msg.Data(),
			Gen: gen, Delivered: md.NumDelivered, Pending: md.NumPending}
		r.settleMsg(msg, md, d, r.apply([]Delivery{d}, gen)[0])
	}
}

// add appends an event to a batch with its metadata; one without metadata
// (not a JetStream delivery) is terminated.
func (r *Runner) add(batch []received, msg jetstream.Msg) []received {
	md, err := msg.Metadata()
	if err != nil {
		_ = msg.Term()
		return batch
	}
	return append(batch, received{msg, md})
}

// gather adds to a batch the events at hand and, while the consumer says
// more are pending (the projection lags), waits for them, up to the
// batch's bounds. A live projection (nothing pending) gets what is at hand
// at once, and when busy (events kept coming) what comes within linger
// of the batch's start.
func (r *Runner) gather(in <-chan jetstream.Msg, batch []received, idle *time.Timer, linger time.Duration) []received {
	start, bytes := time.Now(), 0
	for _, b := range batch {
		bytes += len(b.msg.Data())
	}
	for len(batch) < MaxBatch && bytes < maxBatchBytes {
		var msg jetstream.Msg
		var ok bool
		select {
		case msg, ok = <-in:
		default:
			if len(batch) == 0 || time.Since(start) > maxGather {
				return batch
			}
			wait := gatherIdle
			if batch[len(batch)-1].md.NumPending == 0 {
				wait = linger - time.Since(start)
				if wait <= 0 {
					return batch
				}
			}
			idle.Reset(wait)
			select {
			case msg, ok = <-in:
				idle.Stop()
			case <-idle.C:
				return batch
			}
		}
		if !ok {
			return batch
		}
		batch = r.add(batch, msg)
		bytes += len(msg.Data())
	}
	return batch
}

// apply folds events (one with Apply, more with ApplyBatch) and returns
// each one's outcome.
func (r *Runner) apply(ds []Delivery, gen uint64) []error {
	for i := range ds {
		ds[i].Gen = gen
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second+time.Duration(len(ds))*10*time.Millisecond)
	defer cancel()
	if len(ds) > 1 {
		return r.spec.ApplyBatch(ctx, ds)
	}
	return []error{r.spec.Apply(ctx, ds[0])}
}

// settleMsg acknowledges an event applied one at a time, or hands it back.
func (r *Runner) settleMsg(msg jetstream.Msg, md *jetstream.MsgMetadata, d Delivery, err error) {
	switch {
	case err == nil:
		_ = msg.Ack()
	case errors.Is(err, ErrGap):
		if md.NumDelivered%50 == 0 {
			r.log.Warn("event waits for an earlier one", "seq", d.Seq, "subject", d.Subject, "deliveries", md.NumDelivered)
		}
		_ = msg.NakWithDelay(gapDelay(md.NumDelivered))
	case errors.Is(err, ErrStaleGeneration), errors.Is(err, ErrRevisit):
		_ = msg.Nak()
	default:
		r.log.Warn("apply failed; will be redelivered", "seq", d.Seq, "subject", d.Subject, "err", err)
		_ = msg.NakWithDelay(min(time.Duration(md.NumDelivered)*time.Second, 30*time.Second))
	}
}

// gapDelay waits a little longer each time an event finds its predecessor
// missing.
func gapDelay(delivered uint64) time.Duration {
	return min(time.Duration(delivered)*50*time.Millisecond, 2*time.Second)
}

// Stop leaves the consumer (other instances keep it going) once the events
// this instance was given are applied.
func (r *Runner) Stop() {
	select {
	case <-r.stop:
	default:
		close(r.stop)
	}
	<-r.done
}

// Spec returns the runner's projection.
func (r *Runner) Spec() Spec { return r.spec }

// Status reports the projection's position and lag.
func (r *Runner) Status(ctx context.Context) (Status, error) {
	return StatusOf(ctx, r.js, r.stream, r.spec)
}
