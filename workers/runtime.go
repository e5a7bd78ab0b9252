package workers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/names"
)

// Item is one work item handed to a Handler.
type Item struct {
	// Subject is strand.work.<tenant>.<kind>[.<more>].
	Subject string
	Tenant  string
	Kind    string
	Header  nats.Header
	Data    []byte
	// Seq is the item's sequence on the work stream.
	Seq uint64
	// Delivered counts deliveries, 1 the first time.
	Delivered uint64
}

// Handler does the work of one item. It returns nil when the item is done
// (it is acknowledged and leaves the queue), Permanent(err) when retrying
// cannot help (dead letter at once), or another error to have the item
// delivered again after a growing delay. It must return soon after ctx
// ends: that is how shutdown hands the item back.
type Handler func(ctx context.Context, it *Item) error

type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent marks an error that retrying cannot fix.
func Permanent(err error) error { return permanent{err} }

// Config configures a Worker.
type Config struct {
	// Name names the worker; its durable consumer is strand_work_<Name>,
	// shared by every process that runs the same worker.
	Name string
	// Stream is the work stream (names.WorkStream).
	Stream string
	// Filter selects the items (strand.work.*.summary). On a work-queue
	// stream the filters of different workers must not overlap.
	Filter string
	// Concurrency bounds the items handled at once by this process
	// (default 4).
	Concurrency int
	// MaxDeliver is how many times an item is tried before it goes to the
	// dead-letter subject (default 5).
	MaxDeliver int
	// AckWait is how long the server waits for a word about an item before
	// it delivers it again (default 30s). A running handler keeps its item
	// with a progress note every AckWait/3.
	AckWait time.Duration
	// Backoff is the delay before try n+1 after try n failed (default
	// 1s·2^(n-1), at most a minute).
	Backoff func(delivered uint64) time.Duration
	// DeadLetter names where an item goes after MaxDeliver failed tries
	// (default strand.dead.<tenant>.<kind>); the dead stream must take it.
	DeadLetter func(it *Item) string
	// Drain is how long Stop lets running handlers finish before it
	// cancels their contexts (default 10s).
	Drain time.Duration
	// FetchWait bounds one pull request (default 1s): how long Stop may
	// wait for the fetch loop.
	FetchWait time.Duration
	Log       *slog.Logger
}

func (c *Config) defaults() {
	if c.Concurrency <= 0 {
		c.Concurrency = 4
	}
	if c.MaxDeliver <= 0 {
		c.MaxDeliver = 5
	}
	if c.AckWait <= 0 {
		c.AckWait = 30 * time.Second
	}
	if c.Backoff == nil {
		c.Backoff = func(n uint64) time.Duration {
			return min(time.Second<<min(n-1, 6), time.Minute)
		}
	}
	if c.DeadLetter == nil {
		c.DeadLetter = func(it *Item) string { return names.DeadSubject(it.Tenant, it.Kind) }
	}
	if c.Drain <= 0 {
		c.Drain = 10 * time.Second
	}
	if c.FetchWait <= 0 {
		c.FetchWait = time.Second
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
}

// Durable returns the consumer name of a worker.
func Durable(name string) string { return names.WorkDurablePrefix + name }

// Worker pulls items from a work-queue stream and hands them to a Handler:
// explicit acknowledgements, retries with growing delays, a bounded number
// of tries and then a dead letter, bounded concurrency, and a shutdown that
// finishes or hands back what it holds.
//
// An item is acknowledged only after its handler returned nil, and with a
// double ack (the server confirms), so an item whose worker dies at any
// point before that is delivered again after AckWait; handlers must
// tolerate doing an item twice in that case (the built-in ones do).
type Worker struct {
	cfg  Config
	js   jetstream.JetStream
	cons jetstream.Consumer
	h    Handler
	log  *slog.Logger

	slots    chan struct{}
	inflight sync.WaitGroup
	// itemCtx ends when the drain period is over.
	itemCtx    context.Context
	cancelItem context.CancelFunc
	stopping   atomic.Bool
	stop       chan struct{}
	done       chan struct{}
	stopOnce   sync.Once
}

// Start creates (or joins) the worker's durable consumer and starts
// pulling.
func Start(ctx context.Context, js jetstream.JetStream, cfg Config, h Handler) (*Worker, error) {
	cfg.defaults()
	if cfg.Name == "" || cfg.Stream == "" || cfg.Filter == "" {
		return nil, errors.New("worker: name, stream and filter are required")
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, cfg.Stream, jetstream.ConsumerConfig{
		Durable:       Durable(cfg.Name),
		Description:   "Strand worker " + cfg.Name,
		FilterSubject: cfg.Filter,
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckWait:       cfg.AckWait,
		// The runtime counts tries itself (MaxDeliver), so that an item
		// whose last try died with its worker still reaches the dead
		// letter instead of staying in the queue unseen.
		MaxDeliver:    -1,
		MaxAckPending: max(cfg.Concurrency*8, 64),
	})
	if err != nil {
		return nil, fmt.Errorf("worker %s: consumer: %w", cfg.Name, err)
	}
	w := &Worker{cfg: cfg, js: js, cons: cons, h: h, log: cfg.Log.With("worker", cfg.Name),
		slots: make(chan struct{}, cfg.Concurrency), stop: make(chan struct{}), done: make(chan struct{})}
	w.itemCtx, w.cancelItem = context.WithCancel(context.Background())
	go w.loop()
	return w, nil
}

// loop pulls as many items as there are free slots.
func (w *Worker) loop() {
	defer close(w.done)
	for !w.stopping.Load() {
		// Wait for at least one free slot.
		select {
		case w.slots <- struct{}{}:
		case <-w.stop:
			return
		}
		free := 1
		for free < w.cfg.Concurrency {
			select {
			case w.slots <- struct{}{}:
				free++
				continue
			default:
			}
			break
		}
		batch, err := w.cons.Fetch(free, jetstream.FetchMaxWait(w.cfg.FetchWait))
		if err != nil {
			w.release(free)
			if !w.stopping.Load() {
				w.log.Warn("fetch failed", "err", err)
				select {
				case <-w.stop:
				case <-time.After(time.Second):
				}
			}
			continue
		}
		got := 0
		for msg := range batch.Messages() {
			got++
			if w.stopping.Load() {
				// Fetched while stopping: hand it straight back.
				_ = msg.Nak()
				w.release(1)
				continue
			}
			w.inflight.Add(1)
			go w.handle(msg)
		}
		w.release(free - got)
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, nats.ErrTimeout) && !w.stopping.Load() {
			w.log.Debug("fetch", "err", err)
		}
	}
}

func (w *Worker) release(n int) {
	for i := 0; i < n; i++ {
		<-w.slots
	}
}

func itemOf(msg jetstream.Msg, md *jetstream.MsgMetadata) *Item {
	it := &Item{Subject: msg.Subject(), Header: msg.Headers(), Data: msg.Data(), Seq: md.Sequence.Stream, Delivered: md.NumDelivered}
	toks := strings.Split(it.Subject, ".")
	if len(toks) >= 4 {
		it.Tenant, it.Kind = toks[2], toks[3]
	}
	return it
}

func (w *Worker) handle(msg jetstream.Msg) {
	defer w.inflight.Done()
	defer w.release(1)
	md, err := msg.Metadata()
	if err != nil {
		w.log.Error("item without metadata", "subject", msg.Subject(), "err", err)
		_ = msg.Term()
		return
	}
	it := itemOf(msg, md)
	if it.Delivered > uint64(w.cfg.MaxDeliver) {
		// The last try did not report back (its worker died).
		w.deadLetter(msg, it, fmt.Sprintf("no outcome after %d tries", w.cfg.MaxDeliver))
		return
	}
	ctx, cancel := context.WithCancel(w.itemCtx)
	defer cancel()
	keep := make(chan struct{})
	go func() {
		t := time.NewTicker(w.cfg.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-keep:
				return
			case <-t.C:
				_ = msg.InProgress()
			}
		}
	}()
	err = w.run(ctx, it)
	close(keep)
	var perm permanent
	switch {
	case err == nil:
		actx, acancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := msg.DoubleAck(actx); err != nil {
			w.log.Warn("ack failed; the item may be done again", "subject", it.Subject, "seq", it.Seq, "err", err)
		}
		acancel()
	case ctx.Err() != nil && w.stopping.Load():
		// Shutting down: hand the item back for another worker.
		_ = msg.Nak()
	case errors.As(err, &perm):
		w.deadLetter(msg, it, err.Error())
	case it.Delivered >= uint64(w.cfg.MaxDeliver):
		w.deadLetter(msg, it, fmt.Sprintf("failed %d times, last: %v", it.Delivered, err))
	default:
		d := w.cfg.Backoff(it.Delivered)
		w.log.Info("item failed; will retry", "subject", it.Subject, "seq", it.Seq, "try", it.Delivered, "in", d, "err", err)
		_ = msg.NakWithDelay(d)
	}
}

// run calls the handler, turning a panic into an error.
func (w *Worker) run(ctx context.Context, it *Item) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return w.h(ctx, it)
}

// deadLetter republishes an item on its dead-letter subject with why, then
// terminates it. If the dead letter cannot be stored, the item is retried
// later instead of being lost.
func (w *Worker) deadLetter(msg jetstream.Msg, it *Item, reason string) {
	dl := nats.NewMsg(w.cfg.DeadLetter(it))
	for k, v := range it.Header {
		if !strings.HasPrefix(k, "Nats-") {
			dl.Header[k] = v
		}
	}
	if len(reason) > 1024 {
		reason = reason[:1024]
	}
	dl.Header.Set(names.HeaderDeadReason, strings.ReplaceAll(reason, "\n", " "))
	dl.Header.Set(names.HeaderDeadDeliveries, strconv.FormatUint(it.Delivered, 10))
	dl.Header.Set(names.HeaderDeadSubject, it.Subject)
	dl.Header.Set(names.HeaderDeadSeq, strconv.FormatUint(it.Seq, 10))
	dl.Header.Set(names.HeaderDeadWorker, w.cfg.Name)
	dl.Data = it.Data
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := w.js.PublishMsg(ctx, dl, jetstream.WithMsgID(fmt.Sprintf("dead.%s.%d", w.cfg.Stream, it.Seq))); err != nil {
		w.log.Error("dead letter failed; will retry the item", "subject", it.Subject, "seq", it.Seq, "err", err)
		_ = msg.NakWithDelay(w.cfg.Backoff(it.Delivered))
		return
	}
	w.log.Warn("item dead-lettered", "subject", it.Subject, "seq", it.Seq, "to", dl.Subject, "reason", reason)
	_ = msg.TermWithReason(reason)
}

// Stop stops pulling, lets running handlers finish for the drain period,
// then cancels them (their items are handed back) and waits for them.
func (w *Worker) Stop() {
	w.stopOnce.Do(func() {
		w.stopping.Store(true)
		close(w.stop)
		<-w.done
		finished := make(chan struct{})
		go func() {
			w.inflight.Wait()
			close(finished)
		}()
		select {
		case <-finished:
		case <-time.After(w.cfg.Drain):
			w.log.Info("drain period over; handing back running items")
			w.cancelItem()
			<-finished
		}
		w.cancelItem()
	})
}
