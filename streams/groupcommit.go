package streams

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"
)

// committer is group commit for appends: appends to different sessions that
// arrive while an earlier batch is being stored are published together as
// one JetStream atomic batch, so with fsync on every write one sync covers
// all of them and durable throughput grows with concurrency.
//
// Each message keeps its own Nats-Expected-Last-Subject-Sequence and
// Nats-Msg-Id. A batch is all or nothing: when it is refused for any reason
// (one stale expectation, a duplicate message id, a timeout), every message
// of it is published again on its own, which gives each its exact answer;
// message ids make a message that was in fact stored count once.
type committer struct {
	js  jetstream.JetStream
	in  chan *appendReq
	max int
	// min is the fewest appends published as one batch; fewer that wait
	// together are published one each, at once.
	min  int
	done chan struct{}
	once sync.Once
	// slots bounds the batches in flight: new ones form while others are
	// being stored.
	slots chan struct{}
	// batches counts the batches of two or more stored, batched their
	// messages, and refused the batches that fell back to one publish per
	// message.
	batches, batched, refused atomic.Uint64
}

type appendReq struct {
	ctx      context.Context
	msg      *nats.Msg
	expected uint64
	msgID    string
	out      chan appendOut
}

type appendOut struct {
	res appendResult
	err error
}

// maxGroup bounds a batch; JetStream accepts at most 1000 messages.
const maxGroup = 256

func newCommitter(js jetstream.JetStream, min int) *committer {
	c := &committer{js: js, in: make(chan *appendReq, 4*maxGroup), max: maxGroup, min: max(min, 2), done: make(chan struct{}), slots: make(chan struct{}, 2)}
	go c.loop()
	return c
}

func (c *committer) close() { c.once.Do(func() { close(c.done) }) }

// append stores one event message through the group.
func (c *committer) append(ctx context.Context, m *nats.Msg, expected uint64, msgID string) (appendResult, error) {
	if len(c.in) == 0 {
		// Nothing waits to share a commit with and a slot is free: publish
		// here, without handing the append to the loop and a flush
		// goroutine and its answer back (one writer at a time, most of
		// all). A slot that a finished batch gives back goes to the loop
		// when it waits for one, so a queue never stalls behind this.
		select {
		case c.slots <- struct{}{}:
			res, err := appendMsg(ctx, c.js, m, expected, msgID)
			<-c.slots
			return res, err
		default:
		}
	}
	r := &appendReq{ctx: ctx, msg: m, expected: expected, msgID: msgID, out: make(chan appendOut, 1)}
	select {
	case c.in <- r:
	case <-ctx.Done():
		return appendResult{}, ctx.Err()
	case <-c.done:
		return appendMsg(ctx, c.js, m, expected, msgID)
	}
	select {
	case o := <-r.out:
		return o.res, o.err
	case <-ctx.Done():
		// The outcome is unknown: the caller sees an error, and a retry with
		// the same request id is answered as the first time.
		return appendResult{}, ctx.Err()
	}
}

func (c *committer) loop() {
	for {
		// Wait for a free slot first: what arrives meanwhile joins the
		// next batch.
		select {
		case c.slots <- struct{}{}:
		case <-c.done:
			return
		}
		var first *appendReq
		select {
		case first = <-c.in:
		case <-c.done:
			return
		}
		batch := []*appendReq{first}
	collect:
		for len(batch) < c.max {
			select {
			case r := <-c.in:
				batch = append(batch, r)
			default:
				break collect
			}
		}
		go func() {
			defer func() { <-c.slots }()
			c.flush(batch)
		}()
	}
}

func (c *committer) single(r *appendReq) {
	res, err := appendMsg(r.ctx, c.js, r.msg, r.expected, r.msgID)
	r.out <- appendOut{res, err}
}

func (c *committer) flush(batch []*appendReq) {
	if len(batch) == 1 {
		c.single(batch[0])
		return
	}
	if len(batch) < c.min {
		c.each(batch)
		return
	}
	msgs := make([]*nats.Msg, len(batch))
	for i, r := range batch {
		m := nats.NewMsg(r.msg.Subject)
		for k, v := range r.msg.Header {
			m.Header[k] = v
		}
		m.Data = r.msg.Data
		m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(r.expected, 10))
		if r.msgID != "" {
			m.Header.Set(jetstream.MsgIDHeader, r.msgID)
		}
		msgs[i] = m
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	ack, err := jetstreamext.PublishMsgBatch(ctx, c.js, msgs)
	cancel()
	if err == nil && ack != nil && ack.BatchSize == uint64(len(batch)) {
		first := ack.Sequence - uint64(len(batch)) + 1
		for i, r := range batch {
			r.out <- appendOut{res: appendResult{Sequence: first + uint64(i)}}
		}
		c.batches.Add(1)
		c.batched.Add(uint64(len(batch)))
		return
	}
	c.refused.Add(1)
	// Refused or unknown: each message on its own gives each its answer.
	c.each(batch)
}

// each publishes every append of batch on its own, all at once, and
// returns when all are answered.
func (c *committer) each(batch []*appendReq) {
	var wg sync.WaitGroup
	for _, r := range batch {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.single(r)
		}()
	}
	wg.Wait()
}
