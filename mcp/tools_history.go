package mcp

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/strand-dev/strand/client"
)

// Bounds of the diff and events tools.
const (
	// maxUnified bounds the unified text diff takes when no path is named.
	maxUnified      = 32 << 10
	maxUnifiedFiles = 20
	defaultEvents   = 20
	maxEvents       = 200
)

// CheckpointArgs are the arguments of checkpoint_create.
type CheckpointArgs struct {
	Session string `json:"session" jsonschema:"the session id"`
	Name    string `json:"name" jsonschema:"a name for the current state, e.g. before-refactor"`
	Note    string `json:"note,omitempty" jsonschema:"why this point matters"`
}

// CheckpointResult answers checkpoint_create and checkpoint_list.
type CheckpointResult struct {
	Checkpoints []CheckpointOut `json:"checkpoints"`
	Position    uint64          `json:"position"`
}

// CheckpointOut is one checkpoint.
type CheckpointOut struct {
	Name     string `json:"name"`
	Position uint64 `json:"position"`
	Note     string `json:"note,omitempty"`
	Actor    string `json:"actor,omitempty"`
}

// DiffArgs are the arguments of diff.
type DiffArgs struct {
	Session     string `json:"session" jsonschema:"the session id (the new side)"`
	From        string `json:"from,omitempty" jsonschema:"the old side: a checkpoint name or position of the session; omit for its base (where it was forked or created from)"`
	FromSession string `json:"from_session,omitempty" jsonschema:"compare with another session instead (its head, or from in it)"`
	To          string `json:"to,omitempty" jsonschema:"the new side: a checkpoint name or position (omit for the head)"`
	Path        string `json:"path,omitempty" jsonschema:"show the unified diff of this one path only"`
}

// DiffResult answers diff.
type DiffResult struct {
	From      client.DiffSideView `json:"from"`
	To        client.DiffSideView `json:"to"`
	Counts    client.DiffCounts   `json:"counts"`
	Added     []string            `json:"added"`
	Modified  []string            `json:"modified"`
	Deleted   []string            `json:"deleted"`
	Renamed   []string            `json:"renamed"`
	Truncated bool                `json:"truncated,omitempty"`
	Unified   string              `json:"unified"`
}

// EventsArgs are the arguments of events.
type EventsArgs struct {
	Session string   `json:"session" jsonschema:"the session id"`
	Limit   int      `json:"limit,omitempty" jsonschema:"how many of the latest events (default 20, at most 200)"`
	Types   []string `json:"types,omitempty" jsonschema:"only these event types, e.g. [\"FilesChanged\"]"`
}

// EventsResult answers events.
type EventsResult struct {
	Events []EventOut `json:"events"`
}

// EventOut is one event of the history.
type EventOut struct {
	Position uint64    `json:"position"`
	Type     string    `json:"type"`
	Actor    string    `json:"actor,omitempty"`
	Time     time.Time `json:"time"`
	Paths    []string  `json:"paths,omitempty"`
	Root     string    `json:"root"`
}

func (s *Server) addHistoryTools() {
	add(s, "checkpoint_create", "Create a checkpoint",
		"Name the session's current state, before a risky change: session_restore can bring it back, diff can compare with it, and any tool's at can read it.",
		additive, false, s.checkpointCreate)
	add(s, "checkpoint_list", "List checkpoints",
		"List the session's checkpoints with their positions.",
		readOnly, true, s.checkpointList)
	add(s, "diff", "Diff",
		"Show what changed: by default everything since the session's base (what it was forked or created from), or since a checkpoint (from), or against another session (from_session). Lists added, modified, deleted and renamed paths, then the unified text diff.",
		readOnly, true, s.diff)
	add(s, "events", "Recent history",
		"Show the latest events of the session's history: who changed what, when, and at which position (any position can be read with at, or restored).",
		readOnly, true, s.events)
}

func (s *Server) checkpointCreate(ctx context.Context, c *call, in CheckpointArgs) (string, CheckpointResult, error) {
	id, err := s.session(in.Session)
	if err != nil {
		return "", CheckpointResult{}, err
	}
	r, err := s.c.CreateCheckpoint(ctx, client.CheckpointRequest{Mutation: c.mutation(), Session: id, Name: in.Name, Note: in.Note})
	if err != nil {
		return "", CheckpointResult{}, err
	}
	return fmt.Sprintf("checkpoint %s at position %d", r.Checkpoint.Name, r.Checkpoint.Position),
		CheckpointResult{Checkpoints: []CheckpointOut{checkpointOut(r.Checkpoint)}, Position: r.Position}, nil
}

func (s *Server) checkpointList(ctx context.Context, _ *call, in SessionArgs) (string, CheckpointResult, error) {
	id, err := s.session(in.Session)
	if err != nil {
		return "", CheckpointResult{}, err
	}
	r, err := s.c.ListCheckpoints(ctx, client.CheckpointListRequest{Session: id, At: client.At(in.At)})
	if err != nil {
		return "", CheckpointResult{}, err
	}
	out := CheckpointResult{Checkpoints: []CheckpointOut{}, Position: r.Position}
	var b strings.Builder
	for _, cp := range r.Checkpoints {
		out.Checkpoints = append(out.Checkpoints, checkpointOut(cp))
		fmt.Fprintf(&b, "%s at %d", cp.Name, cp.Position)
		if cp.Note != "" {
			fmt.Fprintf(&b, ": %s", cp.Note)
		}
		b.WriteString("\n")
	}
	if len(r.Checkpoints) == 0 {
		b.WriteString("no checkpoints\n")
	}
	return b.String(), out, nil
}

func checkpointOut(cp client.CheckpointView) CheckpointOut {
	return CheckpointOut{Name: cp.Name, Position: cp.Position, Note: cp.Note, Actor: cp.Actor}
}

func (s *Server) diff(ctx context.Context, _ *call, in DiffArgs) (string, DiffResult, error) {
	id, err := s.session(in.Session)
	if err != nil {
		return "", DiffResult{}, err
	}
	if in.FromSession != "" && s.opts.Session != "" && in.FromSession != s.opts.Session {
		if r, err := s.c.GetSession(ctx, id, ""); err != nil || r.Session.Origin == nil || r.Session.Origin.Parent != in.FromSession {
			return "", DiffResult{}, &client.Error{Code: "forbidden", Message: "this server is pinned to session " + id + "; it compares only with its own history and its parent"}
		}
	}
	req := client.DiffRequest{To: client.DiffSide{Session: id, At: client.At(in.To)}, Path: in.Path}
	switch {
	case in.FromSession != "":
		req.From = &client.DiffSide{Session: in.FromSession, At: client.At(in.From)}
	case in.From != "":
		req.From = &client.DiffSide{Session: id, At: client.At(in.From)}
	}
	r, err := s.c.Diff(ctx, req)
	if err != nil {
		return "", DiffResult{}, err
	}
	out := DiffResult{From: r.From, To: r.To, Counts: r.Counts, Truncated: r.Truncated, Added: []string{}, Modified: []string{}, Deleted: []string{}, Renamed: []string{}}
	var b strings.Builder
	fmt.Fprintf(&b, "%s@%d -> %s@%d: %d added, %d modified, %d deleted, %d renamed\n", r.From.Session, r.From.Position, r.To.Session, r.To.Position,
		r.Counts.Added, r.Counts.Modified, r.Counts.Deleted, r.Counts.Renamed)
	var texts []string // files whose unified diff to show
	for _, e := range r.Added {
		out.Added = append(out.Added, e.Path)
		fmt.Fprintf(&b, "A %s\n", e.Path)
		if e.Kind == "file" {
			texts = append(texts, e.Path)
		}
	}
	for _, e := range r.Modified {
		out.Modified = append(out.Modified, e.Path)
		fmt.Fprintf(&b, "M %s\n", e.Path)
		if e.Kind == "file" {
			texts = append(texts, e.Path)
		}
	}
	for _, e := range r.Deleted {
		out.Deleted = append(out.Deleted, e.Path)
		fmt.Fprintf(&b, "D %s\n", e.Path)
	}
	for _, e := range r.Renamed {
		out.Renamed = append(out.Renamed, e.From+" -> "+e.To)
		fmt.Fprintf(&b, "R %s -> %s\n", e.From, e.To)
	}
	if r.Truncated {
		b.WriteString("(list cut: more changes than one reply holds)\n")
	}
	if in.Path != "" {
		out.Unified = r.Unified
	} else {
		out.Unified, err = s.unified(ctx, req, r, texts)
		if err != nil {
			return "", DiffResult{}, err
		}
	}
	if out.Unified != "" {
		b.WriteString("\n" + out.Unified)
	}
	return b.String(), out, nil
}

// unified gathers the unified diffs of changed text files, pinned to the
// positions the diff resolved, up to maxUnified bytes.
func (s *Server) unified(ctx context.Context, req client.DiffRequest, r client.DiffReply, paths []string) (string, error) {
	var b strings.Builder
	req.To.At = client.AtPosition(r.To.Position)
	if req.From != nil {
		req.From.At = client.AtPosition(r.From.Position)
	}
	for i, p := range paths {
		if i == maxUnifiedFiles || b.Len() >= maxUnified {
			fmt.Fprintf(&b, "(unified diff of %d more files not shown: call diff with path)\n", len(paths)-i)
			break
		}
		req.Path = p
		d, err := s.c.Diff(ctx, req)
		if err != nil {
			return "", err
		}
		b.WriteString(d.Unified)
	}
	return b.String(), nil
}

func (s *Server) events(ctx context.Context, _ *call, in EventsArgs) (string, EventsResult, error) {
	id, err := s.session(in.Session)
	if err != nil {
		return "", EventsResult{}, err
	}
	limit := in.Limit
	if limit <= 0 {
		limit = defaultEvents
	}
	limit = min(limit, maxEvents)
	// Pages run forward from the start; keep the last limit.
	var last []client.EventView
	req := client.EventsRequest{Session: id, Types: in.Types, Limit: client.MaxEventsLimit}
	for {
		r, err := s.c.Events(ctx, req)
		if err != nil {
			return "", EventsResult{}, err
		}
		last = append(last, r.Events...)
		if len(last) > limit {
			last = last[len(last)-limit:]
		}
		if r.NextFrom == 0 {
			break
		}
		req.From = r.NextFrom
	}
	out := EventsResult{Events: []EventOut{}}
	var b strings.Builder
	for _, e := range last {
		eo := EventOut{Position: e.Position, Type: e.Type, Actor: e.Actor, Time: e.Time, Root: e.Root}
		for _, op := range e.Ops {
			eo.Paths = append(eo.Paths, op.Path)
		}
		out.Events = append(out.Events, eo)
		fmt.Fprintf(&b, "%d %s %s %s", e.Position, e.Time.UTC().Format(time.RFC3339), e.Actor, e.Type)
		if e.Summary != "" {
			b.WriteString(": " + e.Summary) // the event's one line, as strand events shows it
		}
		b.WriteString("\n")
	}
	return b.String(), out, nil
}
