package mount

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

// chunkSize is the size of the chunks the service stores large content in
// (streams.DefaultChunkSize): a write that names the unchanged chunks of
// the content it replaces uploads only the changed ones.
const chunkSize = 512 << 10

// batchBytes bounds the content inlined in one batch request, well under
// NATS's default 1 MiB max_payload once base64 encoded.
const batchBytes = 512 << 10

// inlineMax is the largest content sent inside a batch; larger content is
// uploaded as chunks first.
const inlineMax = 128 << 10

// flusher flushes on a kick (a written file was closed) and at least every
// FlushInterval.
func (m *Mount) flusher() {
	defer m.wg.Done()
	t := time.NewTicker(m.opts.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-m.kick:
		case <-t.C:
		}
		if err := m.Flush(m.ctx); err != nil && m.ctx.Err() == nil {
			m.log.Warn("flush failed; changes stay in the journal", "session", m.session, "err", err)
		}
	}
}

func (m *Mount) kickFlush() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// Flush sends every pending change to the service, as few events as the
// batch limits allow (one, usually), and makes the journal durable.
func (m *Mount) Flush(ctx context.Context) error {
	if m.ro {
		return nil
	}
	m.flushMu.Lock()
	defer m.flushMu.Unlock()
	m.mu.Lock()
	ops := m.pending
	m.pending, m.inflight = nil, ops
	m.mu.Unlock()
	if len(ops) == 0 {
		return nil
	}
	rest, err := m.send(ctx, ops, "", 0)
	m.mu.Lock()
	m.inflight = nil
	if err != nil {
		m.pending = append(rest, m.pending...)
		m.lastErr = err.Error()
	} else {
		m.lastErr = ""
	}
	m.lastFlush = time.Now()
	m.mu.Unlock()
	if err != nil {
		return err
	}
	if err := m.rewriteJournal(); err != nil {
		return err
	}
	m.mu.Lock()
	conflicts := len(m.conflicts)
	m.mu.Unlock()
	if conflicts > 0 {
		return m.journal.sync() // refused changes live only here
	}
	return nil
}

// rewriteJournal replaces the journal with what is left: conflicts and
// pending ops.
func (m *Mount) rewriteJournal() error {
	m.mu.Lock()
	left := make([]*jop, 0, len(m.conflicts)+len(m.pending)+len(m.inflight))
	for _, list := range [][]*jop{m.conflicts, m.inflight, m.pending} {
		for _, op := range list {
			c := *op // ops change under mu; the copy is written without it
			left = append(left, &c)
		}
	}
	m.mu.Unlock()
	return m.journal.rewrite(left)
}

// group is one batch request and the ops it carries: jops are the journal
// ops it covers (some need no batch op), ops the batch operations, src and
// w, parallel to ops, the jop behind each and the snapshot of a write.
type group struct {
	id    string
	jops  []*jop
	ops   []client.BatchOp
	src   []*jop
	w     []*writeResult
	bytes int
}

type writeResult struct {
	op   *jop
	st   *staged
	snap snapshot
}

// send flushes ops in groups; retryID names the request the first
// retryCount ops were sent as before (after a crash or a lost reply), so
// the service recognises them. It returns the ops not sent when it fails.
func (m *Mount) send(ctx context.Context, ops []*jop, retryID string, retryCount int) ([]*jop, error) {
	for len(ops) > 0 {
		limit := len(ops)
		id := retryID
		if id != "" {
			limit = min(retryCount, len(ops))
			retryID = ""
		} else {
			id = m.nextRequestID()
		}
		g, err := m.build(ctx, ops[:limit], id)
		if err != nil {
			return m.notSetAside(ops), err
		}
		if err := m.journal.markFlushing(id, len(g.jops)); err != nil {
			return m.notSetAside(ops), err
		}
		done, err := m.sendGroup(ctx, g)
		if err != nil {
			for _, w := range g.w {
				if w != nil {
					w.st.markAll()
				}
			}
			return m.notSetAside(ops), err
		}
		ops = ops[done:]
		m.mu.Lock()
		m.inflight = ops
		// Now that no op in flight names them, the staging files the
		// group stored can go to the cache (those closed already: a
		// later close retires the others).
		for _, w := range g.w {
			if w != nil && w.op.ent != nil {
				m.retire(w.op.ent)
			}
		}
		m.mu.Unlock()
		if err := m.rewriteJournal(); err != nil {
			return ops, err
		}
	}
	return nil, nil
}

// notSetAside is ops without those set aside as conflicts while they were
// being sent (they are kept in m.conflicts now), for a send that failed.
func (m *Mount) notSetAside(ops []*jop) []*jop {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.DeleteFunc(slices.Clone(ops), func(o *jop) bool { return o.Conflict != "" })
}

func (m *Mount) nextRequestID() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.requestID()
}

// build turns a prefix of ops into one batch, within the service's limits:
// it returns the group of the ops that fit.
func (m *Mount) build(ctx context.Context, ops []*jop, id string) (*group, error) {
	g := &group{id: id}
	expect := map[string]string{} // path -> content after earlier ops of the batch
	for _, op := range ops {
		if len(g.ops) >= domain.MaxBatchOps || g.bytes > batchBytes {
			break
		}
		bo, wr, skip, err := m.batchOp(ctx, op, expect)
		if errors.Is(err, errTooLarge) {
			// A staging file past the largest file the service stores (one
			// left by a mount from before writes past it failed with
			// EFBIG): it can never be sent.
			m.setAside(op, fmt.Sprintf("%s: a file holds at most %d bytes", domain.CodeTooLarge, domain.MaxBlobSize))
			g.jops = append(g.jops, op)
			continue
		}
		if err != nil {
			return nil, err
		}
		g.jops = append(g.jops, op)
		if skip {
			continue
		}
		g.src, g.w = append(g.src, op), append(g.w, wr)
		g.bytes += len(bo.Content) + len(bo.Value) + 64*len(bo.Chunks)
		g.ops = append(g.ops, bo)
	}
	return g, nil
}

// expectFor is what a path must hold before op: the content an earlier op
// of the batch left there, else the content the service is known to hold.
func (m *Mount) expectFor(op *jop, expect map[string]string) string {
	if op.Force {
		return ""
	}
	if h, ok := expect[op.Path]; ok {
		return h
	}
	if op.ent == nil {
		return op.Expect
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if op.ent.kind != kindFile {
		return ""
	}
	if op.ent.hash.IsZero() {
		return domain.ExpectAbsent
	}
	return op.ent.hash.String()
}

func (m *Mount) batchOp(ctx context.Context, op *jop, expect map[string]string) (client.BatchOp, *writeResult, bool, error) {
	bo := client.BatchOp{Op: op.Op, Path: op.Path, To: op.To, Target: op.Target, Mode: op.Mode, Recursive: op.Recursive, Name: op.Name, Value: op.Value}
	switch op.Op {
	case "write":
		return m.writeOp(ctx, op, expect)
	case "chmod":
		// A file's chmod expects the content it holds; a file not stored
		// yet has its mode carried by its write. A folder expects nothing.
		bo.ExpectedHash = m.expectFor(op, expect)
		if bo.ExpectedHash == domain.ExpectAbsent {
			return bo, nil, true, nil
		}
	case "remove":
		if h := m.expectFor(op, expect); h != domain.ExpectAbsent {
			bo.ExpectedHash = h
		}
		delete(expect, op.Path)
	case "rename":
		if h := m.expectFor(op, expect); h != domain.ExpectAbsent {
			bo.ExpectedHash = h
		}
		for p, h := range expect {
			if within(p, op.Path) {
				delete(expect, p)
				expect[op.To+p[len(op.Path):]] = h
			}
		}
	case "mkdir", "symlink", "setxattr", "rmxattr":
	default:
		return bo, nil, false, fmt.Errorf("journal holds an unknown op %q", op.Op)
	}
	return bo, nil, false, nil
}

// snapshotAttempts bounds how often a flush snapshots a file: a chunk read
// back for its upload that was written since the snapshot makes it take
// another, and the last attempt holds the file's writes from its snapshot
// to its last upload, so that a file written all the time is flushed too.
const snapshotAttempts = 3

// writeOp snapshots a staged file and describes its write: inline when
// small, else by chunks, uploading only those that changed.
func (m *Mount) writeOp(ctx context.Context, op *jop, expect map[string]string) (client.BatchOp, *writeResult, bool, error) {
	for attempt := 1; ; attempt++ {
		st, mode := m.stagedOf(op)
		if st == nil {
			return client.BatchOp{}, nil, true, nil // the staging file is gone: a later op replaced it
		}
		last := attempt == snapshotAttempts
		bo, wr, skip, err := m.writeOpOf(ctx, op, st, mode, expect, last)
		if (errors.Is(err, errChangedSince) || errors.Is(err, errRetired)) && !last {
			m.log.Debug("a file was written while its chunks were uploaded; snapshot taken again",
				"session", m.session, "path", op.Path, "attempt", attempt+1)
			st.markAll() // what the abandoned snapshot took as changed is changed still
			continue
		}
		return bo, wr, skip, err
	}
}

// errTooLarge is a staging file larger than the largest file the service
// stores.
var errTooLarge = errors.New("staging file larger than a file may be")

// writeOpOf is one attempt of writeOp; with hold, writes to the file wait
// from the snapshot until the chunks are uploaded.
func (m *Mount) writeOpOf(ctx context.Context, op *jop, st *staged, mode uint32, expect map[string]string, hold bool) (client.BatchOp, *writeResult, bool, error) {
	if size, err := st.size(); err == nil && size > domain.MaxBlobSize {
		return client.BatchOp{}, nil, false, errTooLarge
	}
	// A chmod until this point left the mode to this op (the file was
	// dirty), so the mode is read here; a later one records its own. A
	// write from here on finds the file clean and queues a new op (which
	// finds nothing to do if the snapshot below took the write). This
	// comes before the snapshot because the mount's lock is never taken
	// while the file's is held: a handle's release takes them the other
	// way.
	stored := uint32(0)
	m.mu.Lock()
	if op.ent != nil && op.ent.staged == st {
		st.dirty = false
		mode, stored = op.ent.mode, op.ent.stored
	}
	m.mu.Unlock()
	bo := client.BatchOp{Op: "write", Path: op.Path, Mode: mode, ExpectedHash: m.expectFor(op, expect)}
	if bo.ExpectedHash == "" && !op.Force {
		bo.ExpectedHash = domain.ExpectAbsent
	}
	snap, skip, err := m.snapshotAndUpload(ctx, st, &bo, hold, func(snap *snapshot) bool {
		return bo.ExpectedHash == snap.hash.String() && op.ent != nil && mode == stored
	})
	if err != nil {
		return bo, nil, false, fmt.Errorf("flush %s: %w", op.Path, err)
	}
	if skip {
		return bo, &writeResult{op: op, st: st, snap: snap}, true, nil // nothing changed
	}
	expect[op.Path] = snap.hash.String()
	return bo, &writeResult{op: op, st: st, snap: snap}, false, nil
}

// snapshotAndUpload takes a snapshot of st and, unless unchanged says the
// service holds it already, fills in bo's content: inline when small,
// else by chunks, uploading those the service may lack.
func (m *Mount) snapshotAndUpload(ctx context.Context, st *staged, bo *client.BatchOp, hold bool, unchanged func(*snapshot) bool) (snapshot, bool, error) {
	if hold {
		st.mu.Lock()
		defer st.mu.Unlock()
	}
	snap, err := st.take(hold)
	if err != nil {
		return snap, false, err
	}
	m.hashedBytes.Add(snap.hashed)
	if m.afterSnapshot != nil && !hold {
		m.afterSnapshot(st)
	}
	if unchanged(&snap) {
		return snap, true, nil
	}
	if snap.inline != nil && len(snap.inline) <= inlineMax {
		bo.Content = snap.inline
		return snap, false, nil
	}
	if snap.inline != nil {
		snap.chunkHashes = []domain.Hash{snap.hash}
		snap.changed = []int{0}
		snap.held = map[int][]byte{0: snap.inline}
	}
	if err := m.uploadChunks(ctx, st, &snap, hold); err != nil {
		return snap, false, fmt.Errorf("upload its chunks: %w", err)
	}
	bo.Chunks = make([]string, len(snap.chunkHashes))
	for i, h := range snap.chunkHashes {
		bo.Chunks[i] = h.String()
	}
	bo.Hash = snap.hash.String()
	return snap, false, nil
}

// uploadChunks uploads the changed chunks of a snapshot that the service
// may lack: each distinct content once; none that is also an unchanged
// chunk of the file (the service takes those as chunks of the content the
// write expects); and, when there are several, none the tenant has
// uploaded already (fs.has): a copy of a large file, or a file of many
// equal chunks such as a sparse one, uploads only what is new. Chunks are
// read back from the staging file one at a time (staged.chunk), so a large
// file is never held in memory whole. held says the caller holds st's
// lock.
func (m *Mount) uploadChunks(ctx context.Context, st *staged, snap *snapshot, held bool) error {
	changed := make(map[int]bool, len(snap.changed))
	for _, i := range snap.changed {
		changed[i] = true
	}
	known := map[domain.Hash]bool{}
	for i, h := range snap.chunkHashes {
		if !changed[i] {
			known[h] = true
		}
	}
	var todo []int
	for _, i := range snap.changed {
		if h := snap.chunkHashes[i]; !known[h] {
			known[h] = true
			todo = append(todo, i)
		}
	}
	if len(todo) > 1 {
		hashes := make([]string, len(todo))
		for k, i := range todo {
			hashes[k] = snap.chunkHashes[i].String()
		}
		have := map[string]bool{}
		for off := 0; off < len(hashes); off += client.MaxHasHashes {
			r, err := m.client.Has(ctx, hashes[off:min(off+client.MaxHasHashes, len(hashes))])
			if err != nil {
				have = nil // upload them all
				break
			}
			for _, h := range r.Have {
				have[h] = true
			}
		}
		todo = slices.DeleteFunc(todo, func(i int) bool { return have[snap.chunkHashes[i].String()] })
	}
	// A few at a time: an upload is a round trip that waits on the
	// service's store as much as it works.
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(uploadsInFlight)
	for _, i := range todo {
		g.Go(func() error {
			data, err := st.chunk(snap, i, held)
			if err != nil {
				return err
			}
			_, err = m.client.Upload(gctx, m.session, data)
			return err
		})
	}
	return g.Wait()
}

// uploadsInFlight is how many chunks a flush uploads at once.
const uploadsInFlight = 4

// stagedOf returns the staged content a write op names and the mode to
// write it with.
func (m *Mount) stagedOf(op *jop) (*staged, uint32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if op.ent != nil {
		if op.ent.staged == nil || op.ent.staged.id != op.File {
			return nil, 0
		}
		return op.ent.staged, op.ent.mode
	}
	if st, ok := m.replayed[op.File]; ok {
		return st, op.Mode
	}
	f, err := os.OpenFile(m.journal.filePath(op.File), os.O_RDWR, 0)
	if err != nil {
		return nil, 0
	}
	st := &staged{id: op.File, f: f, all: true}
	m.replayed[op.File] = st
	return st, op.Mode
}

var opIndex = regexp.MustCompile(`^operation (\d+): `)

// sendGroup sends one batch. An operation the service refuses because its
// path changed (conflict) or because it is no longer possible is taken out
// and kept as a conflict, and the rest is sent again. It returns how many
// of the group's jops are done (sent or set aside).
func (m *Mount) sendGroup(ctx context.Context, g *group) (int, error) {
	for len(g.ops) > 0 {
		reply, err := m.client.Batch(ctx, client.BatchRequest{Mutation: client.Mutation{RequestID: g.id}, Session: m.session, Ops: g.ops})
		if err == nil {
			m.applied(g, reply)
			return len(g.jops), nil
		}
		var ce *client.Error
		if !errors.As(err, &ce) {
			return 0, err
		}
		sub := opIndex.FindStringSubmatch(ce.Message)
		if sub == nil || ce.Code == domain.CodeUnavailable || ce.Code == domain.CodeInternal || ce.Code == domain.CodeTooLarge {
			return 0, err
		}
		i, _ := strconv.Atoi(sub[1])
		if i >= len(g.ops) {
			return 0, err
		}
		if bo := g.ops[i]; bo.Op == "write" && len(bo.Chunks) > 0 && ce.Code == domain.CodeNotFound {
			return 0, err // a chunk taken as stored is not: send them all next time
		}
		m.refused(g, i, ce)
		g.id = m.nextRequestID()
	}
	return len(g.jops), nil
}

// refused takes operation i out of the group. An op whose effect is
// already there (a directory made, a path removed by someone else) is
// dropped; any other refusal is a conflict, kept and reported.
func (m *Mount) refused(g *group, i int, ce *client.Error) {
	bo, jo := g.ops[i], g.src[i]
	benign := (bo.Op == "mkdir" && ce.Code == domain.CodeAlreadyExists) || (bo.Op == "remove" && ce.Code == domain.CodeNotFound)
	if !benign {
		m.setAside(jo, string(ce.Code)+": "+strings.TrimPrefix(ce.Message, opIndex.FindString(ce.Message)))
	}
	g.ops = append(g.ops[:i:i], g.ops[i+1:]...)
	g.src = append(g.src[:i:i], g.src[i+1:]...)
	g.w = append(g.w[:i:i], g.w[i+1:]...)
}

// setAside keeps a local change the service will not take as a conflict,
// in the journal until resolved.
func (m *Mount) setAside(jo *jop, reason string) {
	expect := m.expectFor(jo, map[string]string{})
	m.mu.Lock()
	jo.Conflict = reason
	if jo.ent != nil {
		jo.Expect = expect
	}
	m.conflicts = append(m.conflicts, jo)
	m.mu.Unlock()
	m.log.Warn("conflict: a local change was not flushed; it stays in the journal until resolved",
		"session", m.session, "op", jo.Op, "path", jo.Path, "reason", jo.Conflict)
}

// applied records a stored batch: the position, and for each write the
// content the service now holds, which the cache gets too.
func (m *Mount) applied(g *group, reply client.ChangeReply) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if reply.Position > m.position {
		m.position = reply.Position
	}
	for i, bo := range g.ops {
		if e := g.src[i].ent; e != nil && e.kind == kindFile && (bo.Op == "write" && bo.Mode != 0 || bo.Op == "chmod") {
			e.stored = bo.Mode
		}
	}
	for i, w := range g.w {
		if w == nil {
			continue
		}
		if w.snap.inline != nil {
			_ = m.cache.keep(w.snap.hash, w.snap.inline) // a cache miss later only costs a fetch
		}
		w.st.flushedGen, w.st.flushed = w.snap.gen, w.snap.hash
		e := w.op.ent
		if e == nil {
			continue
		}
		e.hash = w.snap.hash
		if p, ok := finalPath(w.op.Path, g.ops[i+1:]); ok {
			e.src = source{path: p, position: reply.Position}
		}
	}
}

// finalPath follows a path through the renames of the ops after it; ok is
// false if one of them removes it.
func finalPath(p string, later []client.BatchOp) (string, bool) {
	for _, o := range later {
		switch {
		case o.Op == "rename" && within(p, o.Path):
			p = o.To + p[len(o.Path):]
		case o.Op == "remove" && within(p, o.Path):
			return "", false
		}
	}
	return p, true
}

// retire moves the staging file of an entry into the cache once nothing
// holds it: no open handle, no change since the service stored it, no op
// naming it. Guarded by mu.
func (m *Mount) retire(e *entry) {
	if st := e.staged; st != nil && st.loose && e.size > chunkSize {
		return // copied again at the next write: kept until the inode is forgotten
	}
	m.unstage(e)
}

// unstage moves the staging file of an entry into the cache if nothing
// holds it, whatever its size. Guarded by mu.
func (m *Mount) unstage(e *entry) {
	st := e.staged
	if st == nil || st.refs > 0 || st.dirty || st.flushedGen != st.gen.Load() || st.flushed != e.hash || m.referenced(st.id) {
		return
	}
	cs, known := st.states(e.hash) // before closeAt: st.mu is free
	if !st.closeAt(st.flushedGen) {
		return // written meanwhile: the write queues its op
	}
	e.staged = nil
	if known {
		m.chunkStates.Add(e.hash, cs)
	}
	if held, err := m.cache.adopt(m.journal.filePath(st.id), e.hash); held || err != nil {
		m.journal.discard(st.id)
	}
}

// referenced reports whether an unflushed op names staging file id.
// Guarded by mu.
func (m *Mount) referenced(id string) bool {
	for _, list := range [][]*jop{m.pending, m.inflight, m.conflicts} {
		for _, op := range list {
			if op.File == id {
				return true
			}
		}
	}
	return false
}
