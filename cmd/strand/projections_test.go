package main

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/streams"
	"github.com/strand-dev/strand/workers"
)

// TestServe_ReadModelsAndWorkers drives the projections, the activity feed
// and the built-in workers of a real `strand serve` through the CLI and the
// Go client.
func TestServe_ReadModelsAndWorkers(t *testing.T) {
	t.Parallel()
	s := startServe(t, t.TempDir())
	c := newCLI(t, s.URL)
	cl := s.Client(t)
	ctx := context.Background()

	var ids []string
	for i, team := range []string{"red", "blue", "red"} {
		r, err := cl.CreateSession(ctx, client.CreateSessionRequest{Owner: []string{"ann", "bob"}[i%2], Tags: map[string]string{"team": team}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.Session.ID)
	}
	if _, err := cl.Write(ctx, client.WriteRequest{Session: ids[0], Path: "a.txt", Content: []byte("one\ntwo\n")}); err != nil {
		t.Fatal(err)
	}

	t.Run("ListSortAndCounts", func(t *testing.T) {
		var r client.ListSessionsReply
		waitFor(t, "three sessions listed", func() bool {
			var err error
			r, err = cl.ListSessions(ctx, client.ListSessionsRequest{Sort: "updated", Order: "desc", Counts: true, Limit: 2})
			return err == nil && r.Counts["active"] == 3 && len(r.Sessions) > 0 && r.Sessions[0].Version == 2
		})
		if len(r.Sessions) != 2 || r.Sessions[0].ID != ids[0] || r.NextCursor == "" {
			t.Fatalf("page 1 by update, newest first: %+v, want %s (written last) first and a cursor", r, ids[0])
		}
		next, err := cl.ListSessions(ctx, client.ListSessionsRequest{Sort: "updated", Order: "desc", Limit: 2, Cursor: r.NextCursor})
		if err != nil || len(next.Sessions) != 1 || next.NextCursor != "" {
			t.Fatalf("page 2: %+v %v, want the last session and no cursor", next, err)
		}
		red, err := cl.ListSessions(ctx, client.ListSessionsRequest{Tags: map[string]string{"team": "red"}, Counts: true})
		if err != nil || len(red.Sessions) != 2 || red.Counts["active"] != 2 {
			t.Fatalf("team=red: %+v %v, want 2 sessions and counts {active: 2}", red, err)
		}
		_, err = cl.ListSessions(ctx, client.ListSessionsRequest{Sort: "size"})
		if client.ErrorCode(err) != "invalid_argument" {
			t.Fatalf("sort=size: err %v, want invalid_argument", err)
		}
	})

	t.Run("ActivityFeed", func(t *testing.T) {
		var r client.ActivityReply
		waitFor(t, "four events in the feed", func() bool {
			c.okJSON(&r, "activity", "--limit", "3")
			return len(r.Entries) == 3 && r.NextBefore != 0
		})
		if e := r.Entries[0]; e.Type != "FileWritten" || e.Session != ids[0] || e.Actor == "" || len(e.Paths) != 1 {
			t.Errorf("newest entry %+v, want the write of a.txt in %s", e, ids[0])
		}
		var rest client.ActivityReply
		c.okJSON(&rest, "activity", "--before", strconv.FormatUint(r.NextBefore, 10))
		if len(rest.Entries) != 1 || rest.Entries[0].Type != "SessionCreated" {
			t.Errorf("older page: %+v, want the first creation", rest)
		}
		if out := c.ok("activity"); !strings.Contains(out, "FileWritten") || !strings.Contains(out, ids[0]) {
			t.Errorf("activity table:\n%s", out)
		}
	})

	t.Run("SummaryPrecomputed", func(t *testing.T) {
		req, err := cl.RequestApproval(ctx, client.ApprovalRequestRequest{Session: ids[0], Reason: "commit"})
		if err != nil {
			t.Fatal(err)
		}
		nc, err := nats.Connect(s.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		kv, err := streams.EnsureBucket(ctx, js, workers.SummaryBucketConfig(1))
		if err != nil {
			t.Fatal(err)
		}
		sums := workers.NewSummaries(kv)
		var got *workers.CachedSummary
		waitFor(t, "the summary worker to fill the cache", func() bool {
			got, err = sums.Get(ctx, "default", ids[0], req.Request.Root)
			return err == nil && got != nil
		})
		want, err := cl.Summary(ctx, client.SummaryRequest{Session: ids[0]})
		if err != nil {
			t.Fatal(err)
		}
		if got.Summary.Added != want.Summary.Added || got.Summary.LinesAdded != want.Summary.LinesAdded || got.BaseRoot != want.BaseRoot {
			t.Errorf("cached summary %+v, want commit.summary's %+v", got, want)
		}
	})

	t.Run("StatusAndRebuild", func(t *testing.T) {
		var st client.ProjectionsReply
		// Caught up and idle: each waits in a pull (a moment after catching
		// up it may still be between two paced pulls).
		waitFor(t, "projections caught up", func() bool {
			c.okJSON(&st, "projections", "status")
			for _, p := range st.Projections {
				if p.Lag != 0 || p.Position != p.StreamLast || p.Waiting == 0 {
					return false
				}
			}
			return len(st.Projections) == 3
		})
		if st.Projections[0].Name != "sessions" || st.Projections[1].Name != "activity" || st.Projections[2].Name != "stats" {
			t.Fatalf("status %+v, want sessions, activity and stats with a pulling instance", st)
		}
		for _, p := range st.Projections {
			if p.Holder == "" || time.Since(p.Renewed) > 10*time.Second {
				t.Fatalf("status of %s: folded by %q, renewed %v; want the running instance, renewing", p.Name, p.Holder, p.Renewed)
			}
		}
		before, err := cl.ListSessions(ctx, client.ListSessionsRequest{Counts: true})
		if err != nil {
			t.Fatal(err)
		}
		var rb client.ProjectionsReply
		c.okJSON(&rb, "projections", "rebuild", "sessions")
		if p := rb.Projections[0]; p.Generation != 1 || p.State != "running" || p.Consumer != "strand_proj_sessions_g1_ackall" {
			t.Fatalf("after rebuild: %+v", p)
		}
		after, err := cl.ListSessions(ctx, client.ListSessionsRequest{Counts: true})
		if err != nil {
			t.Fatal(err)
		}
		if a, b := asJSONString(after), asJSONString(before); a != b {
			t.Errorf("list after rebuild:\n%s\nbefore:\n%s", a, b)
		}
		if r := c.run("", "projections", "rebuild", "nope"); r.Code != 2 || !strings.Contains(r.Stderr, "sessions, activity, stats") {
			t.Errorf("%v\nwant exit 2 naming the projections", r)
		}
	})

	t.Run("RetentionOnce", func(t *testing.T) {
		// The first session waits for a review (pending_approval): only
		// active sessions are archived.
		out := c.ok("worker", "retention", "--once", "--dry-run", "--retention-idle", "1ns")
		if !strings.Contains(out, "would archive 2") {
			t.Fatalf("dry run:\n%s", out)
		}
		if r, _ := cl.ListSessions(ctx, client.ListSessionsRequest{Status: "archived"}); len(r.Sessions) != 0 {
			t.Fatalf("a dry run archived %d sessions", len(r.Sessions))
		}
		out = c.ok("worker", "retention", "--once", "--retention-idle", "1ns")
		if !strings.Contains(out, "archived 2") {
			t.Fatalf("retention:\n%s", out)
		}
		waitFor(t, "two archived", func() bool {
			r, err := cl.ListSessions(ctx, client.ListSessionsRequest{Status: "archived"})
			return err == nil && len(r.Sessions) == 2
		})
		// Deleting archived sessions goes through the delete policy like
		// anyone's delete.
		out = c.ok("worker", "retention", "--once", "--retention-delete-after", "1ns")
		if !strings.Contains(out, "deleted 2") {
			t.Fatalf("retention delete:\n%s", out)
		}
		out = c.ok("worker", "gc", "--once", "--dry-run")
		if !strings.Contains(out, "gc: ") || !strings.Contains(out, "[dry run]") {
			t.Errorf("gc dry run:\n%s", out)
		}
	})
}

func asJSONString(r client.ListSessionsReply) string {
	var b strings.Builder
	for _, s := range r.Sessions {
		b.WriteString(s.ID + " " + s.Status + " " + s.UpdatedAt.Format(time.RFC3339Nano) + " " + s.Root + "\n")
	}
	for _, k := range []string{"active", "pending_approval", "archived", "deleted"} {
		b.WriteString(k + "=" + strconv.Itoa(r.Counts[k]) + " ")
	}
	return b.String()
}
