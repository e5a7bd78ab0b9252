package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/contentcache"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/workcopy"
	"github.com/strand-dev/strand/workers"
)

// Task is the JSON body of a task item on strand.work.<tenant>.tasks.
type Task struct {
	// ID names the task; the agent derives its request ids from it, so a
	// task delivered again (the agent died half-way) continues where it
	// stopped instead of starting over.
	ID string `json:"id"`
	// Baseline is the session to fork, at At (a position or checkpoint;
	// empty: its head).
	Baseline string `json:"baseline"`
	At       string `json:"at,omitempty"`
	// Command is what the agent runs in a working copy of the fork, with
	// its arguments (strand run does the same): whatever it changes is
	// pushed as one event. A command that exits non-zero fails the task
	// (its fork keeps the attempt and a failing health report).
	Command []string `json:"command"`
	// Message is the commit message.
	Message string `json:"message"`
	// Group is the reviewer group asked for approval (default "default").
	Group string `json:"group,omitempty"`
}

// Outcome is what the agent did with a task.
type Outcome struct {
	Task    string `json:"task"`
	Session string `json:"session"`
	Request string `json:"request"`
	// State is committed, denied or failed (the command exited non-zero).
	State  string `json:"state"`
	Commit string `json:"commit,omitempty"`
	// ExitCode is the command's.
	ExitCode int `json:"exit_code"`
}

// Agent does tasks: fork, run the task's command in a working copy (the
// code of strand run), checkpoint, ask for approval, wait, commit.
type Agent struct {
	Client *client.Client
	// Cache is the machine's content cache (nil: none).
	Cache *contentcache.Cache
	// Server is the NATS URL the command sees as STRAND_SERVER.
	Server string
	// Poll is how often it looks at the request while it waits.
	Poll time.Duration
	Log  *slog.Logger
	// Done, when set, hears every outcome.
	Done func(Outcome)
}

func (a *Agent) rid(t Task, step string) client.Mutation {
	return client.Mutation{RequestID: "task-" + t.ID + "-" + step}
}

// Handle is the agent's worker handler.
func (a *Agent) Handle(ctx context.Context, it *workers.Item) error {
	var t Task
	if err := json.Unmarshal(it.Data, &t); err != nil || t.ID == "" || t.Baseline == "" || t.Message == "" || len(t.Command) == 0 {
		return workers.Permanent(fmt.Errorf("task: want JSON with id, baseline, command and message (%v)", err))
	}
	log := a.Log.With("task", t.ID)
	c := a.Client

	// Fork, checkpoint, check out, run, push, report health: strand run.
	// The fork's request id comes from the task, so a task delivered again
	// works on the same fork.
	var output bytes.Buffer
	run, err := workcopy.Run(ctx, c, a.Cache, workcopy.RunOptions{
		Session: t.Baseline, Fork: true, ForkAt: client.At(t.At), ForkRequestID: "task-" + t.ID + "-fork", Tag: t.ID,
		Command: t.Command, Server: a.Server, Stdout: &output, Stderr: &output,
	})
	if err != nil {
		return permanentIf(err, domain.CodeNotFound, domain.CodeInvalidArgument, domain.CodeTooLarge)
	}
	s := run.Session
	log.Info("ran", "baseline", t.Baseline, "session", s, "exit", run.ExitCode, "changes", run.Changes, "output", tail(output.String(), 400))
	if run.ExitCode != 0 {
		out := Outcome{Task: t.ID, Session: s, State: "failed", ExitCode: run.ExitCode}
		if a.Done != nil {
			a.Done(out)
		}
		return nil // the fork and its health report say what happened
	}
	if _, err := c.CreateCheckpoint(ctx, client.CheckpointRequest{Mutation: a.rid(t, "checkpoint"), Session: s, Name: "agent-done",
		Note: "files of task " + t.ID}); err != nil {
		return err
	}
	req, err := c.RequestApproval(ctx, client.ApprovalRequestRequest{Mutation: a.rid(t, "approval"), Session: s, Reason: "commit", Group: t.Group})
	if err != nil {
		return err
	}
	id := req.Request.ID
	log.Info("approval requested", "session", s, "request", id)

	state, err := a.wait(ctx, s, id)
	if err != nil {
		return err
	}
	out := Outcome{Task: t.ID, Session: s, Request: id, State: state, ExitCode: run.ExitCode}
	switch state {
	case domain.ApprovalGrantedState:
		cm, err := c.CreateCommit(ctx, client.CommitRequest{Mutation: a.rid(t, "commit"), Session: s, Message: t.Message})
		if err != nil {
			return err
		}
		out.State, out.Commit = "committed", cm.Commit.ID
		log.Info("committed", "session", s, "commit", cm.Commit.ID)
	case domain.ApprovalUsedState:
		out.State = "committed" // a redelivered task whose commit is in already
	case domain.ApprovalDeniedState:
		log.Info("denied", "session", s, "request", id)
	default:
		// Stale: the content moved after the request, which only another
		// writer can have done. Nothing this task can stand behind.
		return workers.Permanent(fmt.Errorf("request %s is %s", id, state))
	}
	if a.Done != nil {
		a.Done(out)
	}
	return nil
}

// wait polls the request's state (review.pending for the session, with
// decided ones) until it is no longer pending.
func (a *Agent) wait(ctx context.Context, session, id string) (string, error) {
	poll := a.Poll
	if poll <= 0 {
		poll = time.Second
	}
	for {
		r, err := a.Client.Pending(ctx, client.PendingRequest{Session: session, All: true})
		if err != nil {
			return "", err
		}
		for _, q := range r.Requests {
			if q.ID == id && q.State != domain.ApprovalPending {
				return q.State, nil
			}
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err() // shutdown: the item goes back and the wait resumes elsewhere
		case <-time.After(poll):
		}
	}
}

// permanentIf makes errors with the given codes permanent: retrying a bad
// task cannot help.
func permanentIf(err error, codes ...domain.Code) error {
	var ce *client.Error
	if errors.As(err, &ce) && slices.Contains(codes, ce.Code) {
		return workers.Permanent(err)
	}
	return err
}

// tail is the end of s, at most n bytes.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
