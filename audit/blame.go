package audit

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/strand-dev/strand/domain"
)

// The kinds of change Blame reports.
const (
	ChangeWrite     = "write"
	ChangeMkdir     = "mkdir"
	ChangeRemove    = "remove"
	ChangeRenameIn  = "rename-in"
	ChangeRenameOut = "rename-out"
	ChangeSymlink   = "symlink"
	ChangeRestore   = "restore"
	ChangeCreate    = "create"
	ChangeXattr     = "xattr"
	ChangeMode      = "chmod"
	// ChangeOther is a change no operation explains (an event type this
	// version does not know).
	ChangeOther = "other"
)

// Change is one event that changed a path.
type Change struct {
	Position uint64 `json:"position"`
	// Session is the history the event is in: the session blamed, or for a
	// fork one of its ancestors before the fork point.
	Session string    `json:"session"`
	Version uint64    `json:"version"`
	Time    time.Time `json:"time"`
	Actor   string    `json:"actor,omitempty"`
	Type    string    `json:"type"`
	Kind    string    `json:"kind"`
	// Path is the path the operation named, when it is not the blamed path
	// (an entry below a directory, or a directory above a file).
	Path string `json:"path,omitempty"`
	// From and To are the blamed path's old and new names in a rename.
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
	// RestoredTo is the position a restore went back to.
	RestoredTo uint64 `json:"restored_to,omitempty"`
	// After describes the path after the event: its kind ("" once gone),
	// content hash (files) or Merkle hash, size and mode.
	After NodeView `json:"after"`
}

// NodeView describes a tree entry.
type NodeView struct {
	Kind   string `json:"kind,omitempty"`
	Hash   string `json:"hash,omitempty"`
	Size   int64  `json:"size,omitempty"`
	Mode   string `json:"mode,omitempty"`
	Target string `json:"target,omitempty"`
}

func nodeView(n *domain.Node) NodeView {
	if n == nil {
		return NodeView{}
	}
	v := NodeView{Kind: n.Kind.String(), Hash: n.Hash().String(), Mode: fmt.Sprintf("%04o", n.Mode)}
	switch n.Kind {
	case domain.KindFile:
		v.Hash, v.Size = n.Content.String(), n.Size
	case domain.KindSymlink:
		v.Target = n.Target
	}
	return v
}

func lookup(s *domain.Session, p string) *domain.Node {
	if s == nil {
		return nil
	}
	return s.Tree.Lookup(p)
}

// Blame replays a session's history (with its ancestors' up to the fork
// points) and returns every event that changed what is at path, in order.
// A history that fails verification returns a *BrokenError.
func (r *Reader) Blame(ctx context.Context, tenant, session, path string) ([]Change, error) {
	p, err := domain.CleanPath(path)
	if err != nil {
		return nil, err
	}
	var out []Change
	observe := func(h *history, rec *Record, ev *domain.Event, before, after *domain.Session) {
		b, a := lookup(before, p), lookup(after, p)
		if b == a || (b != nil && a != nil && b.Hash() == a.Hash()) {
			return
		}
		c := Change{
			Position: rec.Position, Session: h.session, Version: ev.Version, Time: ev.At(),
			Actor: ev.Actor, Type: string(ev.Type), After: nodeView(a),
		}
		classify(&c, ev, p)
		out = append(out, c)
	}
	rp, err := r.replayLineage(ctx, tenant, session, 0, observe)
	if err != nil {
		return nil, err
	}
	if _, err := rp.result(EventSubject(tenant, session), 0); err != nil {
		return nil, err
	}
	return out, nil
}

// classify names the kind of a change to p from the last operation of the
// event that touched it.
func classify(c *Change, ev *domain.Event, p string) {
	switch ev.Type {
	case domain.SessionRestored:
		c.Kind = ChangeRestore
		if ev.Restore != nil {
			c.RestoredTo = ev.Restore.To
		}
		return
	case domain.SessionCreated, domain.SessionForked:
		c.Kind = ChangeCreate
		return
	}
	c.Kind = ChangeOther
	for _, op := range ev.Ops {
		src, dst := related(op.Path, p), op.To != "" && related(op.To, p)
		if !src && !dst {
			continue
		}
		c.Path, c.From, c.To = "", "", ""
		if op.Path != p {
			c.Path = op.Path
		}
		switch op.Kind {
		case domain.OpWrite:
			c.Kind = ChangeWrite
		case domain.OpMkdir:
			c.Kind = ChangeMkdir
		case domain.OpRemove:
			c.Kind = ChangeRemove
		case domain.OpSymlink:
			c.Kind = ChangeSymlink
		case domain.OpSetXattr, domain.OpRemoveXattr:
			c.Kind = ChangeXattr
		case domain.OpChmod:
			c.Kind = ChangeMode
		case domain.OpRename:
			if dst && (p == op.To || within(p, op.To)) {
				c.Kind = ChangeRenameIn
				c.From, c.To = op.Path+strings.TrimPrefix(p, op.To), p
			} else {
				c.Kind = ChangeRenameOut
				c.From, c.To = p, op.To+strings.TrimPrefix(p, op.Path)
			}
			if within(op.Path, p) || within(op.To, p) {
				// An entry below p moved: say which.
				c.From, c.To = op.Path, op.To
			}
			c.Path = ""
		default:
			c.Kind = ChangeOther
		}
	}
}
