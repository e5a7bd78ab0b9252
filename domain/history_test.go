package domain_test

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/strand-dev/strand/domain"
)

// TestSession_RandomHistories drives sessions with random commands (most of
// them valid, some not), checks every accepted event against a flat model of
// the tree, then replays every session from its stored bodies and checks
// every position against what was recorded when it was written.
func TestSession_RandomHistories(t *testing.T) {
	const seeds, steps = 20, 300
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprint("Seed", seed), func(t *testing.T) {
			t.Parallel()
			g := &generator{r: rand.New(rand.NewPCG(seed, 7)), l: newLog(t)}
			g.l.create("s0")
			g.live = []string{"s0"}
			accepted, refused := 0, 0
			for step := range steps {
				id := g.session()
				target, cmd := g.command(id)
				before := g.l.sessions[id].head
				s, e, err := g.l.exec(target, cmd)
				if err != nil {
					refused++
					code := domain.ErrorCode(err)
					if code == domain.CodeInternal || !slices.Contains(domain.Codes, code) {
						t.Fatalf("step %d: %T on %s refused with %v (code %q), want a caller error", step, cmd, target, err, code)
					}
					continue
				}
				accepted++
				if target != id {
					g.live = append(g.live, target)
				}
				checkStep(t, g.l, step, before, cmd, e, s)
			}
			if accepted < steps/2 {
				t.Errorf("only %d of %d random commands were accepted (%d refused); the generator is off", accepted, steps, refused)
			}
			checkReplay(t, g.l)
			checkHistoryProperties(t, g.l)
		})
	}
}

// checkStep checks one accepted event: the new state against a flat model
// of the tree the event's ops describe, and the tree's own invariants.
func checkStep(t *testing.T, l *eventLog, step int, before *domain.Session, cmd domain.Command, e *domain.Event, s *domain.Session) {
	t.Helper()
	if root, _ := domain.HashFromBytes(e.Root); root != s.Tree.Hash() {
		t.Fatalf("step %d: event root %x, state root %s", step, e.Root, s.Tree.Hash())
	}
	switch c := cmd.(type) {
	case domain.ChangeFiles:
		want := flatten(before.Tree)
		for _, op := range e.Ops {
			modelApply(want, op)
		}
		got := flatten(s.Tree)
		if !maps.Equal(got, want) {
			t.Fatalf("step %d: ops %+v give a tree that differs from the model:\n%s", step, e.Ops, diffFlat(got, want))
		}
	case domain.RestoreSession:
		then, err := l.past(s.ID)(c.To)
		if err != nil || s.Tree.Hash() != then.Tree.Hash() {
			t.Fatalf("step %d: restore to %d gives %s, want %s (%v)", step, c.To, s.Tree.Hash(), then.Tree.Hash(), err)
		}
	case domain.ForkSession:
		if s.Tree.Hash() != c.Parent.Tree.Hash() {
			t.Fatalf("step %d: fork tree %s, want the parent's %s", step, s.Tree.Hash(), c.Parent.Tree.Hash())
		}
	default:
		if before != nil && s.Tree.Hash() != before.Tree.Hash() {
			t.Fatalf("step %d: %T changed the tree", step, cmd)
		}
	}
	checkTree(t, fmt.Sprintf("step %d", step), s.Tree, step%10 == 0)
}

// checkTree checks a tree's own invariants: walk order, clean paths, Count,
// and (when build) that a bulk load of its walk gives the same root.
func checkTree(t *testing.T, where string, tr domain.Tree, build bool) {
	t.Helper()
	var list []domain.Entry
	prev := ""
	tr.Walk("", "", func(e domain.Entry) bool {
		if prev != "" && domain.ComparePaths(prev, e.Path) >= 0 {
			t.Fatalf("%s: walk visits %q after %q", where, e.Path, prev)
		}
		if c, err := domain.CleanPath(e.Path); err != nil || c != e.Path {
			t.Fatalf("%s: the tree holds %q, which CleanPath makes %q, %v", where, e.Path, c, err)
		}
		prev = e.Path
		list = append(list, e)
		return true
	})
	if len(list) != tr.Count() {
		t.Fatalf("%s: walk visits %d entries, Count() = %d", where, len(list), tr.Count())
	}
	if build {
		b, err := domain.Build(list)
		if err != nil || b.Hash() != tr.Hash() {
			t.Fatalf("%s: Build(walk) = %s, %v; want %s", where, b.Hash(), err, tr.Hash())
		}
	}
}

// checkHistoryProperties replays the log and checks what must hold between
// positions: a fork starts with its parent's tree at the fork point, and a
// restore followed by a restore back to the position just before it gives
// the tree from before the restore.
func checkHistoryProperties(t *testing.T, l *eventLog) {
	t.Helper()
	replayed, err := l.replay()
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	pastOf := func(id string) domain.Past {
		return func(p uint64) (*domain.Session, error) {
			for h := l.sessions[id]; h != nil; h = l.sessions[h.parent] {
				if s, ok := replayed[h.id][p]; ok {
					return s, nil
				}
				if h.parent == "" || p > h.forkAt {
					break
				}
			}
			return nil, domain.ErrPositionUnknown
		}
	}
	forks, restores := 0, 0
	for _, id := range l.order {
		h := l.sessions[id]
		if h.parent != "" {
			forks++
			first := replayed[id][h.events[0].pos]
			parent := replayed[h.parent][h.forkAt]
			if first.Tree.Hash() != parent.Tree.Hash() {
				t.Errorf("fork %s of %s@%d: tree %s, want the parent's %s", id, h.parent, h.forkAt, first.Tree.Hash(), parent.Tree.Hash())
			}
		}
		for i, ev := range h.events {
			e, _ := domain.DecodeEvent(ev.body)
			if e.Type != domain.SessionRestored {
				continue
			}
			restores++
			before := replayed[id][h.events[i-1].pos]
			after := replayed[id][ev.pos]
			then, err := pastOf(id)(e.Restore.To)
			if err != nil || after.Tree.Hash() != then.Tree.Hash() {
				t.Errorf("%s@%d: restore to %d gives %s, want %s (%v)", id, ev.pos, e.Restore.To, after.Tree.Hash(), then.Tree.Hash(), err)
			}
			if after.Status != domain.StatusActive {
				continue // archived or deleted right after: nothing to undo with
			}
			_, undone, err := domain.Execute(after, domain.RestoreSession{To: before.Position}, domain.Meta{Actor: "check"}, pastOf(id))
			if err != nil {
				t.Errorf("%s@%d: restore back to %d: %v", id, ev.pos, before.Position, err)
				continue
			}
			if undone.Tree.Hash() != before.Tree.Hash() {
				t.Errorf("%s@%d: restore to %d then back to %d gives %s, want %s", id, ev.pos, e.Restore.To, before.Position, undone.Tree.Hash(), before.Tree.Hash())
			}
		}
	}
	if forks == 0 || restores == 0 {
		t.Errorf("history has %d forks and %d restores; the generator should make some of each", forks, restores)
	}
}

// flat is a model of a tree: path to kind and, for files and symlinks, the
// node hash (a directory's hash follows from its entries).
type flat map[string]string

func flatten(tr domain.Tree) flat {
	out := flat{}
	tr.Walk("", "", func(e domain.Entry) bool {
		out[e.Path] = flatValue(e.Node)
		return true
	})
	return out
}

func flatValue(n *domain.Node) string {
	if n.Kind == domain.KindDir {
		return fmt.Sprintf("dir %o", n.Mode)
	}
	return n.Kind.String() + " " + n.Hash().String()
}

// modelApply applies a recorded op to the model, by the semantics the
// event format documents, without using the tree code.
func modelApply(m flat, op domain.Op) {
	addParents := func(p string) {
		for i := strings.LastIndexByte(p, '/'); i > 0; i = strings.LastIndexByte(p[:i], '/') {
			if _, ok := m[p[:i]]; !ok {
				m[p[:i]] = fmt.Sprintf("dir %o", domain.DefaultDirMode)
			}
		}
	}
	removeAll := func(p string) map[string]string {
		gone := map[string]string{}
		for k, v := range m {
			if k == p || strings.HasPrefix(k, p+"/") {
				gone[strings.TrimPrefix(k, p)] = v
				delete(m, k)
			}
		}
		return gone
	}
	switch op.Kind {
	case domain.OpWrite:
		h, _ := domain.HashFromBytes(op.Content)
		addParents(op.Path)
		m[op.Path] = flatValue(domain.NewFile(h, op.Size, op.Mode, nil))
	case domain.OpMkdir:
		addParents(op.Path)
		m[op.Path] = fmt.Sprintf("dir %o", op.Mode)
	case domain.OpRemove:
		removeAll(op.Path)
	case domain.OpRename:
		moved := removeAll(op.Path)
		addParents(op.To)
		for suffix, v := range moved {
			m[op.To+suffix] = v
		}
	case domain.OpSymlink:
		addParents(op.Path)
		m[op.Path] = flatValue(domain.NewSymlink(op.Target, nil))
	}
}

func diffFlat(got, want flat) string {
	var b strings.Builder
	keys := slices.Sorted(maps.Keys(got))
	for k := range want {
		if _, ok := got[k]; !ok {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		if got[k] != want[k] {
			fmt.Fprintf(&b, "  %q: got %q, want %q\n", k, got[k], want[k])
		}
	}
	return b.String()
}

// generator makes random commands against the sessions of a log.
type generator struct {
	r     *rand.Rand
	l     *eventLog
	live  []string
	forks int
}

// command returns a random command for session id and the session it
// targets (a new id for a fork).
func (g *generator) command(id string) (string, domain.Command) {
	s := g.l.sessions[id].head
	switch n := g.r.IntN(100); {
	case n < 60:
		return id, domain.ChangeFiles{Ops: []domain.FileOp{g.fileOp(s.Tree)}}
	case n < 75:
		ops := make([]domain.FileOp, 2+g.r.IntN(5))
		for i := range ops {
			ops[i] = g.fileOp(s.Tree)
		}
		return id, domain.ChangeFiles{Ops: ops, Batch: true}
	case n < 79:
		set := map[string]string{}
		for range g.r.IntN(3) {
			set[g.pick("team", "env", "k.1", "a/b")] = g.pick("x", "y", "")
		}
		var rm []string
		if g.r.IntN(2) == 0 {
			rm = append(rm, g.pick("team", "env", "nope"))
		}
		return id, domain.SetTags{Set: set, Remove: rm}
	case n < 83:
		cp := domain.CreateCheckpoint{Name: g.pick("cp1", "cp2", "v1.0", "x")}
		if g.r.IntN(2) == 0 {
			cp.Position = g.position(id)
		}
		return id, cp
	case n < 85:
		return id, domain.DeleteCheckpoint{Name: g.pick("cp1", "cp2", "v1.0", "x")}
	case n < 93:
		return id, domain.RestoreSession{To: g.position(id)}
	case n < 98:
		g.forks++
		parent, err := g.l.past(id)(g.position(id))
		if err != nil {
			parent = s
		}
		fid := fmt.Sprintf("%s-f%d", id, g.forks)
		return fid, domain.ForkSession{ID: fid, Parent: parent}
	case len(g.active()) <= 2:
		// Keep some sessions alive, so the history goes on.
		return id, domain.ChangeFiles{Ops: []domain.FileOp{g.fileOp(s.Tree)}}
	case n < 99:
		return id, domain.ArchiveSession{}
	default:
		return id, domain.DeleteSession{}
	}
}

// session picks a session to act on: mostly an active one, so that an
// early archive or delete does not end the history.
func (g *generator) session() string {
	active := g.active()
	if len(active) > 0 && g.r.IntN(10) != 0 {
		return active[g.r.IntN(len(active))]
	}
	return g.live[g.r.IntN(len(g.live))]
}

func (g *generator) active() []string {
	var out []string
	for _, id := range g.live {
		if g.l.sessions[id].head.Status == domain.StatusActive {
			out = append(out, id)
		}
	}
	return out
}

func (g *generator) pick(options ...string) string { return options[g.r.IntN(len(options))] }

// position returns a random position of session id's history.
func (g *generator) position(id string) uint64 {
	ps := g.l.positions(id)
	return ps[g.r.IntN(len(ps))]
}

// fileOp returns a random file operation, mostly on paths that exist.
func (g *generator) fileOp(tr domain.Tree) domain.FileOp {
	var all, dirs []string
	dirs = append(dirs, "")
	tr.Walk("", "", func(e domain.Entry) bool {
		all = append(all, e.Path)
		if e.Node.Kind == domain.KindDir {
			dirs = append(dirs, e.Path)
		}
		return true
	})
	existing := func() string {
		if len(all) == 0 {
			return "nothing"
		}
		return all[g.r.IntN(len(all))]
	}
	fresh := func() string {
		dir := dirs[g.r.IntN(len(dirs))]
		name := g.pick("a", "b", "c.txt", "d", "a.b", "e-f", "G", "ü")
		if g.r.IntN(4) == 0 {
			name += "/" + g.pick("x", "y")
		}
		if dir == "" {
			return name
		}
		return dir + "/" + name
	}
	path := func() string {
		if g.r.IntN(5) < 3 {
			return existing()
		}
		return fresh()
	}
	switch n := g.r.IntN(100); {
	case n < 40:
		p := path()
		op := write(p, fmt.Sprint(g.r.Uint64()))
		op.Size = g.r.Int64N(1 << 20)
		if g.r.IntN(5) == 0 {
			op.Mode = g.pick2(0o600, 0o755)
		}
		switch g.r.IntN(10) {
		case 0:
			if n := tr.Lookup(p); n != nil && n.Kind == domain.KindFile {
				op.Expect = n.Content.String()
			} else {
				op.Expect = domain.ExpectAbsent
			}
		case 1:
			op.Expect = domain.Sum([]byte("wrong")).String()
		}
		if g.r.IntN(10) == 0 {
			op.Path = "/" + op.Path + "/" // spelled differently
		}
		return op
	case n < 55:
		op := mkdir(fresh())
		if g.r.IntN(5) == 0 {
			op.Mode = g.pick2(0o700, 0o750)
		}
		return op
	case n < 70:
		return remove(path(), g.r.IntN(10) < 7)
	case n < 85:
		from := existing()
		to := fresh()
		if g.r.IntN(10) == 0 {
			to = from + "/inside"
		}
		return rename(from, to)
	default:
		p := fresh()
		var target string
		switch g.r.IntN(6) {
		case 0:
			target = "/" + existing()
		case 1:
			target = "../../../outside"
		case 2:
			target = strings.Repeat("../", strings.Count(p, "/")) + existing()
		case 3:
			target = g.pick(".", "..", "a", "b/..", "c.txt")
		default:
			// Relative to the link's directory: a sibling, perhaps missing.
			target = g.pick("a", "b", "d/x", "a.b")
		}
		return symlink(p, target)
	}
}

func (g *generator) pick2(a, b uint32) uint32 {
	if g.r.IntN(2) == 0 {
		return a
	}
	return b
}
