package audit

import (
	"context"
	"strconv"

	"github.com/strand-dev/strand/domain"
)

// replayLineage replays a session's lineage up to position upTo (0: its
// last event), checking every event as Verify does except for blobs and
// recorded roots, and returns the replayer, so that callers can ask it for
// more states. Roots are compared for the states it hands out (result,
// checkedAt): a tree's hash is computed when first asked for, so the roots
// in between are never computed.
func (r *Reader) replayLineage(ctx context.Context, tenant, session string, upTo uint64,
	observe func(*history, *Record, *domain.Event, *domain.Session, *domain.Session)) (*replayer, error) {
	links, err := r.lineage(ctx, tenant, session, upTo)
	if err != nil {
		return nil, err
	}
	p := r.newReplayer(ctx, r.PastStates)
	p.limits, p.observe, p.fold = map[string]uint64{}, observe, true
	filters := make([]string, 0, len(links))
	for _, l := range links {
		p.limits[l.subject] = l.upTo
		filters = append(filters, l.subject)
	}
	if err := r.foldPipelined(ctx, scanOpts{filters: filters, upTo: upTo}, []*replayer{p}); err != nil {
		return nil, err
	}
	return p, nil
}

// State returns a session as it was at a position of its history (0: its
// last event), rebuilt from the streams alone. A history that fails
// verification on the way returns a *BrokenError.
func (r *Reader) State(ctx context.Context, tenant, session string, position uint64) (*domain.Session, error) {
	p, err := r.replayLineage(ctx, tenant, session, position, nil)
	if err != nil {
		return nil, err
	}
	return p.result(EventSubject(tenant, session), position)
}

// StateAt is State for a point written as on the command line: a position,
// a checkpoint name or a commit id, or "" for the last event. Names are
// resolved as of the session's last event.
func (r *Reader) StateAt(ctx context.Context, tenant, session, at string) (*domain.Session, error) {
	if at == "" {
		return r.State(ctx, tenant, session, 0)
	}
	if n, err := strconv.ParseUint(at, 10, 64); err == nil {
		if n == 0 {
			return nil, domain.Errorf(domain.CodeInvalidArgument, "position 0 is before every event")
		}
		return r.State(ctx, tenant, session, n)
	}
	p, err := r.replayLineage(ctx, tenant, session, 0, nil)
	if err != nil {
		return nil, err
	}
	subject := EventSubject(tenant, session)
	head, err := p.result(subject, 0)
	if err != nil {
		return nil, err
	}
	pos, ok := resolveName(head, at)
	if !ok {
		return nil, domain.Errorf(domain.CodeNotFound, "%q is neither a position, a checkpoint nor a commit of %s", at, session)
	}
	return p.checkedAt(subject, pos)
}

// resolveName finds a checkpoint or commit of a session by name or id.
func resolveName(s *domain.Session, name string) (uint64, bool) {
	if cp, ok := s.Checkpoints.Get(name); ok {
		return cp.Position, true
	}
	for _, c := range s.Commits {
		if c.ID == name {
			return c.Position, true
		}
	}
	return 0, false
}
