package mount_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/strand-dev/strand/mount"
)

// TestMount_RemoteChangeBeforeOwnFlush: another writer's change whose
// tree the mount read just before a flush of its own was stored (the
// flush's reply moves the mount's position past that tree) still shows in
// the mount. Before 2026-12-07 the refresh was dropped as stale and the
// change did not show until the next one (CI saw it once, in
// TestMount_ResumesAfterServerRestart).
func TestMount_RemoteChangeBeforeOwnFlush(t *testing.T) {
	h := start(t)
	h.write("a.txt", "a\n")
	m, dir := h.mount("", func(o *mount.Options) { o.FlushInterval = time.Hour })
	paused, resume := make(chan struct{}), make(chan struct{})
	var once sync.Once
	m.AfterManifest(func() {
		once.Do(func() {
			close(paused)
			<-resume
		})
	})
	// The other writer's change: the mount reads the tree with it, and
	// waits there.
	h.write("b.txt", "remote\n")
	select {
	case <-paused:
	case <-time.After(10 * time.Second):
		t.Fatal("the mount never read the tree after the other writer's change")
	}
	// Meanwhile a change of the mount's own is stored.
	mustWrite(t, filepath.Join(dir, "c.txt"), "local\n")
	if err := m.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	close(resume)
	eventually(t, 5*time.Second, "the other writer's change shows in the mount", func() bool {
		b, err := os.ReadFile(filepath.Join(dir, "b.txt"))
		return err == nil && string(b) == "remote\n"
	})
	if got := h.read("c.txt"); got != "local\n" {
		t.Errorf("c.txt on the service: %q", got)
	}
}
