package mount_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/mount"
)

// TestMount_Chmod: a chmod in the mount reaches the service: of a file it
// has not written (its journal op carried no mode, and the service, given
// none, kept the old one), and of a file written again with the same
// content meanwhile.
func TestMount_Chmod(t *testing.T) {
	h := start(t)
	h.write("tool.sh", "echo hi\n")
	m, dir := h.mount("")
	if err := os.Chmod(filepath.Join(dir, "tool.sh"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := m.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	man, err := h.c.Manifest(context.Background(), client.ManifestRequest{Session: h.session})
	if err != nil {
		t.Fatal(err)
	}
	if len(man.Entries) != 1 || man.Entries[0].Mode != 0o750 {
		t.Errorf("the service holds %+v, want tool.sh with mode 750", man.Entries)
	}
	if got := h.read("tool.sh"); got != "echo hi\n" {
		t.Errorf("tool.sh on the service: %q, want its content unchanged", got)
	}

	// A chmod while the file is written again with the content the
	// service holds: the write carries the mode, and must be sent though
	// its content did not change (it was skipped as a no-op, mode and
	// all).
	p := filepath.Join(dir, "tool.sh")
	if err := os.WriteFile(p, []byte("echo hi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := m.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	man, err = h.c.Manifest(context.Background(), client.ManifestRequest{Session: h.session})
	if err != nil {
		t.Fatal(err)
	}
	if len(man.Entries) != 1 || man.Entries[0].Mode != 0o700 {
		t.Errorf("after a rewrite and a chmod the service holds %+v, want tool.sh with mode 700", man.Entries)
	}
}

// TestMount_ChmodDuringFlush: a chmod of a file whose write is being
// flushed reaches the service. The flush read the file's mode before
// taking the snapshot of its content, and a chmod between the two, seeing
// the write still queued, left the mode to it: the old mode was stored.
func TestMount_ChmodDuringFlush(t *testing.T) {
	h := start(t)
	m, dir := h.mount("", func(o *mount.Options) { o.FlushInterval = time.Hour })
	ctx := context.Background()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := m.Flush(ctx); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	const files = 300
	for i := range files {
		p := filepath.Join(dir, fmt.Sprintf("f%03d", i))
		if err := os.WriteFile(p, []byte("content\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if err := m.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	man, err := h.c.Manifest(ctx, client.ManifestRequest{Session: h.session, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	wrong := 0
	for _, e := range man.Entries {
		if e.Mode != 0o755 {
			wrong++
		}
	}
	if len(man.Entries) != files || wrong > 0 {
		t.Errorf("the service holds %d files, %d of them without the chmod to 755", len(man.Entries), wrong)
	}
}
