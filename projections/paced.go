package projections

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// paced is how a batch projection takes its events. While it catches up
// it consumes them as nats.go's Consume does, a pull held open and renewed
// before it runs out, so the server sends without a pause. Once caught up
// it holds no pull open while events keep coming but takes what
// accumulated in one pull (FetchNoWait) every linger, and once a pull
// finds nothing it waits in a pull for one event, so that the first event
// after a quiet spell is applied at once and the status shows the pull
// waiting. A pull that comes back full (it lags again) hands over to
// Consume.
//
// A pull held open has the server send each event the moment it is
// stored: per event and per projection, the server's consumer, the
// client's connection and its handler wake. A pull that finds a burst
// waiting sends it in one go. Three consumers that only take and
// acknowledge cost the writes of 16 clients 202-215 µs of CPU each with
// pulls held open and 170-191 with a pull every 10 ms, against 144-146 for
// the writes alone (design record 0023). A busy batch projection waits as
// long anyway before it folds (liveLinger). In a catch-up, where every
// pull comes back full, a pull answered before the next is sent left the
// server idle between two: bench row 6 caught up at 0.43-0.83 of raw in
// pulls of 1,000 or 8,192 (13 of 36 ratios under its 0.5 target) against
// 0.52-0.77 with Consume (none under).
//
// It is the jetstream.ConsumeContext the runner holds: Drain hands over
// what a pull already brought and stops, Stop drops it, and Closed closes
// once it stopped, and also when the consumer is gone (a rebuild deleted
// it), as Consume's does, so that the runner joins again. Events pulled
// and never handed over (a stop in the middle of a pull, an event on its
// way when Consume was drained) are read from the stream by the applier
// (establish, batchacks.go: the delivery numbers it is given skip them)
// or delivered again after the ack wait.
type paced struct {
	cons   jetstream.Consumer
	handle func(jetstream.Msg)
	log    *slog.Logger
	// every is the pause between two pulls while events keep coming;
	// expiry how long a waiting pull lasts; opts Consume's options.
	every, expiry time.Duration
	opts          []jetstream.PullConsumeOpt

	stop    chan struct{}
	closed  chan struct{}
	once    sync.Once
	discard bool // set before stop is closed
	// switched, when set (tests), is told each switch: to Consume (true)
	// or back to paced pulls.
	switched func(consuming bool)
}

// caughtUpEvery is how often a projection catching up with Consume checks
// whether it has caught up (its last event had none pending after it).
const caughtUpEvery = 100 * time.Millisecond

// pace starts taking the consumer's events and handing each to handle.
func pace(cons jetstream.Consumer, handle func(jetstream.Msg), every, expiry time.Duration, log *slog.Logger,
	opts ...jetstream.PullConsumeOpt) *paced {
	p := newPaced(cons, handle, every, expiry, log, opts...)
	go p.run()
	return p
}

func newPaced(cons jetstream.Consumer, handle func(jetstream.Msg), every, expiry time.Duration, log *slog.Logger,
	opts ...jetstream.PullConsumeOpt) *paced {
	return &paced{cons: cons, handle: handle, log: log, every: every, expiry: expiry, opts: opts,
		stop: make(chan struct{}), closed: make(chan struct{})}
}

// Drain stops pulling; what the current pull brought is handed over first.
func (p *paced) Drain() { p.once.Do(func() { close(p.stop) }) }

// Stop stops pulling and drops what the current pull has not handed over.
func (p *paced) Stop() {
	p.once.Do(func() {
		p.discard = true
		close(p.stop)
	})
}

func (p *paced) Closed() <-chan struct{} { return p.closed }

func (p *paced) stopped() bool {
	select {
	case <-p.stop:
		return true
	default:
		return false
	}
}

// sleep waits d, or until stopped; it reports whether to go on.
func (p *paced) sleep(t *time.Timer, d time.Duration) bool {
	if d <= 0 {
		return !p.stopped()
	}
	t.Reset(d)
	select {
	case <-p.stop:
		t.Stop()
		return false
	case <-t.C:
		return true
	}
}

// run pulls in paces, and consumes while the projection lags, until
// stopped or the consumer is gone.
func (p *paced) run() {
	defer close(p.closed)
	for p.paced() {
		p.log.Debug("lagging: consuming until caught up")
		p.tell(true)
		if !p.consume() {
			return
		}
		p.log.Debug("caught up: pulling in paces")
		p.tell(false)
	}
}

func (p *paced) tell(consuming bool) {
	if p.switched != nil {
		p.switched(consuming)
	}
}

// consume takes the events with Consume until the projection has caught
// up (true) or it stops or the consumer is gone (false).
func (p *paced) consume() bool {
	var mu sync.Mutex
	var last jetstream.Msg
	cc, err := p.cons.Consume(func(msg jetstream.Msg) {
		p.handle(msg)
		mu.Lock()
		last = msg
		mu.Unlock()
	}, p.opts...)
	if err != nil {
		p.log.Debug("consume", "err", err)
		return !consumerGone(err)
	}
	t := time.NewTicker(caughtUpEvery)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			if p.discard {
				cc.Stop()
			} else {
				cc.Drain()
			}
			<-cc.Closed()
			return false
		case <-cc.Closed():
			return false
		case <-t.C:
			mu.Lock()
			msg := last
			mu.Unlock()
			if msg == nil {
				continue
			}
			if md, err := msg.Metadata(); err == nil && md.NumPending == 0 {
				cc.Drain()
				<-cc.Closed()
				return true
			}
		}
	}
}

// paced pulls every p.every while events come and waits in a pull when
// none do, until a pull comes back full (true: the projection lags) or it
// stops or the consumer is gone (false). A join starts here, with a pull
// that takes what is there.
func (p *paced) paced() bool {
	t := time.NewTimer(time.Hour)
	t.Stop()
	idle, failures := false, 0
	var next time.Time
	for p.sleep(t, time.Until(next)) {
		start := time.Now()
		var n int
		var err error
		if idle {
			n, err = p.wait()
		} else {
			n, err = p.pull()
		}
		switch {
		case consumerGone(err):
			p.log.Debug("pull: the consumer is gone", "err", err)
			return false
		case err != nil:
			// The server did not answer (a leader election) or refused the
			// pull: again after a pause that grows while it lasts.
			p.log.Debug("pull", "err", err, "failures", failures+1)
			next = start.Add(min(p.every<<min(failures, 8), 2*time.Second))
			failures++
			continue
		}
		failures = 0
		switch {
		case !idle && n >= pullMax:
			return true
		case n > 0:
			idle, next = false, start.Add(p.every)
		default:
			// Nothing came (or a waiting pull expired): wait in a pull.
			idle, next = true, time.Time{}
		}
	}
	return false
}

// pull takes what is pending, up to pullMax events, and hands each over.
func (p *paced) pull() (int, error) {
	batch, err := p.cons.FetchNoWait(pullMax)
	if err != nil {
		return 0, err
	}
	return p.take(batch)
}

// wait holds a pull for one event open until it comes, the pull expires,
// or the runner stops (the pull is then withdrawn: the server drops a
// request whose reply subject lost its subscriber).
func (p *paced) wait() (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), p.expiry)
	defer cancel() // take returns when stopped: the fetch ends, unsubscribed
	batch, err := p.cons.Fetch(1, jetstream.FetchContext(ctx))
	if err != nil {
		return 0, err
	}
	n, err := p.take(batch)
	if errors.Is(err, context.DeadlineExceeded) {
		err = nil // the pull expired
	}
	return n, err
}

// take hands the events of a pull over as they come. Stopped in the
// middle, it hands over (when draining) what already arrived and leaves
// the rest.
func (p *paced) take(batch jetstream.MessageBatch) (int, error) {
	n := 0
	msgs := batch.Messages()
	for {
		select {
		case msg, ok := <-msgs:
			if !ok {
				return n, batch.Error()
			}
			p.handle(msg)
			n++
			continue
		case <-p.stop:
		}
		if !p.discard {
			n += p.handOver(msgs)
		}
		return n, nil
	}
}

// handOver hands over the events of a pull that already arrived.
func (p *paced) handOver(msgs <-chan jetstream.Msg) int {
	n := 0
	for {
		select {
		case msg, ok := <-msgs:
			if !ok {
				return n
			}
			p.handle(msg)
			n++
		default:
			return n
		}
	}
}

// consumerGone reports an error that means the consumer no longer exists
// (deleted during a pull, or no one answers its pull subject).
func consumerGone(err error) bool {
	return errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) ||
		errors.Is(err, nats.ErrNoResponders)
}
