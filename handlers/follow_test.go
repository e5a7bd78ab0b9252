package handlers_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/strand-dev/strand/client"
)

// TestWatch_ResumesAcrossRestart follows a session (client.Watch, which
// `strand events --watch`, the gateway's and the web app's live streams,
// the mount and the MCP server use) while the NATS server is stopped and
// started again on the same port and data. The follower's connection is
// held back from reconnecting until writes were stored after the restart,
// so those never reach its live tail: it must list them when it is back.
// It gets every event once, in order, none missed or repeated.
func TestWatch_ResumesAcrossRestart(t *testing.T) {
	t.Parallel()
	r := startRestartable(t)
	r.serve(5 * time.Second)
	writer := client.NewClient(r.dial(), "acme")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := writer.CreateSession(ctx, client.CreateSessionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	session := s.Session.ID

	// The follower reconnects only once release is closed.
	release := make(chan struct{})
	fnc := r.dial(nats.CustomReconnectDelay(func(int) time.Duration {
		select {
		case <-release:
		case <-time.After(time.Minute):
		}
		return 0
	}))
	got := make(chan uint64, 100)
	wctx, wcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- client.NewClient(fnc, "acme").Watch(wctx, session, 0, func(e client.EventView) error {
			got <- e.Position
			return nil
		})
	}()
	defer func() {
		wcancel()
		if err := <-done; err != context.Canceled {
			t.Errorf("watch ended with %v, want context.Canceled", err)
		}
	}()

	var want []uint64
	want = append(want, s.Position)
	n := 0
	write := func() {
		n++
		r := writeUntilAnswered(t, writer, client.WriteRequest{Mutation: client.Mutation{RequestID: fmt.Sprintf("r%d", n)},
			Session: session, Path: fmt.Sprintf("f%d", n), Content: []byte("x")})
		want = append(want, r.Position)
	}
	seen := []uint64{}
	receive := func(until int) {
		t.Helper()
		for len(seen) < until {
			select {
			case p := <-got:
				seen = append(seen, p)
			case <-time.After(30 * time.Second):
				t.Fatalf("follower got %v, want %v", seen, want[:until])
			}
		}
	}
	for range 3 {
		write()
	}
	receive(len(want))

	r.stop()
	r.start()
	for range 4 {
		write() // stored while the follower is still disconnected
	}
	if fnc.IsConnected() {
		t.Fatal("the follower reconnected before it was let: the test would not show a resume")
	}
	close(release)
	// With no new event to show a gap, the follower lists what it missed
	// as soon as it is connected again.
	receive(len(want))
	for range 2 {
		write()
	}
	receive(len(want))
	// One more: nothing delivered twice may come before it.
	write()
	receive(len(want))
	if !slices.Equal(seen, want) {
		t.Fatalf("follower got %v, want %v (each event once, in order)", seen, want)
	}
}
