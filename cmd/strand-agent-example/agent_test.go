package main

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/handlers"
	"github.com/strand-dev/strand/names"
	"github.com/strand-dev/strand/projections"
	"github.com/strand-dev/strand/streams/streamstest"
	"github.com/strand-dev/strand/workers"
)

// TestAgent_EndToEnd runs the example agent against a real service with a
// reviewer: a worker on the review queue (the items the session-views
// projection emits) that grants requests of group "default" and denies
// those of group "legal".
func TestAgent_EndToEnd(t *testing.T) {
	env := streamstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	js := env.Store.JetStream()

	views, err := projections.OpenSessions(ctx, js, names.EventStream, names.AllEvents, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	views.EmitWork(projections.WorkConfig{Stream: names.WorkStream, Subject: names.WorkSubject})
	if err := views.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(views.Stop)
	svc := handlers.NewService(env.Store, handlers.Options{})
	if err := svc.Start(env.NC); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	if err := env.NC.Flush(); err != nil {
		t.Fatal(err)
	}

	owner := client.NewClient(env.NC, "acme")
	owner.Actor = "owner"
	// Commits need one grant in this tenant.
	if _, err := owner.SetPolicy(ctx, client.PolicyRequest{Policy: domain.Policy{"commit": 1}}); err != nil {
		t.Fatal(err)
	}
	base, err := owner.CreateSession(ctx, client.CreateSessionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := owner.Write(ctx, client.WriteRequest{Session: base.Session.ID, Path: "README.md", Content: []byte("baseline\n")}); err != nil {
		t.Fatal(err)
	}

	// The reviewer takes review items, checks that the request still waits
	// (an item outlives its request), and decides.
	reviewer := client.NewClient(env.NC, "acme")
	reviewer.Actor = "alice"
	var reviewed sync.Map
	rw, err := workers.Start(ctx, js, workers.Config{Name: "reviewers_acme", Stream: names.WorkStream,
		Filter: names.WorkSubject("acme", "review", ">")}, func(ctx context.Context, it *workers.Item) error {
		var item projections.ReviewItem
		if err := json.Unmarshal(it.Data, &item); err != nil {
			return workers.Permanent(err)
		}
		r, err := reviewer.Pending(ctx, client.PendingRequest{Session: item.Session})
		if err != nil {
			return err
		}
		for _, q := range r.Requests {
			if q.ID != item.Request {
				continue
			}
			reviewed.Store(item.Request, item.Group)
			d := client.DecideRequest{Session: item.Session, Request: item.Request, Comment: "looked at it"}
			if item.Group == "legal" {
				_, err = reviewer.Deny(ctx, d)
			} else {
				_, err = reviewer.Grant(ctx, d)
			}
			return err
		}
		return nil // decided already: nothing to do
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rw.Stop)

	outcomes := make(chan Outcome, 4)
	ready := make(chan struct{})
	agentCtx, stopAgent := context.WithCancel(ctx)
	var stdout, stderr bytes.Buffer
	exited := make(chan int, 1)
	go func() {
		exited <- run(agentCtx, []string{"--server", env.Server.ClientURL(), "--tenant", "acme", "--poll", "20ms", "--cache", t.TempDir()},
			&stdout, &stderr, func(o Outcome) { outcomes <- o }, func() { close(ready) })
	}()
	select {
	case <-ready:
	case code := <-exited:
		t.Fatalf("agent exited with %d: %s", code, stderr.String())
	}

	for _, task := range []Task{
		{ID: "t1", Baseline: base.Session.ID, Message: "task one",
			Command: []string{"sh", "-c", `test -n "$STRAND_SESSION" && mkdir src && echo 'package main' > src/main.go && echo more >> README.md`}},
		{ID: "t2", Baseline: base.Session.ID, Command: []string{"sh", "-c", "echo none > LICENSE"}, Message: "task two", Group: "legal"},
		{ID: "t3", Baseline: base.Session.ID, Command: []string{"sh", "-c", "echo half-done > notes.txt; exit 4"}, Message: "task three"},
	} {
		body, _ := json.Marshal(task)
		if _, err := workers.Enqueue(ctx, js, TaskSubject("acme"), body, "task-"+task.ID); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]Outcome{}
	for len(got) < 3 {
		select {
		case o := <-outcomes:
			got[o.Task] = o
		case <-ctx.Done():
			t.Fatalf("outcomes %v after 60s; agent log:\n%s", got, stderr.String())
		}
	}
	stopAgent()
	if code := <-exited; code != 0 {
		t.Errorf("agent exit %d", code)
	}

	o := got["t1"]
	if o.State != "committed" || o.Commit == "" {
		t.Fatalf("t1: %+v, want committed", o)
	}
	cm, err := owner.GetCommit(ctx, client.CommitGetRequest{Session: o.Session, Commit: o.Commit})
	if err != nil {
		t.Fatal(err)
	}
	if len(cm.Commit.Approvals) != 1 || cm.Commit.Approvals[0] != o.Request || cm.Commit.Summary == nil || cm.Commit.Summary.Added != 1 || cm.Commit.Summary.Modified != 1 {
		t.Errorf("commit %+v: want it authorised by %s and summarising 1 added, 1 modified", cm.Commit, o.Request)
	}
	data, _, err := owner.ReadAll(ctx, o.Session, "README.md", "agent-done")
	if err != nil || string(data) != "baseline\nmore\n" {
		t.Errorf("README.md at checkpoint agent-done: %q %v", data, err)
	}
	if g, ok := reviewed.Load(o.Request); !ok || g != "default" {
		t.Errorf("reviewer saw %v for %s, want it reviewed in group default", g, o.Request)
	}
	if d := got["t2"]; d.State != domain.ApprovalDeniedState || d.Commit != "" {
		t.Errorf("t2: %+v, want denied and no commit", d)
	}
	// t3's command failed: no approval asked, the attempt kept in its fork
	// with a failing health report, the baseline untouched.
	f := got["t3"]
	if f.State != "failed" || f.ExitCode != 4 || f.Request != "" {
		t.Errorf("t3: %+v, want failed with exit 4 and no request", f)
	}
	if data, _, err := owner.ReadAll(ctx, f.Session, "notes.txt", ""); err != nil || string(data) != "half-done\n" {
		t.Errorf("t3's fork: notes.txt %q %v", data, err)
	}
	if h, err := owner.Health(ctx, client.HealthRequest{Session: f.Session}); err != nil || h.Health == nil || h.Health.Passing {
		t.Errorf("t3's health: %+v %v, want failing", h.Health, err)
	}
	if _, _, err := owner.ReadAll(ctx, base.Session.ID, "notes.txt", ""); client.ErrorCode(err) != domain.CodeNotFound {
		t.Errorf("baseline after a failed task: notes.txt %v, want not_found", err)
	}
	// The tasks and the review items are all taken.
	s, _ := js.Stream(ctx, names.WorkStream)
	for _, subj := range []string{TaskSubject("acme"), names.WorkSubject("acme", "review", ">")} {
		info, err := s.Info(ctx, jetstreamFilter(subj))
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs != 0 {
			t.Errorf("%d items left on %s, want 0", info.State.Msgs, subj)
		}
	}
}

func jetstreamFilter(subj string) jetstream.StreamInfoOpt { return jetstream.WithSubjectFilter(subj) }
