package client

import (
	"context"
	"encoding/json"
	"time"

	"github.com/strand-dev/strand/domain"
)

// NoteView is an annotation as shown to callers.
type NoteView struct {
	ID         string    `json:"id"`
	Actor      string    `json:"actor"`
	Body       string    `json:"body"`
	Path       string    `json:"path,omitempty"`
	LineStart  int       `json:"line_start,omitempty"`
	LineEnd    int       `json:"line_end,omitempty"`
	Hash       string    `json:"hash,omitempty"`
	ReplyTo    string    `json:"reply_to,omitempty"`
	Status     string    `json:"status"`
	Outdated   bool      `json:"outdated"`
	ResolvedBy string    `json:"resolved_by,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	Position   uint64    `json:"position"`
}

// DecisionView is a grant or a denial.
type DecisionView struct {
	Actor   string    `json:"actor"`
	Comment string    `json:"comment,omitempty"`
	At      time.Time `json:"at"`
}

// ApprovalView is an approval request as shown to callers.
type ApprovalView struct {
	ID        string          `json:"id"`
	Session   string          `json:"session"`
	Reason    string          `json:"reason"`
	Group     string          `json:"group"`
	Details   json.RawMessage `json:"details,omitempty"`
	Requester string          `json:"requester"`
	Root      string          `json:"root"`
	Required  int             `json:"required"`
	State     string          `json:"state"`
	Grants    []DecisionView  `json:"grants"`
	Denial    *DecisionView   `json:"denial,omitempty"`
	CreatedAt time.Time       `json:"created_at"`
	Position  uint64          `json:"position"`
	UsedBy    uint64          `json:"used_by,omitempty"`
}

// AnnotateRequest is the body of review.annotate.
type AnnotateRequest struct {
	Mutation
	Session string `json:"session"`
	Body    string `json:"body"`
	Path    string `json:"path,omitempty"`
	// Lines is a range "A-B" (or "A"); the alternative to line_start/end.
	Lines     string `json:"lines,omitempty"`
	LineStart int    `json:"line_start,omitempty"`
	LineEnd   int    `json:"line_end,omitempty"`
	ReplyTo   string `json:"reply_to,omitempty"`
}

// NoteReply answers review.annotate, review.resolve and review.reopen.
type NoteReply struct {
	Note     NoteView `json:"note"`
	Position uint64   `json:"position"`
	Replayed bool     `json:"replayed,omitempty"`
}

// NotesRequest is the body of review.notes.
type NotesRequest struct {
	Session string `json:"session"`
	At      At     `json:"at,omitempty"`
	Path    string `json:"path,omitempty"`
	// Status is open or resolved (empty: both).
	Status string `json:"status,omitempty"`
}

// NotesReply answers review.notes.
type NotesReply struct {
	Notes    []NoteView `json:"notes"`
	Position uint64     `json:"position"`
}

// NoteRequest is the body of review.resolve and review.reopen.
type NoteRequest struct {
	Mutation
	Session string `json:"session"`
	Note    string `json:"note"`
}

// ApprovalRequestRequest is the body of review.request.
type ApprovalRequestRequest struct {
	Mutation
	Session string          `json:"session"`
	Reason  string          `json:"reason"`
	Group   string          `json:"group,omitempty"`
	Details json.RawMessage `json:"details,omitempty"`
}

// DecideRequest is the body of review.grant and review.deny.
type DecideRequest struct {
	Mutation
	Session string `json:"session"`
	Request string `json:"request"`
	Comment string `json:"comment,omitempty"`
}

// ApprovalReply answers review.request, review.grant and review.deny.
type ApprovalReply struct {
	Request  ApprovalView `json:"request"`
	Status   string       `json:"status"`
	Position uint64       `json:"position"`
	Replayed bool         `json:"replayed,omitempty"`
}

// PendingRequest is the body of review.pending.
type PendingRequest struct {
	Group string `json:"group,omitempty"`
	// Session, when set, lists that session's requests from its history
	// (exact); otherwise the tenant's review queue (a projection).
	Session string `json:"session,omitempty"`
	// All includes requests that are no longer pending (session only).
	All bool `json:"all,omitempty"`
}

// PendingReply answers review.pending, oldest first.
type PendingReply struct {
	Requests []ApprovalView `json:"requests"`
}

// PolicyRequest is the body of policy.get and policy.set.
type PolicyRequest struct {
	Mutation
	// Session, when set, names the session whose policy to read or change;
	// otherwise the tenant's default.
	Session string        `json:"session,omitempty"`
	Policy  domain.Policy `json:"policy,omitempty"`
}

// PolicyReply answers policy.get and policy.set.
type PolicyReply struct {
	Tenant    domain.Policy `json:"tenant"`
	Session   domain.Policy `json:"session,omitempty"`
	Effective domain.Policy `json:"effective"`
	Position  uint64        `json:"position,omitempty"`
}

// Annotate adds a review note.
func (c *Client) Annotate(ctx context.Context, req AnnotateRequest) (NoteReply, error) {
	var r NoteReply
	return r, c.Call(ctx, ReviewAnnotate, req, &r)
}

// Notes lists a session's review notes.
func (c *Client) Notes(ctx context.Context, req NotesRequest) (NotesReply, error) {
	var r NotesReply
	return r, c.Call(ctx, ReviewNotes, req, &r)
}

// ResolveNote marks a note resolved.
func (c *Client) ResolveNote(ctx context.Context, req NoteRequest) (NoteReply, error) {
	var r NoteReply
	return r, c.Call(ctx, ReviewResolve, req, &r)
}

// ReopenNote marks a note open again.
func (c *Client) ReopenNote(ctx context.Context, req NoteRequest) (NoteReply, error) {
	var r NoteReply
	return r, c.Call(ctx, ReviewReopen, req, &r)
}

// RequestApproval asks for an action on the session's current content.
func (c *Client) RequestApproval(ctx context.Context, req ApprovalRequestRequest) (ApprovalReply, error) {
	var r ApprovalReply
	return r, c.Call(ctx, ReviewRequest, req, &r)
}

// Grant grants an approval request.
func (c *Client) Grant(ctx context.Context, req DecideRequest) (ApprovalReply, error) {
	var r ApprovalReply
	return r, c.Call(ctx, ReviewGrant, req, &r)
}

// Deny denies an approval request.
func (c *Client) Deny(ctx context.Context, req DecideRequest) (ApprovalReply, error) {
	var r ApprovalReply
	return r, c.Call(ctx, ReviewDeny, req, &r)
}

// Pending lists approval requests waiting for a decision.
func (c *Client) Pending(ctx context.Context, req PendingRequest) (PendingReply, error) {
	var r PendingReply
	return r, c.Call(ctx, ReviewPending, req, &r)
}

// GetPolicy returns the tenant's (and a session's) approval policy.
func (c *Client) GetPolicy(ctx context.Context, req PolicyRequest) (PolicyReply, error) {
	var r PolicyReply
	return r, c.Call(ctx, PolicyGet, req, &r)
}

// SetPolicy sets the tenant's default policy, or a session's (which needs an
// approval with reason "policy").
func (c *Client) SetPolicy(ctx context.Context, req PolicyRequest) (PolicyReply, error) {
	var r PolicyReply
	return r, c.Call(ctx, PolicySet, req, &r)
}
