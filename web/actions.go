package web

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

// maxForm bounds the body of a form: a note is text, not a file.
const maxForm = 256 << 10

// form reads a POST form for an action on the session in the path, with
// the client of its sender. A malformed form ends the request.
func (a *App) form(w http.ResponseWriter, r *http.Request) (*client.Client, string, bool) {
	c, ok := a.client(w, r)
	if !ok {
		return nil, "", false
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		a.fail(w, r, domain.Errorf(domain.CodeInvalidArgument, "the form could not be read: %v", err))
		return nil, "", false
	}
	return c, r.PathValue("id"), true
}

// next is where a form goes back to: the local page it names, or the
// session page. Only a path on this site is followed (no open redirect).
func next(r *http.Request, id string) string {
	if n := r.PostFormValue("next"); n != "" && localPath(n) == n {
		return n
	}
	return sessionURL(id, nil)
}

func mutation(r *http.Request) client.Mutation {
	m := client.Mutation{RequestID: r.PostFormValue("request_id")}
	if p, err := strconv.ParseUint(r.PostFormValue("expected_position"), 10, 64); err == nil {
		m.ExpectedPosition = p
	}
	return m
}

// annotate adds a note: on a line range of a file, on a file, on the
// session, or in reply to another note.
func (a *App) annotate(w http.ResponseWriter, r *http.Request) {
	c, id, ok := a.form(w, r)
	if !ok {
		return
	}
	req := client.AnnotateRequest{
		Mutation: mutation(r), Session: id, Body: strings.TrimSpace(r.PostFormValue("body")),
		Path: r.PostFormValue("path"), Lines: strings.ReplaceAll(strings.TrimSpace(r.PostFormValue("lines")), " ", ""),
		ReplyTo: r.PostFormValue("reply_to"),
	}
	_, err := c.Annotate(r.Context(), req)
	what := "Note added"
	if req.ReplyTo != "" {
		what = "Reply added"
	}
	a.done(w, r, next(r, id), err, what)
}

// noteState resolves or reopens a note.
func (a *App) noteState(w http.ResponseWriter, r *http.Request) {
	c, id, ok := a.form(w, r)
	if !ok {
		return
	}
	req := client.NoteRequest{Mutation: mutation(r), Session: id, Note: r.PathValue("note")}
	var err error
	switch r.PathValue("verb") {
	case "resolve":
		_, err = c.ResolveNote(r.Context(), req)
	case "reopen":
		_, err = c.ReopenNote(r.Context(), req)
	default:
		http.NotFound(w, r)
		return
	}
	a.done(w, r, next(r, id), err, map[string]string{"resolve": "Note resolved", "reopen": "Note reopened"}[r.PathValue("verb")])
}

// requestApproval asks reviewers to approve an action on the current
// content.
func (a *App) requestApproval(w http.ResponseWriter, r *http.Request) {
	c, id, ok := a.form(w, r)
	if !ok {
		return
	}
	req := client.ApprovalRequestRequest{Mutation: mutation(r), Session: id, Reason: r.PostFormValue("reason"), Group: strings.TrimSpace(r.PostFormValue("group"))}
	_, err := c.RequestApproval(r.Context(), req)
	a.done(w, r, next(r, id), err, "Approval requested")
}

// decide grants or denies an approval request.
func (a *App) decide(w http.ResponseWriter, r *http.Request) {
	c, id, ok := a.form(w, r)
	if !ok {
		return
	}
	req := client.DecideRequest{Mutation: mutation(r), Session: id, Request: r.PathValue("req"), Comment: strings.TrimSpace(r.PostFormValue("comment"))}
	var err error
	switch r.PathValue("verb") {
	case "grant":
		_, err = c.Grant(r.Context(), req)
	case "deny":
		_, err = c.Deny(r.Context(), req)
	default:
		http.NotFound(w, r)
		return
	}
	verb := map[string]string{"grant": "Granted", "deny": "Denied"}[r.PathValue("verb")]
	a.done(w, r, next(r, id), err, verb)
}

// commit records a commit of the session's head. The form carries the
// position the reviewer saw, so content that moved since is refused.
func (a *App) commit(w http.ResponseWriter, r *http.Request) {
	c, id, ok := a.form(w, r)
	if !ok {
		return
	}
	req := client.CommitRequest{Mutation: mutation(r), Session: id, Message: strings.TrimSpace(r.PostFormValue("message"))}
	rep, err := c.CreateCommit(r.Context(), req)
	a.done(w, r, next(r, id), err, "Committed "+shortID(rep.Commit.ID))
}

// merge merges another session (SESSION or SESSION@AT) into this one.
func (a *App) merge(w http.ResponseWriter, r *http.Request) {
	c, id, ok := a.form(w, r)
	if !ok {
		return
	}
	req := client.MergeRequest{Mutation: mutation(r), From: strings.TrimSpace(r.PostFormValue("from")), Into: id, Strategy: r.PostFormValue("strategy")}
	rep, err := c.Merge(r.Context(), req)
	text := "Merged"
	switch {
	case err != nil:
	case rep.UpToDate:
		text = "Already up to date: nothing to merge"
	case !rep.Applied:
		paths := make([]string, 0, len(rep.Conflicts))
		for _, cf := range rep.Conflicts {
			paths = append(paths, cf.Path)
		}
		err = domain.Errorf(domain.CodeConflict, "the merge has conflicts (nothing changed): %s", strings.Join(paths, ", "))
	}
	a.done(w, r, next(r, id), err, text)
}

// checkpoint names the session's head.
func (a *App) checkpoint(w http.ResponseWriter, r *http.Request) {
	c, id, ok := a.form(w, r)
	if !ok {
		return
	}
	req := client.CheckpointRequest{Mutation: mutation(r), Session: id, Name: strings.TrimSpace(r.PostFormValue("name")), Note: strings.TrimSpace(r.PostFormValue("note"))}
	_, err := c.CreateCheckpoint(r.Context(), req)
	a.done(w, r, next(r, id), err, "Checkpoint "+req.Name+" created")
}
