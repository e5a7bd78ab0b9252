package faults_test

import (
	"context"
	"fmt"
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

// retryEnv is a set of service instances and clients on one deployment.
type retryEnv struct {
	replicas int
	clients  []*client.Client
	// conn reads the stream for the checks.
	conn  *nats.Conn
	store *streams.Store
}

// startInstance runs a service instance (a store and the micro service) on
// its own connection, stopped when the test ends.
func startInstance(t *testing.T, nc *nats.Conn, replicas int, timeout time.Duration) *streams.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := streams.Open(ctx, nc, streams.Config{Replicas: replicas}, nil)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	svc := handlers.NewService(st, handlers.Options{Timeout: timeout})
	if err := svc.Start(nc); err != nil {
		t.Fatalf("start service: %v", err)
	}
	t.Cleanup(func() {
		_ = svc.Stop()
		st.Close()
	})
	return st
}

// TestRetry_OneNode: a client that times out and retries with the same
// request_id creates nothing twice, on one embedded server (R1: a retry's
// expected sequence is checked before its message id).
func TestRetry_OneNode(t *testing.T) {
	env := streamstest.Start(t, streamstest.Options{SyncAlways: true})
	e := &retryEnv{replicas: 1, conn: env.NC, store: env.Store}
	startInstance(t, env.NC, 1, 10*time.Second)
	for range 2 {
		nc, err := env.Server.Connect()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		startInstance(t, nc, 1, 10*time.Second)
	}
	for range 3 {
		nc, err := nats.Connect(env.Server.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		e.clients = append(e.clients, client.NewClient(nc, "retry"))
	}
	runRetries(t, e)
}

// TestRetry_Cluster: the same on a three-node cluster with R3 streams and
// one service instance per node (R3: the message id is checked first, and a
// retry racing its original can be told "duplicate message id is in
// process").
func TestRetry_Cluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	c := streamstest.StartCluster(t, streamstest.ClusterOptions{SyncAlways: true})
	e := &retryEnv{replicas: 3}
	for i := range 3 {
		st := startInstance(t, c.Connect(t, i), 3, 10*time.Second)
		if i == 0 {
			e.store, e.conn = st, c.Connect(t, 0)
		}
		e.clients = append(e.clients, client.NewClient(c.Connect(t, i), "retry"))
	}
	runRetries(t, e)
}

// outcome is what one request got.
type outcome struct {
	pos     uint64
	session string
	err     error
}

func (o outcome) String() string {
	if o.err != nil {
		return "error " + string(client.ErrorCode(o.err))
	}
	return fmt.Sprintf("position %d", o.pos)
}

// sameOutcome reports whether two answers to one request agree.
func sameOutcome(a, b outcome) bool {
	if (a.err == nil) != (b.err == nil) {
		return false
	}
	if a.err != nil {
		return client.ErrorCode(a.err) == client.ErrorCode(b.err)
	}
	return a.pos == b.pos && a.session == b.session
}

// send makes one request as a client that gives up after 1 ms (the request
// still goes out and is handled: only its reply is lost), runs between (if
// not nil) while that first attempt may still be in flight, then retries it
// with the same request_id from every client at once, as impatient callers
// on several connections would. It returns the retries' answers.
func send(e *retryEnv, do func(ctx context.Context, c *client.Client) outcome, between func() error) ([]outcome, error) {
	short, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	do(short, e.clients[0])
	cancel()
	if between != nil {
		if err := between(); err != nil {
			return nil, err
		}
	}
	out := make([]outcome, len(e.clients))
	var wg sync.WaitGroup
	for i, c := range e.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			out[i] = do(ctx, c)
		}()
	}
	wg.Wait()
	return out, nil
}

func runRetries(t *testing.T, e *retryEnv) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// Creates: each retried create names the same session, and the stream
	// grows by exactly one event per create.
	before, err := e.store.LastSequence(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const creates = 5
	var sessions []string
	for i := range creates {
		rid := fmt.Sprintf("create-%d", i)
		outs, _ := send(e, func(ctx context.Context, c *client.Client) outcome {
			r, err := c.CreateSession(ctx, client.CreateSessionRequest{Mutation: client.Mutation{RequestID: rid}})
			return outcome{pos: r.Position, session: r.Session.ID, err: err}
		}, nil)
		for j, o := range outs {
			if o.err != nil || !sameOutcome(o, outs[0]) {
				t.Fatalf("create %s: retry %d got %v (session %q), retry 0 got %v (session %q)", rid, j, o, o.session, outs[0], outs[0].session)
			}
		}
		sessions = append(sessions, outs[0].session)
	}
	after, err := e.store.LastSequence(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after-before != creates {
		t.Fatalf("%d creates, each sent %d times, stored %d events; want %d", creates, 1+len(e.clients), after-before, creates)
	}

	// Writes to one session: unconditional and with expected_position,
	// some with another writer's change landing between the first attempt
	// and the retries.
	id := sessions[0]
	head := uint64(0)
	if r, err := e.clients[0].GetSession(ctx, id, ""); err != nil {
		t.Fatal(err)
	} else {
		head = r.Position
	}
	const rounds = 60
	answers := map[string]outcome{}
	var paths []string
	for i := range rounds {
		rid := fmt.Sprintf("write-%d", i)
		path := fmt.Sprintf("f%03d", i)
		var expected uint64
		if i%2 == 1 {
			expected = head
		}
		var between func() error
		if i%3 == 2 {
			// Another writer changes the session while the first attempt
			// may still be in flight.
			between = func() error {
				_, err := e.clients[1].Write(ctx, client.WriteRequest{
					Mutation: client.Mutation{RequestID: "noise-" + rid},
					Session:  id, Path: "noise/" + path, Content: []byte("noise"),
				})
				return err
			}
		}
		outs, err := send(e, func(ctx context.Context, c *client.Client) outcome {
			r, err := c.Write(ctx, client.WriteRequest{
				Mutation: client.Mutation{RequestID: rid, ExpectedPosition: expected},
				Session:  id, Path: path, Content: []byte(rid),
			})
			return outcome{pos: r.Position, err: err}
		}, between)
		if err != nil {
			t.Fatalf("%s: the other writer: %v", rid, err)
		}
		for j, o := range outs {
			if o.err != nil && client.ErrorCode(o.err) != domain.CodeConflict {
				t.Fatalf("%s (expected_position %d): retry %d: %v", rid, expected, j, o.err)
			}
			if !sameOutcome(o, outs[0]) {
				t.Fatalf("%s (expected_position %d): retries disagree: retry %d got %v, retry 0 got %v", rid, expected, j, o, outs[0])
			}
		}
		if outs[0].err != nil && expected == 0 {
			t.Fatalf("%s without expectation: %v", rid, outs[0].err)
		}
		answers[rid] = outs[0]
		if outs[0].err == nil {
			paths = append(paths, path)
		}
		r, err := e.clients[0].GetSession(ctx, id, "")
		if err != nil {
			t.Fatal(err)
		}
		head = r.Position
	}

	// Late retries, after the session moved on: answered as the first
	// time, nothing stored.
	last, err := e.store.LastSequence(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		rid := fmt.Sprintf("write-%d", i)
		var expected uint64
		if i%2 == 1 {
			expected = 1 // whatever: a retry is answered from what the first attempt did
		}
		r, err := e.clients[i%len(e.clients)].Write(ctx, client.WriteRequest{
			Mutation: client.Mutation{RequestID: rid, ExpectedPosition: expected},
			Session:  id, Path: fmt.Sprintf("f%03d", i), Content: []byte(rid),
		})
		want := answers[rid]
		if want.err == nil && (err != nil || r.Position != want.pos || !r.Replayed) {
			t.Errorf("late retry of %s: position %d replayed %v err %v; want position %d replayed", rid, r.Position, r.Replayed, err, want.pos)
		}
	}
	if now, err := e.store.LastSequence(ctx); err != nil || now != last {
		t.Errorf("late retries moved the stream from %d to %d (err %v)", last, now, err)
	}

	// The history: each request id at most once, where its answer said.
	hs := audit(t, ctx, e.conn, e.replicas, "retry", sessions)
	h := hs[id]
	if h == nil {
		t.Fatal("no history")
	}
	timedOut := 0
	for rid, want := range answers {
		got := h.ByRequest[rid]
		switch {
		case want.err != nil && len(got) != 0:
			t.Errorf("%s was answered %v but is stored at %v", rid, want, got)
		case want.err == nil && (len(got) != 1 || got[0] != want.pos):
			t.Errorf("%s was answered %v but is stored at %v; want exactly once there", rid, want, got)
		}
		if want.err != nil {
			timedOut++
		}
	}
	for rid, got := range h.ByRequest {
		if len(got) != 1 {
			t.Errorf("request %s stored %d times, at %v", rid, len(got), got)
		}
	}
	for _, p := range paths {
		if h.Head.Tree.Lookup(p) == nil {
			t.Errorf("acknowledged write of %s missing from the head", p)
		}
	}
	t.Logf("%d writes (%d refused with conflict, consistently across retries), %d creates; %d events in the session",
		rounds, timedOut, creates, len(h.Events))
}
