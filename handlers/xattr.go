package handlers

import (
	"sort"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

func (s *Service) xattrSet(c *call) (any, error) { return s.xattrChange(c, domain.OpSetXattr) }
func (s *Service) xattrRemove(c *call) (any, error) {
	return s.xattrChange(c, domain.OpRemoveXattr)
}

func (s *Service) xattrChange(c *call, kind string) (any, error) {
	var req client.XattrRequest
	id, err := c.decodeSession(&req, &req.Session)
	if err != nil {
		return nil, err
	}
	if req.At != "" {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "at cannot be given to a change")
	}
	if kind == domain.OpRemoveXattr && req.Value != nil {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "remove takes no value")
	}
	res, err := c.change(id, req.Mutation, func(*domain.Session) (domain.Command, error) {
		return domain.ChangeFiles{Ops: []domain.FileOp{{Kind: kind, Path: req.Path, Name: req.Name, Value: req.Value}}}, nil
	})
	if err != nil {
		return nil, err
	}
	op := res.Event.Ops[0]
	return client.XattrReply{Path: op.Path, Name: op.Name, Value: op.Value, Position: res.Position, Root: res.Session.Tree.Hash().String(), Replayed: res.Replayed}, nil
}

func (s *Service) xattrNode(c *call) (client.XattrRequest, *domain.Session, string, *domain.Node, error) {
	var req client.XattrRequest
	if err := c.decode(&req); err != nil {
		return req, nil, "", nil, err
	}
	id, err := sessionID(req.Session)
	if err != nil {
		return req, nil, "", nil, err
	}
	if req.Value != nil || req.RequestID != "" || req.Token != "" {
		return req, nil, "", nil, domain.Errorf(domain.CodeInvalidArgument, "a read takes session, path, name and at")
	}
	p, err := domain.CleanNonRoot(req.Path)
	if err != nil {
		return req, nil, "", nil, err
	}
	sess, err := c.resolveAt(id, req.At)
	if err != nil {
		return req, nil, "", nil, err
	}
	if req.At == "" {
		if err := readable(sess); err != nil {
			return req, nil, "", nil, err
		}
	}
	if p, err = sess.Tree.Resolve(p, true); err != nil {
		return req, nil, "", nil, err
	}
	n := sess.Tree.Lookup(p)
	if n == nil {
		return req, nil, "", nil, domain.Errorf(domain.CodeNotFound, "%q not found", p)
	}
	return req, sess, p, n, nil
}

func (s *Service) xattrGet(c *call) (any, error) {
	req, sess, p, n, err := s.xattrNode(c)
	if err != nil {
		return nil, err
	}
	v, ok := n.Xattrs[req.Name]
	if !ok {
		return nil, domain.Errorf(domain.CodeNotFound, "%q has no xattr %q", p, req.Name)
	}
	return client.XattrReply{Path: p, Name: req.Name, Value: v, Position: sess.Position}, nil
}

func (s *Service) xattrList(c *call) (any, error) {
	req, sess, p, n, err := s.xattrNode(c)
	if err != nil {
		return nil, err
	}
	if req.Name != "" {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "list takes no name")
	}
	x := map[string][]byte{}
	for k, v := range n.Xattrs {
		x[k] = v
	}
	return client.XattrReply{Path: p, Xattrs: x, Position: sess.Position}, nil
}

func sortedXattrNames(x map[string][]byte) []string {
	names := make([]string, 0, len(x))
	for k := range x {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}
