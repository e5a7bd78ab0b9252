package audit

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/strand-dev/strand/domain"
)

// history is the replay of one session's history.
type history struct {
	subject, tenant, session string
	// upTo is the last position that belongs to the replay (0: all): a
	// parent's history counts only up to its fork point.
	upTo uint64
	// state is the session after its last good event; nil before the first.
	state *domain.Session
	// root is the root that event records (checked against state's tree
	// at once by Verify, when handed out by a replay).
	root    domain.Hash
	last    uint64 // position of the last event seen
	events  int
	finding *Finding // the first problem; later events are not replayed
	past    domain.Past
}

// maxRebuildDepth bounds nested rebuilds: a rebuild that needs a state that
// was dropped again rebuilds it, always at a smaller position.
const maxRebuildDepth = 64

// replayer folds event messages, in stream order, into the states of their
// histories, checking each event on the way. It is not safe for concurrent
// use; Verify runs one per worker.
type replayer struct {
	r     *Reader
	ctx   context.Context
	hists map[string]*history
	// past holds recent states by (subject, position), for restores and
	// forks; shared with nested rebuilds (states never change).
	past *pastRing
	// limits, when not nil, names the only subjects replayed and the last
	// position of each that counts.
	limits map[string]uint64
	blobs  *blobChecker // nil: blobs are not checked
	// goodBlobs holds the blobs this replayer learnt were found whole, with
	// their sizes: later references to them need no trip to the checker.
	goodBlobs map[domain.Hash]int64
	// anchors, when not nil, holds recorded heads by subject.
	anchors map[string]anchor
	// observe, when set, sees every event that was applied.
	observe func(h *history, rec *Record, ev *domain.Event, before, after *domain.Session)
	depth   int
	// rebuilds counts states rebuilt because they had been dropped
	// (shared with nested replayers).
	rebuilds *int
	// fold, for a replay, skips the comparison of every event's recorded
	// root with the replayed tree (domain.Fold instead of domain.Evolve):
	// only the states handed out are compared (checkRoot). Verify compares
	// every one.
	fold bool
}

func (r *Reader) newReplayer(ctx context.Context, pastStates int) *replayer {
	if pastStates <= 0 {
		pastStates = DefaultPastStates
	}
	return &replayer{r: r, ctx: ctx, hists: map[string]*history{}, past: newPastRing(pastStates), rebuilds: new(int)}
}

func (p *replayer) history(rec *Record) *history {
	h := p.hists[rec.Subject]
	if h != nil {
		return h
	}
	var upTo uint64
	if p.limits != nil {
		lim, ok := p.limits[rec.Subject]
		if !ok {
			return nil
		}
		upTo = lim
	}
	h = &history{subject: rec.Subject, tenant: rec.Tenant, session: rec.Session, upTo: upTo}
	if rec.Tenant == "" {
		h.session = rec.Subject
	}
	p.hists[rec.Subject] = h
	return h
}

// foldBatch is how many records go to a replayer at once.
const foldBatch = 256

// foldPipelined reads the stream once and folds every record on one of
// reps, each on a goroutine of its own, while the reading goroutine decodes
// and hashes each record and hands them over in batches: one history's
// replay keeps two cores busy. With several replayers, each owns whole fork
// families (a history goes where route sends its first message, a fork to
// its parent's), so that none waits for another; routing only affects
// speed, as a replayer that lacks a state rebuilds it from the stream.
// Nested rebuilds end with the scan.
func (r *Reader) foldPipelined(ctx context.Context, o scanOpts, reps []*replayer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make([]chan []*Record, len(reps))
	errs := make([]error, len(reps))
	var wg sync.WaitGroup
	for i, p := range reps {
		orig := p.ctx
		p.ctx = ctx
		defer func() { p.ctx = orig }()
		batches[i] = make(chan []*Record, 16)
		wg.Go(func() {
			for batch := range batches[i] {
				for _, rec := range batch {
					if errs[i] != nil {
						break // drain
					}
					if errs[i] = p.apply(rec); errs[i] != nil {
						cancel() // a failure to read ends the whole scan
					}
				}
			}
		})
	}
	family := map[string]int{}
	pending := make([][]*Record, len(reps))
	send := func(w int) error {
		select {
		case batches[w] <- pending[w]:
			pending[w] = make([]*Record, 0, foldBatch)
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	err := r.scan(ctx, o, func(rec *Record) error {
		w := 0
		if len(reps) > 1 {
			var ok bool
			if w, ok = family[rec.Subject]; !ok {
				w = route(rec, family, len(reps))
				family[rec.Subject] = w
			}
		}
		rec.prepare() // here, while the replayers fold
		if pending[w] = append(pending[w], rec); len(pending[w]) >= foldBatch {
			return send(w)
		}
		return nil
	})
	for w := range pending {
		if err == nil && len(pending[w]) > 0 {
			err = send(w)
		}
		close(batches[w])
	}
	wg.Wait()
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return err
}

// fail records the first finding of a history.
func (h *history) fail(rec *Record, version uint64, kind Kind, format string, args ...any) {
	h.finding = &Finding{
		Tenant: h.tenant, Session: h.session, Position: rec.Position, Version: version,
		Kind: kind, Message: fmt.Sprintf(format, args...),
	}
}

// apply checks one event message and folds it into its history. Problems
// with the history become its finding; the error is for failures to read.
func (p *replayer) apply(rec *Record) error {
	h := p.history(rec)
	if h == nil || (h.upTo != 0 && rec.Position > h.upTo) {
		return nil
	}
	h.events++
	if h.finding != nil {
		return nil
	}
	defer func() { h.last = rec.Position }()
	if rec.Tenant == "" {
		h.fail(rec, 0, KindSubject, "subject %s is not strand.ev.<tenant>.<session>", rec.Subject)
		return nil
	}
	if rec.Position <= h.last {
		h.fail(rec, 0, KindVersion, "position %d does not follow position %d", rec.Position, h.last)
		return nil
	}
	if !rec.ready {
		rec.prepare()
	}
	ev, err := rec.event, rec.decodeErr
	if err != nil {
		h.fail(rec, 0, KindDecode, "body is not an event envelope: %s", errText(err))
		return nil
	}
	if p.observe == nil {
		// Nothing outside this call sees the event (an observer may keep
		// it): domain.Evolve and Fold keep none of the Event itself.
		defer rec.release()
	}
	if ev.Tenant != rec.Tenant || ev.Session != rec.Session {
		h.fail(rec, ev.Version, KindSubject, "envelope names %s/%s on the subject of %s/%s", ev.Tenant, ev.Session, rec.Tenant, rec.Session)
		return nil
	}
	if t := rec.Header.Get(headerType); t != "" && t != string(ev.Type) {
		h.fail(rec, ev.Version, KindHeader, "header %s says %s, the envelope %s", headerType, t, ev.Type)
		return nil
	}
	if v := rec.Header.Get(headerVersion); v != "" {
		if n, err := strconv.ParseUint(v, 10, 64); err != nil || n != ev.Version {
			h.fail(rec, ev.Version, KindHeader, "header %s says %s, the envelope %d", headerVersion, v, ev.Version)
			return nil
		}
	}
	var want uint64 = 1
	if h.state != nil {
		want = h.state.Version + 1
	}
	switch {
	case ev.Version > want && want == 1:
		h.fail(rec, ev.Version, KindVersion, "history starts at version %d: %d earlier event(s) missing", ev.Version, ev.Version-1)
		return nil
	case ev.Version > want:
		h.fail(rec, ev.Version, KindVersion, "version %d follows version %d (position %d): %d event(s) missing", ev.Version, want-1, h.state.Position, ev.Version-want)
		return nil
	case ev.Version < want:
		h.fail(rec, ev.Version, KindVersion, "version %d after version %d (position %d): out of order or repeated", ev.Version, want-1, h.state.Position)
		return nil
	}
	prevHash, ok := domain.HashFromBytes(ev.Prev)
	if !ok {
		h.fail(rec, ev.Version, KindChain, "prev is %d bytes, not a SHA-256", len(ev.Prev))
		return nil
	}
	base := h.state
	if ev.Version == 1 {
		base = nil
		switch {
		case ev.Type == domain.SessionForked && ev.Created != nil:
			var ok bool
			if base, ok, err = p.forkBase(h, rec, ev, prevHash); !ok {
				return err
			}
		case !prevHash.IsZero():
			h.fail(rec, ev.Version, KindChain, "first event names a previous event %s", prevHash)
			return nil
		case ev.Type == domain.SessionCreated && ev.Created != nil && ev.Created.Origin.Source != "":
			var ok bool
			if base, ok, err = p.sourceBase(h, rec, ev); !ok {
				return err
			}
		}
	} else if prevHash != h.state.LastHash {
		h.fail(rec, ev.Version, KindChain, "prev %s is not the hash %s of version %d at position %d: one of the two events was altered",
			short(prevHash), short(h.state.LastHash), h.state.Version, h.state.Position)
		return nil
	}
	if p.blobs != nil {
		p.checkBlobs(h, rec, ev)
	}
	hash := rec.hash
	if h.past == nil {
		h.past = func(pos uint64) (*domain.Session, error) { return p.stateAt(h.subject, pos) }
	}
	root, ok := domain.HashFromBytes(ev.Root)
	if !ok {
		h.fail(rec, ev.Version, KindRoot, "root is %d bytes, not a SHA-256", len(ev.Root))
		return nil
	}
	evolve := domain.Evolve
	if p.fold {
		evolve = domain.Fold
	}
	n, err := evolve(base, ev, rec.Position, hash, h.past)
	if err != nil {
		if p.ctx.Err() != nil {
			return p.ctx.Err()
		}
		var re *readError
		if errors.As(err, &re) {
			return re.err
		}
		kind := KindReplay
		if strings.Contains(err.Error(), "recorded root") {
			kind = KindRoot
		}
		h.fail(rec, ev.Version, kind, "%s", errText(err))
		return nil
	}
	if a, ok := p.anchors[h.subject]; ok && a.version == ev.Version && a.hash != hash {
		h.fail(rec, ev.Version, KindAnchor, "hash %s differs from the anchored %s: the event was altered", short(hash), short(a.hash))
		return nil
	}
	if p.observe != nil {
		p.observe(h, rec, ev, base, n)
	}
	h.state, h.root = n, root
	p.past.add(stateKey{h.subject, rec.Position}, pastState{n, root})
	return nil
}

// maxGoodBlobs bounds a replayer's memory of blobs found whole.
const maxGoodBlobs = 1 << 20

// checkBlobs checks the inline content of the event's writes against the
// hash and size they record, and schedules the check of every blob the
// event names (domain.Event.Blobs is the authority), with the path and size
// the event records for it when an operation writes it.
func (p *replayer) checkBlobs(h *history, rec *Record, ev *domain.Event) {
	for _, op := range ev.Ops {
		if !op.Inline() {
			continue
		}
		if c, _ := domain.HashFromBytes(op.Content); domain.Sum(op.Data) != c || int64(len(op.Data)) != op.Size {
			h.fail(rec, ev.Version, KindBlob, "inline content of %s is %d bytes hashing to %s; the event records %d bytes, %s",
				op.Path, len(op.Data), short(domain.Sum(op.Data)), op.Size, short(c))
		}
	}
	for _, c := range ev.Blobs() {
		ref := blobRef{hash: c, hist: h, position: rec.Position, version: ev.Version, size: -1}
		for _, op := range ev.Ops {
			if op.Kind == domain.OpWrite && string(op.Content) == string(c[:]) {
				ref.path, ref.size = op.Path, op.Size
				break
			}
		}
		if size, ok := p.goodBlobs[c]; ok && (ref.size < 0 || ref.size == size) {
			continue // whole, and of the size this event records
		}
		if size, good := p.blobs.check(c, ref); good {
			if p.goodBlobs == nil || len(p.goodBlobs) >= maxGoodBlobs {
				p.goodBlobs = map[domain.Hash]int64{}
			}
			p.goodBlobs[c] = size
		}
	}
}

// forkBase returns the parent's state at the fork point of a fork's first
// event, after checking that the event chains to it.
// ok is false when the history got a finding instead; err is for failures
// to read.
func (p *replayer) forkBase(h *history, rec *Record, ev *domain.Event, prev domain.Hash) (base *domain.Session, ok bool, err error) {
	o := ev.Created.Origin
	if o.Parent == "" || o.Position == 0 || o.Position >= rec.Position {
		h.fail(rec, ev.Version, KindFork, "fork names parent %q at position %d, which is not before the fork", o.Parent, o.Position)
		return nil, false, nil
	}
	parent, err := p.stateAt(EventSubject(rec.Tenant, o.Parent), o.Position)
	var be *BrokenError
	var re *readError
	switch {
	case errors.As(err, &re):
		return nil, false, re.err
	case errors.As(err, &be):
		h.fail(rec, ev.Version, KindFork, "parent %s is broken at position %d (%s), before the fork position %d",
			o.Parent, be.Finding.Position, be.Finding.Kind, o.Position)
		return nil, false, nil
	case err != nil:
		h.fail(rec, ev.Version, KindFork, "parent %s has no valid state at position %d: %s", o.Parent, o.Position, errText(err))
		return nil, false, nil
	case prev != parent.LastHash:
		h.fail(rec, ev.Version, KindFork, "prev %s is not the hash %s of parent %s's event at position %d",
			short(prev), short(parent.LastHash), o.Parent, o.Position)
		return nil, false, nil
	}
	return parent, true, nil
}

// readError marks a failure to read the streams during a nested replay, so
// that it ends the audit instead of becoming a finding.
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// stateAt returns a history's state at one of its positions: the current
// one, a remembered one, or one rebuilt by replaying the history again.
// The state may not have been compared with its recorded root yet (see
// checked).
func (p *replayer) stateAt(subject string, pos uint64) (*domain.Session, error) {
	ps, err := p.pastState(subject, pos)
	return ps.s, err
}

func (p *replayer) pastState(subject string, pos uint64) (pastState, error) {
	if h := p.hists[subject]; h != nil {
		if h.state != nil && h.state.Position == pos {
			return pastState{h.state, h.root}, nil
		}
		if h.finding != nil && h.finding.Position <= pos {
			return pastState{}, &BrokenError{Finding: *h.finding}
		}
	}
	if ps, ok := p.past.get(stateKey{subject, pos}); ok {
		return ps, nil
	}
	s, err := p.rebuild(subject, pos)
	if err != nil {
		return pastState{}, err
	}
	return pastState{s, s.Tree.Hash()}, nil // rebuild's result was checked
}

// checked returns a state to hand out after comparing its tree with the
// root its event records, which a fold left for now.
func (p *replayer) checked(subject string, ps pastState) (*domain.Session, error) {
	if !p.fold {
		return ps.s, nil
	}
	if got := ps.s.Tree.Hash(); got != ps.root {
		tenant, session, _ := splitSubject(subject)
		return nil, &BrokenError{Finding: Finding{
			Tenant: tenant, Session: session, Position: ps.s.Position, Version: ps.s.Version, Kind: KindRoot,
			Message: fmt.Sprintf("replay gives root %s, the event records %s (audit verify names the first event that differs)", short(got), short(ps.root)),
		}}
	}
	return ps.s, nil
}

// checkedAt is stateAt for a state to hand out.
func (p *replayer) checkedAt(subject string, pos uint64) (*domain.Session, error) {
	ps, err := p.pastState(subject, pos)
	if err != nil {
		return nil, err
	}
	return p.checked(subject, ps)
}

// rebuild replays a history (and its ancestors up to their fork points)
// up to pos, in a nested replayer that shares the remembered states.
func (p *replayer) rebuild(subject string, pos uint64) (*domain.Session, error) {
	if p.depth >= maxRebuildDepth {
		return nil, fmt.Errorf("state of %s at %d needs more than %d nested replays", subject, pos, maxRebuildDepth)
	}
	tenant, session, ok := splitSubject(subject)
	if !ok {
		return nil, fmt.Errorf("bad history subject %s", subject)
	}
	links, err := p.r.lineage(p.ctx, tenant, session, pos)
	var de *domain.Error
	if err != nil && !errors.As(err, &de) {
		return nil, &readError{err}
	}
	if err != nil {
		return nil, err
	}
	*p.rebuilds++
	child := &replayer{r: p.r, ctx: p.ctx, hists: map[string]*history{}, past: p.past, limits: map[string]uint64{},
		depth: p.depth + 1, rebuilds: p.rebuilds, fold: p.fold}
	filters := make([]string, 0, len(links))
	for _, l := range links {
		child.limits[l.subject] = l.upTo
		filters = append(filters, l.subject)
	}
	if err := p.r.scan(p.ctx, scanOpts{filters: filters, upTo: pos}, child.apply); err != nil {
		return nil, &readError{err}
	}
	return child.result(subject, pos)
}

// result returns the state of a replayed history at pos (0: its last),
// compared with its recorded root.
func (p *replayer) result(subject string, pos uint64) (*domain.Session, error) {
	h := p.hists[subject]
	if h == nil {
		return nil, domain.ErrSessionNotFound
	}
	if h.finding != nil && (pos == 0 || h.finding.Position <= pos) {
		return nil, &BrokenError{Finding: *h.finding}
	}
	if h.state == nil {
		return nil, domain.ErrSessionNotFound
	}
	if pos != 0 && h.state.Position != pos {
		if ps, ok := p.past.get(stateKey{subject, pos}); ok {
			return p.checked(subject, ps)
		}
		return nil, domain.ErrPositionUnknown
	}
	return p.checked(subject, pastState{h.state, h.root})
}

// BrokenError is returned when a state cannot be rebuilt because its
// history fails verification.
type BrokenError struct{ Finding Finding }

func (e *BrokenError) Error() string {
	f := e.Finding
	return fmt.Sprintf("history of %s is broken at position %d (%s): %s", f.Session, f.Position, f.Kind, f.Message)
}

// errText is the full text of an error, with the domain's internal-error
// prefix taken off.
func errText(err error) string {
	var de *domain.Error
	if errors.As(err, &de) {
		if de.Err != nil {
			return de.Message + ": " + de.Err.Error()
		}
		return de.Message
	}
	return err.Error()
}

// short abbreviates a hash for messages.
func short(h domain.Hash) string { return h.String()[:12] }
