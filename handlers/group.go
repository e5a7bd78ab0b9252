package handlers

import (
	"context"
	"time"

	"github.com/strand-dev/strand/domain"
)

// GroupRequest is the body of group.set, group.get and group.delete.
type GroupRequest struct {
	Mutation
	Name string `json:"name"`
	// Members replaces the group's members (set only).
	Members []string `json:"members,omitempty"`
}

// GroupView is a reviewer group.
type GroupView struct {
	Name    string   `json:"name"`
	Members []string `json:"members"`
}

// GroupReply answers group.set, group.get and group.delete.
type GroupReply struct {
	Group GroupView `json:"group"`
	// Version is the tenant log's length after the change.
	Version uint64 `json:"version"`
}

// GroupListReply answers group.list.
type GroupListReply struct {
	Groups []GroupView `json:"groups"`
}

// TenantLogRequest is the body of tenant.log.
type TenantLogRequest struct {
	// From is a stream position of the tenant log (0: the start).
	From  uint64 `json:"from,omitempty"`
	Limit int    `json:"limit,omitempty"`
}

// TenantEventView is one entry of a tenant log as shown to callers.
type TenantEventView struct {
	Position uint64                 `json:"position"`
	Version  uint64                 `json:"version"`
	ID       string                 `json:"id"`
	Type     domain.TenantEventType `json:"type"`
	Actor    string                 `json:"actor"`
	Time     time.Time              `json:"time"`
	Hash     string                 `json:"hash"`
	Policy   domain.Policy          `json:"policy,omitempty"`
	Group    *domain.GroupData      `json:"group,omitempty"`
	Secret   *domain.SecretData     `json:"secret,omitempty"`
}

// TenantLogReply answers tenant.log.
type TenantLogReply struct {
	Events []TenantEventView `json:"events"`
	// Next is the position to ask from for more (0: none yet).
	Next uint64 `json:"next,omitempty"`
}

func (s *Service) groupSet(c *call) (any, error) {
	var req GroupRequest
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
	return GroupReply{Group: groupView(ts, req.Name), Version: ts.Version}, nil
}

func groupView(ts *domain.TenantState, name string) GroupView {
	m := ts.Groups[name]
	if m == nil {
		m = []string{}
	}
	return GroupView{Name: name, Members: m}
}

func (s *Service) groupGet(c *call) (any, error) {
	var req GroupRequest
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
	return GroupReply{Group: groupView(ts, req.Name), Version: ts.Version}, nil
}

func (s *Service) groupDelete(c *call) (any, error) {
	var req GroupRequest
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
	return GroupReply{Group: GroupView{Name: req.Name, Members: []string{}}, Version: ts.Version}, nil
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
	reply := GroupListReply{Groups: []GroupView{}}
	for _, n := range ts.GroupNames() {
		reply.Groups = append(reply.Groups, groupView(ts, n))
	}
	return reply, nil
}

// maxTenantLogPage bounds a page of tenant.log.
const maxTenantLogPage = 1000

func (s *Service) tenantLog(c *call) (any, error) {
	var req TenantLogRequest
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
	reply := TenantLogReply{Events: []TenantEventView{}}
	for _, en := range entries {
		e := en.Event
		reply.Events = append(reply.Events, TenantEventView{
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

// SetGroup sets a reviewer group's members.
func (c *Client) SetGroup(ctx context.Context, req GroupRequest) (GroupReply, error) {
	var r GroupReply
	return r, c.Request(ctx, "group", "set", req, &r)
}

// GetGroup returns a reviewer group.
func (c *Client) GetGroup(ctx context.Context, req GroupRequest) (GroupReply, error) {
	var r GroupReply
	return r, c.Request(ctx, "group", "get", req, &r)
}

// ListGroups lists the tenant's reviewer groups.
func (c *Client) ListGroups(ctx context.Context) (GroupListReply, error) {
	var r GroupListReply
	return r, c.Request(ctx, "group", "list", struct{}{}, &r)
}

// DeleteGroup deletes a reviewer group.
func (c *Client) DeleteGroup(ctx context.Context, req GroupRequest) (GroupReply, error) {
	var r GroupReply
	return r, c.Request(ctx, "group", "delete", req, &r)
}

// TenantLog reads a page of the tenant's log.
func (c *Client) TenantLog(ctx context.Context, req TenantLogRequest) (TenantLogReply, error) {
	var r TenantLogReply
	return r, c.Request(ctx, "tenant", "log", req, &r)
}
