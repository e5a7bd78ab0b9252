package handlers

import (
	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

func (s *Service) groupSet(c *call) (any, error) {
	var req client.GroupRequest
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	members, err := domain.ValidGroup(req.Name, req.Members)
	if err != nil {
		return nil, err
	}
	meta, err := c.meta(req.Mutation)
	if err != nil {
		return nil, err
	}
	ts, _, err := s.store.AppendTenant(c.ctx, c.tenant, func(ts *domain.TenantState) (*domain.TenantEvent, error) {
		e := ts.NewTenantEvent(domain.GroupSet, meta)
		e.Group = &domain.GroupData{Name: req.Name, Members: members}
		return e, nil
	})
	if err != nil {
		return nil, err
	}
	return client.GroupReply{Group: groupView(ts, req.Name), Version: ts.Version}, nil
}

func groupView(ts *domain.TenantState, name string) client.GroupView {
	m := ts.Groups[name]
	if m == nil {
		m = []string{}
	}
	return client.GroupView{Name: name, Members: m}
}

func (s *Service) groupGet(c *call) (any, error) {
	var req client.GroupRequest
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	if req.Members != nil || req.RequestID != "" {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "group.get takes only name")
	}
	ts, err := s.store.TenantState(c.ctx, c.tenant)
	if err != nil {
		return nil, err
	}
	if _, ok := ts.Groups[req.Name]; !ok {
		return nil, domain.Errorf(domain.CodeNotFound, "group %q not found", truncate(req.Name, 64))
	}
	return client.GroupReply{Group: groupView(ts, req.Name), Version: ts.Version}, nil
}

func (s *Service) groupDelete(c *call) (any, error) {
	var req client.GroupRequest
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	if req.Members != nil {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "group.delete takes no members")
	}
	meta, err := c.meta(req.Mutation)
	if err != nil {
		return nil, err
	}
	ts, _, err := s.store.AppendTenant(c.ctx, c.tenant, func(ts *domain.TenantState) (*domain.TenantEvent, error) {
		if _, ok := ts.Groups[req.Name]; !ok {
			return nil, domain.Errorf(domain.CodeNotFound, "group %q not found", truncate(req.Name, 64))
		}
		e := ts.NewTenantEvent(domain.GroupDeleted, meta)
		e.Group = &domain.GroupData{Name: req.Name}
		return e, nil
	})
	if err != nil {
		return nil, err
	}
	return client.GroupReply{Group: client.GroupView{Name: req.Name, Members: []string{}}, Version: ts.Version}, nil
}

func (s *Service) groupList(c *call) (any, error) {
	var req struct{}
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	ts, err := s.store.TenantState(c.ctx, c.tenant)
	if err != nil {
		return nil, err
	}
	reply := client.GroupListReply{Groups: []client.GroupView{}}
	for _, n := range ts.GroupNames() {
		reply.Groups = append(reply.Groups, groupView(ts, n))
	}
	return reply, nil
}

// maxTenantLogPage bounds a page of tenant.log.
const maxTenantLogPage = 1000

func (s *Service) tenantLog(c *call) (any, error) {
	var req client.TenantLogRequest
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	if req.Limit < 0 || req.Limit > maxTenantLogPage {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "limit must be 0 to %d", maxTenantLogPage)
	}
	if req.Limit == 0 {
		req.Limit = 100
	}
	entries, err := s.store.TenantLog(c.ctx, c.tenant, req.From, req.Limit)
	if err != nil {
		return nil, err
	}
	reply := client.TenantLogReply{Events: []client.TenantEventView{}}
	for _, en := range entries {
		e := en.Event
		reply.Events = append(reply.Events, client.TenantEventView{
			Position: en.Sequence, Version: e.Version, ID: e.ID, Type: e.Type, Actor: e.Actor, Time: e.At(),
			Hash: en.Hash.String(), Policy: e.Policy, Group: e.Group, Secret: e.Secret,
		})
	}
	if len(entries) == req.Limit {
		reply.Next = entries[len(entries)-1].Sequence + 1
	}
	return reply, nil
}

// checkReviewer refuses a grant or denial by someone outside the request's
// reviewer group, when identity is on. A request to the default group may
// be decided by anyone of the tenant (but its requester) until the tenant
// configures a group named default; a request to any other group needs
// the group configured and the decider in it.
func (c *call) checkReviewer(ts *domain.TenantState, group, actor string) error {
	if c.user == "" {
		return nil
	}
	if _, ok := ts.Groups[group]; !ok {
		if group == "" || group == "default" {
			return nil
		}
		return domain.Errorf(domain.CodeForbidden, "reviewer group %q has no members: configure it with group.set", truncate(group, 64))
	}
	if !ts.IsMember(group, actor) {
		return domain.Errorf(domain.CodeForbidden, "%s is not a member of reviewer group %q", truncate(actor, 64), truncate(group, 64))
	}
	return nil
}
