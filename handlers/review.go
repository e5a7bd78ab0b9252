package handlers

import (
	"context"
	"encoding/json"
	"maps"

	"strconv"
	"strings"
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

func noteView(s *domain.Session, n domain.Annotation) NoteView {
	v := NoteView{
		ID: n.ID, Actor: n.Actor, Body: n.Body, Path: n.Path, LineStart: n.LineStart, LineEnd: n.LineEnd,
		ReplyTo: n.ReplyTo, Status: "open", Outdated: s.NoteOutdated(n), ResolvedBy: n.ResolvedBy,
		CreatedAt: n.CreatedAt, UpdatedAt: n.UpdatedAt, Position: n.Position,
	}
	if n.Path != "" {
		v.Hash = n.Content.String()
	}
	if n.Resolved {
		v.Status = "resolved"
	}
	return v
}

func approvalView(s *domain.Session, r *domain.ApprovalRequest) ApprovalView {
	v := ApprovalView{
		ID: r.ID, Session: s.ID, Reason: r.Reason, Group: r.Group, Details: r.Details, Requester: r.Requester,
		Root: r.Root.String(), Required: r.Required, State: r.State(), Grants: []DecisionView{},
		CreatedAt: r.CreatedAt, Position: r.Position, UsedBy: r.UsedBy,
	}
	if v.State == domain.ApprovalGrantedState && r.Root != s.Tree.Hash() {
		v.State = domain.ApprovalStaleState
	}
	for _, g := range r.Grants {
		v.Grants = append(v.Grants, DecisionView(g))
	}
	if r.Denial != nil {
		d := DecisionView(*r.Denial)
		v.Denial = &d
	}
	return v
}

func parseLines(s string) (int, int, error) {
	if s == "" {
		return 0, 0, nil
	}
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		b = a
	}
	x, err1 := strconv.Atoi(a)
	y, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil {
		return 0, 0, domain.Errorf(domain.CodeInvalidArgument, "lines must be A-B")
	}
	return x, y, nil
}

func (s *Service) reviewAnnotate(c *call) (any, error) {
	var req AnnotateRequest
	id, err := c.decodeSession(&req, &req.Session)
	if err != nil {
		return nil, err
	}
	if req.Lines != "" {
		if req.LineStart != 0 || req.LineEnd != 0 {
			return nil, domain.Errorf(domain.CodeInvalidArgument, "give lines or line_start/line_end, not both")
		}
		if req.LineStart, req.LineEnd, err = parseLines(req.Lines); err != nil {
			return nil, err
		}
	}
	noteID := s.opts.NewID()
	res, err := c.change(id, req.Mutation, func(*domain.Session) (domain.Command, error) {
		return domain.Annotate{ID: noteID, Body: req.Body, Path: req.Path, LineStart: req.LineStart, LineEnd: req.LineEnd, ReplyTo: req.ReplyTo}, nil
	})
	if err != nil {
		return nil, err
	}
	return NoteReply{Note: noteView(res.Session, res.Session.Notes[res.Event.Note.ID]), Position: res.Position, Replayed: res.Replayed}, nil
}

func (s *Service) reviewNotes(c *call) (any, error) {
	var req NotesRequest
	id, err := c.decodeSession(&req, &req.Session)
	if err != nil {
		return nil, err
	}
	switch req.Status {
	case "", "open", "resolved":
	default:
		return nil, domain.Errorf(domain.CodeInvalidArgument, "status must be open or resolved")
	}
	path := ""
	if req.Path != "" {
		if path, err = domain.CleanNonRoot(req.Path); err != nil {
			return nil, err
		}
	}
	sess, err := c.resolveAt(id, req.At)
	if err != nil {
		return nil, err
	}
	reply := NotesReply{Notes: []NoteView{}, Position: sess.Position}
	for _, n := range sess.NoteList() {
		v := noteView(sess, n)
		if (path != "" && n.Path != path) || (req.Status != "" && v.Status != req.Status) {
			continue
		}
		reply.Notes = append(reply.Notes, v)
	}
	return reply, nil
}

func (s *Service) reviewResolve(c *call) (any, error) { return s.noteState(c, true) }
func (s *Service) reviewReopen(c *call) (any, error)  { return s.noteState(c, false) }

func (s *Service) noteState(c *call, resolve bool) (any, error) {
	var req NoteRequest
	id, err := c.decodeSession(&req, &req.Session)
	if err != nil {
		return nil, err
	}
	if req.Note == "" {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "note is required")
	}
	res, err := c.change(id, req.Mutation, func(*domain.Session) (domain.Command, error) {
		if resolve {
			return domain.ResolveNote{ID: req.Note}, nil
		}
		return domain.ReopenNote{ID: req.Note}, nil
	})
	if err != nil {
		return nil, err
	}
	return NoteReply{Note: noteView(res.Session, res.Session.Notes[req.Note]), Position: res.Position, Replayed: res.Replayed}, nil
}

// tenantPolicy reads the tenant's default policy.
func (c *call) tenantPolicy() (domain.Policy, error) {
	ts, err := c.svc.store.TenantState(c.ctx, c.tenant)
	if err != nil {
		return nil, err
	}
	return ts.Policy, nil
}

func (s *Service) reviewRequest(c *call) (any, error) {
	var req ApprovalRequestRequest
	id, err := c.decodeSession(&req, &req.Session)
	if err != nil {
		return nil, err
	}
	tp, err := c.tenantPolicy()
	if err != nil {
		return nil, err
	}
	reqID := s.opts.NewID()
	res, err := c.change(id, req.Mutation, func(*domain.Session) (domain.Command, error) {
		return domain.RequestApproval{ID: reqID, Reason: req.Reason, Group: req.Group, Details: req.Details, Tenant: tp}, nil
	})
	if err != nil {
		return nil, err
	}
	r := res.Session.Approvals[res.Event.Approval.ID]
	return ApprovalReply{Request: approvalView(res.Session, r), Status: string(res.Session.Status), Position: res.Position, Replayed: res.Replayed}, nil
}

func (s *Service) reviewGrant(c *call) (any, error) { return s.decide(c, true) }
func (s *Service) reviewDeny(c *call) (any, error)  { return s.decide(c, false) }

func (s *Service) decide(c *call, grant bool) (any, error) {
	var req DecideRequest
	id, err := c.decodeSession(&req, &req.Session)
	if err != nil {
		return nil, err
	}
	if req.Request == "" {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "request is required")
	}
	var ts *domain.TenantState
	if c.user != "" {
		if ts, err = s.store.TenantState(c.ctx, c.tenant); err != nil {
			return nil, err
		}
	}
	res, err := c.change(id, req.Mutation, func(sess *domain.Session) (domain.Command, error) {
		if r, ok := sess.Approvals[req.Request]; ok && ts != nil {
			if err := c.checkReviewer(ts, r.Group, c.user); err != nil {
				return nil, err
			}
		}
		if grant {
			return domain.GrantApproval{ID: req.Request, Comment: req.Comment}, nil
		}
		return domain.DenyApproval{ID: req.Request, Comment: req.Comment}, nil
	})
	if err != nil {
		return nil, err
	}
	r := res.Session.Approvals[req.Request]
	return ApprovalReply{Request: approvalView(res.Session, r), Status: string(res.Session.Status), Position: res.Position, Replayed: res.Replayed}, nil
}

func (s *Service) reviewPending(c *call) (any, error) {
	var req PendingRequest
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	reply := PendingReply{Requests: []ApprovalView{}}
	if req.Session == "" {
		if req.All {
			return nil, domain.Errorf(domain.CodeInvalidArgument, "all needs a session")
		}
		if s.opts.Reviews == nil {
			return nil, domain.Errorf(domain.CodeUnavailable, "the review queue is not served by this instance")
		}
		return s.opts.Reviews.PendingReviews(c.ctx, c.tenant, req.Group)
	}
	id, err := sessionID(req.Session)
	if err != nil {
		return nil, err
	}
	sess, err := c.resolveAt(id, "")
	if err != nil {
		return nil, err
	}
	for _, r := range sess.ApprovalList() {
		v := approvalView(sess, r)
		if (req.Group != "" && r.Group != req.Group) || (!req.All && v.State != domain.ApprovalPending) {
			continue
		}
		reply.Requests = append(reply.Requests, v)
	}
	return reply, nil
}

func (s *Service) policyGet(c *call) (any, error) {
	var req PolicyRequest
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	if req.Policy != nil || req.RequestID != "" || req.ExpectedPosition != 0 {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "policy.get takes only session")
	}
	tp, err := c.tenantPolicy()
	if err != nil {
		return nil, err
	}
	reply := PolicyReply{Tenant: tp.Merge(nil), Effective: tp.Merge(nil)}
	if req.Session != "" {
		id, err := sessionID(req.Session)
		if err != nil {
			return nil, err
		}
		sess, err := c.resolveAt(id, "")
		if err != nil {
			return nil, err
		}
		reply.Session, reply.Effective, reply.Position = sess.Policy, sess.EffectivePolicy(tp), sess.Position
	}
	return reply, nil
}

func (s *Service) policySet(c *call) (any, error) {
	var req PolicyRequest
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	if req.Policy == nil {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "policy is required (an object of action: grants)")
	}
	if err := req.Policy.Validate(); err != nil {
		return nil, err
	}
	if req.Session == "" {
		// The tenant's default: an operator's setting (see
		// docs/security.md), recorded in the tenant log.
		meta, err := c.meta(req.Mutation)
		if err != nil {
			return nil, err
		}
		if req.ExpectedPosition != 0 {
			return nil, domain.Errorf(domain.CodeInvalidArgument, "expected_position applies to a session's policy only")
		}
		if _, _, err := s.store.AppendTenant(c.ctx, c.tenant, func(ts *domain.TenantState) (*domain.TenantEvent, error) {
			e := ts.NewTenantEvent(domain.TenantPolicySet, meta)
			e.Policy = maps.Clone(req.Policy)
			return e, nil
		}); err != nil {
			return nil, err
		}
		return PolicyReply{Tenant: req.Policy, Effective: req.Policy}, nil
	}
	id, err := sessionID(req.Session)
	if err != nil {
		return nil, err
	}
	tp, err := c.tenantPolicy()
	if err != nil {
		return nil, err
	}
	res, err := c.change(id, req.Mutation, func(*domain.Session) (domain.Command, error) {
		return domain.SetPolicy{Policy: req.Policy, Tenant: tp}, nil
	})
	if err != nil {
		return nil, err
	}
	return PolicyReply{Tenant: tp.Merge(nil), Session: res.Session.Policy, Effective: res.Session.EffectivePolicy(tp), Position: res.Position}, nil
}

// Annotate adds a review note.
func (c *Client) Annotate(ctx context.Context, req AnnotateRequest) (NoteReply, error) {
	var r NoteReply
	return r, c.Request(ctx, "review", "annotate", req, &r)
}

// Notes lists a session's review notes.
func (c *Client) Notes(ctx context.Context, req NotesRequest) (NotesReply, error) {
	var r NotesReply
	return r, c.Request(ctx, "review", "notes", req, &r)
}

// ResolveNote marks a note resolved.
func (c *Client) ResolveNote(ctx context.Context, req NoteRequest) (NoteReply, error) {
	var r NoteReply
	return r, c.Request(ctx, "review", "resolve", req, &r)
}

// ReopenNote marks a note open again.
func (c *Client) ReopenNote(ctx context.Context, req NoteRequest) (NoteReply, error) {
	var r NoteReply
	return r, c.Request(ctx, "review", "reopen", req, &r)
}

// RequestApproval asks for an action on the session's current content.
func (c *Client) RequestApproval(ctx context.Context, req ApprovalRequestRequest) (ApprovalReply, error) {
	var r ApprovalReply
	return r, c.Request(ctx, "review", "request", req, &r)
}

// Grant grants an approval request.
func (c *Client) Grant(ctx context.Context, req DecideRequest) (ApprovalReply, error) {
	var r ApprovalReply
	return r, c.Request(ctx, "review", "grant", req, &r)
}

// Deny denies an approval request.
func (c *Client) Deny(ctx context.Context, req DecideRequest) (ApprovalReply, error) {
	var r ApprovalReply
	return r, c.Request(ctx, "review", "deny", req, &r)
}

// Pending lists approval requests waiting for a decision.
func (c *Client) Pending(ctx context.Context, req PendingRequest) (PendingReply, error) {
	var r PendingReply
	return r, c.Request(ctx, "review", "pending", req, &r)
}

// GetPolicy returns the tenant's (and a session's) approval policy.
func (c *Client) GetPolicy(ctx context.Context, req PolicyRequest) (PolicyReply, error) {
	var r PolicyReply
	return r, c.Request(ctx, "policy", "get", req, &r)
}

// SetPolicy sets the tenant's default policy, or a session's (which needs an
// approval with reason "policy").
func (c *Client) SetPolicy(ctx context.Context, req PolicyRequest) (PolicyReply, error) {
	var r PolicyReply
	return r, c.Request(ctx, "policy", "set", req, &r)
}
