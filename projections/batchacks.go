package projections

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// A batch projection (one with ApplyBatch) acknowledges cumulatively: its
// consumer has AckPolicy AckAll, and one acknowledgement after a batch
// covers every event of it, where one per event cost the server and the
// client about a fifth of a catch-up (bench row 6; design record 0007,
// amendment "one acknowledgement a batch"). An acknowledgement of sequence
// n covers every event at or below n that the consumer handed out, to this
// instance or any other, so two rules keep it from covering an event no
// one applied:
//
//   - One instance folds at a time: it holds the projection's lease (a key
//     of the control bucket it renews every second, lease.go); the others
//     stand by and take the lease over when it is released (the holder
//     stopped) or not renewed for leaseTTL (it died). Two instances hold
//     events only around a takeover.
//   - An applier acknowledges through n only when it knows that every
//     event at or below n the consumer handed out is applied: the ones it
//     was given (an event handed back, ErrGap or a failure, stays held in
//     memory, below the acknowledgements, and is applied again after its
//     delay; ErrRevisit comes again with the next batch), and, when it
//     cannot rule out that another instance holds some (it started while
//     events were out, or the delivery numbers it is given skip: another
//     instance was given those), every event between the consumer's
//     acknowledgement floor and its last delivered one, which it reads
//     from the stream and applies itself (establish). Applies are
//     idempotent, so an event both instances apply changes nothing.
//
// An event held past AckWait is delivered again, and the applier takes the
// new delivery as the same event. The server ignores an acknowledgement
// whose delivery number is not above the last one's; an applier that would
// have to acknowledge with such a delivery (an event delivered again
// since) waits for the next delivery of it instead.
//
// (A pinned priority group, JetStream's own way to hand a consumer's events
// to one client at a time, was tried first: the server then copies every
// event to add the pin to its header, and row 6's catch-ups gained half as
// much.)

// batchSuffix marks the consumers that acknowledge cumulatively: a
// consumer's ack policy cannot change, so they have names of their own
// (openBatch moves a deployment over from the one-acknowledgement-per-event
// consumer of the same generation).
const batchSuffix = "_ackall"

// consumerName is the durable consumer of a generation.
func (s Spec) consumerName(gen uint64) string {
	if s.ApplyBatch == nil {
		return durableName(s.Durable, gen)
	}
	return durableName(s.Durable, gen) + batchSuffix
}

// pullExpiryOf is how long a runner's pull request lasts, bounded by the
// ack wait so that tests with a short one see failures as soon.
func (s Spec) pullExpiryOf() time.Duration {
	return min(max(s.ackWait()/6, time.Second), pullExpiry)
}

// leaseTTL is how long a batch projection's lease lasts unrenewed before a
// standing-by instance takes it over: 15 s by default (half the ack
// wait), at least 3 s.
func (s Spec) leaseTTL() time.Duration { return 3 * s.pullExpiryOf() }

func (s Spec) ackWait() time.Duration { return cmp.Or(s.AckWait, 30*time.Second) }

// openBatch returns the batch projection's consumer of generation gen,
// creating it if missing. Its start is kept as it is (only the rest of the
// configuration follows the spec); a new one starts after what the
// generation's one-acknowledgement-per-event consumer had acknowledged,
// when that one exists, which is then removed once no instance pulls from
// it (an instance of an older version still running keeps it).
func (r *Runner) openBatch(ctx context.Context, gen uint64) (jetstream.Consumer, error) {
	cfg := r.spec.consumerConfig(gen)
	cons, err := r.js.Consumer(ctx, r.stream, cfg.Durable)
	switch {
	case err == nil:
		have := cons.CachedInfo().Config
		cfg.DeliverPolicy, cfg.OptStartSeq = have.DeliverPolicy, have.OptStartSeq
		if cons, err = r.js.UpdateConsumer(ctx, r.stream, cfg); err != nil {
			return nil, err
		}
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		old, err := r.js.Consumer(ctx, r.stream, durableName(r.spec.Durable, gen))
		if err == nil {
			if f := old.CachedInfo().AckFloor.Stream; f > 0 {
				cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, f+1
			}
		} else if !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return nil, err
		}
		cons, err = r.js.CreateConsumer(ctx, r.stream, cfg)
		if errors.Is(err, jetstream.ErrConsumerExists) {
			// Another instance created it first (from another floor).
			cons, err = r.js.Consumer(ctx, r.stream, cfg.Durable)
		}
		if err != nil {
			return nil, err
		}
	default:
		return nil, err
	}
	r.dropLegacy(ctx, gen)
	return cons, nil
}

// dropLegacy removes the generation's one-acknowledgement-per-event
// consumer once no instance pulls from it.
func (r *Runner) dropLegacy(ctx context.Context, gen uint64) {
	name := durableName(r.spec.Durable, gen)
	old, err := r.js.Consumer(ctx, r.stream, name)
	if err != nil {
		return
	}
	if n := old.CachedInfo().NumWaiting; n > 0 {
		r.log.Info("instances of an older version still pull from the consumer this one replaces; it is removed when they are gone",
			"consumer", name, "waiting", n)
		return
	}
	if err := r.js.DeleteConsumer(ctx, r.stream, name); err == nil {
		r.log.Info("removed the consumer this projection acknowledged each event on", "consumer", name,
			"now", r.spec.consumerName(gen))
	}
}

// held is an event a batch applier has not acknowledged yet.
type held struct {
	d Delivery
	// msg is its latest delivery to this applier (nil: read from the
	// stream by establish); dseq that delivery's number.
	msg  jetstream.Msg
	dseq uint64
	// applied: folded; else due is when to apply it again (zero: it is in
	// the batch being applied).
	applied  bool
	attempts uint64
	due      time.Time
}

// acks is a batch applier's acknowledgement state.
type acks struct {
	cons jetstream.Consumer
	// order holds the events not acknowledged yet, as they came (stream
	// order but for redeliveries and what establish read); held finds them
	// by stream sequence. Walks go over order: a map that once held a
	// catch-up's 65,536 events keeps its size, and walking it cost every
	// live batch after (2.6% of a busy process's CPU).
	order []*held
	held  map[uint64]*held
	// wide: held grew past wideHeld entries, and is made anew once empty.
	wide bool
	// acked: every event at or below it is acknowledged; ackDseq is the
	// delivery number of the last acknowledgement this applier sent.
	acked, ackDseq uint64
	// nextDseq is the delivery number the next delivery to this applier
	// must have for trusted to stay true (0: not known).
	nextDseq uint64
	// trusted: every event at or below the held ones that the consumer
	// handed out is held here or acknowledged.
	trusted bool
}

// newAcks starts from the consumer's state as it was opened: with nothing
// handed out and not acknowledged, the deliveries that follow on from its
// last one are this applier's alone.
func newAcks(cons jetstream.Consumer) *acks {
	a := &acks{cons: cons, held: map[uint64]*held{}}
	info := cons.CachedInfo()
	a.acked = info.AckFloor.Stream
	if info.NumAckPending == 0 {
		a.trusted, a.nextDseq = true, info.Delivered.Consumer+1
	}
	return a
}

// take turns the events just received into held ones and returns, in
// stream order, those to apply now: the new ones and the handed-back ones
// that are due. A delivery of an event already held (delivered again
// after AckWait) replaces the one held; one already acknowledged is
// dropped.
func (a *acks) take(batch []received, now time.Time) []*held {
	var out []*held
	for _, b := range batch {
		seq, dseq := b.md.Sequence.Stream, b.md.Sequence.Consumer
		// A delivery numbered below the next expected one was on its way
		// when establish read the consumer (it is covered there); one above
		// it means another instance was given the ones between.
		if a.nextDseq != 0 && dseq > a.nextDseq {
			a.trusted = false
		}
		a.nextDseq = max(a.nextDseq, dseq+1)
		if seq <= a.acked {
			if b.md.NumDelivered > 1 && dseq > a.ackDseq {
				// Delivered again though acknowledged: the server ignored
				// the acknowledgement (another instance's had a higher
				// delivery number). This delivery's number is the newest.
				if b.msg.Ack() == nil {
					a.ackDseq = dseq
				}
			}
			continue
		}
		if h, ok := a.held[seq]; ok {
			if dseq > h.dseq {
				h.msg, h.dseq = b.msg, dseq
			}
			continue
		}
		h := &held{d: Delivery{Seq: seq, Subject: b.msg.Subject(), Header: b.msg.Headers(), Data: b.msg.Data(),
			Delivered: b.md.NumDelivered, Pending: b.md.NumPending}, msg: b.msg, dseq: dseq}
		a.hold(h)
		out = append(out, h)
	}
	for _, h := range a.order {
		if h.waiting() && !h.due.After(now) {
			h.due = time.Time{}
			// Applied again on its own or with later events: not a sign of
			// a catch-up (which would defer its work items again).
			h.d.Pending, h.d.Delivered = 0, h.attempts+1
			out = append(out, h)
		}
	}
	slices.SortFunc(out, func(x, y *held) int { return cmp.Compare(x.d.Seq, y.d.Seq) })
	return out
}

// wideHeld is the size past which the held index is made anew once
// empty.
const wideHeld = 1024

// hold adds an event to the ones not acknowledged.
func (a *acks) hold(h *held) {
	a.held[h.d.Seq] = h
	a.order = append(a.order, h)
	a.wide = a.wide || len(a.held) > wideHeld
}

// release forgets the events at or below seq: acknowledged.
func (a *acks) release(seq uint64) {
	kept := a.order[:0]
	for _, h := range a.order {
		if h.d.Seq <= seq {
			delete(a.held, h.d.Seq)
		} else {
			kept = append(kept, h)
		}
	}
	clear(a.order[len(kept):])
	a.order = kept
	if len(a.order) == 0 && a.wide {
		a.held, a.order, a.wide = map[uint64]*held{}, nil, false
	}
}

// waiting: handed back, to apply again when due.
func (h *held) waiting() bool { return !h.applied && !h.due.IsZero() }

// nextDue is when the earliest handed-back event is due.
func (a *acks) nextDue() (time.Time, bool) {
	var t time.Time
	for _, h := range a.order {
		if !h.waiting() {
			continue
		}
		if t.IsZero() || h.due.Before(t) {
			t = h.due
		}
	}
	return t, !t.IsZero()
}

// settle records each applied event's outcome: applied, or held back to be
// applied again after a delay (as a Nak's delay did before).
func (r *Runner) settle(a *acks, hs []*held, errs []error, now time.Time) {
	for i, h := range hs {
		err := errs[i]
		h.attempts++
		var wait time.Duration
		switch {
		case err == nil:
			h.applied = true
			continue
		case errors.Is(err, ErrRevisit):
			// With the next batch.
		case errors.Is(err, ErrGap):
			if h.attempts%50 == 0 {
				r.log.Warn("event waits for an earlier one", "seq", h.d.Seq, "subject", h.d.Subject, "attempts", h.attempts)
			}
			wait = gapDelay(h.attempts)
		case errors.Is(err, ErrStaleGeneration):
			// The runner rejoins the new generation within a second.
			wait = time.Second
		default:
			r.log.Warn("apply failed; will be applied again", "seq", h.d.Seq, "subject", h.d.Subject, "err", err)
			wait = min(time.Duration(h.attempts)*time.Second, 30*time.Second)
		}
		h.due = now.Add(wait)
	}
}

// acknowledge sends one acknowledgement covering every held event below
// the first one not applied, once it knows no other instance holds an
// event there (establish).
func (r *Runner) acknowledge(ctx context.Context, a *acks, gen uint64) {
	if len(a.held) == 0 {
		return
	}
	if !a.trusted {
		if err := r.establish(ctx, a, gen); err != nil {
			r.log.Debug("acknowledgements wait: the consumer's state could not be read", "err", err)
			return
		}
	}
	low := uint64(1<<64 - 1)
	for _, h := range a.order {
		if !h.applied {
			low = min(low, h.d.Seq)
		}
	}
	var top *held
	for _, h := range a.order {
		if h.applied && h.msg != nil && h.d.Seq < low && (top == nil || h.d.Seq > top.d.Seq) {
			top = h
		}
	}
	if top == nil || top.dseq <= a.ackDseq {
		// Nothing to acknowledge; or only with a delivery the server would
		// ignore (an event delivered again since): its next delivery will do.
		return
	}
	if err := top.msg.Ack(); err != nil {
		return
	}
	a.acked, a.ackDseq = top.d.Seq, top.dseq
	a.release(top.d.Seq)
}

// establish makes sure no other instance holds an event this applier's
// acknowledgements would cover: it reads the consumer's acknowledgement
// floor and last delivered event, and applies every event between them it
// does not hold (an instance that lost the lease may still apply some of
// them too). Deliveries after that come to this applier in an unbroken run
// of delivery numbers, or take rechecks.
func (r *Runner) establish(ctx context.Context, a *acks, gen uint64) error {
	info, err := a.cons.Info(ctx)
	if err != nil {
		return err
	}
	if f := info.AckFloor.Stream; f > a.acked {
		a.acked = f
		a.release(f)
	}
	from, to := a.acked+1, info.Delivered.Stream
	if to >= from && info.NumAckPending > 0 {
		ms, err := readRange(ctx, r.js, r.stream, r.spec.Filter, from, to)
		if err != nil {
			return err
		}
		var hs []*held
		for _, m := range ms {
			if _, ok := a.held[m.Seq]; ok {
				continue
			}
			m.Gen, m.Delivered, m.Pending = gen, 1, 1
			h := &held{d: m}
			a.hold(h)
			hs = append(hs, h)
		}
		if len(hs) > 0 {
			r.log.Debug("applying events another instance may hold", "from", from, "to", to, "events", len(hs))
			r.settle(a, hs, r.apply(deliveries(hs), gen), time.Now())
		}
	}
	// Deliveries numbered up to the consumer's last one are covered above;
	// those after it must come here without a gap.
	a.trusted, a.nextDseq = true, max(a.nextDseq, info.Delivered.Consumer+1)
	return nil
}

// readRange reads the events of a filter stored from sequence from to
// sequence to, in order.
func readRange(ctx context.Context, js jetstream.JetStream, stream, filter string, from, to uint64) ([]Delivery, error) {
	c, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter},
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: from})
	if err != nil {
		return nil, fmt.Errorf("read %d-%d: %w", from, to, err)
	}
	var out []Delivery
	for {
		b, err := c.Fetch(pullMax, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return nil, fmt.Errorf("read %d-%d: %w", from, to, err)
		}
		n := 0
		for m := range b.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				continue
			}
			if md.Sequence.Stream > to {
				return out, nil
			}
			out = append(out, Delivery{Seq: md.Sequence.Stream, Subject: m.Subject(), Header: m.Headers(), Data: m.Data()})
			if md.Sequence.Stream == to || md.NumPending == 0 {
				return out, nil
			}
		}
		if err := b.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, fmt.Errorf("read %d-%d: %w", from, to, err)
		}
		if n == 0 {
			return out, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
}

func deliveries(hs []*held) []Delivery {
	ds := make([]Delivery, len(hs))
	for i, h := range hs {
		ds[i] = h.d
	}
	return ds
}

// batchApplier applies a batch projection's events in batches and
// acknowledges each batch once (see the top of this file).
func (r *Runner) batchApplier(in <-chan jetstream.Msg, gen uint64, a *acks) {
	defer r.workers.Done()
	idle := time.NewTimer(time.Hour)
	idle.Stop()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	var last time.Time // when the batch before was handed over
	linger := cmp.Or(r.spec.Linger, liveLinger)
	if !a.trusted {
		// Another instance (or this one before) was handed events it did
		// not acknowledge: apply them now rather than after their ack wait.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := r.establish(ctx, a, gen); err != nil {
			r.log.Debug("the events other instances hold wait for their redelivery", "err", err)
		}
		cancel()
		if t, ok := a.nextDue(); ok {
			retry.Reset(time.Until(t))
		}
	}
	for {
		var first jetstream.Msg
		var ok, due bool
		// New events first: a handed-back event that is due joins them.
		select {
		case first, ok = <-in:
		default:
			select {
			case first, ok = <-in:
			case <-retry.C:
				due = true
			}
		}
		if !ok && !due {
			return
		}
		var batch []received
		if !due {
			var l time.Duration
			if time.Since(last) < max(liveBusy, 2*linger) {
				l = linger
			}
			batch = r.gather(in, r.add(nil, first), idle, l)
		}
		now := time.Now()
		hs := a.take(batch, now)
		if len(hs) > 0 {
			r.settle(a, hs, r.apply(deliveries(hs), gen), time.Now())
			last = time.Now()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		r.acknowledge(ctx, a, gen)
		cancel()
		if t, ok := a.nextDue(); ok {
			retry.Reset(time.Until(t))
		}
	}
}
