package handlers

import (
	"strconv"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

// positionOf resolves an At to a position of the session.
func (c *call) positionOf(id string, at client.At) (uint64, error) {
	if n, err := strconv.ParseUint(string(at), 10, 64); err == nil {
		if n == 0 {
			return 0, domain.Errorf(domain.CodeInvalidArgument, "position 0 is before every event")
		}
		if _, err := c.svc.store.EventAt(c.ctx, c.tenant, id, n); err != nil {
			return 0, err
		}
		return n, nil
	}
	s, err := c.resolveAt(id, at)
	if err != nil {
		return 0, err
	}
	return s.Position, nil
}

func (s *Service) sessionFork(c *call) (any, error) {
	var req client.ForkRequest
	id, err := c.decodeSession(&req, &req.Session)
	if err != nil {
		return nil, err
	}
	meta, err := c.meta(req.Mutation)
	if err != nil {
		return nil, err
	}
	var at uint64
	if req.At != "" {
		if at, err = c.positionOf(id, req.At); err != nil {
			return nil, err
		}
	}
	owner := req.Owner
	if owner == "" {
		owner = meta.Actor
	}
	if req.InheritSecrets {
		if err := c.secrets(); err != nil {
			return nil, err
		}
	}
	res, err := s.store.Fork(c.ctx, c.tenant, id, at, meta, domain.ForkSession{ID: s.opts.NewID(), Owner: owner, Tags: req.Tags})
	if err != nil {
		return nil, err
	}
	if req.InheritSecrets {
		if err := c.copySecrets(id, res.Session.ID, meta); err != nil {
			return nil, err
		}
	}
	return sessionReply(res), nil
}

func (s *Service) sessionRestore(c *call) (any, error) {
	var req client.RestoreRequest
	id, err := c.decodeSession(&req, &req.Session)
	if err != nil {
		return nil, err
	}
	if req.To == "" {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "to is required: a position or a checkpoint name")
	}
	to, err := c.positionOf(id, req.To)
	if err != nil {
		return nil, err
	}
	res, err := c.change(id, req.Mutation, func(*domain.Session) (domain.Command, error) {
		return domain.RestoreSession{To: to}, nil
	})
	if err != nil {
		return nil, err
	}
	return sessionReply(res), nil
}

func (s *Service) checkpointCreate(c *call) (any, error) {
	var req client.CheckpointRequest
	id, err := c.decodeSession(&req, &req.Session)
	if err != nil {
		return nil, err
	}
	if err := domain.ValidCheckpointName(req.Name); err != nil {
		return nil, err
	}
	var at uint64
	if req.At != "" {
		if at, err = c.positionOf(id, req.At); err != nil {
			return nil, err
		}
	}
	res, err := c.change(id, req.Mutation, func(*domain.Session) (domain.Command, error) {
		return domain.CreateCheckpoint{Name: req.Name, Position: at, Note: req.Note}, nil
	})
	if err != nil {
		return nil, err
	}
	cp, _ := res.Session.Checkpoints.Get(req.Name)
	return client.CheckpointReply{Checkpoint: checkpointView(cp), Position: res.Position, Replayed: res.Replayed}, nil
}

func (s *Service) checkpointDelete(c *call) (any, error) {
	var req client.CheckpointRequest
	id, err := c.decodeSession(&req, &req.Session)
	if err != nil {
		return nil, err
	}
	if req.At != "" || req.Note != "" {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "checkpoint.delete takes only session and name")
	}
	var old domain.Checkpoint
	res, err := c.change(id, req.Mutation, func(s *domain.Session) (domain.Command, error) {
		old, _ = s.Checkpoints.Get(req.Name)
		return domain.DeleteCheckpoint{Name: req.Name}, nil
	})
	if err != nil {
		return nil, err
	}
	if old.Name == "" && res.Event != nil && res.Event.Checkpoint != nil {
		// A retry answered from the stored event: build did not run, and the
		// state after the event no longer holds the checkpoint.
		old = domain.Checkpoint{Name: res.Event.Checkpoint.Name}
	}
	return client.CheckpointReply{Checkpoint: checkpointView(old), Position: res.Position, Replayed: res.Replayed}, nil
}

func (s *Service) checkpointList(c *call) (any, error) {
	var req client.CheckpointListRequest
	id, err := c.decodeSession(&req, &req.Session)
	if err != nil {
		return nil, err
	}
	sess, err := c.resolveAt(id, req.At)
	if err != nil {
		return nil, err
	}
	reply := client.CheckpointListReply{Checkpoints: []client.CheckpointView{}, Position: sess.Position}
	for _, cp := range sortedCheckpoints(sess) {
		reply.Checkpoints = append(reply.Checkpoints, checkpointView(cp))
	}
	return reply, nil
}
