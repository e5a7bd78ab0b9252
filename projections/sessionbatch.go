package projections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
)

// batchView is one view of a batch: loaded once, folded in memory with
// every event of the batch that follows on from it, written once.
type batchView struct {
	key string
	// idx are the batch's events of this view, in stream order.
	idx []int
	v   View
	rev uint64
	// before is the review queue as loaded, for the work items.
	before []PendingRef
	// folded are the events applied (or found applied already); rest
	// those left for apply, one by one, from the first that does not
	// follow on (a gap).
	folded, rest []int
	changed      bool
	// deferNew: the batch is a catch-up's, requests new in it get their
	// items later; remind: one did, so an event of the view comes again
	// (ErrRevisit).
	deferNew, remind bool
	// commits are the commit ids folded (for the commit index).
	commits []string
	err     error
}

// applyBatch folds a batch of events (in stream order) into the views they
// touch, in memory, and writes each view once, with its revision as the
// expectation, as apply does for one event; the writes of a batch are in
// flight together. A view's events are folded as long as they follow on
// from it; a redelivered one is skipped, and from a gap on, or for every
// event of a view whose write lost a race, each event goes through apply
// (which reloads the view) one by one. A batch that stops half-way (a
// crash, a failed write) leaves each view either as it was or with all of
// its folded events, never acknowledged past what is written: the events
// come again and the views skip what they have.
func (p *Sessions) applyBatch(ctx context.Context, ds []Delivery) []error {
	errs := make([]error, len(ds))
	evs := make([]*domain.Event, len(ds))
	versions := make([]uint64, len(ds))
	byKey := map[string]*batchView{}
	var views []*batchView
	for i, d := range ds {
		ev, tenant, id, version, decErr := headOf(d)
		if decErr != nil && (id == "" || version == 0) {
			p.log.Error("session view: undecodable event stepped over", "seq", d.Seq, "subject", d.Subject, "err", decErr)
			continue
		}
		evs[i], versions[i] = ev, version
		key := tenant + "." + id
		bv := byKey[key]
		if bv == nil {
			bv = &batchView{key: key}
			byKey[key] = bv
			views = append(views, bv)
		}
		bv.idx = append(bv.idx, i)
	}
	gen := uint64(0)
	if len(ds) > 0 {
		gen = ds[0].Gen
	}
	// Views not in this instance's cache (the first batch after a start)
	// are read from the bucket, several at a time.
	var misses []*batchView
	for _, bv := range views {
		if c, ok := p.cache.Get(bv.key); ok {
			bv.v, bv.rev = c.v, c.rev
		} else {
			misses = append(misses, bv)
		}
	}
	p.loadMany(ctx, misses)
	for _, bv := range views {
		if bv.err == nil {
			p.foldBatchView(bv, ds, evs, versions, gen)
		}
	}
	// Work items go out before the view that records them (as apply
	// does); most views change no request and send nothing. In a
	// catch-up (events still pending after the batch) the requests that
	// entered a view's queue in this batch wait (WorkConfig.sync). A view
	// that no event changed may still owe items: an event handed back
	// for them (ErrRevisit) is here again.
	behind := len(ds) > 0 && ds[len(ds)-1].Pending > 0
	var work []*batchView
	for _, bv := range views {
		if bv.err != nil {
			continue
		}
		bv.deferNew = behind
		bv.remind = behind && p.work.deferred(&bv.v, bv.before)
		if p.work.needed(&bv.v, bv.before, bv.deferNew) {
			work = append(work, bv)
		}
	}
	p.work.syncAll(ctx, gen, work, p.share)
	for _, bv := range work {
		bv.changed = true // items published or closed: the view records them
	}
	p.writeBatch(ctx, views, gen)
	for _, bv := range views {
		p.settleView(ctx, bv, ds, errs)
	}
	return errs
}

// foldBatchView folds a view's events of the batch in memory.
func (p *Sessions) foldBatchView(bv *batchView, ds []Delivery, evs []*domain.Event, versions []uint64, gen uint64) {
	v := &bv.v
	if v.Gen > gen {
		bv.err = ErrStaleGeneration
		return
	}
	if v.Gen < gen {
		*v = View{} // an older generation's view: rebuild it from event 1
	}
	bv.before = v.Pending
	for n, i := range bv.idx {
		if v.Version >= versions[i] {
			bv.folded = append(bv.folded, i) // already folded: a redelivery
			continue
		}
		if v.Version+1 != versions[i] {
			bv.rest = bv.idx[n:]
			return
		}
		if ev := evs[i]; ev != nil {
			fold(v, ev, ds[i].Seq)
			if ev.Type == domain.CommitCreated && ev.Commit != nil {
				bv.commits = append(bv.commits, ev.Commit.ID)
			}
		} else {
			v.Version, v.Applied = versions[i], ds[i].Seq
		}
		bv.folded, bv.changed = append(bv.folded, i), true
	}
}

// writeBatch writes the changed views of a batch and their commit-index
// entries, viewWorkers views at a time, each view expecting its revision
// (a create expecting none), and records each view's outcome in it. The
// writes are the KV's own requests (not asynchronous publishes): on a
// cluster they ride through a leader election as every other KV write of
// the service does.
func (p *Sessions) writeBatch(ctx context.Context, views []*batchView, gen uint64) {
	var changed []*batchView
	for _, bv := range views {
		if bv.err == nil && bv.changed {
			changed = append(changed, bv)
		}
	}
	if len(changed) >= minAtomicViews {
		changed = p.writeAtomic(ctx, changed, gen)
	}
	p.writeEach(ctx, changed, gen)
}

// writeEach writes views one KV request each, viewWorkers at a time.
func (p *Sessions) writeEach(ctx context.Context, changed []*batchView, gen uint64) {
	parallel(changed, func(bv *batchView) {
		// The commit-index entries first: a view written with its
		// commits' events folded skips them when they come again.
		for _, c := range bv.commits {
			if err := p.hook(kvSubject(commitKey(bv.v.Tenant, c))); err != nil {
				bv.err = err
				return
			}
			if _, err := p.kv.Put(ctx, commitKey(bv.v.Tenant, c), []byte(bv.v.ID)); err != nil {
				bv.err = err
				return
			}
		}
		if err := p.hook(kvSubject(bv.key)); err != nil {
			bv.err = err
			return
		}
		bv.v.Gen = gen
		body, _ := json.Marshal(bv.v)
		var rev uint64
		var err error
		if bv.rev == 0 {
			rev, err = p.kv.Create(ctx, bv.key, body)
		} else {
			rev, err = p.kv.Update(ctx, bv.key, body, bv.rev)
		}
		if err != nil {
			bv.err = err
			return
		}
		bv.rev = rev
	})
}

// hook runs the test hook of writes, if any.
func (p *Sessions) hook(subject string) error {
	if p.writeHook == nil {
		return nil
	}
	return p.writeHook(subject)
}

// kvSubject is the subject of a key of the views bucket.
func kvSubject(key string) string { return "$KV." + names.SessionsBucket + "." + key }

// settleView sets the errors of a view's events once its write is done:
// what is written is applied; a lost race, and the events from a gap on,
// go through apply one by one.
func (p *Sessions) settleView(ctx context.Context, bv *batchView, ds []Delivery, errs []error) {
	var again []int
	switch {
	case bv.err == nil:
		if bv.changed {
			p.cache.Add(bv.key, cachedView{bv.v, bv.rev})
		}
		if bv.remind && len(bv.folded) > 0 {
			errs[bv.folded[len(bv.folded)-1]] = ErrRevisit
		}
		again = bv.rest
	case isWrongLastSeq(bv.err) || errors.Is(bv.err, jetstream.ErrKeyExists) || errors.Is(bv.err, jetstream.ErrKeyRevisionMismatch):
		// Another instance wrote the view meanwhile (or this instance's
		// cache was stale).
		p.cache.Remove(bv.key)
		again = bv.idx
	default:
		p.cache.Remove(bv.key)
		for _, i := range bv.idx {
			errs[i] = bv.err
		}
		return
	}
	for _, i := range again {
		errs[i] = p.apply(ctx, ds[i])
	}
}

// isWrongLastSeq reports a write refused by its expected revision (10071;
// 10164 on a replicated stream).
func isWrongLastSeq(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// parallel runs f for every view, viewWorkers at a time.
func parallel(views []*batchView, f func(*batchView)) {
	if len(views) == 1 {
		f(views[0])
		return
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, viewWorkers)
	for _, bv := range views {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			f(bv)
		}()
	}
	wg.Wait()
}

// loadMany reads the views of a batch that are not in the cache: a few one
// request each, more as batched direct gets of the bucket's stream
// (manyViews a request), which answer every key of a request in one
// stream of replies. A catch-up's first batch after a start touches up to
// one view per session: with 1,000 sessions, reading them one by one took
// 66-237 ms (32 at a time) of the applier's path (bench row 6). What a
// batched read cannot answer is read one by one; a view the server left
// out (a reply cut at its byte limit) reads as absent, which only costs
// speed: its events then do not follow on from it, and go through apply,
// which reads the view again.
func (p *Sessions) loadMany(ctx context.Context, misses []*batchView) {
	one := func(bv *batchView) { bv.v, bv.rev, bv.err = p.load(ctx, bv.key, false) }
	if len(misses) < minManyViews {
		parallel(misses, one)
		return
	}
	prefix := kvSubject("")
	var rest []*batchView
	for start := 0; start < len(misses); start += manyViews {
		chunk := misses[start:min(start+manyViews, len(misses))]
		if err := p.getMany(ctx, prefix, chunk); err != nil {
			p.log.Debug("session views: batched read failed; reading one by one", "views", len(chunk), "err", err)
			rest = append(rest, chunk...)
		}
	}
	parallel(rest, one)
}

// getMany reads a chunk of views (not read yet: absent until found) with
// one batched direct get. A key with no message, or whose last is a delete
// marker, stays absent (as load has it). On an error the chunk is to be
// read again one by one (which sets every view of it).
func (p *Sessions) getMany(ctx context.Context, prefix string, chunk []*batchView) error {
	byKey := make(map[string]*batchView, len(chunk))
	subjects := make([]string, len(chunk))
	for i, bv := range chunk {
		byKey[bv.key] = bv
		subjects[i] = prefix + bv.key
	}
	msgs, err := jetstreamext.GetLastMsgsFor(ctx, p.js, "KV_"+p.kv.Bucket(), subjects)
	if err != nil {
		return err
	}
	for m, err := range msgs {
		if errors.Is(err, jetstreamext.ErrNoMessages) {
			break // none of the keys has a message
		}
		if err != nil {
			return err
		}
		bv := byKey[strings.TrimPrefix(m.Subject, prefix)]
		if bv == nil {
			continue
		}
		if op := m.Header.Get(kvOperationHeader); op == "DEL" || op == "PURGE" {
			continue
		}
		if err := json.Unmarshal(m.Data, &bv.v); err != nil {
			return fmt.Errorf("view %s: %w", bv.key, err)
		}
		bv.rev = m.Sequence
	}
	return nil
}

// kvOperationHeader marks a KV delete or purge (nats.go's KV reads it).
const kvOperationHeader = "KV-Operation"

// Batched view reads: from minManyViews misses on, manyViews keys a
// request (nats-server answers at most 1,024, and cuts a reply at the
// client's pending-bytes limit; views are a few KiB).
const (
	minManyViews = 8
	manyViews    = 128
)

// viewWorkers bounds the views of a batch read (or given work items) at
// once.
const viewWorkers = 32
