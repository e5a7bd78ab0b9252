package mount_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
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

// TestMount_ChmodModes: every mode reaches the service, as a chmod event
// of its own: a file's 000 (not "keep the mode", which a write without a
// mode means), a folder's (which the service used to learn only when the
// folder was made), set-ID bits; a second mount shows them, and a chmod on
// the service reaches a live mount.
func TestMount_ChmodModes(t *testing.T) {
	h := start(t)
	h.write("a/f.txt", "data\n")
	h.write("b/g.txt", "more\n")
	m, dir := h.mount("")
	ctx := context.Background()
	want := map[string]uint32{"a": 0o700, "a/f.txt": 0, "b": 0o2775, "b/g.txt": 0o4755}
	for _, p := range []string{"a", "a/f.txt", "b", "b/g.txt"} {
		if err := syscall.Chmod(filepath.Join(dir, p), want[p]); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "new"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "new"), 0o711); err != nil {
		t.Fatal(err)
	}
	want["new"] = 0o711
	if err := m.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	modes := func() map[string]uint32 {
		man, err := h.c.Manifest(ctx, client.ManifestRequest{Session: h.session})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]uint32{}
		for _, e := range man.Entries {
			out[e.Path] = e.Mode
		}
		return out
	}
	got := modes()
	for p, w := range want {
		if got[p] != w {
			t.Errorf("%s on the service: mode %o, want %o", p, got[p], w)
		}
	}
	if got := h.read("a/f.txt"); got != "data\n" {
		t.Errorf("a/f.txt on the service: %q, want its content unchanged", got)
	}
	evs, err := h.c.Events(ctx, client.EventsRequest{Session: h.session, Types: []string{string(domain.ModeChanged), string(domain.BatchApplied)}})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs.Events {
		for _, op := range e.Ops {
			if op.Op == domain.OpWrite {
				t.Errorf("a chmod was stored as a write of %s (event %d)", op.Path, e.Position)
			}
		}
	}

	// A second mount of the same session (as if on another machine: a
	// journal of its own) shows the modes.
	_, dir2 := h.mount("", func(o *mount.Options) { o.StateDir = t.TempDir() })
	for p, w := range want {
		if got := perm(t, filepath.Join(dir2, p)); got != w {
			t.Errorf("%s in a second mount: mode %o, want %o", p, got, w)
		}
	}

	// A chmod on the service reaches the first mount.
	mode := uint32(0o750)
	if _, err := h.c.Chmod(ctx, client.ChmodRequest{Session: h.session, Path: "b", Mode: &mode}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the remote chmod of b in the mount", func() bool {
		return perm(t, filepath.Join(dir, "b")) == 0o750
	})
}

// perm is a path's mode bits as chmod(2) takes them (07777).
func perm(t *testing.T, p string) uint32 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Mode & 0o7777
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
