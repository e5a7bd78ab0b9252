//go:build fault

package faults_test

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os/exec"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

// mixer is the rest of a mixed load, beside the writers of load: forks at
// past positions, reads of the past, large writes (through the blob store),
// reviews (note, approval request, grant by another actor, commit), orphan
// uploads (the blob collector's work) and session listings (the
// projections). check verifies what it did once it stopped.
type mixer struct {
	t          *testing.T
	l          *load
	url        string
	c, granter *client.Client

	mu       sync.Mutex
	forks    []forked
	big      []bigWrite
	orphans  []orphan
	reviewed []string // sessions with a granted, committed request
	// waiting maps the sessions whose approval request is left pending (one
	// review in three) to that request.
	waiting map[string]string
	pastOK  int
	counts  map[string]int
	errs    []string
}

type forked struct {
	session, parent, path, content string
	at                             uint64
}

type bigWrite struct {
	session, path string
	pos           uint64
	sum           domain.Hash
}

type orphan struct {
	hash string
	at   time.Time
}

func (m *mixer) connect() {
	dial := func(name string) *nats.Conn {
		nc, err := nats.Connect(m.url, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond), nats.Name(name))
		if err != nil {
			m.t.Fatal(err)
		}
		m.t.Cleanup(nc.Close)
		return nc
	}
	m.c = client.NewClient(dial("mixer"), m.l.tenant)
	m.c.Actor = "agent"
	m.granter = client.NewClient(dial("reviewer"), m.l.tenant)
	m.granter.Actor = "reviewer"
	m.counts = map[string]int{}
	m.waiting = map[string]string{}
}

func (m *mixer) fail(format string, args ...any) {
	m.mu.Lock()
	m.errs = append(m.errs, fmt.Sprintf(format, args...))
	m.mu.Unlock()
}

// retry runs a request with request id until it is answered, for up to
// two minutes; an error other than unavailable is a failure.
func (m *mixer) retry(what string, do func(ctx context.Context) error) bool {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := do(ctx)
		cancel()
		if err == nil {
			m.mu.Lock()
			m.counts[what]++
			m.mu.Unlock()
			return true
		}
		if client.ErrorCode(err) != domain.CodeUnavailable {
			m.fail("%s: %v", what, err)
			return false
		}
		if time.Now().After(deadline) {
			m.fail("%s: unavailable for 2 minutes: %v", what, err)
			return false
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// acked picks an acknowledged write of the load.
func (m *mixer) acked(rng *rand.Rand) (*op, bool) {
	m.l.mu.Lock()
	defer m.l.mu.Unlock()
	for range 20 {
		o := m.l.ops[rng.IntN(len(m.l.ops))]
		if !o.read && !o.create && !o.conflict && o.ret != math.MaxInt64 && o.path != "" {
			return o, true
		}
	}
	return nil, false
}

// run does one of its operations after another until stop is closed.
func (m *mixer) run(stop <-chan struct{}) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		rng := rand.New(rand.NewPCG(99, 7))
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			switch r := rng.IntN(100); {
			case r < 40:
				m.readPast(rng)
			case r < 55:
				m.fork(rng, n)
			case r < 70:
				m.bigWrite(rng, n)
			case r < 80:
				m.review(n)
			case r < 90:
				m.upload(rng, n)
			default:
				m.list()
			}
		}
	}()
	return func() { <-done }
}

// readPast reads an acknowledged write at the position its reply gave: it
// must answer what was written, whatever came since.
func (m *mixer) readPast(rng *rand.Rand) {
	o, ok := m.acked(rng)
	if !ok {
		return
	}
	var data []byte
	if m.retry("read of the past", func(ctx context.Context) (err error) {
		data, _, err = m.c.ReadAll(ctx, o.session, o.path, client.AtPosition(o.pos))
		return err
	}) && string(data) != o.content {
		m.fail("read %s of %s at %d: %q, want %q", o.path, o.session, o.pos, data, o.content)
	}
}

// fork forks a load session at one of its acknowledged writes (not of a
// session the load deleted: see load.rotate).
func (m *mixer) fork(rng *rand.Rand, n int) {
	// Most writes of a long steady load are in sessions it deleted since:
	// pick again until one is not.
	var o *op
	for range 20 {
		if c, ok := m.acked(rng); ok && m.l.hold(c.session) {
			o = c
			break
		}
	}
	if o == nil {
		return
	}
	defer m.l.release(o.session)
	var r client.SessionReply
	if m.retry("fork", func(ctx context.Context) (err error) {
		r, err = m.c.Fork(ctx, client.ForkRequest{Mutation: client.Mutation{RequestID: fmt.Sprintf("fork-%d", n)},
			Session: o.session, At: client.AtPosition(o.pos), Tags: map[string]string{"mix": "fork"}})
		return err
	}) {
		m.mu.Lock()
		m.forks = append(m.forks, forked{session: r.Session.ID, parent: o.session, path: o.path, content: o.content, at: o.pos})
		m.mu.Unlock()
	}
}

// bigWrite writes 64 KiB (stored as a blob before its event) to a fork.
func (m *mixer) bigWrite(rng *rand.Rand, n int) {
	m.mu.Lock()
	if len(m.forks) == 0 {
		m.mu.Unlock()
		return
	}
	f := m.forks[rng.IntN(len(m.forks))]
	m.mu.Unlock()
	content := bytes.Repeat([]byte(fmt.Sprintf("big %d;", n)), 64<<10/8)
	path := fmt.Sprintf("big/%d", n)
	var r client.ChangeReply
	if m.retry("large write", func(ctx context.Context) (err error) {
		r, err = m.c.Write(ctx, client.WriteRequest{Mutation: client.Mutation{RequestID: fmt.Sprintf("big-%d", n)},
			Session: f.session, Path: path, Content: content})
		return err
	}) {
		m.mu.Lock()
		m.big = append(m.big, bigWrite{session: f.session, path: path, pos: r.Position, sum: domain.Sum(content)})
		m.mu.Unlock()
	}
}

// review annotates a new session, asks for approval, has another actor
// grant it, and commits (the summary worker computes the commit's summary).
func (m *mixer) review(n int) {
	var s client.SessionReply
	if !m.retry("review: create", func(ctx context.Context) (err error) {
		s, err = m.c.CreateSession(ctx, client.CreateSessionRequest{Mutation: client.Mutation{RequestID: fmt.Sprintf("rv-%d-create", n)},
			Tags: map[string]string{"mix": "review"}})
		return err
	}) {
		return
	}
	id := s.Session.ID
	if !m.retry("review: write", func(ctx context.Context) error {
		_, err := m.c.Write(ctx, client.WriteRequest{Mutation: client.Mutation{RequestID: fmt.Sprintf("rv-%d-write", n)},
			Session: id, Path: "main.go", Content: []byte(fmt.Sprintf("package main // %d\n", n))})
		return err
	}) || !m.retry("review: note", func(ctx context.Context) error {
		_, err := m.c.Annotate(ctx, client.AnnotateRequest{Mutation: client.Mutation{RequestID: fmt.Sprintf("rv-%d-note", n)},
			Session: id, Body: "looks fine", Path: "main.go"})
		return err
	}) {
		return
	}
	var req client.ApprovalReply
	if !m.retry("review: request", func(ctx context.Context) (err error) {
		req, err = m.c.RequestApproval(ctx, client.ApprovalRequestRequest{Mutation: client.Mutation{RequestID: fmt.Sprintf("rv-%d-req", n)},
			Session: id, Reason: "commit", Group: "mix"})
		return err
	}) {
		return
	}
	if n%3 == 0 {
		// Left pending: the review queue keeps it, and the summary worker
		// precomputes its summary.
		m.mu.Lock()
		m.waiting[id] = req.Request.ID
		m.mu.Unlock()
		return
	}
	if !m.retry("review: grant", func(ctx context.Context) error {
		_, err := m.granter.Grant(ctx, client.DecideRequest{Mutation: client.Mutation{RequestID: fmt.Sprintf("rv-%d-grant", n)},
			Session: id, Request: req.Request.ID})
		return err
	}) || !m.retry("review: commit", func(ctx context.Context) error {
		_, err := m.c.CreateCommit(ctx, client.CommitRequest{Mutation: client.Mutation{RequestID: fmt.Sprintf("rv-%d-commit", n)},
			Session: id, Message: "mixed load"})
		return err
	}) {
		return
	}
	m.mu.Lock()
	m.reviewed = append(m.reviewed, id)
	m.mu.Unlock()
}

// upload stores a chunk that nothing will name: the collector's work.
func (m *mixer) upload(rng *rand.Rand, n int) {
	var r client.UploadReply
	session := m.l.pick(rng)
	defer m.l.release(session)
	if m.retry("orphan upload", func(ctx context.Context) (err error) {
		r, err = m.c.Upload(ctx, session, []byte(fmt.Sprintf("orphan %d %d", n, time.Now().UnixNano())))
		return err
	}) {
		m.mu.Lock()
		m.orphans = append(m.orphans, orphan{hash: r.Hash, at: time.Now()})
		m.mu.Unlock()
	}
}

func (m *mixer) list() {
	m.retry("session list", func(ctx context.Context) error {
		_, err := m.c.ListSessions(ctx, client.ListSessionsRequest{Tags: map[string]string{"mix": "fork"}, Limit: 50})
		return err
	})
}

// check verifies, once the load stopped: checkReads, checkProjections and
// checkCollector, in turn.
func (m *mixer) check(ctx context.Context) {
	m.checkReads(ctx)
	m.checkProjections(ctx, 2*time.Minute)
	m.checkCollector(ctx, 2*time.Minute)
}

// checkReads reports the mixer's failures during the load and verifies
// that forks read their parent's write and large writes read back whole
// at their positions.
func (m *mixer) checkReads(ctx context.Context) {
	t := m.t
	for _, e := range m.errs {
		t.Error(e)
	}
	t.Logf("mixer: %v; %d forks, %d large writes, %d reviews committed, %d left pending, %d orphan uploads",
		m.counts, len(m.forks), len(m.big), len(m.reviewed), len(m.waiting), len(m.orphans))
	parallel(len(m.forks), func(i int) {
		f := m.forks[i]
		data, _, err := m.c.ReadAll(ctx, f.session, f.path, "")
		if err != nil || string(data) != f.content {
			t.Errorf("fork %s of %s@%d: read %s: %q, %v; want %q", f.session, f.parent, f.at, f.path, data, err, f.content)
		}
	})
	parallel(len(m.big), func(i int) {
		b := m.big[i]
		data, _, err := m.c.ReadAll(ctx, b.session, b.path, client.AtPosition(b.pos))
		if err != nil || domain.Sum(data) != b.sum {
			t.Errorf("large write %s of %s at %d: %d bytes, %v; want its 64 KiB back", b.path, b.session, b.pos, len(data), err)
		}
	})
}

// checkProjections waits up to wait for the projections to catch up: no
// lag, every session's view at its head, no granted request left pending
// and every pending one queued.
func (m *mixer) checkProjections(ctx context.Context, wait time.Duration) {
	t := m.t
	began := time.Now()
	var first string
	for {
		problem := m.projectionProblem(ctx)
		if problem == "" {
			t.Logf("projections caught up %v after the load", time.Since(began).Round(time.Second))
			return
		}
		if first == "" {
			first = problem
		}
		if time.Since(began) > wait {
			t.Errorf("projections %v after the load: %s (first seen: %s)", wait, problem, first)
			return
		}
		time.Sleep(time.Second)
	}
}

// checkCollector waits up to wait for the orphan uploads older than the
// collector's grace (twice, plus its period: 90 s) to be gone.
func (m *mixer) checkCollector(ctx context.Context, wait time.Duration) {
	t := m.t
	var old []string
	for _, o := range m.orphans {
		if time.Since(o.at) > 3*time.Minute/2 {
			old = append(old, o.hash)
		}
	}
	if len(old) == 0 {
		return
	}
	began := time.Now()
	for {
		has, err := m.c.Has(ctx, old)
		if err == nil && len(has.Have) == 0 {
			t.Logf("collector: all %d orphan uploads older than 90 s are gone (%v after the load's end)", len(old), time.Since(began).Round(time.Second))
			return
		}
		if time.Since(began) > wait {
			t.Errorf("collector: %d of %d orphan uploads older than 90 s still held %v after the load (%v)", len(has.Have), len(old), wait, err)
			return
		}
		time.Sleep(2 * time.Second)
	}
}

// projectionProblem says what is not caught up yet ("" when all is).
func (m *mixer) projectionProblem(ctx context.Context) string {
	st, err := m.c.Projections(ctx)
	if err != nil {
		return err.Error()
	}
	for _, p := range st.Projections {
		if p.Lag != 0 || p.Error != "" {
			return fmt.Sprintf("%s lags %d: %+v", p.Name, p.Lag, p)
		}
	}
	sessions := append(slices.Clone(m.l.sessions), m.reviewed...)
	for id := range m.waiting {
		sessions = append(sessions, id)
	}
	for _, f := range m.forks {
		sessions = append(sessions, f.session)
	}
	views := map[string]uint64{}
	// Every status but deleted, then the deleted ones (load.rotate's).
	for _, status := range []string{"", string(domain.StatusDeleted)} {
		for cursor := ""; ; {
			r, err := m.c.ListSessions(ctx, client.ListSessionsRequest{Status: status, Cursor: cursor, Limit: 500})
			if err != nil {
				return err.Error()
			}
			for _, v := range r.Sessions {
				views[v.ID] = v.Position
			}
			if r.NextCursor == "" {
				break
			}
			cursor = r.NextCursor
		}
	}
	var mu sync.Mutex
	var problem string
	parallel(len(sessions), func(i int) {
		id := sessions[i]
		if pos, ok := m.l.retired[id]; ok {
			// Deleted: its head reads answer not_found; the delete was its
			// last event.
			mu.Lock()
			defer mu.Unlock()
			if views[id] != pos {
				problem = fmt.Sprintf("deleted session %s: view at %d, deleted at %d", id, views[id], pos)
			}
			return
		}
		head, err := m.c.GetSession(ctx, id, "")
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err != nil:
			problem = err.Error()
		case views[id] != head.Position:
			problem = fmt.Sprintf("session %s: view at %d, head at %d", id, views[id], head.Position)
		}
	})
	if problem != "" {
		return problem
	}
	pending, err := m.c.Pending(ctx, client.PendingRequest{Group: "mix"})
	if err != nil {
		return err.Error()
	}
	queued := map[string]bool{}
	for _, r := range pending.Requests {
		queued[r.ID] = true
		if m.waiting[r.Session] != r.ID {
			return fmt.Sprintf("request %s of %s is in the review queue, but it was granted", r.ID, r.Session)
		}
	}
	for session, id := range m.waiting {
		if !queued[id] {
			return fmt.Sprintf("pending request %s of %s is not in the review queue", id, session)
		}
	}
	return ""
}

// verifyAll runs `strand audit verify --all` against urls: every history
// replayed and every blob read.
func verifyAll(t *testing.T, ctx context.Context, urls string) {
	t.Helper()
	out, err := exec.CommandContext(ctx, bin.strand, "audit", "verify", "--all", "--server", urls).CombinedOutput()
	if err != nil {
		t.Errorf("strand audit verify --all: %v\n%s", err, out)
		return
	}
	t.Logf("strand audit verify --all: %s", bytes.TrimSpace(out))
}

// parallel calls fn(0) .. fn(n-1), eight at a time, and waits for them.
func parallel(n int, fn func(i int)) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			fn(i)
		}()
	}
	wg.Wait()
}
