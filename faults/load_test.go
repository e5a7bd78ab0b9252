//go:build fault

package faults_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/nats-io/nats.go"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

// op is one logical operation a client made on a session: a write (with or
// without expected_position) or a read of the head. A write that timed out
// or failed is retried with the same request_id until it gets an answer or
// the client gives up; the operation spans from its first attempt to its
// answer.
type op struct {
	client    int
	session   string
	read      bool
	create    bool
	expected  uint64 // 0: no expectation
	requestID string // "": sent once, without request_id, never retried
	path      string // the path written (unique unless load.paths)
	content   string // the content written, unique: finds the write's event

	call, ret int64 // ns since the load started; ret = math.MaxInt64: no answer
	pos       uint64
	conflict  bool
	attempts  int
}

// load is a write load from several clients, each on its own connection,
// recording every operation's invocation and answer.
type load struct {
	t       *testing.T
	tenant  string
	start   time.Time
	clients []*client.Client
	// attempt bounds one request; giveUp bounds an operation with its
	// retries.
	attempt, giveUp time.Duration

	sessions []string
	// paths, when not 0, makes the writers' load steady: each client
	// writes paths c<i>/f0 .. c<i>/f<paths-1> of a session in turn,
	// overwriting, so a session's tree stops growing; 0: every write a new
	// path, and the trees grow as long as the load runs. The content is
	// unique either way.
	paths int
	// live, when not nil, are the sessions the writers pick from (they
	// change: see retire); nil: all of sessions. inflight counts the
	// operations under way on each session (hold), retiring the sessions
	// taken out of live and not deleted yet, retired the deleted ones and
	// the position of their delete.
	live     []string
	inflight map[string]int
	retiring map[string]bool
	retired  map[string]uint64
	released *sync.Cond
	// alongside run beside the writers in runFor (a mixer's run).
	alongside []func(stop <-chan struct{}) (wait func())

	mu       sync.Mutex
	ops      []*op
	errs     []string
	retried  int
	internal int
	// answered holds when each write got a definite answer (a position or
	// conflict), and faults when each fault was made: outages measures the
	// stretches between them.
	answered []int64
	faults   []fault
}

// fault is one fault made during the load, and how long the cluster took
// to elect the leader it killed again (0: not measured).
type fault struct {
	name     string
	at       int64
	election time.Duration
}

// newLoad connects n clients, client i to urls(i).
func newLoad(t *testing.T, tenant string, n int, urls func(i int) string) *load {
	t.Helper()
	l := &load{t: t, tenant: tenant, start: time.Now(), attempt: 3 * time.Second, giveUp: 60 * time.Second,
		inflight: map[string]int{}, retiring: map[string]bool{}, retired: map[string]uint64{}}
	l.released = sync.NewCond(&l.mu)
	for i := range n {
		nc, err := nats.Connect(urls(i), nats.DontRandomize(), nats.MaxReconnects(-1),
			nats.ReconnectWait(100*time.Millisecond), nats.Timeout(2*time.Second), nats.Name(fmt.Sprintf("client-%d", i)))
		if err != nil {
			t.Fatalf("client %d: connect to %s: %v", i, urls(i), err)
		}
		t.Cleanup(nc.Close)
		l.clients = append(l.clients, client.NewClient(nc, tenant))
	}
	return l
}

func (l *load) now() int64 { return time.Since(l.start).Nanoseconds() }

// createSessions creates n sessions (retrying like any write).
func (l *load) createSessions(n int) {
	l.t.Helper()
	for i := range n {
		o := &op{client: 0, create: true, requestID: fmt.Sprintf("create-%d", i)}
		l.mutate(l.clients[0], o, func(ctx context.Context) (uint64, error) {
			r, err := l.clients[0].CreateSession(ctx, client.CreateSessionRequest{Mutation: client.Mutation{RequestID: o.requestID}})
			o.session = r.Session.ID
			return r.Position, err
		})
		if o.ret == math.MaxInt64 || o.conflict {
			l.t.Fatalf("create session %d failed: %v", i, l.errs)
		}
		l.sessions = append(l.sessions, o.session)
		l.record(o)
	}
}

func (l *load) record(o *op) {
	l.mu.Lock()
	l.ops = append(l.ops, o)
	l.mu.Unlock()
}

func (l *load) fail(format string, args ...any) {
	l.mu.Lock()
	l.errs = append(l.errs, fmt.Sprintf(format, args...))
	l.mu.Unlock()
}

// mutate runs a write until it gets a definite answer: a position, or
// conflict (refused, nothing stored). Timeouts and unavailable or internal
// errors are retried with the same request_id; after giveUp the operation
// stays unanswered.
func (l *load) mutate(c *client.Client, o *op, do func(ctx context.Context) (uint64, error)) {
	o.call = l.now()
	deadline := time.Now().Add(l.giveUp)
	pause := 50 * time.Millisecond
	for o.attempts = 1; ; o.attempts++ {
		ctx, cancel := context.WithTimeout(context.Background(), l.attempt)
		pos, err := do(ctx)
		cancel()
		if err == nil {
			o.ret, o.pos = l.now(), pos
			l.answer(o.ret)
			return
		}
		switch code := client.ErrorCode(err); code {
		case domain.CodeConflict:
			o.ret, o.conflict = l.now(), true
			l.answer(o.ret)
			return
		case domain.CodeUnavailable, domain.CodeInternal:
			l.mu.Lock()
			l.retried++
			if code == domain.CodeInternal {
				// A fault the service rides through is not an internal
				// error: it retries, and answers unavailable at worst.
				l.internal++
				l.errs = append(l.errs, fmt.Sprintf("%s %s: attempt %d answered %v, want no internal error", o.session, o.requestID, o.attempts, err))
			}
			l.mu.Unlock()
		default:
			l.fail("%s %s: unexpected %v", o.session, o.requestID, err)
			o.ret = math.MaxInt64
			return
		}
		if time.Now().After(deadline) {
			o.ret = math.MaxInt64
			return
		}
		time.Sleep(pause)
		pause = min(2*pause, time.Second)
	}
}

// once sends a write without request_id a single time: whatever the
// failure, its outcome stays unknown (a caller without a request id cannot
// retry safely).
func (l *load) once(o *op, do func(ctx context.Context) (uint64, error)) {
	o.call, o.attempts = l.now(), 1
	ctx, cancel := context.WithTimeout(context.Background(), l.attempt)
	pos, err := do(ctx)
	cancel()
	switch {
	case err == nil:
		o.ret, o.pos = l.now(), pos
		l.answer(o.ret)
	case client.ErrorCode(err) == domain.CodeConflict:
		o.ret, o.conflict = l.now(), true
		l.answer(o.ret)
	case client.ErrorCode(err) == domain.CodeInternal:
		l.fail("%s %s (no request id): answered %v, want no internal error", o.session, o.path, err)
		o.ret = math.MaxInt64
	default:
		o.ret = math.MaxInt64
	}
}

func (l *load) answer(at int64) {
	l.mu.Lock()
	l.answered = append(l.answered, at)
	l.mu.Unlock()
}

// fault records a fault made now; the returned function records the
// election time it caused, once known.
func (l *load) fault(name string) func(election time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := len(l.faults)
	l.faults = append(l.faults, fault{name: name, at: l.now()})
	return func(d time.Duration) {
		l.mu.Lock()
		l.faults[i].election = d
		l.mu.Unlock()
	}
}

// outages returns, for each fault, the longest stretch in which no write
// got a definite answer, among the stretches that overlap the time from
// the fault to the next one (or the end of the load); a stretch that holds
// the next fault is that fault's.
func (l *load) outages() []stretch {
	l.mu.Lock()
	defer l.mu.Unlock()
	ans := slices.Clone(l.answered)
	slices.Sort(ans)
	out := make([]stretch, len(l.faults))
	for i, f := range l.faults {
		end := int64(math.MaxInt64)
		if i+1 < len(l.faults) {
			end = l.faults[i+1].at
		}
		// The stretch that holds the fault begins at the last answer
		// before it.
		prev := f.at
		for _, a := range ans {
			if a <= f.at {
				prev = a
				continue
			}
			if a > end {
				// This stretch holds the next fault: it is that one's.
				break
			}
			if a-prev > out[i].to-out[i].from {
				out[i] = stretch{prev, a}
			}
			prev = a
		}
	}
	return out
}

// stretch is a time span of the load (nanoseconds since its start).
type stretch struct{ from, to int64 }

func (s stretch) length() time.Duration { return time.Duration(s.to - s.from) }

// reportOutages logs, per fault, the longest stretch of writes that were
// refused or unanswered (and when it was), next to the election time it
// caused; it returns the stretches' lengths.
func (l *load) reportOutages() []time.Duration {
	out := l.outages()
	lengths := make([]time.Duration, len(out))
	for i, f := range l.faults {
		elected := ""
		if f.election > 0 {
			elected = fmt.Sprintf(" (leader elected after %v)", f.election.Round(time.Millisecond))
		}
		lengths[i] = out[i].length()
		l.t.Logf("fault %d (%s at t=%.1fs): longest stretch without an answered write %v, t=%.1fs-%.1fs%s",
			i+1, f.name, time.Duration(f.at).Seconds(), lengths[i].Round(time.Millisecond),
			time.Duration(out[i].from).Seconds(), time.Duration(out[i].to).Seconds(), elected)
	}
	return lengths
}

// run makes each client do operations back to back on random sessions
// until stop is closed: 35 % writes without expectation, 35 % writes
// expecting the head the client last saw (retried with their request_id
// until answered), 10 % writes without request_id (sent once), 20 % reads
// of the head.
func (l *load) run(stop <-chan struct{}) (wait func()) {
	var wg sync.WaitGroup
	for ci, c := range l.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(ci), 7))
			seen := map[string]uint64{}
			written := map[string]int{} // writes to each session, for load.paths
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				sess := l.pick(rng)
				o := &op{client: ci, session: sess}
				switch r := rng.IntN(100); {
				case r < 20:
					o.read = true
					o.call = l.now()
					ctx, cancel := context.WithTimeout(context.Background(), l.attempt)
					got, err := c.GetSession(ctx, sess, "")
					cancel()
					l.release(sess)
					if err != nil {
						continue // no answer, no observation
					}
					o.ret, o.pos = l.now(), got.Position
					seen[sess] = max(seen[sess], got.Position)
					l.record(o)
					continue
				case r < 55:
					o.expected = seen[sess]
				}
				o.path = fmt.Sprintf("c%d/%d", ci, n)
				o.content = o.path
				if l.paths > 0 {
					o.path = fmt.Sprintf("c%d/f%d", ci, written[sess]%l.paths)
					written[sess]++
				}
				write := func(ctx context.Context) (uint64, error) {
					r, err := c.Write(ctx, client.WriteRequest{
						Mutation: client.Mutation{RequestID: o.requestID, ExpectedPosition: o.expected},
						Session:  sess, Path: o.path, Content: []byte(o.content),
					})
					return r.Position, err
				}
				if r := rng.IntN(100); r < 12 {
					l.once(o, write)
				} else {
					o.requestID = fmt.Sprintf("c%d-%d", ci, n)
					l.mutate(c, o, write)
				}
				l.release(sess)
				if !o.conflict && o.ret != math.MaxInt64 {
					seen[sess] = max(seen[sess], o.pos)
				}
				l.record(o)
			}
		}()
	}
	return wg.Wait
}

// runFor runs the load for d, calling fault (if not nil) at the given
// offsets, then stops the clients and waits until their operations end.
func (l *load) runFor(d time.Duration, faults map[time.Duration]func()) {
	stop := make(chan struct{})
	wait := l.run(stop)
	for _, run := range l.alongside {
		w := run(stop)
		defer w()
	}
	var at []time.Duration
	for k := range faults {
		at = append(at, k)
	}
	sort.Slice(at, func(i, j int) bool { return at[i] < at[j] })
	began := time.Now()
	for _, k := range at {
		time.Sleep(time.Until(began.Add(k)))
		l.t.Logf("t=%.1fs:", time.Since(began).Seconds())
		faults[k]()
	}
	time.Sleep(time.Until(began.Add(d)))
	close(stop)
	wait()
}

// check verifies the recorded operations against the histories (read back
// and audited by audit) and checks linearizability per session.
func (l *load) check(hs map[string]*history) {
	l.t.Helper()
	l.checkStored(hs)
	l.checkLinearizable()
}

// checkStored verifies the recorded operations against the histories:
// every acknowledged write stored exactly once where its reply said, every
// refused one absent, every unanswered one there at most once.
func (l *load) checkStored(hs map[string]*history) {
	t := l.t
	t.Helper()
	for _, e := range l.errs {
		t.Error(e)
	}
	var writes, acked, conflicts, unanswered, unansweredStored, reads, stored int
	paths, requests := map[string]bool{}, map[string]bool{}
	for _, o := range l.ops {
		if o.read {
			reads++
			continue
		}
		writes++
		h := hs[o.session]
		if h == nil {
			t.Errorf("no history for session %s", o.session)
			continue
		}
		// Where the write is stored: found by its unique content, and for
		// one with a request id, by that too (they must agree).
		var got []uint64
		if o.requestID != "" {
			requests[o.requestID] = true
			got = h.ByRequest[o.requestID]
		}
		if o.path != "" {
			paths[o.path] = true
		}
		if o.content != "" {
			byContent := h.ByContent[domain.Sum([]byte(o.content))]
			if o.requestID != "" && fmt.Sprint(byContent) != fmt.Sprint(got) {
				t.Errorf("%s %s: events writing %q at %v, events with its request id at %v", o.session, o.requestID, o.content, byContent, got)
			}
			got = byContent
		}
		name := o.requestID
		if name == "" {
			name = o.path + " (no request id)"
		}
		switch {
		case o.ret == math.MaxInt64:
			unanswered++
			if len(got) > 1 {
				t.Errorf("%s %s (unanswered) stored %d times at %v", o.session, name, len(got), got)
			}
			if len(got) == 1 {
				o.pos = got[0] // it took effect: at that position, at some time after its call
				unansweredStored++
			}
		case o.conflict:
			conflicts++
			if len(got) != 0 {
				t.Errorf("%s %s was refused (conflict) but is stored at %v", o.session, name, got)
			}
		default:
			acked++
			if len(got) != 1 || got[0] != o.pos {
				t.Errorf("%s %s was acknowledged at %d but is stored at %v; want exactly once there", o.session, name, o.pos, got)
				continue
			}
			if o.path != "" && h.Head.Tree.Lookup(o.path) == nil {
				t.Errorf("%s: acknowledged write of %s (%s) missing from the head", o.session, o.path, name)
			}
		}
	}
	for id, h := range hs {
		stored += len(h.Events)
		for rid, got := range h.ByRequest {
			if !requests[rid] {
				t.Errorf("session %s: event(s) at %v with request id %s that no client sent", id, got, rid)
			}
		}
		for p, got := range h.ByPath {
			if !paths[p] {
				t.Errorf("session %s: event(s) at %v writing %s, which no client wrote", id, got, p)
			}
		}
	}
	t.Logf("%d writes: %d acknowledged, %d refused with conflict, %d unanswered (%d of them stored); %d reads; %d attempts retried (%d after an internal error); %d events stored",
		writes, acked, conflicts, unanswered, unansweredStored, reads, l.retried, l.internal, stored)
	if acked == 0 {
		t.Errorf("no write was acknowledged: the load did not run")
	}
}

// The model of one session for porcupine: the state is the head position.
// A create sets it; a write expecting p (0: anything) is refused unless the
// head is p, and otherwise moves the head to its position, which must be
// later; a refused write changes nothing; a read returns the head.
type opInput struct {
	read, create bool
	expected     uint64
}

type opOutput struct {
	pos      uint64
	conflict bool
}

var sessionModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		by := map[string][]porcupine.Operation{}
		var keys []string
		for _, o := range history {
			s := o.Metadata.(string)
			if by[s] == nil {
				keys = append(keys, s)
			}
			by[s] = append(by[s], o)
		}
		sort.Strings(keys)
		var out [][]porcupine.Operation
		for _, k := range keys {
			out = append(out, by[k])
		}
		return out
	},
	Init: func() any { return uint64(0) },
	Step: func(state, input, output any) (bool, any) {
		head, in, out := state.(uint64), input.(opInput), output.(opOutput)
		switch {
		case in.create:
			return head == 0 && out.pos > 0, out.pos
		case in.read:
			return out.pos == head, head
		case out.conflict:
			return in.expected == 0 || in.expected != head, head
		case in.expected != 0 && in.expected != head:
			return false, head
		default:
			return out.pos > head, out.pos
		}
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(opInput), output.(opOutput)
		switch {
		case in.create:
			return fmt.Sprintf("create -> %d", out.pos)
		case in.read:
			return fmt.Sprintf("read -> %d", out.pos)
		case out.conflict:
			return fmt.Sprintf("write(expect %d) -> conflict", in.expected)
		default:
			return fmt.Sprintf("write(expect %d) -> %d", in.expected, out.pos)
		}
	},
	DescribeState: func(state any) string { return fmt.Sprint(state.(uint64)) },
}

// checkLinearizable checks, per session, that the answers the clients got
// fit one order of the operations that respects real time. An unanswered
// write that is in the history took effect at its stored position some time
// after it was sent; one that is not changed nothing and is left out.
func (l *load) checkLinearizable() {
	t := l.t
	var hist []porcupine.Operation
	for _, o := range l.ops {
		if o.ret == math.MaxInt64 && o.pos == 0 {
			continue
		}
		hist = append(hist, porcupine.Operation{
			ClientId: o.client,
			Input:    opInput{read: o.read, create: o.create, expected: o.expected},
			Call:     o.call,
			Output:   opOutput{pos: o.pos, conflict: o.conflict},
			Return:   o.ret,
			Metadata: o.session,
		})
	}
	res, info := porcupine.CheckOperationsVerbose(sessionModel, hist, 2*time.Minute)
	switch res {
	case porcupine.Ok:
		t.Logf("linearizable: %d operations on %d sessions", len(hist), len(l.sessions))
	case porcupine.Illegal:
		path := filepath.Join(os.TempDir(), fmt.Sprintf("strand-%s-%d.html", strings.ReplaceAll(t.Name(), "/", "_"), time.Now().Unix()))
		if err := porcupine.VisualizePath(sessionModel, info, path); err == nil {
			t.Errorf("the clients' histories are not linearizable; see %s", path)
		} else {
			t.Errorf("the clients' histories are not linearizable (visualization failed: %v)", err)
		}
	default:
		t.Errorf("linearizability check inconclusive after 2 minutes (%d operations)", len(hist))
	}
}

// pick chooses a session for an operation of a writer and holds it (see
// hold); release it when the operation ended.
func (l *load) pick(rng *rand.Rand) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	from := l.live
	if from == nil {
		from = l.sessions
	}
	s := from[rng.IntN(len(from))]
	l.inflight[s]++
	return s
}

// hold marks an operation under way on session, so that retire does not
// delete it meanwhile; false when it is being retired or deleted (do
// nothing to it then).
func (l *load) hold(session string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.retiring[session] {
		return false
	}
	if _, ok := l.retired[session]; ok {
		return false
	}
	l.inflight[session]++
	return true
}

// release ends what pick or hold began.
func (l *load) release(session string) {
	l.mu.Lock()
	if l.inflight[session]--; l.inflight[session] <= 0 {
		delete(l.inflight, session)
		l.released.Broadcast()
	}
	l.mu.Unlock()
}

// isRetired reports whether session was deleted by retire.
func (l *load) isRetired(session string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.retired[session]
	return ok
}

// rotate replaces the oldest live session with a new one (created like any
// write, request id create-<n>), as an agent's session ends and another
// begins, then retires the old one: once no operation is under way on it,
// it is deleted (session.delete, request id retire-<n>; its history stays
// for reads of the past and audit). Both are recorded as operations of
// the load, checked by checkStored. It reports false when either failed.
func (l *load) rotate(n int) bool {
	c := l.clients[n%len(l.clients)]
	o := &op{client: n % len(l.clients), create: true, requestID: fmt.Sprintf("create-%d", n)}
	l.mutate(c, o, func(ctx context.Context) (uint64, error) {
		r, err := c.CreateSession(ctx, client.CreateSessionRequest{Mutation: client.Mutation{RequestID: o.requestID}})
		o.session = r.Session.ID
		return r.Position, err
	})
	if o.ret == math.MaxInt64 || o.conflict {
		l.fail("rotation %d: create: no answer or conflict", n)
		return false
	}
	l.record(o)
	l.mu.Lock()
	if l.live == nil {
		l.live = slices.Clone(l.sessions)
	}
	old := l.live[0]
	l.live = append(l.live[1:], o.session)
	l.sessions = append(l.sessions, o.session)
	l.retiring[old] = true
	for l.inflight[old] > 0 {
		l.released.Wait()
	}
	l.mu.Unlock()
	d := &op{client: n % len(l.clients), session: old, requestID: fmt.Sprintf("retire-%d", n)}
	l.mutate(c, d, func(ctx context.Context) (uint64, error) {
		r, err := c.DeleteSession(ctx, client.SessionRequest{Mutation: client.Mutation{RequestID: d.requestID}, Session: old})
		return r.Position, err
	})
	l.record(d)
	l.mu.Lock()
	delete(l.retiring, old)
	if d.ret != math.MaxInt64 && !d.conflict {
		l.retired[old] = d.pos
	}
	l.mu.Unlock()
	if d.ret == math.MaxInt64 || d.conflict {
		l.fail("rotation %d: delete of %s: no answer or conflict", n, old)
		return false
	}
	return true
}
