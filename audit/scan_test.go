package audit

import (
	"context"
	"testing"
	"time"

	"github.com/strand-dev/strand/streams/streamstest"
)

// TestScan_ConnectionClosed closes the connection under a scan: the scan
// must end with an error at once, not wait out its idle checks.
func TestScan_ConnectionClosed(t *testing.T) {
	env := streamstest.Start(t)
	ctx := context.Background()
	js := env.Store.JetStream()
	const n = 10000 // more than a consumer's pull, so some are still on the server
	// In rounds of 1,000, so that a loaded machine never stalls the
	// client's window of unacknowledged publishes.
	for i := range n {
		if _, err := js.PublishAsync(EventSubject("t", "s"), []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		if (i+1)%1000 != 0 && i != n-1 {
			continue
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-time.After(time.Minute):
			t.Fatal("publish did not complete")
		}
	}
	nc, err := env.Server.Connect()
	if err != nil {
		t.Fatal(err)
	}
	r, err := Open(ctx, nc, Streams{})
	if err != nil {
		t.Fatal(err)
	}
	r.IdleTimeout = time.Minute // the idle watch must not be what ends it
	start := time.Now()
	seen := 0
	err = r.scan(ctx, scanOpts{filters: []string{AllFilter}}, func(rec *Record) error {
		if seen++; seen == 1 {
			go nc.Close()
		}
		return nil
	})
	if err == nil || seen >= n {
		t.Fatalf("scan after the connection closed: %d of %d messages, err %v; want an error before the end", seen, n, err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("scan took %v to notice the closed connection", d)
	}
	t.Logf("ended after %d messages in %v: %v", seen, time.Since(start).Round(time.Millisecond), err)
}
