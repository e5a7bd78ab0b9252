package handlers

import (
	"maps"
	"strconv"
	"strings"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

func noteView(s *domain.Session, n domain.Annotation) client.NoteView {
	v := client.NoteView{
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

func approvalView(s *domain.Session, r *domain.ApprovalRequest) client.ApprovalView {
	v := client.ApprovalView{
		ID: r.ID, Session: s.ID, Reason: r.Reason, Group: r.Group, Details: r.Details, Requester: r.Requester,
		Root: r.Root.String(), Required: r.Required, State: r.State(), Grants: []client.DecisionView{},
		CreatedAt: r.CreatedAt, Position: r.Position, UsedBy: r.UsedBy,
	}
	if v.State == domain.ApprovalGrantedState && r.Root != s.Tree.Hash() {
		v.State = domain.ApprovalStaleState
	}
	for _, g := range r.Grants {
		v.Grants = append(v.Grants, client.DecisionView(g))
	}
	if r.Denial != nil {
		d := client.DecisionView(*r.Denial)
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
	var req client.AnnotateRequest
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
	return client.NoteReply{Note: noteView(res.Session, res.Session.Notes[res.Event.Note.ID]), Position: res.Position, Replayed: res.Replayed}, nil
}

func (s *Service) reviewNotes(c *call) (any, error) {
	var req client.NotesRequest
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
	reply := client.NotesReply{Notes: []client.NoteView{}, Position: sess.Position}
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
	var req client.NoteRequest
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
	return client.NoteReply{Note: noteView(res.Session, res.Session.Notes[req.Note]), Position: res.Position, Replayed: res.Replayed}, nil
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
	var req client.ApprovalRequestRequest
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
	return client.ApprovalReply{Request: approvalView(res.Session, r), Status: string(res.Session.Status), Position: res.Position, Replayed: res.Replayed}, nil
}

func (s *Service) reviewGrant(c *call) (any, error) { return s.decide(c, true) }
func (s *Service) reviewDeny(c *call) (any, error)  { return s.decide(c, false) }

func (s *Service) decide(c *call, grant bool) (any, error) {
	var req client.DecideRequest
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
	return client.ApprovalReply{Request: approvalView(res.Session, r), Status: string(res.Session.Status), Position: res.Position, Replayed: res.Replayed}, nil
}

func (s *Service) reviewPending(c *call) (any, error) {
	var req client.PendingRequest
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	reply := client.PendingReply{Requests: []client.ApprovalView{}}
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
	var req client.PolicyRequest
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
	reply := client.PolicyReply{Tenant: tp.Merge(nil), Effective: tp.Merge(nil)}
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
	var req client.PolicyRequest
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
		return client.PolicyReply{Tenant: req.Policy, Effective: req.Policy}, nil
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
	return client.PolicyReply{Tenant: tp.Merge(nil), Session: res.Session.Policy, Effective: res.Session.EffectivePolicy(tp), Position: res.Position}, nil
}
