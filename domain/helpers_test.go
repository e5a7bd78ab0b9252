package domain_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/strand-dev/strand/domain"
)

// This file holds the harness shared by the tests of package domain: an
// in-memory event log that models a JetStream stream (one global sequence,
// one subject per session), and helpers to build trees.

// stored is one appended event: its position and encoded body.
type stored struct {
	pos  uint64
	body []byte
}

// history is one session's own events and the state after each of them.
type history struct {
	id     string
	parent string // fork parent, or ""
	forkAt uint64 // position of the parent the fork starts at
	// base is the tree a session created from a source starts with: the
	// event names the source, and a loader looks its tree up.
	base   *domain.Session
	events []stored
	states map[uint64]*domain.Session
	roots  map[uint64]domain.Hash // tree hash at each position, taken when recorded
	head   *domain.Session
}

// eventLog is an in-memory event store. Positions are global and increasing, as
// JetStream sequences are across the subjects of a stream.
type eventLog struct {
	t        testing.TB
	last     uint64
	sessions map[string]*history
	order    []string // session ids in creation order: parents before forks
	clock    time.Time
}

func newLog(t testing.TB) *eventLog {
	return &eventLog{t: t, sessions: map[string]*history{}, clock: time.Unix(1_700_000_000, 0).UTC()}
}

// past answers the state of session id at a position of its history: one of
// its own events, or, for a fork, one of its parent's at or before the fork.
func (l *eventLog) past(id string) domain.Past {
	return func(p uint64) (*domain.Session, error) {
		h := l.sessions[id]
		for h != nil {
			if s, ok := h.states[p]; ok {
				return s, nil
			}
			if h.parent == "" || p > h.forkAt {
				break
			}
			h = l.sessions[h.parent]
		}
		return nil, domain.ErrPositionUnknown
	}
}

// positions lists every position of session id's history, oldest first.
func (l *eventLog) positions(id string) []uint64 {
	h := l.sessions[id]
	var own []uint64
	for _, ev := range h.events {
		own = append(own, ev.pos)
	}
	if h.parent == "" {
		return own
	}
	var out []uint64
	for _, p := range l.positions(h.parent) {
		if p <= h.forkAt {
			out = append(out, p)
		}
	}
	return append(out, own...)
}

func (l *eventLog) meta() domain.Meta {
	return domain.Meta{
		EventID: fmt.Sprintf("ev-%d", l.last+1),
		Actor:   "tester",
		Time:    l.clock.Add(time.Duration(l.last+1) * time.Second),
	}
}

// exec decides cmd against session id's head and, when accepted, appends
// the event and records the new state, the way a writer would. For
// CreateSession and ForkSession id is the new session's id.
func (l *eventLog) exec(id string, cmd domain.Command) (*domain.Session, *domain.Event, error) {
	return l.execMeta(id, cmd, l.meta())
}

func (l *eventLog) execMeta(id string, cmd domain.Command, m domain.Meta) (*domain.Session, *domain.Event, error) {
	l.t.Helper()
	var s *domain.Session
	h := l.sessions[id]
	if h != nil {
		s = h.head
	}
	var before domain.Hash
	var version uint64
	if s != nil {
		before, version = s.Tree.Hash(), s.Version
	}
	e, n, err := domain.Execute(s, cmd, m, l.past(id))
	if s != nil && (s.Tree.Hash() != before || s.Version != version) {
		l.t.Fatalf("Execute(%T) changed the state it was given", cmd)
	}
	if err != nil {
		if e != nil || n != nil {
			l.t.Fatalf("Execute(%T) = (%v, %v, %v), want no event and no state with an error", cmd, e, n, err)
		}
		return nil, nil, err
	}
	body, err := e.Encode()
	if err != nil {
		l.t.Fatalf("Encode(%s): %v", e.Type, err)
	}
	l.last++
	n.Commit(e, l.last, domain.Sum(body))
	if h == nil {
		h = &history{id: id, states: map[uint64]*domain.Session{}, roots: map[uint64]domain.Hash{}}
		switch c := cmd.(type) {
		case domain.ForkSession:
			h.parent, h.forkAt = c.Parent.ID, c.Parent.Position
		case domain.CreateSession:
			h.base = &domain.Session{Tree: c.Base}
		}
		l.sessions[id] = h
		l.order = append(l.order, id)
	}
	h.events = append(h.events, stored{pos: l.last, body: body})
	h.states[l.last] = n
	h.roots[l.last] = n.Tree.Hash()
	h.head = n
	return n, e, nil
}

// as is must with another actor.
func (l *eventLog) as(id, actor string, cmd domain.Command) *domain.Session {
	l.t.Helper()
	m := l.meta()
	m.Actor = actor
	n, _, err := l.execMeta(id, cmd, m)
	if err != nil {
		l.t.Fatalf("Execute(%s, %#v) as %s: %v", id, cmd, actor, err)
	}
	return n
}

// must is exec that fails the test on a refusal.
func (l *eventLog) must(id string, cmd domain.Command) *domain.Session {
	l.t.Helper()
	n, _, err := l.exec(id, cmd)
	if err != nil {
		l.t.Fatalf("Execute(%s, %#v): %v", id, cmd, err)
	}
	return n
}

// create starts a session with an empty tree.
func (l *eventLog) create(id string) *domain.Session {
	l.t.Helper()
	return l.must(id, domain.CreateSession{ID: id, Tenant: "acme", Owner: "owner"})
}

// replay rebuilds every session from its stored bodies with Evolve and
// returns the states by session and position.
func (l *eventLog) replay() (map[string]map[uint64]*domain.Session, error) {
	out := map[string]map[uint64]*domain.Session{}
	past := func(id string) domain.Past {
		return func(p uint64) (*domain.Session, error) {
			h := l.sessions[id]
			for h != nil {
				if s, ok := out[h.id][p]; ok {
					return s, nil
				}
				if h.parent == "" || p > h.forkAt {
					break
				}
				h = l.sessions[h.parent]
			}
			return nil, domain.ErrPositionUnknown
		}
	}
	for _, id := range l.order {
		h := l.sessions[id]
		out[id] = map[uint64]*domain.Session{}
		prev := h.base
		if h.parent != "" {
			prev = out[h.parent][h.forkAt]
			if prev == nil {
				return nil, fmt.Errorf("fork %s: parent %s has no replayed state at %d", id, h.parent, h.forkAt)
			}
		}
		for _, ev := range h.events {
			e, err := domain.DecodeEvent(ev.body)
			if err != nil {
				return nil, fmt.Errorf("decode %s@%d: %w", id, ev.pos, err)
			}
			n, err := domain.Evolve(prev, e, ev.pos, domain.Sum(ev.body), past(id))
			if err != nil {
				return nil, fmt.Errorf("evolve %s@%d (%s): %w", id, ev.pos, e.Type, err)
			}
			out[id][ev.pos] = n
			prev = n
		}
	}
	return out, nil
}

// wantCode fails unless err has the wanted code.
func wantCode(t testing.TB, what string, err error, want domain.Code) {
	t.Helper()
	if got := domain.ErrorCode(err); got != want {
		t.Fatalf("%s: got error %v (code %q), want code %q", what, err, got, want)
	}
}

// content returns a content hash and size derived from s.
func content(s string) (domain.Hash, int64) { return domain.Sum([]byte(s)), int64(len(s)) }

func write(p, data string) domain.FileOp {
	h, n := content(data)
	return domain.FileOp{Kind: domain.OpWrite, Path: p, Content: h, Size: n}
}

func mkdir(p string) domain.FileOp { return domain.FileOp{Kind: domain.OpMkdir, Path: p} }

func remove(p string, recursive bool) domain.FileOp {
	return domain.FileOp{Kind: domain.OpRemove, Path: p, Recursive: recursive}
}

func rename(from, to string) domain.FileOp {
	return domain.FileOp{Kind: domain.OpRename, Path: from, To: to}
}

func symlink(p, target string) domain.FileOp {
	return domain.FileOp{Kind: domain.OpSymlink, Path: p, Target: target}
}

func one(op domain.FileOp) domain.ChangeFiles { return domain.ChangeFiles{Ops: []domain.FileOp{op}} }

func batch(ops ...domain.FileOp) domain.ChangeFiles {
	return domain.ChangeFiles{Ops: ops, Batch: true}
}

// treeOf builds a tree from a spec: "d/" is a directory, "l -> t" a
// symlink, anything else a file whose content is its path.
func treeOf(t testing.TB, spec ...string) domain.Tree {
	t.Helper()
	var tr domain.Tree
	for _, s := range spec {
		var err error
		switch {
		case strings.Contains(s, " -> "):
			link, target, _ := strings.Cut(s, " -> ")
			tr, err = tr.Put(link, domain.NewSymlink(target, nil))
		case strings.HasSuffix(s, "/"):
			tr, err = tr.Put(s[:len(s)-1], domain.NewDir(domain.DefaultDirMode, nil))
		default:
			h, n := content(s)
			tr, err = tr.Put(s, domain.NewFile(h, n, domain.DefaultFileMode, nil))
		}
		if err != nil {
			t.Fatalf("Put(%q): %v", s, err)
		}
	}
	return tr
}

// paths lists the paths of a walk of the whole tree.
func paths(tr domain.Tree) []string {
	var out []string
	tr.Walk("", "", func(e domain.Entry) bool {
		out = append(out, e.Path)
		return true
	})
	return out
}

// randomTree returns a random tree of about n entries with names drawn from
// a small alphabet, so that prefixes like "a", "a.b" and "a/b" all occur.
func randomTree(t testing.TB, r *rand.Rand, n int) domain.Tree {
	t.Helper()
	var tr domain.Tree
	dirs := []string{""}
	for i := 0; i < n; i++ {
		dir := dirs[r.IntN(len(dirs))]
		p := randomName(r)
		if dir != "" {
			p = dir + "/" + p
		}
		if tr.Lookup(p) != nil {
			continue
		}
		var node *domain.Node
		if r.IntN(3) == 0 {
			node = domain.NewDir(domain.DefaultDirMode, nil)
			dirs = append(dirs, p)
		} else {
			h, size := content(fmt.Sprint(r.Uint64()))
			node = domain.NewFile(h, size, domain.DefaultFileMode, nil)
		}
		var err error
		if tr, err = tr.Put(p, node); err != nil {
			t.Fatalf("Put(%q): %v", p, err)
		}
	}
	return tr
}

var nameParts = []string{"a", "b", "a.b", "a-b", "ab", "B", "0", "é", "a b", "zz"}

func randomName(r *rand.Rand) string {
	s := nameParts[r.IntN(len(nameParts))]
	if r.IntN(3) == 0 {
		s += nameParts[r.IntN(len(nameParts))]
	}
	return s
}
