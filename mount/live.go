package mount

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

// replay sends what the journal of a previous mount of this session holds,
// before the tree is read: first the batch that was being flushed when it
// stopped, under the same request id (the service answers a retry of a
// stored request without storing it twice), then the rest. Refused ops
// stay in the journal as conflicts.
func (m *Mount) replay(ctx context.Context) error {
	ops, flushing, count, err := m.journal.load()
	if err != nil {
		return err
	}
	var todo []*jop
	for _, op := range ops {
		if op.Conflict != "" {
			m.conflicts = append(m.conflicts, op)
		} else {
			todo = append(todo, op)
		}
	}
	if len(todo) > 0 {
		m.log.Info("replaying the journal of a previous mount", "session", m.session, "ops", len(todo))
		m.inflight = todo
		if _, err := m.send(ctx, todo, flushing, count); err != nil {
			return err
		}
		m.inflight = nil
	}
	keep := map[string]bool{}
	for _, op := range m.conflicts {
		keep[op.File] = true
	}
	for id, st := range m.replayed {
		st.close()
		if !keep[id] {
			m.journal.removeFile(id)
		}
	}
	m.replayed = map[string]*staged{}
	m.journal.sweep(keep)
	return m.rewriteJournal()
}

// watcher follows the session's events and asks for a refresh when someone
// else changed the tree.
func (m *Mount) watcher() {
	defer m.wg.Done()
	m.mu.Lock()
	from := m.position + 1
	m.mu.Unlock()
	for m.ctx.Err() == nil {
		err := m.client.Watch(m.ctx, m.session, from, func(e client.EventView) error {
			from = e.Position + 1
			if strings.HasPrefix(e.RequestID, m.id) {
				return nil // this mount's own flush, applied already
			}
			if len(e.Ops) > 0 || e.RestoredTo != 0 || e.Merge != nil {
				select {
				case m.refresh <- e.Position:
				default:
				}
			}
			return nil
		})
		if m.ctx.Err() != nil {
			return
		}
		m.log.Warn("watching the session failed; retrying", "session", m.session, "err", err)
		select {
		case <-m.ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// refresher applies the service's tree when the watcher says it changed.
func (m *Mount) refresher() {
	defer m.wg.Done()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-m.refresh:
		}
		if err := m.syncRemote(m.ctx); err != nil && m.ctx.Err() == nil {
			m.log.Warn("reading the session's changes failed", "session", m.session, "err", err)
			select {
			case m.refresh <- 0: // try again
			default:
			}
			select {
			case <-m.ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

// notice is a kernel cache invalidation to send once mu is released.
type notice struct {
	dir     *node
	name    string
	content *node
}

// syncRemote reads the head's tree and brings the view to it, except for
// the paths with local changes not yet flushed (or refused): those keep
// the local version. Then it tells the kernel what changed.
func (m *Mount) syncRemote(ctx context.Context) error {
	var entries []client.EntryView
	var pos uint64
	for attempt := 0; ; attempt++ {
		var err error
		if entries, pos, err = m.manifest(ctx, ""); err != nil {
			return err
		}
		if m.afterManifest != nil {
			m.afterManifest()
		}
		m.mu.Lock()
		if pos >= m.position {
			break // m.mu held
		}
		ahead := m.position
		m.mu.Unlock()
		// A flush of this mount was stored after the tree was read (its
		// reply moved the position past it): the tree may lack another
		// writer's change made before that flush, which nothing announces
		// again. Read it again. (Before 2026-12-07 the refresh was
		// dropped, and such a change did not show until the next one.)
		if attempt == 100 {
			return fmt.Errorf("the session's tree stays at position %d, behind this mount's %d", pos, ahead)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	now := time.Now()
	touched := m.touched()
	isTouched := func(p string) bool {
		for q := p; ; {
			if touched[q] {
				return true
			}
			i := strings.LastIndexByte(q, '/')
			if i < 0 {
				return false
			}
			q = q[:i]
		}
	}
	var notes []notice
	remote := make(map[string]bool, len(entries))
	for _, v := range entries {
		remote[v.Path] = true
		if isTouched(v.Path) {
			continue
		}
		notes = m.applyRemote(v, pos, now, notes)
	}
	notes = m.removeGone(m.root, "", remote, isTouched, notes)
	m.position = pos
	m.mu.Unlock()
	for _, n := range notes {
		if n.content != nil {
			n.content.NotifyContent(0, 0)
		}
		if n.dir != nil {
			n.dir.NotifyEntry(n.name)
		}
	}
	return nil
}

// touched returns the paths local unflushed ops name. Guarded by mu.
func (m *Mount) touched() map[string]bool {
	t := map[string]bool{}
	for _, list := range [][]*jop{m.pending, m.inflight, m.conflicts} {
		for _, op := range list {
			t[op.Path] = true
			if op.To != "" {
				t[op.To] = true
			}
			if op.ent != nil && op.ent.attached(m.root) {
				t[op.ent.path()] = true
			}
		}
	}
	return t
}

// applyRemote brings one path of the view to the service's entry v.
// Guarded by mu.
func (m *Mount) applyRemote(v client.EntryView, pos uint64, now time.Time, notes []notice) []notice {
	dir, name := splitPath(v.Path)
	parent := lookupPath(m.root, dir)
	if parent == nil || parent.kind != kindDir {
		return notes
	}
	cur := parent.children[name]
	k, ok := kindOf(v.Kind)
	if !ok {
		return notes
	}
	if cur != nil && cur.staged != nil && remoteDiffers(cur, k, v) {
		// Written here and stored, but its staging file kept (a large
		// file written without opens): the remote version replaces it,
		// unless it is open or changed again here.
		m.unstage(cur)
	}
	if cur != nil && cur.kind == k && cur.staged == nil {
		changed := false
		if k == kindFile {
			h, err := domain.ParseHash(v.Hash)
			if err == nil && h != cur.hash {
				cur.hash, cur.size, cur.src, changed = h, v.Size, source{path: v.Path, position: pos}, true
			}
		}
		if cur.mode != v.Mode&0o7777 || cur.target != v.Target || !sameXattrs(cur.xattrs, v.Xattrs) {
			cur.mode, cur.target, cur.xattrs, changed = v.Mode&0o7777, v.Target, v.Xattrs, true
		}
		if k == kindFile {
			cur.stored = cur.mode
		}
		if changed {
			cur.mtime = now
			if cur.node != nil {
				notes = append(notes, notice{content: cur.node})
			}
		}
		return notes
	}
	if cur != nil && cur.staged != nil {
		// Open for writing here: the local version stands until the
		// file is closed, and the head is read again then.
		if remoteDiffers(cur, k, v) {
			m.resync = true
		}
		return notes
	}
	e, err := m.entryOf(v, pos, now)
	if err != nil {
		return notes
	}
	if cur != nil {
		detach(cur)
	}
	attach(parent, name, e)
	if parent.node != nil {
		// The name, and the directory's listing the kernel may cache.
		notes = append(notes, notice{dir: parent.node, name: name, content: parent.node})
	}
	return notes
}

// resyncLater asks for the head again if a remote change passed over e
// while it was open here and e has let go of its staging file since.
// Guarded by mu.
func (m *Mount) resyncLater(e *entry) {
	if !m.resync || e.staged != nil {
		return
	}
	m.resync = false
	select {
	case m.refresh <- 0:
	default: // a refresh is already queued
	}
}

// removeGone removes from the view what the service no longer has.
// Guarded by mu.
func (m *Mount) removeGone(dir *entry, p string, remote map[string]bool, isTouched func(string) bool, notes []notice) []notice {
	for name, e := range dir.children {
		cp := name
		if p != "" {
			cp = p + "/" + name
		}
		if !remote[cp] {
			if isTouched(cp) || e.staged != nil {
				continue
			}
			detach(e)
			if dir.node != nil {
				notes = append(notes, notice{dir: dir.node, name: name, content: dir.node})
			}
			continue
		}
		if e.kind == kindDir {
			notes = m.removeGone(e, cp, remote, isTouched, notes)
		}
	}
	return notes
}

// remoteDiffers reports whether the service's entry v (of kind k) differs
// from the view's cur. Guarded by mu.
func remoteDiffers(cur *entry, k kind, v client.EntryView) bool {
	if cur.kind != k || cur.mode != v.Mode&0o7777 || cur.target != v.Target || !sameXattrs(cur.xattrs, v.Xattrs) {
		return true
	}
	if k != kindFile {
		return false
	}
	h, err := domain.ParseHash(v.Hash)
	return err != nil || h != cur.hash
}

func sameXattrs(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || string(v) != string(w) {
			return false
		}
	}
	return true
}

var _ = syscall.ENOENT
