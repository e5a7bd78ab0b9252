package mcp

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/strand-dev/strand/client"
)

// SessionArgs name a session (and, for reads, a point of its history).
type SessionArgs struct {
	Session string `json:"session" jsonschema:"the session id (a 26-character ULID)"`
	At      string `json:"at,omitempty" jsonschema:"read the past: a position number or a checkpoint name; omit for the head"`
}

// CreateArgs are the arguments of session_create.
type CreateArgs struct {
	Tags     map[string]string `json:"tags,omitempty" jsonschema:"labels to find the session by, e.g. {\"task\": \"fix-login\"}"`
	Source   string            `json:"source,omitempty" jsonschema:"start from this source (a named baseline) instead of an empty tree"`
	Revision uint64            `json:"revision,omitempty" jsonschema:"the source's revision (omit for its latest)"`
}

// ListArgs are the arguments of session_list.
type ListArgs struct {
	Status string            `json:"status,omitempty" jsonschema:"active, pending_approval, conflict, archived or deleted"`
	Tags   map[string]string `json:"tags,omitempty" jsonschema:"keep sessions with all these tags"`
	Limit  int               `json:"limit,omitempty" jsonschema:"at most this many (default 20)"`
	Cursor string            `json:"cursor,omitempty" jsonschema:"the cursor of the previous page"`
}

// ForkArgs are the arguments of session_fork.
type ForkArgs struct {
	Session string            `json:"session" jsonschema:"the session to fork"`
	At      string            `json:"at,omitempty" jsonschema:"fork at this position or checkpoint name (omit for the head)"`
	Tags    map[string]string `json:"tags,omitempty" jsonschema:"tags of the new session"`
}

// RestoreArgs are the arguments of session_restore.
type RestoreArgs struct {
	Session string `json:"session" jsonschema:"the session id"`
	To      string `json:"to" jsonschema:"a checkpoint name or a position to go back to"`
}

// SessionResult is a session as tools report it.
type SessionResult struct {
	Session  client.SessionView `json:"session"`
	Position uint64             `json:"position"`
}

// SessionListResult answers session_list.
type SessionListResult struct {
	Sessions   []client.SessionView `json:"sessions"`
	NextCursor string               `json:"next_cursor,omitempty"`
}

func (s *Server) addSessionTools() {
	if s.opts.Session == "" {
		add(s, "session_create", "Create a session",
			"Create a new session: an isolated file tree with its own history. Returns its id, which every other tool takes as session.",
			additive, false, s.sessionCreate)
		add(s, "session_list", "List sessions",
			"List sessions of the tenant, newest first, optionally by status or tags.",
			readOnly, true, s.sessionList)
		add(s, "session_fork", "Fork a session",
			"Fork a session: a new session that starts with the same files (at its head or an earlier point) and changes on its own. The original is never touched. Costs the same whatever the history length. Work in the fork.",
			additive, false, s.sessionFork)
	}
	add(s, "session_get", "Get a session",
		"Show a session: status, origin (what it was forked or created from), tags, position, root hash and checkpoints.",
		readOnly, true, s.sessionGet)
	add(s, "session_restore", "Restore a session",
		"Point the session's files back to a checkpoint or position. Nothing is lost: the restore is itself an event, so it can be undone by restoring to the position before it.",
		destructive, true, s.sessionRestore)
}

func (s *Server) sessionCreate(ctx context.Context, c *call, in CreateArgs) (string, SessionResult, error) {
	r, err := s.c.CreateSession(ctx, client.CreateSessionRequest{Mutation: c.mutation(), Tags: in.Tags, Source: in.Source, Revision: in.Revision})
	if err != nil {
		return "", SessionResult{}, err
	}
	return "created " + sessionLine(r.Session), sessionResult(r), nil
}

func (s *Server) sessionList(ctx context.Context, _ *call, in ListArgs) (string, SessionListResult, error) {
	limit := in.Limit
	if limit == 0 {
		limit = 20
	}
	r, err := s.c.ListSessions(ctx, client.ListSessionsRequest{Status: in.Status, Tags: in.Tags, Limit: limit, Cursor: in.Cursor})
	if err != nil {
		return "", SessionListResult{}, err
	}
	var b strings.Builder
	if len(r.Sessions) == 0 {
		b.WriteString("no sessions\n")
	}
	for _, v := range r.Sessions {
		b.WriteString(sessionLine(v) + "\n")
	}
	if r.NextCursor != "" {
		fmt.Fprintf(&b, "more: cursor=%s\n", r.NextCursor)
	}
	return b.String(), SessionListResult{Sessions: r.Sessions, NextCursor: r.NextCursor}, nil
}

func (s *Server) sessionFork(ctx context.Context, c *call, in ForkArgs) (string, SessionResult, error) {
	r, err := s.c.Fork(ctx, client.ForkRequest{Mutation: c.mutation(), Session: in.Session, At: client.At(in.At), Tags: in.Tags})
	if err != nil {
		return "", SessionResult{}, err
	}
	return "forked " + in.Session + " into " + sessionLine(r.Session) + "\nwork in " + r.Session.ID, sessionResult(r), nil
}

func (s *Server) sessionGet(ctx context.Context, _ *call, in SessionArgs) (string, SessionResult, error) {
	id, err := s.session(in.Session)
	if err != nil {
		return "", SessionResult{}, err
	}
	r, err := s.c.GetSession(ctx, id, client.At(in.At))
	if err != nil {
		return "", SessionResult{}, err
	}
	var b strings.Builder
	b.WriteString(sessionLine(r.Session) + "\n")
	if o := r.Session.Origin; o != nil {
		fmt.Fprintf(&b, "origin: %s\n", originText(o))
	}
	fmt.Fprintf(&b, "root: %s\n", r.Session.Root)
	for _, cp := range r.Session.Checkpoints {
		fmt.Fprintf(&b, "checkpoint %s at %d\n", cp.Name, cp.Position)
	}
	return b.String(), sessionResult(r), nil
}

func (s *Server) sessionRestore(ctx context.Context, c *call, in RestoreArgs) (string, SessionResult, error) {
	id, err := s.session(in.Session)
	if err != nil {
		return "", SessionResult{}, err
	}
	r, err := s.c.Restore(ctx, client.RestoreRequest{Mutation: c.mutation(), Session: id, To: client.At(in.To)})
	if err != nil {
		return "", SessionResult{}, err
	}
	return fmt.Sprintf("restored %s to %s; now at position %d (root %s)", id, in.To, r.Position, short(r.Session.Root)), sessionResult(r), nil
}

func sessionResult(r client.SessionReply) SessionResult {
	return SessionResult{Session: r.Session, Position: r.Position}
}

func sessionLine(v client.SessionView) string {
	line := fmt.Sprintf("session %s %s at position %d", v.ID, v.Status, v.Position)
	if len(v.Tags) > 0 {
		keys := make([]string, 0, len(v.Tags))
		for k := range v.Tags {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for i, k := range keys {
			keys[i] = k + "=" + v.Tags[k]
		}
		line += " tags " + strings.Join(keys, ",")
	}
	return line
}

func originText(o *client.OriginView) string {
	if o.Parent != "" {
		return fmt.Sprintf("fork of %s at %d", o.Parent, o.Position)
	}
	if o.Source != "" {
		return fmt.Sprintf("source %s@%d", o.Source, o.Revision)
	}
	return "blank"
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
