package main

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/workers"
)

// TestRetention_Clock runs the retention worker, as `strand worker
// retention` wires it, on a clock the test moves: against a served
// instance, a session counts as idle only once the clock says it has been
// for the policy's time, and an archived one goes only once it has been
// archived that long. No test waits for an hour to pass.
func TestRetention_Clock(t *testing.T) {
	t.Parallel()
	srv := startServe(t, t.TempDir())
	cl := srv.Client(t)
	ctx := t.Context()
	for range 2 {
		if _, err := cl.CreateSession(ctx, client.CreateSessionRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	nc, err := nats.Connect(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	count := func(status string) int {
		r, err := cl.ListSessions(ctx, client.ListSessionsRequest{Status: status})
		if err != nil {
			return -1
		}
		return len(r.Sessions)
	}
	waitFor(t, "two active sessions in the views", func() bool { return count("active") == 2 })

	now := time.Now()
	ret := &workers.Retention{API: clientSessions{nc: nc, actor: "strand-retention"}, Now: func() time.Time { return now }}
	policy := workers.RetentionPolicy{Idle: time.Hour, DeleteAfter: 24 * time.Hour}
	for _, s := range []struct {
		step              string
		advance           time.Duration
		archived, deleted int
	}{
		{"just created", 0, 0, 0},
		{"idle for 59 minutes", 59 * time.Minute, 0, 0},
		{"idle for 2 hours", 61 * time.Minute, 2, 0},
		{"archived for 23 hours", 21 * time.Hour, 0, 0},
		{"archived for 25 hours", 2 * time.Hour, 0, 2},
	} {
		now = now.Add(s.advance)
		rep, err := ret.Run(ctx, "default", policy)
		if err != nil {
			t.Fatalf("%s: %v", s.step, err)
		}
		if len(rep.Archived) != s.archived || len(rep.Deleted) != s.deleted || len(rep.Skipped) != 0 {
			t.Errorf("%s: archived %d, deleted %d, skipped %v; want archived %d, deleted %d", s.step, len(rep.Archived), len(rep.Deleted), rep.Skipped, s.archived, s.deleted)
		}
		if s.archived > 0 {
			waitFor(t, "two archived sessions in the views", func() bool { return count("archived") == s.archived })
		}
	}
}
