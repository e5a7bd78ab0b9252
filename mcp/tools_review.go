package mcp

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

// AnnotateArgs are the arguments of review_annotate.
type AnnotateArgs struct {
	Session   string `json:"session" jsonschema:"the session id"`
	Body      string `json:"body" jsonschema:"the note, for a reviewer to read"`
	Path      string `json:"path,omitempty" jsonschema:"the file the note is about (omit for the whole session)"`
	LineStart int    `json:"line_start,omitempty" jsonschema:"the first line the note is about (needs path)"`
	LineEnd   int    `json:"line_end,omitempty" jsonschema:"the last line (default: line_start)"`
	ReplyTo   string `json:"reply_to,omitempty" jsonschema:"the id of a note this answers"`
}

// NoteResult answers review_annotate.
type NoteResult struct {
	ID        string `json:"id"`
	Path      string `json:"path,omitempty"`
	LineStart int    `json:"line_start,omitempty"`
	LineEnd   int    `json:"line_end,omitempty"`
	Position  uint64 `json:"position"`
}

// RequestArgs are the arguments of review_request.
type RequestArgs struct {
	Session string         `json:"session" jsonschema:"the session id"`
	Reason  string         `json:"reason" jsonschema:"what the approval is for: commit, merge, promote, delete, or a custom code"`
	Group   string         `json:"group,omitempty" jsonschema:"the reviewer group to ask (default: the session's policy)"`
	Details map[string]any `json:"details,omitempty" jsonschema:"anything the reviewer should know, e.g. {\"summary\": \"fixes the login bug\"}"`
}

// StatusArgs are the arguments of review_status.
type StatusArgs struct {
	Session string `json:"session" jsonschema:"the session id"`
	Request string `json:"request,omitempty" jsonschema:"the id review_request gave (omit for every request of the session)"`
}

// ApprovalOut is an approval request and where it stands.
type ApprovalOut struct {
	ID        string   `json:"id"`
	Reason    string   `json:"reason"`
	Group     string   `json:"group"`
	State     string   `json:"state"`
	Root      string   `json:"root"`
	Requester string   `json:"requester"`
	Grants    []string `json:"grants"`
	Required  int      `json:"required"`
	DeniedBy  string   `json:"denied_by,omitempty"`
	Comment   string   `json:"comment,omitempty"`
}

// ApprovalsResult answers review_request and review_status.
type ApprovalsResult struct {
	Requests []ApprovalOut `json:"requests"`
}

// CommitArgs are the arguments of commit.
type CommitArgs struct {
	Session string `json:"session" jsonschema:"the session id"`
	Message string `json:"message" jsonschema:"what the change does and why, as in a git commit message"`
}

// CommitResult answers commit.
type CommitResult struct {
	ID       string          `json:"id"`
	Position uint64          `json:"position"`
	Root     string          `json:"root"`
	Summary  *domain.Summary `json:"summary,omitempty"`
}

func (s *Server) addReviewTools() {
	add(s, "review_annotate", "Annotate",
		"Leave a review note on the session, a file, or a line range of a file (line_start, line_end): to explain a change or flag something for the reviewer.",
		additive, false, s.reviewAnnotate)
	add(s, "review_request", "Request approval",
		"Ask a reviewer to approve the session's current content (for example before commit). The request is pinned to the content: changing files afterwards makes it stale. Check the answer with review_status.",
		additive, false, s.reviewRequest)
	add(s, "review_status", "Approval status",
		"Show where the session's approval requests stand: pending, granted, denied or stale, with who decided.",
		readOnly, true, s.reviewStatus)
	add(s, "commit", "Commit",
		"Record the session's current content as a durable outcome with a message. May need an approval first (approval_required): then use review_request and wait for it to be granted.",
		additive, false, s.commit)
}

func (s *Server) reviewAnnotate(ctx context.Context, c *call, in AnnotateArgs) (string, NoteResult, error) {
	id, err := s.session(in.Session)
	if err != nil {
		return "", NoteResult{}, err
	}
	end := in.LineEnd
	if end == 0 {
		end = in.LineStart
	}
	r, err := s.c.Annotate(ctx, client.AnnotateRequest{Mutation: c.mutation(), Session: id, Body: in.Body, Path: in.Path, LineStart: in.LineStart, LineEnd: end, ReplyTo: in.ReplyTo})
	if err != nil {
		return "", NoteResult{}, err
	}
	n := r.Note
	where := "the session"
	if n.Path != "" {
		where = n.Path
		if n.LineStart > 0 {
			where += fmt.Sprintf(":%d-%d", n.LineStart, n.LineEnd)
		}
	}
	return fmt.Sprintf("note %s on %s, position %d", n.ID, where, r.Position),
		NoteResult{ID: n.ID, Path: n.Path, LineStart: n.LineStart, LineEnd: n.LineEnd, Position: r.Position}, nil
}

func (s *Server) reviewRequest(ctx context.Context, c *call, in RequestArgs) (string, ApprovalsResult, error) {
	id, err := s.session(in.Session)
	if err != nil {
		return "", ApprovalsResult{}, err
	}
	var details json.RawMessage
	if in.Details != nil {
		if details, err = json.Marshal(in.Details); err != nil {
			return "", ApprovalsResult{}, invalid("details: %v", err)
		}
	}
	r, err := s.c.RequestApproval(ctx, client.ApprovalRequestRequest{Mutation: c.mutation(), Session: id, Reason: in.Reason, Group: in.Group, Details: details})
	if err != nil {
		return "", ApprovalsResult{}, err
	}
	a := approvalOut(r.Request)
	return fmt.Sprintf("approval request %s (%s) is %s, for group %s, pinned to root %s; check it with review_status", a.ID, a.Reason, a.State, a.Group, short(a.Root)),
		ApprovalsResult{Requests: []ApprovalOut{a}}, nil
}

func (s *Server) reviewStatus(ctx context.Context, _ *call, in StatusArgs) (string, ApprovalsResult, error) {
	id, err := s.session(in.Session)
	if err != nil {
		return "", ApprovalsResult{}, err
	}
	r, err := s.c.Pending(ctx, client.PendingRequest{Session: id, All: true})
	if err != nil {
		return "", ApprovalsResult{}, err
	}
	out := ApprovalsResult{Requests: []ApprovalOut{}}
	var b strings.Builder
	for _, v := range r.Requests {
		if in.Request != "" && v.ID != in.Request {
			continue
		}
		a := approvalOut(v)
		out.Requests = append(out.Requests, a)
		fmt.Fprintf(&b, "%s %s: %s (%d of %d grants)", a.ID, a.Reason, a.State, len(a.Grants), a.Required)
		if len(a.Grants) > 0 {
			b.WriteString(" granted by " + strings.Join(a.Grants, ", "))
		}
		if a.DeniedBy != "" {
			fmt.Fprintf(&b, " denied by %s", a.DeniedBy)
			if a.Comment != "" {
				fmt.Fprintf(&b, ": %s", a.Comment)
			}
		}
		b.WriteString("\n")
	}
	if len(out.Requests) == 0 {
		if in.Request != "" {
			return "", ApprovalsResult{}, &client.Error{Code: domain.CodeNotFound, Message: fmt.Sprintf("no approval request %s in session %s", in.Request, id)}
		}
		b.WriteString("no approval requests\n")
	}
	return b.String(), out, nil
}

func approvalOut(v client.ApprovalView) ApprovalOut {
	a := ApprovalOut{ID: v.ID, Reason: v.Reason, Group: v.Group, State: v.State, Root: v.Root, Requester: v.Requester, Required: v.Required, Grants: []string{}}
	for _, g := range v.Grants {
		a.Grants = append(a.Grants, g.Actor)
	}
	if v.Denial != nil {
		a.DeniedBy, a.Comment = v.Denial.Actor, v.Denial.Comment
	}
	return a
}

func (s *Server) commit(ctx context.Context, c *call, in CommitArgs) (string, CommitResult, error) {
	id, err := s.session(in.Session)
	if err != nil {
		return "", CommitResult{}, err
	}
	r, err := s.c.CreateCommit(ctx, client.CommitRequest{Mutation: c.mutation(), Session: id, Message: in.Message})
	if err != nil {
		return "", CommitResult{}, err
	}
	cv := r.Commit
	text := fmt.Sprintf("commit %s at position %d (root %s)", cv.ID, cv.Position, short(cv.Root))
	if sm := cv.Summary; sm != nil {
		text += fmt.Sprintf(": %d added, %d modified, %d deleted, %d renamed, +%d -%d lines", sm.Added, sm.Modified, sm.Deleted, sm.Renamed, sm.LinesAdded, sm.LinesRemoved)
	}
	return text, CommitResult{ID: cv.ID, Position: cv.Position, Root: cv.Root, Summary: cv.Summary}, nil
}
