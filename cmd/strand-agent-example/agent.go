package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
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
	// Files are written into the fork: path → content.
	Files map[string]string `json:"files"`
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
	// State is committed or denied.
	State  string `json:"state"`
	Commit string `json:"commit,omitempty"`
}

// Agent does tasks: fork, write, checkpoint, ask for approval, wait, commit.
type Agent struct {
	Client *client.Client
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
	if err := json.Unmarshal(it.Data, &t); err != nil || t.ID == "" || t.Baseline == "" || t.Message == "" {
		return workers.Permanent(fmt.Errorf("task: want JSON with id, baseline and message (%v)", err))
	}
	log := a.Log.With("task", t.ID)
	c := a.Client

	fork, err := c.Fork(ctx, client.ForkRequest{Mutation: a.rid(t, "fork"), Session: t.Baseline, At: client.At(t.At),
		Tags: map[string]string{"task": t.ID}})
	if err != nil {
		return permanentIf(err, domain.CodeNotFound, domain.CodeInvalidArgument)
	}
	s := fork.Session.ID
	log.Info("forked", "baseline", t.Baseline, "session", s)

	paths := make([]string, 0, len(t.Files))
	for p := range t.Files {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for i, p := range paths {
		if _, err := c.Write(ctx, client.WriteRequest{Mutation: a.rid(t, fmt.Sprint("write-", i)), Session: s, Path: p, Content: []byte(t.Files[p])}); err != nil {
			return permanentIf(err, domain.CodeInvalidArgument, domain.CodeTooLarge)
		}
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
	out := Outcome{Task: t.ID, Session: s, Request: id, State: state}
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
