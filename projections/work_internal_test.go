package projections

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/streams"
)

// TestWork_NoAnswer: a request to the work stream that its server never
// answers (it died with the request in hand) ends, with or without the
// store's retry, instead of holding the views' applier: publishing an item
// and closing one (a raw delete) are each bounded.
func TestWork_NoAnswer(t *testing.T) {
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
	// Responders that take every request and answer none.
	for _, subj := range []string{"$JS.API.STREAM.MSG.DELETE.W", "w.>"} {
		sub, err := nc.Subscribe(subj, func(*nats.Msg) {})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Unsubscribe() })
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	defer func(d time.Duration) { requestTimeout = d }(requestTimeout)
	requestTimeout = 300 * time.Millisecond
	subject := func(tenant, kind string, more ...string) string { return "w." + tenant + "." + kind }
	item := ReviewItem{Kind: KindReview, Tenant: "acme", Request: "r"}
	for _, c := range []struct {
		name  string
		retry func(ctx context.Context, what string, op func(ctx context.Context) error) error
		code  domain.Code
		// deadline is the caller's; without Retry none is needed.
		deadline time.Duration
	}{{"Once", nil, "", 0}, {"StoreRetry", streams.Retry, domain.CodeUnavailable, time.Second}} {
		t.Run(c.name, func(t *testing.T) {
			w := WorkConfig{Stream: "W", Subject: subject, Retry: c.retry, js: js}
			ctx, cancel := context.WithCancel(context.Background())
			if c.deadline > 0 {
				ctx, cancel = context.WithTimeout(ctx, c.deadline)
			}
			defer cancel()
			for what, op := range map[string]func() error{
				"close": func() error { return w.remove(ctx, 7) },
				"publish": func() error {
					_, err := w.publish(ctx, subject("acme", KindReview), "1.review.acme.r", item)
					return err
				},
			} {
				began := time.Now()
				err := op()
				if took := time.Since(began); took > 5*time.Second {
					t.Fatalf("%s with no answer took %v", what, took)
				}
				if err == nil || c.code != "" && domain.ErrorCode(err) != c.code {
					t.Fatalf("%s with no answer: %v, want an error (%s)", what, err, c.code)
				}
			}
		})
	}
}
