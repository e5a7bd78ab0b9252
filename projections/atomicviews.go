package projections

import (
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"
)

// minAtomicViews is the fewest changed views of a batch written as atomic
// batches of the bucket's stream rather than one KV request each, when
// ShareSyncs is on.
//
// A server that fsyncs every write syncs each stored message of a stream
// on its own, one after another, so a batch of N views cost N syncs (0.2-5
// ms each on the bench's disk): the catch-up with fsync waited on them. An
// atomic batch is stored with one sync (as group commit does for events,
// streams/groupcommit.go), and each message in it keeps its own expected
// revision, so a view another instance wrote meanwhile refuses the whole
// batch, which then goes view by view as before (writeEach): the outcome
// of every view is the same as with one request each. The batch itself
// costs a staging store on one server (created, synced, removed: 20-30 ms
// under the bench machine's load, BenchmarkSessions_BatchWrites), worth it
// from about ten views on.
var minAtomicViews = 8 // a variable for tests only

// ShareSyncs makes a catch-up write its views (and their commit-index
// entries) as atomic batches: one sync for many on a server that fsyncs
// every write, one replication round for many on a cluster. A single
// server that does not fsync stages each atomic batch in a store of its
// own (a few milliseconds), more than the writes it saves: leave it off
// there (as streams.Config does group commit). Call it before Start.
func (p *Sessions) ShareSyncs() { p.share = true }

// ShareSyncs is Sessions.ShareSyncs for the feed's chunks.
func (a *Activity) ShareSyncs() { a.share = true }

// maxAtomicMsgs bounds the messages of one atomic batch (JetStream takes
// at most 1,000 by default).
const maxAtomicMsgs = 1000

// writeAtomic writes the changed views of a batch, with their commit-index
// entries before them, as atomic batches of at most maxAtomicMsgs
// messages. It returns the views still to write one by one: those of a
// batch the server refused or did not answer, or all of them when the
// bucket does not take atomic batches.
func (p *Sessions) writeAtomic(ctx context.Context, changed []*batchView, gen uint64) []*batchView {
	if !p.share || !p.atomic {
		return changed
	}
	var rest, chunk []*batchView
	var msgs []*nats.Msg
	flush := func() {
		if len(chunk) == 0 {
			return
		}
		if !p.publishViews(ctx, chunk, msgs) {
			rest = append(rest, chunk...)
		}
		chunk, msgs = nil, nil
	}
	for _, bv := range changed {
		vm, ok := p.viewMsgs(bv, gen)
		if !ok {
			continue // the test hook stopped it: bv.err says so
		}
		if len(msgs)+len(vm) > maxAtomicMsgs {
			flush()
		}
		if len(vm) > maxAtomicMsgs {
			rest = append(rest, bv)
			continue
		}
		chunk, msgs = append(chunk, bv), append(msgs, vm...)
	}
	flush()
	return rest
}

// viewMsgs returns the messages that write a view: its commit-index
// entries, then the view expecting its revision (none for a new one).
func (p *Sessions) viewMsgs(bv *batchView, gen uint64) ([]*nats.Msg, bool) {
	var msgs []*nats.Msg
	for _, c := range bv.commits {
		subject := kvSubject(commitKey(bv.v.Tenant, c))
		if err := p.hook(subject); err != nil {
			bv.err = err
			return nil, false
		}
		// NewMsg, not a bare Msg: the batch publish sets headers on every
		// message (a nil header map panicked: both instances of
		// TestFault_BackgroundWorkThroughFailover died on a review's commit).
		m := nats.NewMsg(subject)
		m.Data = []byte(bv.v.ID)
		msgs = append(msgs, m)
	}
	subject := kvSubject(bv.key)
	if err := p.hook(subject); err != nil {
		bv.err = err
		return nil, false
	}
	bv.v.Gen = gen
	body, _ := json.Marshal(bv.v)
	m := nats.NewMsg(subject)
	m.Data = body
	m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(bv.rev, 10))
	return append(msgs, m), true
}

// publishViews publishes one atomic batch and, once stored, records each
// view's new revision (the sequence of its message). It reports whether
// the batch was stored.
func (p *Sessions) publishViews(ctx context.Context, chunk []*batchView, msgs []*nats.Msg) bool {
	if len(msgs) < 2 {
		return false
	}
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ack, err := jetstreamext.PublishMsgBatch(actx, p.js, msgs)
	if err != nil || ack == nil || ack.BatchSize != uint64(len(msgs)) {
		p.log.Debug("atomic batch of views refused; writing them one by one", "views", len(chunk), "err", err)
		return false
	}
	seq := ack.Sequence - uint64(len(msgs))
	for _, bv := range chunk {
		seq += uint64(len(bv.commits)) + 1
		bv.rev = seq
	}
	p.atomicViews.Add(uint64(len(chunk)))
	return true
}

// allowAtomic turns on atomic batches on a bucket's stream (a KV bucket's
// configuration cannot ask for them) and reports whether they are on. A
// server that refuses leaves the views written one request each.
func allowAtomic(ctx context.Context, js jetstream.JetStream, stream string, log *slog.Logger) bool {
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := js.Stream(actx, stream)
	if err != nil {
		log.Debug("atomic batches: no stream", "stream", stream, "err", err)
		return false
	}
	cfg := st.CachedInfo().Config
	if cfg.AllowAtomicPublish {
		return true
	}
	cfg.AllowAtomicPublish = true
	if _, err := js.UpdateStream(actx, cfg); err != nil {
		log.Debug("atomic batches: not allowed", "stream", stream, "err", err)
		return false
	}
	return true
}
