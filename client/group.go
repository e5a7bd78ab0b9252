package client

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

// SetGroup sets a reviewer group's members.
func (c *Client) SetGroup(ctx context.Context, req GroupRequest) (GroupReply, error) {
	var r GroupReply
	return r, c.Call(ctx, GroupSet, req, &r)
}

// GetGroup returns a reviewer group.
func (c *Client) GetGroup(ctx context.Context, req GroupRequest) (GroupReply, error) {
	var r GroupReply
	return r, c.Call(ctx, GroupGet, req, &r)
}

// ListGroups lists the tenant's reviewer groups.
func (c *Client) ListGroups(ctx context.Context) (GroupListReply, error) {
	var r GroupListReply
	return r, c.Call(ctx, GroupList, struct{}{}, &r)
}

// DeleteGroup deletes a reviewer group.
func (c *Client) DeleteGroup(ctx context.Context, req GroupRequest) (GroupReply, error) {
	var r GroupReply
	return r, c.Call(ctx, GroupDelete, req, &r)
}

// TenantLog reads a page of the tenant's log.
func (c *Client) TenantLog(ctx context.Context, req TenantLogRequest) (TenantLogReply, error) {
	var r TenantLogReply
	return r, c.Call(ctx, TenantLog, req, &r)
}
