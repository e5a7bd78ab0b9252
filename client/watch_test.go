package client_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
	"github.com/strand-dev/strand/streams/streamstest"
)

// TestWatch_ListingLostIsAskedAgain: once a watch is following, a listing
// whose answer never comes (sent as a connection came back, say) is asked
// again within seconds, not after the client's whole request timeout. A
// stand-in service answers the first and third listings and drops the
// second; a live event with a gap before it makes the watch list.
func TestWatch_ListingLostIsAskedAgain(t *testing.T) {
	env := streamstest.Start(t)
	nc := env.NC
	const tenant, session = "acme", "01J00000000000000000000WL0"
	var listings atomic.Int32
	sub, err := nc.Subscribe(client.EventsList.Subject(tenant), func(m *nats.Msg) {
		if listings.Add(1) == 2 {
			return // lost
		}
		_ = m.Respond([]byte(`{"events":[]}`))
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe() //nolint:errcheck
	cl := client.NewClient(nc, tenant)
	cl.Timeout = 30 * time.Second
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	got := make(chan client.EventView, 1)
	done := make(chan error, 1)
	go func() {
		done <- cl.Watch(ctx, session, 1, func(e client.EventView) error {
			got <- e
			return nil
		})
	}()
	streamstest.Wait(t, 10*time.Second, "the first listing", func() bool { return listings.Load() >= 1 })
	ev := domain.Event{ID: "01J00000000000000000000WE0", Type: domain.FileWritten, Tenant: tenant, Session: session, Version: 2,
		Actor: "t", Time: time.Unix(1700000000, 0).UnixNano(), Ops: []domain.Op{{Kind: domain.OpWrite, Path: "a.txt"}}}
	body, err := ev.Encode()
	if err != nil {
		t.Fatal(err)
	}
	live := nats.NewMsg(names.WatchSubject(tenant, session))
	live.Header.Set(names.HeaderSequence, strconv.Itoa(5))
	live.Data = body
	// The live subscription is in place once the first listing was asked.
	if err := nc.PublishMsg(live); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-got:
		if e.Position != 5 || e.Version != 2 {
			t.Fatalf("delivered %d (version %d), want 5 (version 2)", e.Position, e.Version)
		}
	case err := <-done:
		t.Fatalf("watch ended: %v", err)
	case <-time.After(15 * time.Second):
		t.Fatalf("the live event not delivered 15 s after its listing was lost (%d listings asked)", listings.Load())
	}
	if n := listings.Load(); n != 3 {
		t.Fatalf("%d listings asked, want 3 (the first, the lost one, the one asked again)", n)
	}
}
