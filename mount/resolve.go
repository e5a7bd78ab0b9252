package mount

import (
	"context"
	"fmt"

	"github.com/strand-dev/strand/domain"
)

// Resolve settles the conflicts on path. keep "local" sends the local
// change again without its expectation, replacing what the service holds;
// keep "remote" drops the local change and shows the service's version.
// It returns how many conflicting changes it settled.
func (m *Mount) Resolve(ctx context.Context, path, keep string) (int, error) {
	if keep != "local" && keep != "remote" {
		return 0, fmt.Errorf("keep must be local or remote, not %q", keep)
	}
	m.mu.Lock()
	var mine, rest []*jop
	for _, op := range m.conflicts {
		if op.Path == path || op.To == path {
			mine = append(mine, op)
		} else {
			rest = append(rest, op)
		}
	}
	if len(mine) == 0 {
		m.mu.Unlock()
		return 0, fmt.Errorf("no conflict on %q", path)
	}
	m.conflicts = rest
	for _, op := range mine {
		op.Conflict = ""
		if keep == "local" {
			op.Force = true
			m.pending = append(m.pending, op)
			continue
		}
		if e := op.ent; e != nil && e.staged != nil && e.staged.id == op.File {
			// Open handles keep the dropped file until they close.
			st := e.staged
			e.staged, st.dirty = nil, false
			e.hash = domain.Hash{} // differs from the service's: the refresh restores it
			if st.refs == 0 {
				st.close()
				m.journal.discard(st.id)
			}
		}
	}
	m.mu.Unlock()
	if err := m.rewriteJournal(); err != nil {
		return 0, err
	}
	if keep == "local" {
		return len(mine), m.Flush(ctx)
	}
	return len(mine), m.syncRemote(ctx)
}
