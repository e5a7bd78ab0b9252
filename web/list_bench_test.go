package web_test

import (
	"context"
	crand "crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/names"
	"github.com/strand-dev/strand/projections"
	"github.com/strand-dev/strand/streams/streamstest"
)

// BenchmarkApp_SessionsPage renders the sessions page among 100,000
// sessions of one tenant: the first page, a page from the middle (by the
// cursor), and a filtered page, each next to the session.list request it
// makes (the floor: the app cannot be faster than its one request). The
// views are written straight into the views bucket (what the projection
// writes), then the read model loads them as on a restart.
//
//	go test ./web -run '^$' -bench App_SessionsPage -benchtime 200x
func BenchmarkApp_SessionsPage(b *testing.B) {
	const n = 100_000
	h := start(b)
	ctx := context.Background()
	writeViews(b, h.env.Store.JetStream(), n)
	alice := h.clients["alice"]
	// Wait until the read model has loaded every view.
	var mid string
	streamstest.Wait(b, 2*time.Minute, "the read model holds every view", func() bool {
		l, err := alice.ListSessions(ctx, client.ListSessionsRequest{Limit: client.MaxListLimit, Counts: true})
		total := 0
		for _, c := range l.Counts {
			total += c
		}
		return err == nil && total >= n
	})
	// A cursor from the middle of the list, sorted as the page sorts.
	req := client.ListSessionsRequest{Limit: client.MaxListLimit, Sort: "updated", Order: "desc"}
	for range n / 2 / client.MaxListLimit {
		l, err := alice.ListSessions(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		req.Cursor = l.NextCursor
	}
	mid = req.Cursor
	cases := []struct {
		name string
		q    url.Values
		list client.ListSessionsRequest
	}{
		{"first-page", url.Values{}, client.ListSessionsRequest{Limit: 50, Sort: "updated", Order: "desc", Counts: true}},
		{"deep-page", url.Values{"cursor": {mid}}, client.ListSessionsRequest{Limit: 50, Sort: "updated", Order: "desc", Counts: true, Cursor: mid}},
		{"status-and-tag", url.Values{"status": {"pending_approval"}, "tag": {"team=gold"}},
			client.ListSessionsRequest{Limit: 50, Sort: "updated", Order: "desc", Counts: true, Status: "pending_approval", Tags: map[string]string{"team": "gold"}}},
	}
	for _, c := range cases {
		b.Run(c.name+"/page", func(b *testing.B) {
			for b.Loop() {
				req, _ := http.NewRequest(http.MethodGet, h.srv.URL+"/?"+c.q.Encode(), nil)
				req.SetBasicAuth("alice", "pw-alice")
				resp, err := http.DefaultClient.Do(req)
				if err != nil || resp.StatusCode != 200 {
					b.Fatalf("GET: %v %v", err, resp)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
			}
		})
		b.Run(c.name+"/session.list", func(b *testing.B) {
			for b.Loop() {
				if _, err := alice.ListSessions(ctx, c.list); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// writeViews stores n session views of tenant acme in the views bucket.
func writeViews(b *testing.B, js jetstream.JetStream, n int) {
	rng := rand.New(rand.NewPCG(1, 2))
	entropy := ulid.Monotonic(crand.Reader, 0)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	statuses := []string{"active", "active", "active", "pending_approval", "archived"}
	var futures []jetstream.PubAckFuture
	flush := func() {
		for _, f := range futures {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				b.Fatal(err)
			}
		}
		futures = futures[:0]
	}
	for i := range n {
		c := base.Add(time.Duration(i) * time.Second)
		id := ulid.MustNew(ulid.Timestamp(c), entropy).String()
		v := projections.View{ID: id, Tenant: tenant, Status: statuses[rng.IntN(len(statuses))],
			Owner: fmt.Sprintf("user%d", rng.IntN(1000)), CreatedAt: c,
			UpdatedAt: c.Add(time.Duration(rng.IntN(86400*30)) * time.Second),
			Tags:      map[string]string{"team": []string{"red", "blue", "green", "gold"}[rng.IntN(4)]},
			Position:  uint64(i + 1), Version: 1, Root: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}
		body, err := json.Marshal(v)
		if err != nil {
			b.Fatal(err)
		}
		f, err := js.PublishAsync("$KV."+names.SessionsBucket+"."+tenant+"."+id, body)
		if err != nil {
			b.Fatal(err)
		}
		if futures = append(futures, f); len(futures) >= 4000 {
			flush()
		}
	}
	flush()
}
