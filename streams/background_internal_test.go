package streams

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/strand-dev/strand/domain"
)

// TestDeleteMsg_NoAnswer: a delete whose server never answers (it died
// with the request in hand) ends with unavailable, even for a caller
// without a deadline: the blob collector's runs once waited for such an
// answer forever, and collected nothing more (TestSoak/collector).
func TestDeleteMsg_NoAnswer(t *testing.T) {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	t.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	// A responder that takes every request and answers none.
	sub, err := nc.Subscribe("$JS.API.STREAM.MSG.DELETE.S", func(*nats.Msg) {})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	defer func(d time.Duration) { backgroundTimeout = d }(backgroundTimeout)
	backgroundTimeout = 300 * time.Millisecond
	began := time.Now()
	ok, err := DeleteMsg(context.Background(), nc, "S", 1)
	if took := time.Since(began); took > 5*time.Second {
		t.Fatalf("DeleteMsg without a deadline took %v with no answer, want about %v", took, backgroundTimeout)
	}
	if ok || domain.ErrorCode(err) != domain.CodeUnavailable {
		t.Fatalf("DeleteMsg with no answer: %v, %v; want false, unavailable", ok, err)
	}
}
