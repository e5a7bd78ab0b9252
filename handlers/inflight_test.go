package handlers_test

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/handlers"
	"github.com/strand-dev/strand/streams"
	"github.com/strand-dev/strand/streams/streamstest"
)

// restartable is an embedded NATS server that a test stops and starts
// again on the same port and data, with a service on it.
type restartable struct {
	t    *testing.T
	dir  string
	host string
	srv  *streams.Embedded
	// conns are the connections dial made.
	conns []*nats.Conn
}

func startRestartable(t *testing.T) *restartable {
	t.Helper()
	r := &restartable{t: t, dir: t.TempDir()}
	srv, err := streams.StartEmbedded(streams.EmbeddedOptions{DataDir: r.dir, Listen: "127.0.0.1:-1"})
	if err != nil {
		t.Fatal(err)
	}
	r.srv = srv
	t.Cleanup(func() { r.srv.Shutdown() })
	u, err := url.Parse(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	r.host = u.Host
	return r
}

// dial connects with reconnects forever, every 50 ms, plus opts.
func (r *restartable) dial(opts ...nats.Option) *nats.Conn {
	r.t.Helper()
	nc, err := nats.Connect("nats://"+r.host, append([]nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(50 * time.Millisecond)}, opts...)...)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(nc.Close)
	r.conns = append(r.conns, nc)
	return nc
}

// down waits until every connection dial made has lost the server.
func (r *restartable) down() {
	r.t.Helper()
	streamstest.Wait(r.t, 10*time.Second, "every connection to notice the server is gone", func() bool {
		for _, nc := range r.conns {
			if nc.IsConnected() {
				return false
			}
		}
		return true
	})
}

// serve starts a service instance on its own connection.
func (r *restartable) serve(timeout time.Duration) {
	r.t.Helper()
	snc := r.dial()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := streams.Open(ctx, snc, streams.Config{}, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(st.Close)
	svc := handlers.NewService(st, handlers.Options{Timeout: timeout})
	if err := svc.Start(snc); err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { _ = svc.Stop() })
	if err := snc.Flush(); err != nil {
		r.t.Fatal(err)
	}
}

// stop shuts the server down; start starts it again on the same port and
// data.
func (r *restartable) stop() { r.srv.Shutdown() }

func (r *restartable) start() {
	r.t.Helper()
	srv, err := streams.StartEmbedded(streams.EmbeddedOptions{DataDir: r.dir, Listen: r.host})
	if err != nil {
		r.t.Fatalf("restart the server on %s: %v", r.host, err)
	}
	r.srv = srv
}

// writeUntilAnswered sends a write, with its request id, until it is
// answered (each attempt bounded to 3 s), for up to 60 s.
func writeUntilAnswered(t *testing.T, c *client.Client, req client.WriteRequest) client.ChangeReply {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		got, err := c.Write(ctx, req)
		cancel()
		if err == nil {
			return got
		}
		if code := client.ErrorCode(err); code != domain.CodeUnavailable || time.Now().After(deadline) {
			t.Fatalf("write %s: %v, want an answer (unavailable while the server restarts)", req.RequestID, err)
		}
	}
}

// TestService_InFlightRequestsAcrossRestart keeps eight writers busy while
// the NATS server under the service is stopped and started again on the
// same port and data. Every request in flight ends cleanly: it is answered,
// or the client's attempt ends at its timeout as unavailable (never
// another error, never later than the timeout). Retried with its request
// id, each unanswered write is then answered; afterwards every answered
// write is in the history exactly once at the position its reply gave,
// no request is stored twice, and every stored write's content reads back
// (no event without its content: nothing half-applied).
func TestService_InFlightRequestsAcrossRestart(t *testing.T) {
	t.Parallel()
	r := startRestartable(t)
	r.serve(2 * time.Second)
	setup := client.NewClient(r.dial(), "acme")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := setup.CreateSession(ctx, client.CreateSessionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	session := s.Session.ID

	const writers, attempt = 8, 1500 * time.Millisecond
	// content of write n of writer w: large ones go through the blob
	// store before their event, small ones ride in it.
	content := func(w, n int) []byte {
		b := []byte(fmt.Sprintf("w%d-%d;", w, n))
		if n%2 == 0 {
			b = bytes.Repeat(b, 8<<10/len(b)+1)
		}
		return b
	}
	type result struct {
		req      client.WriteRequest
		pos      uint64
		answered bool
	}
	var (
		mu          sync.Mutex
		results     []*result
		afterWrites = map[int]int{} // writes answered since the restart, per writer
		restarted   bool
		problems    []string
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range writers {
		c := client.NewClient(r.dial(), "acme")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				res := &result{req: client.WriteRequest{Mutation: client.Mutation{RequestID: fmt.Sprintf("w%d-%d", w, n)},
					Session: session, Path: fmt.Sprintf("w%d/%d", w, n), Content: content(w, n)}}
				actx, acancel := context.WithTimeout(context.Background(), attempt)
				began := time.Now()
				got, err := c.Write(actx, res.req)
				took := time.Since(began)
				acancel()
				mu.Lock()
				switch {
				case err == nil:
					res.pos, res.answered = got.Position, true
					if restarted {
						afterWrites[w]++
					}
				case client.ErrorCode(err) != domain.CodeUnavailable:
					problems = append(problems, fmt.Sprintf("%s: %v, want an answer or unavailable", res.req.RequestID, err))
				}
				if took > attempt+time.Second {
					problems = append(problems, fmt.Sprintf("%s: ended after %v, want at most its %v timeout (+1s)", res.req.RequestID, took, attempt))
				}
				results = append(results, res)
				mu.Unlock()
			}
		}()
	}
	// Let the writers get going, then pull the server from under them.
	streamstest.Wait(t, 30*time.Second, "writes before the restart", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(results) >= 4*writers
	})
	// The fault: the server stays down until the service and every
	// writer have lost it, with requests in flight.
	r.stop()
	r.down()
	r.start()
	mu.Lock()
	restarted = true
	mu.Unlock()
	streamstest.Wait(t, 60*time.Second, "every writer answered again after the restart", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for w := range writers {
			if afterWrites[w] < 3 {
				return false
			}
		}
		return true
	})
	close(stop)
	wg.Wait()
	for _, p := range problems {
		t.Error(p)
	}

	// Each unanswered write, retried with its request id, is answered:
	// as replayed if its first attempt was stored.
	unanswered := 0
	for _, res := range results {
		if !res.answered {
			unanswered++
			res.pos, res.answered = writeUntilAnswered(t, setup, res.req).Position, true
		}
	}
	t.Logf("%d writes, %d of them unanswered at first (retried)", len(results), unanswered)

	byRequest := map[string]client.EventView{}
	for from := uint64(0); ; {
		page, err := setup.Events(ctx, client.EventsRequest{Session: session, From: from, Limit: client.MaxEventsLimit})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Events {
			if e.RequestID == "" {
				continue
			}
			if prev, ok := byRequest[e.RequestID]; ok {
				t.Errorf("request %s stored twice: at %d and %d", e.RequestID, prev.Position, e.Position)
			}
			byRequest[e.RequestID] = e
		}
		if page.NextFrom == 0 {
			break
		}
		from = page.NextFrom
	}
	for _, res := range results {
		e, ok := byRequest[res.req.RequestID]
		if !ok {
			t.Errorf("write %s answered at %d is not in the history", res.req.RequestID, res.pos)
			continue
		}
		if e.Position != res.pos {
			t.Errorf("write %s answered at %d, stored at %d", res.req.RequestID, res.pos, e.Position)
		}
		data, _, err := setup.ReadAll(ctx, session, res.req.Path, client.AtPosition(e.Position))
		if err != nil || !bytes.Equal(data, res.req.Content) {
			t.Errorf("read %s at %d: %d bytes, %v; want its %d bytes", res.req.Path, e.Position, len(data), err, len(res.req.Content))
		}
	}
	if len(byRequest) != len(results) {
		t.Errorf("%d writes stored, %d sent", len(byRequest), len(results))
	}
}
