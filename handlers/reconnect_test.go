package handlers_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/handlers"
	"github.com/strand-dev/strand/streams"
)

// TestService_Reconnects stops the NATS server under a running service
// and starts it again on the same port and data: the service's connection
// reconnects by itself, and a write retried with its request id is
// answered, by the same service, with nothing lost and nothing stored
// twice.
func TestService_Reconnects(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv, err := streams.StartEmbedded(streams.EmbeddedOptions{DataDir: dir, Listen: "127.0.0.1:-1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown() })
	u, err := url.Parse(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	dial := func() *nats.Conn {
		nc, err := nats.Connect(srv.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	snc := dial()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := streams.Open(ctx, snc, streams.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	svc := handlers.NewService(st, handlers.Options{Timeout: 10 * time.Second})
	if err := svc.Start(snc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	if err := snc.Flush(); err != nil {
		t.Fatal(err)
	}
	c := client.NewClient(dial(), "acme")
	s, err := c.CreateSession(ctx, client.CreateSessionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	first, err := c.Write(ctx, client.WriteRequest{Session: s.Session.ID, Path: "a.txt", Content: []byte("a")})
	if err != nil {
		t.Fatal(err)
	}

	srv.Shutdown()
	srv, err = streams.StartEmbedded(streams.EmbeddedOptions{DataDir: dir, Listen: u.Host})
	if err != nil {
		t.Fatalf("restart the server on %s: %v", u.Host, err)
	}

	// The client retries a write with its request id until the service,
	// reconnected, answers it.
	req := client.WriteRequest{Mutation: client.Mutation{RequestID: "after-restart", ExpectedPosition: first.Position}, Session: s.Session.ID, Path: "b.txt", Content: []byte("b")}
	var got client.ChangeReply
	deadline := time.Now().Add(30 * time.Second)
	for {
		actx, acancel := context.WithTimeout(ctx, 3*time.Second)
		got, err = c.Write(actx, req)
		acancel()
		if err == nil {
			break
		}
		if code := client.ErrorCode(err); code != "unavailable" || time.Now().After(deadline) {
			t.Fatalf("write after the server restarted: %v, want an answer (unavailable while it reconnects)", err)
		}
	}
	if got.Position <= first.Position {
		t.Fatalf("write after restart at %d, want after %d", got.Position, first.Position)
	}
	again, err := c.Write(ctx, req)
	if err != nil || !again.Replayed || again.Position != got.Position {
		t.Fatalf("retry: %+v, %v; want replayed at %d", again, err, got.Position)
	}
	if data, _, err := c.ReadAll(ctx, s.Session.ID, "a.txt", ""); err != nil || string(data) != "a" {
		t.Fatalf("read a.txt after restart: %q, %v", data, err)
	}
}
