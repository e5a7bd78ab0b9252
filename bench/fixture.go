package bench

import (
	"context"
	"crypto/rand"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
	"github.com/strand-dev/strand/streams"
)

// idGen makes ULIDs, as the service does.
type idGen struct {
	mu      sync.Mutex
	entropy *ulid.MonotonicEntropy
}

func newIDGen() *idGen { return &idGen{entropy: ulid.Monotonic(rand.Reader, 0)} }

func (g *idGen) next() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return ulid.MustNew(ulid.Now(), g.entropy).String()
}

// filePath is the path of file i of a bench tree: directories of 100
// files, like a source tree.
func filePath(i int) string {
	return fmt.Sprintf("pkg%04d/file%03d.go", i/100, i%100)
}

// sourceLike returns n bytes that look like a source file and differ by
// seed.
func sourceLike(seed uint64, n int) []byte {
	line := []byte("\tx := compute(" + strconv.FormatUint(seed, 10) + ") // keep going\n")
	out := make([]byte, 0, n)
	out = append(out, "package bench\n\n// seed "+strconv.FormatUint(seed, 10)+"\n"...)
	for len(out) < n {
		out = append(out, line...)
	}
	return out[:n]
}

// contentPool is a set of small contents stored as blobs, which fixtures
// that do not measure content point their files at: every event names
// stored content, as the invariants require, without storing a blob per
// event.
type contentPool struct {
	hashes []domain.Hash
	sizes  []int64
}

const poolSize = 256

func (r *Runner) contentPool(ctx context.Context, e *Env) (*contentPool, error) {
	key := "pool/" + e.Name
	if f, ok := r.fixtures[key]; ok {
		return f.pool, nil
	}
	p := &contentPool{}
	for i := 0; i < poolSize; i++ {
		data := sourceLike(uint64(i), 200+i)
		h, err := e.Store.Blobs.Put(ctx, data)
		if err != nil {
			return nil, fmt.Errorf("content pool: %w", err)
		}
		p.hashes = append(p.hashes, h)
		p.sizes = append(p.sizes, int64(len(data)))
	}
	r.fixtures[key] = &fixture{pool: p}
	return p, nil
}

// fixture is something a row built once and other rows may reuse.
type fixture struct {
	pool  *contentPool
	built *built
}

// built is a session the builder made: its head and the position of each
// of its events (Positions[v-1] for version v).
type built struct {
	Head      *domain.Session
	Positions []uint64
}

// historySpec describes a session to build: Files files written by the
// first events (batches of up to domain.MaxBatchOps writes), then single
// writes to those files until the session has Events events in all
// (counting its creation).
type historySpec struct {
	Files  int
	Events int
	// Content, when set, gives file i's content (stored as a blob before
	// the event); otherwise files point into the content pool.
	Content func(i int) []byte
	// Budget, when set, bounds the build's time: once it has passed, the
	// history ends at the next snapshot boundary, shorter than Events.
	Budget time.Duration
}

func (h historySpec) key() string {
	return fmt.Sprintf("files=%d events=%d content=%v budget=%v", h.Files, h.Events, h.Content != nil, h.Budget)
}

// minEvents is the least Events a spec with this many files can have.
func minEvents(files int) int {
	return 1 + (files+domain.MaxBatchOps-1)/domain.MaxBatchOps
}

// session returns a session built to spec on e, building it the first time.
func (r *Runner) session(ctx context.Context, e *Env, spec historySpec) (*built, error) {
	key := "session/" + e.Name + "/" + spec.key()
	if f, ok := r.fixtures[key]; ok && spec.Content == nil {
		return f.built, nil
	}
	b, err := r.build(ctx, e, spec)
	if err != nil {
		return nil, err
	}
	r.fixtures[key] = &fixture{built: b}
	return b, nil
}

// build appends a history to spec. Events are decided in process with
// domain.Execute (as Store.Change does: same checks, hash chain and Merkle
// roots), then published asynchronously in a window of outstanding acks;
// snapshots are written, as the store's own writer does, every
// SnapshotEvery events. The positions of the states kept (snapshots and
// the head) are those the acks report, so other writers on a cluster do
// no harm.
func (r *Runner) build(ctx context.Context, e *Env, spec historySpec) (*built, error) {
	if spec.Events < minEvents(spec.Files) {
		return nil, fmt.Errorf("a history of %d files needs at least %d events", spec.Files, minEvents(spec.Files))
	}
	t0 := time.Now()
	var pool *contentPool
	var content []domain.Hash
	var sizes []int64
	if spec.Content == nil {
		var err error
		if pool, err = r.contentPool(ctx, e); err != nil {
			return nil, err
		}
	} else {
		var err error
		if content, sizes, err = putContents(ctx, e, spec.Files, spec.Content); err != nil {
			return nil, err
		}
	}
	contentOf := func(i, version int) (domain.Hash, int64) {
		if pool == nil {
			return content[i], sizes[i]
		}
		k := (i + version) % poolSize
		return pool.hashes[k], pool.sizes[k]
	}

	id := r.ids.next()
	ev, s, err := domain.Execute(nil, domain.CreateSession{ID: id, Tenant: r.Tenant, Owner: "bench"}, r.meta(), nil)
	if err != nil {
		return nil, err
	}
	body, err := ev.Encode()
	if err != nil {
		return nil, err
	}
	ack, err := e.JS.PublishMsg(ctx, eventMsg(r.Tenant, ev, body), jetstream.WithExpectLastSequencePerSubject(0))
	if err != nil {
		return nil, fmt.Errorf("append first event: %w", err)
	}
	s.Commit(ev, ack.Sequence, domain.Sum(body))
	positions := make([]uint64, 1, spec.Events)
	positions[0] = ack.Sequence

	snaps := newSnapshotWriter(e.Store)
	defer snaps.wait() //nolint:errcheck // the error is taken below on success
	type inflight struct {
		f    jetstream.PubAckFuture
		keep *domain.Session
	}
	var window []inflight
	drain := func(n int) error {
		for ; n > 0 && len(window) > 0; n-- {
			p := window[0]
			window = window[1:]
			select {
			case a := <-p.f.Ok():
				positions = append(positions, a.Sequence)
				if p.keep != nil {
					p.keep.Position = a.Sequence
					if p.keep.Version%e.Config.SnapshotEvery == 0 {
						snaps.add(p.keep)
					}
				}
			case err := <-p.f.Err():
				return fmt.Errorf("append event: %w", err)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}
	const maxWindow = 2048
	written := 0
	last := spec.Events
	for v := 2; v <= last; v++ {
		var ops []domain.FileOp
		if written < spec.Files {
			for ; written < spec.Files && len(ops) < domain.MaxBatchOps; written++ {
				h, size := contentOf(written, v)
				ops = append(ops, domain.FileOp{Kind: domain.OpWrite, Path: filePath(written), Content: h, Size: size})
			}
		} else {
			i := int((uint64(v) * 7919) % uint64(spec.Files))
			h, size := contentOf(i, v)
			ops = []domain.FileOp{{Kind: domain.OpWrite, Path: filePath(i), Content: h, Size: size}}
		}
		ev, next, err := domain.Execute(s, domain.ChangeFiles{Ops: ops, Batch: len(ops) > 1}, r.meta(), nil)
		if err != nil {
			return nil, fmt.Errorf("event %d: %w", v, err)
		}
		body, err := ev.Encode()
		if err != nil {
			return nil, err
		}
		next.Commit(ev, 0, domain.Sum(body)) // position set from the ack below
		f, err := e.JS.PublishMsgAsync(eventMsg(r.Tenant, ev, body))
		if err != nil {
			return nil, fmt.Errorf("append event %d: %w", v, err)
		}
		if spec.Budget > 0 && v < last && written >= spec.Files && next.Version%e.Config.SnapshotEvery == 0 && time.Since(t0) > spec.Budget {
			r.progressf("  build budget of %s spent: the history ends at %d of %d events", spec.Budget, v, spec.Events)
			last = v
		}
		p := inflight{f: f}
		if next.Version%e.Config.SnapshotEvery == 0 || v == last {
			p.keep = next
		}
		window = append(window, p)
		if len(window) >= maxWindow {
			if err := drain(maxWindow / 2); err != nil {
				return nil, err
			}
		}
		s = next
		if v%200_000 == 0 {
			r.progressf("  built %d of %d events", v, last)
		}
	}
	if err := drain(len(window)); err != nil {
		return nil, err
	}
	if err := snaps.wait(); err != nil {
		return nil, err
	}
	r.progressf("  built a session of %d events, %d files in %.1fs", last, spec.Files, time.Since(t0).Seconds())
	return &built{Head: s, Positions: positions}, nil
}

// eventMsg is the message of an event, as the store writes it.
func eventMsg(tenant string, ev *domain.Event, body []byte) *nats.Msg {
	m := nats.NewMsg(names.EventSubject(tenant, ev.Session))
	m.Header.Set(names.HeaderType, string(ev.Type))
	m.Header.Set(names.HeaderActor, ev.Actor)
	m.Header.Set(names.HeaderVersion, strconv.FormatUint(ev.Version, 10))
	m.Data = body
	return m
}

// putContents stores n contents as blobs, a few at a time, before any event
// names them.
func putContents(ctx context.Context, e *Env, n int, content func(i int) []byte) ([]domain.Hash, []int64, error) {
	hashes := make([]domain.Hash, n)
	sizes := make([]int64, n)
	const workers = 8
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < n; i += workers {
				data := content(i)
				h, err := e.Store.Blobs.Put(ctx, data)
				if err != nil {
					errs <- err
					return
				}
				hashes[i], sizes[i] = h, int64(len(data))
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, nil, fmt.Errorf("store content: %w", err)
	}
	return hashes, sizes, nil
}

// snapshotWriter writes snapshots in the background while the builder
// goes on.
type snapshotWriter struct {
	q    chan *domain.Session
	done chan error
	once sync.Once
	err  error
}

func newSnapshotWriter(st *streams.Store) *snapshotWriter {
	w := &snapshotWriter{q: make(chan *domain.Session, 64), done: make(chan error, 1)}
	go func() {
		var first error
		for s := range w.q {
			if first != nil {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			if err := st.WriteSnapshot(ctx, s); err != nil {
				first = fmt.Errorf("snapshot at version %d: %w", s.Version, err)
			}
			cancel()
		}
		w.done <- first
	}()
	return w
}

func (w *snapshotWriter) add(s *domain.Session) { w.q <- s }

// wait waits until every snapshot added is written; it may be called again.
func (w *snapshotWriter) wait() error {
	w.once.Do(func() {
		close(w.q)
		w.err = <-w.done
	})
	return w.err
}
