package mount_test

import (
	"context"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/contentcache"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/handlers"
	"github.com/strand-dev/strand/mount"
	"github.com/strand-dev/strand/streams"
)

// TestMount_ResumesAfterServerRestart stops the NATS server under a mount
// and starts it again on the same port and data. The mount's connection is
// held back from reconnecting until another writer changed the session
// after the restart, and a file was written through the mount meanwhile:
// once its connection is back, the mount shows the other writer's change
// (listed, since it never reached the live tail) and flushes its own, with
// no restart of the mount.
func TestMount_ResumesAfterServerRestart(t *testing.T) {
	needFuse(t)
	data := t.TempDir()
	srv, err := streams.StartEmbedded(streams.EmbeddedOptions{DataDir: data, Listen: "127.0.0.1:-1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown() })
	u, err := url.Parse(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	dial := func(opts ...nats.Option) *nats.Conn {
		nc, err := nats.Connect("nats://"+u.Host, append([]nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(50 * time.Millisecond)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	snc := dial()
	st, err := streams.Open(ctx, snc, streams.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	svc := handlers.NewService(st, handlers.Options{Timeout: 5 * time.Second})
	if err := svc.Start(snc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	if err := snc.Flush(); err != nil {
		t.Fatal(err)
	}
	writer := client.NewClient(dial(), "acme")
	s, err := writer.CreateSession(ctx, client.CreateSessionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := writer.Write(ctx, client.WriteRequest{Session: s.Session.ID, Path: "a.txt", Content: []byte("v1\n")}); err != nil {
		t.Fatal(err)
	}

	// The mount's connection reconnects only once release is closed.
	release := make(chan struct{})
	mnc := dial(nats.CustomReconnectDelay(func(int) time.Duration {
		select {
		case <-release:
		case <-time.After(time.Minute):
		}
		return 0
	}))
	mc := client.NewClient(mnc, "acme")
	mc.Actor = "mounter"
	cache, err := contentcache.Open(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	m, err := mount.New(ctx, mount.Options{Client: mc, Session: s.Session.ID, Dir: dir, Cache: cache, StateDir: t.TempDir(),
		FlushInterval: 50 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.MultiWriter(testWriter{t}), nil))})
	if err != nil {
		t.Fatalf("mount: %v", err)
	}
	t.Cleanup(func() { _ = m.Close() })
	if got := mustRead(t, filepath.Join(dir, "a.txt")); got != "v1\n" {
		t.Fatalf("a.txt through the mount: %q", got)
	}

	srv.Shutdown()
	if srv, err = streams.StartEmbedded(streams.EmbeddedOptions{DataDir: data, Listen: u.Host}); err != nil {
		t.Fatalf("restart the server on %s: %v", u.Host, err)
	}
	// Another writer's change, retried until the reconnected service
	// answers it.
	req := client.WriteRequest{Mutation: client.Mutation{RequestID: "remote-b"}, Session: s.Session.ID, Path: "b.txt", Content: []byte("remote\n")}
	for {
		actx, acancel := context.WithTimeout(ctx, 3*time.Second)
		_, err := writer.Write(actx, req)
		acancel()
		if err == nil {
			break
		}
		if client.ErrorCode(err) != domain.CodeUnavailable || ctx.Err() != nil {
			t.Fatalf("write b.txt after the restart: %v", err)
		}
	}
	// A write through the mount while it is cut off: kept, flushed later.
	mustWrite(t, filepath.Join(dir, "c.txt"), "local\n")
	if mnc.IsConnected() {
		t.Fatal("the mount reconnected before it was let: the test would not show a resume")
	}
	close(release)

	took := eventually(t, 30*time.Second, "the other writer's change shows in the mount", func() bool {
		b, err := os.ReadFile(filepath.Join(dir, "b.txt"))
		return err == nil && string(b) == "remote\n"
	})
	t.Logf("the other writer's change showed %v after the mount could reconnect", took)
	eventually(t, 30*time.Second, "the mount's write is flushed", func() bool {
		data, _, err := writer.ReadAll(ctx, s.Session.ID, "c.txt", "")
		return err == nil && string(data) == "local\n"
	})
}
