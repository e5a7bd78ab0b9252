package handlers_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

// as returns the harness's client acting as someone else.
func (h *harness) as(actor string) *client.Client {
	c := h.client("acme")
	c.Actor = actor
	return c
}

func wantErr(t *testing.T, what string, err error, code domain.Code) {
	t.Helper()
	if got := client.ErrorCode(err); got != code {
		t.Fatalf("%s: got %v (%s), want %s", what, err, got, code)
	}
}

func TestReview_Gate(t *testing.T) {
	t.Parallel()
	h := start(t, harnessOptions{list: true})
	ctx := t.Context()
	alice, bob := h.as("alice"), h.as("bob")
	if _, err := h.c.SetPolicy(ctx, client.PolicyRequest{Policy: domain.Policy{domain.ActionCommit: 1}}); err != nil {
		t.Fatal(err)
	}
	created, err := alice.CreateSession(ctx, client.CreateSessionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	id := created.Session.ID
	if created.Session.Owner != "alice" {
		t.Fatalf("owner: got %q, want alice (the actor)", created.Session.Owner)
	}
	if _, err := alice.Write(ctx, client.WriteRequest{Session: id, Path: "src/main.go", Content: []byte("package main\n\nfunc main() {}\n")}); err != nil {
		t.Fatal(err)
	}

	// Context as a note on a line range.
	note, err := bob.Annotate(ctx, client.AnnotateRequest{Session: id, Body: "add a test", Path: "/src/main.go", Lines: "3-3"})
	if err != nil {
		t.Fatal(err)
	}
	if note.Note.Actor != "bob" || note.Note.Path != "src/main.go" || note.Note.LineStart != 3 || note.Note.Outdated {
		t.Fatalf("note: %+v", note.Note)
	}
	h.wantHead(t, "annotate", note.Position)

	// No approval yet.
	before := h.env.LastSeq(t)
	_, err = alice.CreateCommit(ctx, client.CommitRequest{Session: id, Message: "ship it"})
	wantErr(t, "commit without approval", err, domain.CodeApprovalRequired)
	if after := h.env.LastSeq(t); after != before {
		t.Fatalf("refused commit appended: %d -> %d", before, after)
	}

	req, err := alice.RequestApproval(ctx, client.ApprovalRequestRequest{Session: id, Reason: "commit", Group: "leads", Details: json.RawMessage(`{"ticket":"T-1"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if req.Status != "pending_approval" || req.Request.State != "pending" || req.Request.Requester != "alice" || req.Request.Root != created.Session.Root && req.Request.Root == "" {
		t.Fatalf("request: status %s, %+v", req.Status, req.Request)
	}
	// The tenant-wide queue (a projection) shows it for its group only.
	waitFor(t, "review queue", func() bool {
		r, err := h.c.Pending(ctx, client.PendingRequest{Group: "leads"})
		return err == nil && len(r.Requests) == 1 && r.Requests[0].ID == req.Request.ID && r.Requests[0].Session == id
	})
	if r, err := h.c.Pending(ctx, client.PendingRequest{Group: "others"}); err != nil || len(r.Requests) != 0 {
		t.Fatalf("queue of another group: %+v %v", r, err)
	}

	// The requester cannot decide, not even by claiming another name in a header.
	_, err = alice.Grant(ctx, client.DecideRequest{Session: id, Request: req.Request.ID})
	wantErr(t, "self-grant", err, domain.CodeForbidden)

	granted, err := bob.Grant(ctx, client.DecideRequest{Session: id, Request: req.Request.ID, Comment: "lgtm"})
	if err != nil {
		t.Fatal(err)
	}
	if granted.Request.State != "granted" || len(granted.Request.Grants) != 1 || granted.Request.Grants[0].Actor != "bob" || granted.Status != "active" {
		t.Fatalf("grant: %+v status %s", granted.Request, granted.Status)
	}

	cm, err := alice.CreateCommit(ctx, client.CommitRequest{Session: id, Message: "ship it"})
	if err != nil {
		t.Fatal(err)
	}
	c := cm.Commit
	if len(c.Approvals) != 1 || c.Approvals[0] != req.Request.ID || c.Author != "alice" || c.Summary == nil || c.Summary.Added != 1 || c.Summary.LinesAdded != 3 {
		t.Fatalf("commit: %+v summary %+v", c, c.Summary)
	}
	h.wantHead(t, "commit", cm.Position)
	// The approval was used up.
	_, err = alice.CreateCommit(ctx, client.CommitRequest{Session: id, Message: "again"})
	wantErr(t, "second commit on the same approval", err, domain.CodeApprovalRequired)

	// A commit id is accepted wherever a point in history is.
	if _, err := alice.Write(ctx, client.WriteRequest{Session: id, Path: "src/main.go", Content: []byte("changed\n")}); err != nil {
		t.Fatal(err)
	}
	if got := h.read(t, id, "src/main.go", client.At(c.ID)); got != "package main\n\nfunc main() {}\n" {
		t.Fatalf("read at commit: %q", got)
	}
	waitFor(t, "commit index", func() bool {
		r, err := h.c.GetCommit(ctx, client.CommitGetRequest{Commit: c.ID})
		return err == nil && r.Commit.Session == id && r.Commit.Root == c.Root
	})
	notes, err := h.c.Notes(ctx, client.NotesRequest{Session: id})
	if err != nil || len(notes.Notes) != 1 || !notes.Notes[0].Outdated {
		t.Fatalf("note after the file changed: %+v %v", notes, err)
	}
}

func TestReview_ChangeAfterGrant(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx := t.Context()
	id := h.session(t)
	if _, err := h.c.SetPolicy(ctx, client.PolicyRequest{Policy: domain.Policy{domain.ActionCommit: 1}}); err != nil {
		t.Fatal(err)
	}
	h.write(t, id, "a", "1")
	req, err := h.as("dev").RequestApproval(ctx, client.ApprovalRequestRequest{Session: id, Reason: "commit"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.as("rev").Grant(ctx, client.DecideRequest{Session: id, Request: req.Request.ID}); err != nil {
		t.Fatal(err)
	}
	// The content changes between the grant and the commit.
	h.write(t, id, "a", "2")
	_, err = h.as("dev").CreateCommit(ctx, client.CommitRequest{Session: id, Message: "m"})
	wantErr(t, "commit after a change", err, domain.CodeApprovalStale)
	all, err := h.c.Pending(ctx, client.PendingRequest{Session: id, All: true})
	if err != nil || len(all.Requests) != 1 || all.Requests[0].State != "stale" {
		t.Fatalf("request after the change: %+v %v", all, err)
	}
	got, err := h.c.GetSession(ctx, id, "")
	if err != nil || got.Session.Status != "active" {
		t.Fatalf("status after the change: %+v %v", got.Session.Status, err)
	}
	// A stale request cannot be granted any more.
	_, err = h.as("rev2").Grant(ctx, client.DecideRequest{Session: id, Request: req.Request.ID})
	wantErr(t, "grant of a stale request", err, domain.CodeApprovalStale)
}

func TestReview_Deny(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx := t.Context()
	r, err := h.c.CreateSession(ctx, client.CreateSessionRequest{Policy: domain.Policy{domain.ActionDelete: 1}})
	if err != nil {
		t.Fatal(err)
	}
	id := r.Session.ID
	_, err = h.c.DeleteSession(ctx, client.SessionRequest{Session: id})
	wantErr(t, "delete under a delete policy", err, domain.CodeApprovalRequired)
	req, err := h.as("dev").RequestApproval(ctx, client.ApprovalRequestRequest{Session: id, Reason: "delete"})
	if err != nil {
		t.Fatal(err)
	}
	d, err := h.as("rev").Deny(ctx, client.DecideRequest{Session: id, Request: req.Request.ID, Comment: "keep it"})
	if err != nil || d.Request.State != "denied" || d.Request.Denial == nil || d.Request.Denial.Comment != "keep it" || d.Status != "active" {
		t.Fatalf("deny: %+v %v", d, err)
	}
	_, err = h.c.DeleteSession(ctx, client.SessionRequest{Session: id})
	wantErr(t, "delete after denial", err, domain.CodeApprovalRequired)
	_, err = h.as("rev2").Grant(ctx, client.DecideRequest{Session: id, Request: req.Request.ID})
	wantErr(t, "grant after denial", err, domain.CodeConflict)
}

func TestReview_TwoGrants(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx := t.Context()
	r, err := h.c.CreateSession(ctx, client.CreateSessionRequest{Policy: domain.Policy{domain.ActionCommit: 2}})
	if err != nil {
		t.Fatal(err)
	}
	id := r.Session.ID
	h.write(t, id, "x", "y")
	req, err := h.as("dev").RequestApproval(ctx, client.ApprovalRequestRequest{Session: id, Reason: "commit"})
	if err != nil || req.Request.Required != 2 {
		t.Fatalf("request: %+v %v", req, err)
	}
	one, err := h.as("rev1").Grant(ctx, client.DecideRequest{Session: id, Request: req.Request.ID})
	if err != nil || one.Request.State != "pending" || one.Status != "pending_approval" {
		t.Fatalf("one grant: %+v %v", one, err)
	}
	_, err = h.as("dev").CreateCommit(ctx, client.CommitRequest{Session: id, Message: "m"})
	wantErr(t, "commit with one of two grants", err, domain.CodeApprovalRequired)
	_, err = h.as("rev1").Grant(ctx, client.DecideRequest{Session: id, Request: req.Request.ID})
	wantErr(t, "the same reviewer twice", err, domain.CodeAlreadyExists)
	if _, err := h.as("rev2").Grant(ctx, client.DecideRequest{Session: id, Request: req.Request.ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.as("dev").CreateCommit(ctx, client.CommitRequest{Session: id, Message: "m"}); err != nil {
		t.Fatalf("commit with two grants: %v", err)
	}
	// The state survives a restart with cold caches.
	h.restart(t)
	list, err := h.c.ListCommits(ctx, client.CommitListRequest{Session: id})
	if err != nil || len(list.Commits) != 1 || len(list.Commits[0].Approvals) != 1 {
		t.Fatalf("commits after restart: %+v %v", list, err)
	}
}

func TestReview_Notes(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx := t.Context()
	id := h.session(t)
	h.write(t, id, "a.txt", "one\ntwo\n")
	n1, err := h.c.Annotate(ctx, client.AnnotateRequest{Session: id, Body: "session-wide"})
	if err != nil {
		t.Fatal(err)
	}
	n2, err := h.c.Annotate(ctx, client.AnnotateRequest{Session: id, Body: "on a", Path: "a.txt"})
	if err != nil {
		t.Fatal(err)
	}
	reply, err := h.as("other").Annotate(ctx, client.AnnotateRequest{Session: id, Body: "thread", ReplyTo: n2.Note.ID})
	if err != nil || reply.Note.Path != "a.txt" || reply.Note.ReplyTo != n2.Note.ID {
		t.Fatalf("reply: %+v %v", reply, err)
	}
	if _, err := h.c.ResolveNote(ctx, client.NoteRequest{Session: id, Note: n1.Note.ID}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		req  client.NotesRequest
		want int
	}{
		{client.NotesRequest{Session: id}, 3},
		{client.NotesRequest{Session: id, Status: "open"}, 2},
		{client.NotesRequest{Session: id, Status: "resolved"}, 1},
		{client.NotesRequest{Session: id, Path: "a.txt"}, 2},
		{client.NotesRequest{Session: id, At: client.AtPosition(n2.Position)}, 2},
	} {
		got, err := h.c.Notes(ctx, tc.req)
		if err != nil || len(got.Notes) != tc.want {
			t.Fatalf("notes %+v: got %d (%v), want %d", tc.req, len(got.Notes), err, tc.want)
		}
	}
	if _, err := h.c.ReopenNote(ctx, client.NoteRequest{Session: id, Note: n1.Note.ID}); err != nil {
		t.Fatal(err)
	}
	_, err = h.c.ReopenNote(ctx, client.NoteRequest{Session: id, Note: n1.Note.ID})
	wantErr(t, "reopen an open note", err, domain.CodeConflict)
	h.unchanged(t, "bad notes", func() {
		_, err = h.c.Annotate(ctx, client.AnnotateRequest{Session: id, Body: "x", Path: "missing"})
		wantErr(t, "note on a missing path", err, domain.CodeNotFound)
		_, err = h.c.Annotate(ctx, client.AnnotateRequest{Session: id, Body: "x", Path: "a.txt", Lines: "5-2"})
		wantErr(t, "backwards lines", err, domain.CodeInvalidArgument)
		_, err = h.c.Annotate(ctx, client.AnnotateRequest{Session: id, Body: ""})
		wantErr(t, "empty body", err, domain.CodeInvalidArgument)
		_, err = h.c.ResolveNote(ctx, client.NoteRequest{Session: id, Note: "nope"})
		wantErr(t, "unknown note", err, domain.CodeNotFound)
		_, err = h.c.RequestApproval(ctx, client.ApprovalRequestRequest{Session: id, Reason: "Not A Code"})
		wantErr(t, "bad reason", err, domain.CodeInvalidArgument)
		_, err = h.c.RequestApproval(ctx, client.ApprovalRequestRequest{Session: id, Reason: "commit", Details: json.RawMessage(`{bad`)})
		if err == nil {
			t.Fatalf("bad details accepted")
		}
		_, err = h.c.Grant(ctx, client.DecideRequest{Session: id, Request: "nope"})
		wantErr(t, "unknown request", err, domain.CodeNotFound)
		_, err = h.c.SetPolicy(ctx, client.PolicyRequest{Session: id, Policy: domain.Policy{"commit": 0}})
		wantErr(t, "session policy change without approval", err, domain.CodeApprovalRequired)
	})
	h.write(t, id, "a.txt", "changed\n")
	got, err := h.c.Notes(ctx, client.NotesRequest{Session: id, Path: "a.txt"})
	if err != nil || !got.Notes[0].Outdated {
		t.Fatalf("note after change: %+v %v", got, err)
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	eventually(t, what, func() string {
		if ok() {
			return ""
		}
		return "not reached"
	})
}

// PendingReviews serves the review queue from the projection, as cmd/strand
// wires it.
func (l sessionLister) PendingReviews(ctx context.Context, tenant, group string) (client.PendingReply, error) {
	items, err := l.Sessions.Pending(ctx, tenant, group)
	if err != nil {
		return client.PendingReply{}, err
	}
	out := client.PendingReply{Requests: []client.ApprovalView{}}
	for _, it := range items {
		out.Requests = append(out.Requests, client.ApprovalView{ID: it.ID, Session: it.Session, Reason: it.Reason, Group: it.Group, State: "pending"})
	}
	return out, nil
}
