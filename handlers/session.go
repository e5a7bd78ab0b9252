package handlers

import (
	"sort"
	"strconv"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

func sortedCheckpoints(s *domain.Session) []domain.Checkpoint {
	out := make([]domain.Checkpoint, 0, s.Checkpoints.Len())
	for cp := range s.Checkpoints.All() {
		out = append(out, cp)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Position != out[j].Position {
			return out[i].Position < out[j].Position
		}
		return out[i].Name < out[j].Name
	})
	return out
}

func sessionReply(r domain.Result) client.SessionReply {
	return client.SessionReply{Session: sessionView(r.Session, false), Position: r.Position, Replayed: r.Replayed}
}

func (s *Service) sessionCreate(c *call) (any, error) {
	var req client.CreateSessionRequest
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	meta, err := c.meta(req.Mutation)
	if err != nil {
		return nil, err
	}
	// A session from a source starts from the revision's tree as it is:
	// nothing is copied, replay reads the same tree blob.
	var base domain.Tree
	var origin domain.Origin
	if req.Source != "" || req.Revision != 0 {
		if base, origin, err = c.sourceBase(req.Source, req.Revision); err != nil {
			return nil, err
		}
	}
	owner := req.Owner
	if owner == "" {
		owner = meta.Actor
	}
	if len(owner) > domain.MaxActorBytes {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "owner is longer than %d bytes", domain.MaxActorBytes)
	}
	res, err := s.store.Create(c.ctx, meta, domain.CreateSession{
		ID: s.opts.NewID(), Tenant: c.tenant, Owner: owner, Tags: req.Tags, Policy: req.Policy,
		Base: base, Origin: origin,
	})
	if err != nil {
		return nil, err
	}
	return sessionReply(res), nil
}

// resolveAt turns an At into a position of the session: a number is a
// position, anything else a commit id or a checkpoint name looked up at the
// head (commit ids first).
func (c *call) resolveAt(id string, at client.At) (*domain.Session, error) {
	st := c.svc.store
	if at == "" {
		// A deleted session is gone at its head; its past stays readable
		// (forks and audit rely on it).
		s, err := st.Head(c.ctx, c.tenant, id)
		if err != nil {
			return nil, err
		}
		if err := readable(s); err != nil {
			return nil, err
		}
		return s, nil
	}
	if n, err := strconv.ParseUint(string(at), 10, 64); err == nil {
		if n == 0 {
			return nil, domain.Errorf(domain.CodeInvalidArgument, "position 0 is before every event")
		}
		s, err := st.At(c.ctx, c.tenant, id, n)
		if err != nil {
			// Tell an unknown session from an unknown position.
			if _, herr := st.Head(c.ctx, c.tenant, id); herr != nil {
				return nil, herr
			}
			return nil, err
		}
		return s, nil
	}
	if err := domain.ValidCheckpointName(string(at)); err != nil {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "at must be a position or a checkpoint name")
	}
	head, err := st.Head(c.ctx, c.tenant, id)
	if err != nil {
		return nil, err
	}
	for _, cm := range head.Commits {
		if cm.ID == string(at) {
			return st.At(c.ctx, c.tenant, id, cm.Position)
		}
	}
	cp, ok := head.Checkpoints.Get(string(at))
	if !ok {
		return nil, domain.Errorf(domain.CodeNotFound, "checkpoint %q not found", string(at))
	}
	return st.At(c.ctx, c.tenant, id, cp.Position)
}

// readable refuses reads of a deleted session.
func readable(s *domain.Session) error {
	if s.Status == domain.StatusDeleted {
		return domain.ErrSessionDeleted
	}
	return nil
}

func (s *Service) sessionGet(c *call) (any, error) {
	var req client.GetSessionRequest
	id, err := c.decodeSession(&req, &req.Session)
	if err != nil {
		return nil, err
	}
	sess, err := c.resolveAt(id, req.At)
	if err != nil {
		return nil, err
	}
	if req.At == "" {
		if err := readable(sess); err != nil {
			return nil, err
		}
	}
	return client.SessionReply{Session: sessionView(sess, true), Position: sess.Position}, nil
}

func (s *Service) sessionArchive(c *call) (any, error) {
	return s.sessionSimple(c, func() domain.Command { return domain.ArchiveSession{} })
}

func (s *Service) sessionDelete(c *call) (any, error) {
	tp, err := c.tenantPolicy()
	if err != nil {
		return nil, err
	}
	return s.sessionSimple(c, func() domain.Command { return domain.DeleteSession{Tenant: tp} })
}

func (s *Service) sessionSimple(c *call, cmd func() domain.Command) (any, error) {
	var req client.SessionRequest
	id, err := c.decodeSession(&req, &req.Session)
	if err != nil {
		return nil, err
	}
	res, err := c.change(id, req.Mutation, func(*domain.Session) (domain.Command, error) { return cmd(), nil })
	if err != nil {
		return nil, err
	}
	return sessionReply(res), nil
}

func (s *Service) sessionTag(c *call) (any, error) {
	var req client.TagRequest
	id, err := c.decodeSession(&req, &req.Session)
	if err != nil {
		return nil, err
	}
	res, err := c.change(id, req.Mutation, func(*domain.Session) (domain.Command, error) {
		return domain.SetTags{Set: req.Set, Remove: req.Remove}, nil
	})
	if err != nil {
		return nil, err
	}
	return sessionReply(res), nil
}
