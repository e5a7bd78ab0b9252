package mount_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strand-dev/strand/mount"
)

// TestMount_Conflict: a remote change to a path with a local unflushed
// change is never resolved silently. The local change stays in the
// journal, the mount reports it (status, log) and shows the local version
// until the user settles it.
func TestMount_Conflict(t *testing.T) {
	h := start(t)
	h.write("a.txt", "base\n")
	m, dir := h.mount("", func(o *mount.Options) { o.FlushInterval = time.Hour })
	f, err := os.OpenFile(filepath.Join(dir, "a.txt"), os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("local\n"); err != nil {
		t.Fatal(err)
	}
	h.write("a.txt", "remote\n")
	// The mount sees the remote change (its position moves) but keeps the
	// local version.
	eventually(t, 15*time.Second, "the remote change is seen", func() bool { return m.Status().Position > 0 && h.read("a.txt") == "remote\n" })
	if err := f.Sync(); err != nil {
		t.Fatalf("fsync: %v", err)
	}
	f.Close()
	st := m.Status()
	if len(st.Conflicts) != 1 || st.Conflicts[0].Path != "a.txt" || !strings.Contains(st.Conflicts[0].Reason, "conflict") {
		t.Fatalf("status: got conflicts %+v, want one on a.txt", st.Conflicts)
	}
	if !strings.Contains(h.logs.String(), "conflict") {
		t.Errorf("no log line names the conflict: %s", h.logs)
	}
	if got := h.read("a.txt"); got != "remote\n" {
		t.Errorf("service: got %q, want the remote version untouched", got)
	}
	if got := mustRead(t, filepath.Join(dir, "a.txt")); got != "local\n" {
		t.Errorf("mount: got %q, want the local version", got)
	}
	// Keep the local version: it replaces the remote one.
	n, err := m.Resolve(context.Background(), "a.txt", "local")
	if err != nil || n != 1 {
		t.Fatalf("resolve: got %d, %v", n, err)
	}
	if got := h.read("a.txt"); got != "local\n" {
		t.Errorf("service after resolve local: got %q", got)
	}
	if st := m.Status(); len(st.Conflicts) != 0 || st.Pending != 0 {
		t.Errorf("status after resolve: %+v", st)
	}

	t.Run("KeepRemote", func(t *testing.T) {
		mustWriteNoClose := func(content string) *os.File {
			f, err := os.OpenFile(filepath.Join(dir, "a.txt"), os.O_WRONLY|os.O_TRUNC, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteString(content); err != nil {
				t.Fatal(err)
			}
			return f
		}
		f := mustWriteNoClose("local 2\n")
		h.write("a.txt", "remote 2\n")
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
		f.Close()
		if st := m.Status(); len(st.Conflicts) != 1 {
			t.Fatalf("conflicts: got %+v, want one", st.Conflicts)
		}
		if _, err := m.Resolve(context.Background(), "a.txt", "remote"); err != nil {
			t.Fatal(err)
		}
		eventually(t, 15*time.Second, "the remote version shows", func() bool {
			b, err := os.ReadFile(filepath.Join(dir, "a.txt"))
			return err == nil && string(b) == "remote 2\n"
		})
	})
}

// TestMount_ConflictAfterRestart: a conflict survives the mount process
// (it is in the journal), and the next mount of the session shows the
// local version of the file as the first one did, until it is settled:
// a file the service holds in another version, and a new file the
// service got from someone else meanwhile.
func TestMount_ConflictAfterRestart(t *testing.T) {
	h := start(t)
	h.write("a.txt", "base\n")
	m, dir := h.mount("", func(o *mount.Options) { o.FlushInterval = time.Hour })
	for _, c := range []struct{ name, local, remote string }{{"a.txt", "local\n", "remote\n"}, {"new.txt", "local new\n", "remote new\n"}} {
		f, err := os.OpenFile(filepath.Join(dir, c.name), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString(c.local); err != nil {
			t.Fatal(err)
		}
		h.write(c.name, c.remote)
		if err := f.Sync(); err != nil {
			t.Fatalf("fsync %s: %v", c.name, err)
		}
		f.Close()
	}
	if st := m.Status(); len(st.Conflicts) != 2 {
		t.Fatalf("conflicts: %+v, want two", st.Conflicts)
	}
	m.Crash()

	m2, dir2 := h.mount("", func(o *mount.Options) { o.FlushInterval = time.Hour })
	if st := m2.Status(); len(st.Conflicts) != 2 {
		t.Fatalf("conflicts after the restart: %+v, want two", st.Conflicts)
	}
	for name, want := range map[string]string{"a.txt": "local\n", "new.txt": "local new\n"} {
		if got := mustRead(t, filepath.Join(dir2, name)); got != want {
			t.Errorf("%s after the restart: %q, want the local version %q", name, got, want)
		}
		if got := h.read(name); got == want {
			t.Errorf("%s on the service: the local version was sent", name)
		}
	}
	// A further local write to a file in conflict conflicts too: it is
	// made against the same old content.
	if err := os.WriteFile(filepath.Join(dir2, "a.txt"), []byte("local again\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := m2.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := h.read("a.txt"); got != "remote\n" {
		t.Errorf("a.txt on the service after a further local write: %q, want the remote version kept", got)
	}
	if _, err := m2.Resolve(context.Background(), "a.txt", "remote"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "the remote version of a.txt shows", func() bool {
		b, err := os.ReadFile(filepath.Join(dir2, "a.txt"))
		return err == nil && string(b) == "remote\n"
	})
	if _, err := m2.Resolve(context.Background(), "new.txt", "local"); err != nil {
		t.Fatal(err)
	}
	if got := h.read("new.txt"); got != "local new\n" {
		t.Errorf("new.txt on the service after keeping the local version: %q", got)
	}
	if st := m2.Status(); len(st.Conflicts) != 0 || st.Pending != 0 {
		t.Errorf("after both resolved: %+v", st)
	}
}
