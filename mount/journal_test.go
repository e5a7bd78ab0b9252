package mount_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/strand-dev/strand/mount"
	"github.com/strand-dev/strand/streams/streamstest"
)

// TestMount_JournalReplay: changes not yet flushed when the mount process
// dies are sent by the next mount of the same session from the same
// machine, before it shows the tree.
func TestMount_JournalReplay(t *testing.T) {
	h := start(t)
	h.write("a.txt", "v1\n")
	m, dir := h.mount("", func(o *mount.Options) { o.FlushInterval = time.Hour })
	f, err := os.OpenFile(filepath.Join(dir, "a.txt"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("v2\n"); err != nil {
		t.Fatal(err)
	}
	mustWriteNoFlush := func(p, content string) {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		g, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := g.WriteString(content); err != nil {
			t.Fatal(err)
		}
		// Left open: a close would ask for a flush.
		t.Cleanup(func() { g.Close() })
	}
	mustWriteNoFlush(filepath.Join(dir, "d/new.txt"), "new\n")
	if err := os.Rename(filepath.Join(dir, "d"), filepath.Join(dir, "e")); err != nil {
		t.Fatal(err)
	}
	if st := m.Status(); st.Pending == 0 {
		t.Fatalf("nothing pending before the crash: %+v", st)
	}
	f.Close()
	jdir := m.JournalDir()
	m.Crash()
	if b, err := os.ReadFile(filepath.Join(jdir, "ops.jsonl")); err == nil {
		t.Logf("journal:\n%s", b)
	}
	// What the crash left: the staging files of the ops, and the spares
	// made ahead of need (none of them named by an op).
	left := stagingFiles(t, jdir)
	if len(left) < 3 {
		t.Fatalf("staging files after the crash: %v, want those of the two written files and spares", left)
	}
	if got := h.read("a.txt"); got != "v1\n" {
		t.Fatalf("service before replay: got %q, want v1 (nothing flushed)", got)
	}

	m2, dir2 := h.mount("")
	if got := h.read("a.txt"); got != "v1\nv2\n" {
		t.Errorf("a.txt after replay: got %q", got)
	}
	if got := h.read("e/new.txt"); got != "new\n" {
		t.Errorf("e/new.txt after replay: got %q", got)
	}
	if got := mustRead(t, filepath.Join(dir2, "e/new.txt")); got != "new\n" {
		t.Errorf("mount after replay: got %q", got)
	}
	if st := m2.Status(); st.Pending != 0 || len(st.Conflicts) != 0 {
		t.Errorf("status after replay: %+v", st)
	}
	now := map[string]bool{}
	for _, f := range stagingFiles(t, jdir) {
		now[f] = true
	}
	for _, f := range left {
		if now[f] {
			t.Errorf("staging file %s of the crashed mount is still there after the replay", f)
		}
	}
	if err := m2.Close(); err != nil {
		t.Fatal(err)
	}
	if f := stagingFiles(t, jdir); len(f) != 0 {
		t.Errorf("staging files after a clean unmount: %v, want none", f)
	}
}

// stagingFiles lists the staging files of a journal.
func stagingFiles(t *testing.T, jdir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(jdir, "files"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// TestMount_RecycledStagingFiles: a staging file given up after a flush
// (its content already in the cache, as for a tree extracted again) is
// emptied and kept, under a new name, for the next created file instead of
// being removed: no inode freed and allocated again on the local disk.
// The recycled files hold nothing of their old content, and files created
// on them read back what was written to them.
func TestMount_RecycledStagingFiles(t *testing.T) {
	h := start(t)
	m, dir := h.mount("", func(o *mount.Options) { o.FlushInterval = time.Hour })
	if !m.WaitSpares(10 * time.Second) {
		t.Fatal("spares not made")
	}
	const n = 20
	for i := range n {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("same%02d.txt", i)), []byte("same content\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Every file but one has content the cache already holds (the first
	// may have been moved into the cache, or its inline copy was there).
	// A file whose release the kernel sends late is given up on release.
	streamstest.Wait(t, 5*time.Second, fmt.Sprintf("at least %d recycled staging files", n-1), func() bool { return m.Recycled() >= n-1 })
	jdir := m.JournalDir()
	for _, name := range stagingFiles(t, jdir) {
		if fi, err := os.Stat(filepath.Join(jdir, "files", name)); err != nil || fi.Size() != 0 {
			t.Fatalf("staging file %s after the flush: %v, %v; want it empty (spare or recycled)", name, fi, err)
		}
	}
	// Counted with the spares made (the goroutine that makes them may hold
	// one more, made and not yet handed over): new files taken from the
	// spares would show as files made to replace them.
	if !m.WaitSpares(10 * time.Second) {
		t.Fatal("spares not made")
	}
	before := len(stagingFiles(t, jdir))
	for i := range n - 1 {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("new%02d.txt", i)), []byte(fmt.Sprintf("new %d\n", i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if !m.WaitSpares(10 * time.Second) {
		t.Fatal("spares not made again")
	}
	if after := len(stagingFiles(t, jdir)); after > before+1 {
		t.Fatalf("staging files: %d before %d creates, %d after; want them taken from the recycled ones", before, n-1, after)
	}
	if err := m.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	for i := range n - 1 {
		want := fmt.Sprintf("new %d\n", i)
		if got := h.read(fmt.Sprintf("new%02d.txt", i)); got != want {
			t.Fatalf("new%02d.txt on the service: %q, want %q", i, got, want)
		}
	}
}
