package streams

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
)

// RequestBucket indexes the request ids that were applied: the key is the
// message id an append carried (base64url, see requestKey), the value the
// stream sequence of the message it produced. Entries expire after
// Config.RequestWindow.
//
// The index is a read model of the event stream, filled by a durable
// headers-only consumer (requestIndexer), never by the write path: an append costs no extra write, and an event whose index
// entry is not written yet (the indexer's lag, milliseconds) is still
// recognised by the session's last RecentRequests request ids and by the
// stream's duplicate window.
const RequestBucket = "strand_requests"

// DefaultRequestWindow is how long an applied request id is recognised
// when Config.RequestWindow is not set.
const DefaultRequestWindow = 24 * time.Hour

// eventIndexDurable is the durable consumer that fills the request index.
// Source requests need no index: a source's history holds its request ids
// (sources.go).
const eventIndexDurable = "strand_request_index"

// oldSourceIndexDurable indexed the source stream before the source's own
// history answered its retries; Open deletes it where it is left.
const oldSourceIndexDurable = "strand_source_request_index"

// requestKey is the index key of a message id: base64url keeps every
// request id (which may hold characters a key may not) a valid key.
func requestKey(msgID string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(msgID))
}

func requestBucketConfig(c Config) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      RequestBucket,
		Description: "Strand applied request ids: message id -> stream sequence (a read model of the event and source streams)",
		History:     1,
		TTL:         c.RequestWindow,
		Storage:     jetstream.FileStorage,
		Replicas:    c.Replicas,
	}
}

// requestSequence returns the stream sequence of the message that an
// applied request id produced, if the index knows it.
func (st *Store) requestSequence(ctx context.Context, msgID string) (uint64, bool, error) {
	if msgID == "" {
		return 0, false, nil
	}
	var e jetstream.KeyValueEntry
	err := retry(ctx, "look up request id", func(ctx context.Context) error {
		var err error
		e, err = st.requests.Get(ctx, requestKey(msgID))
		return err
	})
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, false, nil
	}
	if domain.ErrorCode(err) == domain.CodeUnavailable {
		return 0, false, err
	}
	if err != nil {
		return 0, false, fmt.Errorf("look up request id: %w", err)
	}
	seq, err := strconv.ParseUint(string(e.Value()), 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("request index entry %q: %w", e.Key(), err)
	}
	return seq, true, nil
}

// requestIndexer keeps RequestBucket up to date from one stream. Every
// instance runs one per stream on the same durable consumer, so each
// message is indexed by one of them; an entry written twice is the same.
type requestIndexer struct {
	js      jetstream.JetStream
	kv      jetstream.KeyValue
	stream  string
	durable string
	window  time.Duration
	log     *slog.Logger

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

func newRequestIndexer(js jetstream.JetStream, kv jetstream.KeyValue, stream, durable string, window time.Duration, log *slog.Logger) *requestIndexer {
	x := &requestIndexer{js: js, kv: kv, stream: stream, durable: durable, window: window, log: log.With("indexer", durable),
		stop: make(chan struct{}), done: make(chan struct{})}
	go x.run()
	return x
}

func (x *requestIndexer) close() {
	x.once.Do(func() { close(x.stop) })
	<-x.done
}

// run indexes until closed. It does not hold a pull open on the consumer:
// it takes what accumulated every indexPoll, in fetches of up to
// indexFetch messages, so that each message costs the server a delivery
// within a burst rather than a delivery of its own as it is stored. One
// delivery per append, each waking this consumer, its connection and the
// server's consumer, was about a seventh of the CPU of a small write from
// 16 clients (docs/benchmarks.md, sixteenth session). The index lags by up to
// indexPoll more; what it has not recorded yet is recognised by the
// session's last RecentRequests request ids and the stream's duplicate
// window, as before.
func (x *requestIndexer) run() {
	defer close(x.done)
	var cons jetstream.Consumer
	failures := 0
	for {
		err := x.poll(&cons)
		wait := indexPoll
		if err != nil {
			// The server did not answer (a leader election on a cluster),
			// refused the pull (too many events still unacknowledged), or
			// the consumer is gone (deleted: then it is made again one
			// window back). Wait and try again; the durable consumer keeps
			// its place, so nothing is skipped.
			x.log.Debug("index poll", "err", err)
			if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, nats.ErrNoResponders) {
				cons = nil
			}
			wait = max(wait, backoff(failures, 50*time.Millisecond, 2*time.Second))
			failures++
		} else {
			failures = 0
		}
		if !sleepOrStop(x.stop, wait) {
			return
		}
	}
}

// indexPoll is how often an instance takes what its request index has not
// recorded; indexFetch bounds one fetch.
const (
	indexPoll  = 100 * time.Millisecond
	indexFetch = 1000
)

// poll opens the consumer where it is not open and indexes what is
// pending, fetch after fetch, until a fetch comes back short or the
// indexer stops.
func (x *requestIndexer) poll(cons *jetstream.Consumer) error {
	if *cons == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := x.consumer(ctx)
		cancel()
		if err != nil {
			return err
		}
		*cons = c
	}
	for {
		batch, err := (*cons).FetchNoWait(indexFetch)
		if err != nil {
			return err
		}
		n := 0
		for msg := range batch.Messages() {
			x.index(msg)
			n++
		}
		if err := batch.Error(); err != nil {
			return err
		}
		if n < indexFetch {
			return nil
		}
		select {
		case <-x.stop:
			return nil
		default:
		}
	}
}

// consumer opens the durable consumer, creating it on first use to start
// at the messages of the last window (older ones could not be retried).
func (x *requestIndexer) consumer(ctx context.Context) (jetstream.Consumer, error) {
	cons, err := x.js.Consumer(ctx, x.stream, x.durable)
	if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return cons, err
	}
	start := time.Now().Add(-x.window)
	cons, err = x.js.CreateConsumer(ctx, x.stream, jetstream.ConsumerConfig{
		Durable:       x.durable,
		Description:   "Strand request index (" + RequestBucket + ")",
		DeliverPolicy: jetstream.DeliverByStartTimePolicy,
		OptStartTime:  &start,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		MaxAckPending: 4096,
		HeadersOnly:   true,
	})
	if errors.Is(err, jetstream.ErrConsumerExists) {
		return x.js.Consumer(ctx, x.stream, x.durable)
	}
	return cons, err
}

// index records one message's id. The put is pipelined: the message is
// acknowledged when the put is, and redelivered if it fails.
func (x *requestIndexer) index(msg jetstream.Msg) {
	id := msg.Headers().Get(nats.MsgIdHdr)
	meta, err := msg.Metadata()
	if id == "" || err != nil || time.Since(meta.Timestamp) >= x.window {
		_ = msg.Ack()
		return
	}
	subject := "$KV." + RequestBucket + "." + requestKey(id)
	f, err := x.js.PublishAsync(subject, []byte(strconv.FormatUint(meta.Sequence.Stream, 10)))
	if err != nil {
		_ = msg.NakWithDelay(100 * time.Millisecond)
		return
	}
	go func() {
		select {
		case <-f.Ok():
			_ = msg.Ack()
		case <-f.Err():
			_ = msg.NakWithDelay(100 * time.Millisecond)
		case <-x.stop:
		}
	}()
}

// RequestIndexLag is how many messages of the event stream the request
// index has not recorded yet (tests wait for 0).
func (st *Store) RequestIndexLag(ctx context.Context) (uint64, error) {
	cons, err := st.js.Consumer(ctx, names.EventStream, eventIndexDurable)
	if err != nil {
		return 0, domain.Wrap(err, "request index consumer")
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return 0, domain.Wrap(err, "request index consumer")
	}
	return info.NumPending + uint64(info.NumAckPending), nil
}

// backoff is the pause before retry attempt+1: base doubled on each
// attempt up to limit, with jitter (half of it random) so that many
// waiters do not retry together.
func backoff(attempt int, base, limit time.Duration) time.Duration {
	d := base << min(attempt, 20)
	if d > limit || d <= 0 {
		d = limit
	}
	return d/2 + rand.N(d/2+1)
}

// sleepOrStop waits d, or returns false at once when stop is closed.
func sleepOrStop(stop <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-stop:
		return false
	case <-t.C:
		return true
	}
}
