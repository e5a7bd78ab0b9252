package workers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/names"
	"github.com/strand-dev/strand/streams/streamstest"
)

func startWorker(t *testing.T, js jetstream.JetStream, cfg Config, h Handler) *Worker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if cfg.Stream == "" {
		cfg.Stream = names.WorkStream
	}
	w, err := Start(ctx, js, cfg, h)
	if err != nil {
		t.Fatalf("start worker: %v", err)
	}
	t.Cleanup(w.Stop)
	return w
}

func enqueue(t *testing.T, js jetstream.JetStream, subject, body string) uint64 {
	t.Helper()
	seq, err := Enqueue(context.Background(), js, subject, []byte(body), "")
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

func waitFor(t *testing.T, what string, limit time.Duration, ok func() bool) {
	t.Helper()
	streamstest.Wait(t, limit, what, ok)
}

// consumer reads the state of a worker's durable consumer.
func consumer(t *testing.T, js jetstream.JetStream, name string) *jetstream.ConsumerInfo {
	t.Helper()
	c, err := js.Consumer(context.Background(), names.WorkStream, Durable(name))
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// workLeft counts the items still on the work stream.
func workLeft(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), names.WorkStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// TestWorker_Redelivery kills a worker in the middle of an item: its
// connection goes away without a word about the item. Another worker gets
// the item after AckWait and does it, once.
func TestWorker_Redelivery(t *testing.T) {
	env := streamstest.Start(t)
	js := env.Store.JetStream()
	ncA, err := env.Server.Connect()
	if err != nil {
		t.Fatal(err)
	}
	jsA, _ := jetstream.New(ncA)
	cfg := Config{Name: "redeliver", Filter: "strand.work.acme.redeliver", AckWait: time.Second, Drain: 100 * time.Millisecond}

	started := make(chan uint64, 1)
	var doneBy sync.Map
	var done atomic.Int32
	a := startWorker(t, jsA, cfg, func(ctx context.Context, it *Item) error {
		started <- it.Delivered
		<-ctx.Done() // never finishes: the process is about to die
		return ctx.Err()
	})
	seq := enqueue(t, js, "strand.work.acme.redeliver", "job-1")
	select {
	case n := <-started:
		if n != 1 {
			t.Fatalf("first delivery numbered %d", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("worker A never got the item")
	}
	ncA.Close() // killed: no ack, no nak
	a.Stop()

	b := startWorker(t, js, cfg, func(ctx context.Context, it *Item) error {
		doneBy.Store(it.Delivered, it.Seq)
		done.Add(1)
		return nil
	})
	_ = b
	waitFor(t, "item redelivered and done", 15*time.Second, func() bool { return done.Load() == 1 })
	if v, ok := doneBy.Load(uint64(2)); !ok || v.(uint64) != seq {
		t.Errorf("item done at delivery %v, want delivery 2 of seq %d", v, seq)
	}
	// Acknowledged: it leaves the work-queue stream, so nothing is left
	// to deliver again, and the consumer has nothing outstanding.
	waitFor(t, "queue empty, nothing outstanding", 5*time.Second, func() bool {
		return workLeft(t, js) == 0 && consumer(t, js, cfg.Name).NumAckPending == 0
	})
	if info := consumer(t, js, cfg.Name); info.Delivered.Consumer != 2 {
		t.Errorf("item delivered %d times, want 2 (to A, then to B)", info.Delivered.Consumer)
	}
	if n := done.Load(); n != 1 {
		t.Errorf("item done %d times, want 1", n)
	}
}

func TestWorker_RetryThenDeadLetter(t *testing.T) {
	env := streamstest.Start(t)
	js := env.Store.JetStream()
	var tries atomic.Int32
	var gaps []time.Duration
	var mu sync.Mutex
	last := time.Now()
	startWorker(t, js, Config{Name: "flaky", Filter: "strand.work.*.flaky", MaxDeliver: 3,
		Backoff: func(n uint64) time.Duration { return time.Duration(n) * 100 * time.Millisecond }},
		func(ctx context.Context, it *Item) error {
			mu.Lock()
			gaps = append(gaps, time.Since(last))
			last = time.Now()
			mu.Unlock()
			tries.Add(1)
			if string(it.Data) == "hopeless" {
				return Permanent(errors.New("bad input"))
			}
			return fmt.Errorf("try %d failed", it.Delivered)
		})
	enqueue(t, js, "strand.work.acme.flaky", "flaky")
	dead := deadLetters(t, js, "strand.dead.acme.flaky", 1)
	if got := tries.Load(); got != 3 {
		t.Errorf("tries = %d, want 3 (MaxDeliver)", got)
	}
	mu.Lock()
	if len(gaps) == 3 && (gaps[2] < 180*time.Millisecond || gaps[2] < gaps[1]) {
		t.Errorf("delays between tries %v: want them to grow (100ms, 200ms)", gaps[1:])
	}
	mu.Unlock()
	m := dead[0]
	if m.Header.Get(names.HeaderDeadDeliveries) != "3" || m.Header.Get(names.HeaderDeadSubject) != "strand.work.acme.flaky" ||
		m.Header.Get(names.HeaderDeadReason) == "" || string(m.Data) != "flaky" {
		t.Errorf("dead letter %v %q: want deliveries 3, the subject, a reason and the body", m.Header, m.Data)
	}
	waitFor(t, "item removed from the queue", 5*time.Second, func() bool { return workLeft(t, js) == 0 })

	tries.Store(0)
	enqueue(t, js, "strand.work.acme.flaky", "hopeless")
	dead = deadLetters(t, js, "strand.dead.acme.flaky", 2)
	if got := tries.Load(); got != 1 {
		t.Errorf("permanent failure tried %d times, want 1", got)
	}
	if dead[1].Header.Get(names.HeaderDeadDeliveries) != "1" {
		t.Errorf("permanent failure: deliveries %q, want 1", dead[1].Header.Get(names.HeaderDeadDeliveries))
	}
}

// deadLetters waits until a dead-letter subject holds n messages and
// returns them.
func deadLetters(t *testing.T, js jetstream.JetStream, subject string, n int) []*jetstream.RawStreamMsg {
	t.Helper()
	s, err := js.Stream(context.Background(), names.DeadStream)
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	waitFor(t, "dead letters", 15*time.Second, func() bool {
		out = out[:0]
		for seq := uint64(1); ; seq++ {
			m, err := s.GetMsg(context.Background(), seq)
			if err != nil {
				break
			}
			if m.Subject == subject {
				out = append(out, m)
			}
		}
		return len(out) >= n
	})
	return out
}

func TestWorker_ConcurrencyAndShutdown(t *testing.T) {
	env := streamstest.Start(t)
	js := env.Store.JetStream()
	var running, peak, done atomic.Int32
	release := make(chan struct{})
	w := startWorker(t, js, Config{Name: "slow", Filter: "strand.work.*.slow", Concurrency: 3, Drain: 5 * time.Second},
		func(ctx context.Context, it *Item) error {
			n := running.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			defer running.Add(-1)
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
			done.Add(1)
			return nil
		})
	for i := 0; i < 10; i++ {
		enqueue(t, js, "strand.work.acme.slow", fmt.Sprint(i))
	}
	// Three running, every slot taken (the fetch loop waits for one), and
	// the server has handed out three items with no pull request open: no
	// fourth can start until one ends.
	waitFor(t, "three running, holding every slot, no pull open", 10*time.Second, func() bool {
		info := consumer(t, js, "slow")
		return running.Load() == 3 && len(w.slots) == cap(w.slots) && info.NumAckPending == 3 && info.NumWaiting == 0
	})
	if p := peak.Load(); p != 3 {
		t.Fatalf("peak concurrency %d, want 3", p)
	}
	// Shut down while three items run: once the fetch loop has stopped,
	// they finish within the drain period and nothing more is taken.
	stopped := make(chan struct{})
	go func() { w.Stop(); close(stopped) }()
	waitFor(t, "the fetch loop stopped", 10*time.Second, func() bool {
		select {
		case <-w.done:
			return true
		default:
			return false
		}
	})
	close(release)
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("Stop did not return")
	}
	if d := done.Load(); d != 3 {
		t.Errorf("%d items done by the stopped worker, want the 3 it held", d)
	}
	waitFor(t, "7 items left", 5*time.Second, func() bool { return workLeft(t, js) == 7 })

	// A worker whose handler outlives the drain period hands its items
	// back, and another worker does them.
	var held atomic.Int32
	stuck := startWorker(t, js, Config{Name: "slow", Filter: "strand.work.*.slow", Concurrency: 2, Drain: 200 * time.Millisecond},
		func(ctx context.Context, it *Item) error {
			held.Add(1)
			<-ctx.Done()
			return ctx.Err()
		})
	waitFor(t, "the stuck worker holds two items", 10*time.Second, func() bool { return held.Load() == 2 })
	stuck.Stop()
	var later atomic.Int32
	startWorker(t, js, Config{Name: "slow", Filter: "strand.work.*.slow", Concurrency: 4},
		func(ctx context.Context, it *Item) error { later.Add(1); return nil })
	waitFor(t, "the rest done promptly", 5*time.Second, func() bool { return later.Load() == 7 })
}
