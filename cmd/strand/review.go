package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/strand-dev/strand/client"
)

func (m *Main) printNotes(g *globals, notes []client.NoteView) {
	rows := make([][]string, 0, len(notes))
	for _, n := range notes {
		where := n.Path
		if n.LineStart > 0 {
			where += fmt.Sprintf(":%d-%d", n.LineStart, n.LineEnd)
		}
		state := n.Status
		if n.Outdated {
			state += ",outdated"
		}
		body := strings.ReplaceAll(n.Body, "\n", " ")
		if len(body) > 60 {
			body = body[:57] + "..."
		}
		rows = append(rows, []string{n.ID, state, n.Actor, where, n.ReplyTo, body})
	}
	m.table([]string{"NOTE", "STATUS", "ACTOR", "WHERE", "REPLY TO", "BODY"}, rows)
}

func (m *Main) reviewAnnotate(ctx context.Context, args []string) error {
	var req client.AnnotateRequest
	var mf mutationFlags
	g, pos, err := m.parseArgs("review annotate", args, func(fs *flag.FlagSet) {
		fs.StringVar(&req.Body, "body", "", "the note")
		fs.StringVar(&req.Path, "path", "", "a path the note is about")
		fs.StringVar(&req.Lines, "lines", "", "a line range A-B of the path")
		fs.StringVar(&req.ReplyTo, "reply-to", "", "the note this one answers")
		mf.declare(fs)
	})
	if err != nil {
		return err
	}
	defer g.close()
	if err := need(pos, 1, "review annotate SESSION --body TEXT"); err != nil {
		return err
	}
	req.Session, req.Mutation = pos[0], mf.mutation()
	if err := g.dial(); err != nil {
		return err
	}
	r, err := g.client.Annotate(ctx, req)
	return m.show(g, r, err, func() { m.printNotes(g, []client.NoteView{r.Note}) })
}

func (m *Main) reviewNotes(ctx context.Context, args []string) error {
	var req client.NotesRequest
	var at string
	g, pos, err := m.parseArgs("review notes", args, func(fs *flag.FlagSet) {
		fs.StringVar(&req.Path, "path", "", "only notes on this path")
		fs.StringVar(&req.Status, "status", "", "open or resolved")
		fs.StringVar(&at, "at", "", "as of this position or checkpoint")
	})
	if err != nil {
		return err
	}
	defer g.close()
	if err := need(pos, 1, "review notes SESSION"); err != nil {
		return err
	}
	req.Session, req.At = pos[0], client.At(at)
	if err := g.dial(); err != nil {
		return err
	}
	r, err := g.client.Notes(ctx, req)
	return m.show(g, r, err, func() { m.printNotes(g, r.Notes) })
}

func (m *Main) reviewResolve(ctx context.Context, args []string) error {
	return m.noteState(ctx, "resolve", args, (*client.Client).ResolveNote)
}

func (m *Main) reviewReopen(ctx context.Context, args []string) error {
	return m.noteState(ctx, "reopen", args, (*client.Client).ReopenNote)
}

func (m *Main) noteState(ctx context.Context, verb string, args []string, fn func(*client.Client, context.Context, client.NoteRequest) (client.NoteReply, error)) error {
	var mf mutationFlags
	g, pos, err := m.dialArgs("review "+verb, args, 2, "review "+verb+" SESSION NOTE", mf.declare)
	if err != nil {
		return err
	}
	defer g.close()
	r, err := fn(g.client, ctx, client.NoteRequest{Mutation: mf.mutation(), Session: pos[0], Note: pos[1]})
	return m.show(g, r, err, func() { m.printNotes(g, []client.NoteView{r.Note}) })
}

func (m *Main) printApprovals(reqs []client.ApprovalView) {
	rows := make([][]string, 0, len(reqs))
	for _, r := range reqs {
		rows = append(rows, []string{r.ID, r.Session, r.Reason, r.Group, r.State, fmt.Sprintf("%d/%d", len(r.Grants), r.Required), r.Requester, r.CreatedAt.Format(time.RFC3339)})
	}
	m.table([]string{"REQUEST", "SESSION", "REASON", "GROUP", "STATE", "GRANTS", "REQUESTER", "CREATED"}, rows)
}

func (m *Main) reviewRequest(ctx context.Context, args []string) error {
	var req client.ApprovalRequestRequest
	var details string
	var mf mutationFlags
	g, pos, err := m.parseArgs("review request", args, func(fs *flag.FlagSet) {
		fs.StringVar(&req.Reason, "reason", "", "commit, merge, promote, delete, policy or a custom code")
		fs.StringVar(&req.Group, "group", "", "the reviewer group (default \"default\")")
		fs.StringVar(&details, "details", "", "free-form details as JSON")
		mf.declare(fs)
	})
	if err != nil {
		return err
	}
	defer g.close()
	if err := need(pos, 1, "review request SESSION --reason R"); err != nil {
		return err
	}
	if details != "" {
		if !json.Valid([]byte(details)) {
			return usagef("--details must be JSON")
		}
		req.Details = json.RawMessage(details)
	}
	req.Session, req.Mutation = pos[0], mf.mutation()
	if err := g.dial(); err != nil {
		return err
	}
	r, err := g.client.RequestApproval(ctx, req)
	if err != nil {
		return err
	}
	return m.printApproval(g, r)
}

func (m *Main) printApproval(g *globals, r client.ApprovalReply) error {
	if g.json {
		return m.printJSON(r)
	}
	m.printApprovals([]client.ApprovalView{r.Request})
	m.printf("session status %s, position %d\n", r.Status, r.Position)
	return nil
}

func (m *Main) reviewGrant(ctx context.Context, args []string) error {
	return m.reviewDecide(ctx, "grant", args, (*client.Client).Grant)
}

func (m *Main) reviewDeny(ctx context.Context, args []string) error {
	return m.reviewDecide(ctx, "deny", args, (*client.Client).Deny)
}

func (m *Main) reviewDecide(ctx context.Context, verb string, args []string, fn func(*client.Client, context.Context, client.DecideRequest) (client.ApprovalReply, error)) error {
	var comment string
	var mf mutationFlags
	g, pos, err := m.dialArgs("review "+verb, args, 2, "review "+verb+" SESSION REQUEST [--comment TEXT]", func(fs *flag.FlagSet) {
		fs.StringVar(&comment, "comment", "", "a comment")
		mf.declare(fs)
	})
	if err != nil {
		return err
	}
	defer g.close()
	r, err := fn(g.client, ctx, client.DecideRequest{Mutation: mf.mutation(), Session: pos[0], Request: pos[1], Comment: comment})
	if err != nil {
		return err
	}
	return m.printApproval(g, r)
}

func (m *Main) reviewPending(ctx context.Context, args []string) error {
	var req client.PendingRequest
	g, _, err := m.dialArgs("review pending", args, 0, "review pending [--group G]", func(fs *flag.FlagSet) {
		fs.StringVar(&req.Group, "group", "", "only this reviewer group")
		fs.StringVar(&req.Session, "session", "", "only this session (read from its history)")
		fs.BoolVar(&req.All, "all", false, "with --session: also decided and stale requests")
	})
	if err != nil {
		return err
	}
	defer g.close()
	r, err := g.client.Pending(ctx, req)
	return m.show(g, r, err, func() { m.printApprovals(r.Requests) })
}

func (m *Main) policyGet(ctx context.Context, args []string) error {
	var req client.PolicyRequest
	g, _, err := m.dialArgs("policy get", args, 0, "policy get [--session S]", func(fs *flag.FlagSet) {
		fs.StringVar(&req.Session, "session", "", "also this session's policy")
	})
	if err != nil {
		return err
	}
	defer g.close()
	r, err := g.client.GetPolicy(ctx, req)
	if err != nil {
		return err
	}
	return m.printPolicy(g, r)
}

func (m *Main) printPolicy(g *globals, r client.PolicyReply) error {
	if g.json {
		return m.printJSON(r)
	}
	var rows [][]string
	for a, n := range r.Effective {
		rows = append(rows, []string{a, strconv.Itoa(n)})
	}
	m.table([]string{"ACTION", "GRANTS"}, rows)
	return nil
}

func (m *Main) policySet(ctx context.Context, args []string) error {
	var req client.PolicyRequest
	var mf mutationFlags
	g, pos, err := m.parseArgs("policy set", args, func(fs *flag.FlagSet) {
		fs.StringVar(&req.Session, "session", "", "set this session's policy instead of the tenant's default")
		mf.declare(fs)
	})
	if err != nil {
		return err
	}
	defer g.close()
	req.Policy = map[string]int{}
	for _, kv := range pos {
		a, n, ok := strings.Cut(kv, "=")
		v, err := strconv.Atoi(n)
		if !ok || err != nil {
			return usagef("policy entries are ACTION=N, like commit=1")
		}
		req.Policy[a] = v
	}
	req.Mutation = mf.mutation()
	if err := g.dial(); err != nil {
		return err
	}
	r, err := g.client.SetPolicy(ctx, req)
	if err != nil {
		return err
	}
	return m.printPolicy(g, r)
}
