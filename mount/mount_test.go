package mount_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/strand-dev/strand/client"
)

func TestMount_Read(t *testing.T) {
	h := start(t)
	h.write("README.md", "# hello\n")
	h.write("src/main.go", "package main\n")
	ctx := context.Background()
	if _, err := h.c.Symlink(ctx, client.SymlinkRequest{Session: h.session, Path: "link", Target: "src/main.go"}); err != nil {
		t.Fatal(err)
	}
	if err := h.c.Request(ctx, "fs", "xattr.set", client.XattrRequest{Session: h.session, Path: "README.md", Name: "user.kind", Value: []byte("doc")}, nil); err != nil {
		t.Fatal(err)
	}
	m, dir := h.mount("")

	if got := mustRead(t, filepath.Join(dir, "README.md")); got != "# hello\n" {
		t.Errorf("README.md: got %q", got)
	}
	if got := mustRead(t, filepath.Join(dir, "link")); got != "package main\n" {
		t.Errorf("through link: got %q", got)
	}
	if target, err := os.Readlink(filepath.Join(dir, "link")); err != nil || target != "src/main.go" {
		t.Errorf("readlink: got %q, %v", target, err)
	}
	st, err := os.Stat(filepath.Join(dir, "src/main.go"))
	if err != nil || st.Size() != 13 || st.Mode().Perm() != 0o644 {
		t.Errorf("stat src/main.go: got %v, %v; want size 13 mode 644", st, err)
	}
	buf := make([]byte, 16)
	n, err := syscall.Getxattr(filepath.Join(dir, "README.md"), "user.kind", buf)
	if err != nil || string(buf[:n]) != "doc" {
		t.Errorf("getxattr: got %q, %v", buf[:n], err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if got := strings.Join(names, " "); got != "README.md link src" {
		t.Errorf("readdir: got %q", got)
	}
	// Identical content is fetched once: a second read is a cache hit.
	before := m.Status().Cache
	mustRead(t, filepath.Join(dir, "README.md"))
	if after := m.Status().Cache; after.Misses != before.Misses {
		t.Errorf("second read fetched again: misses %d -> %d", before.Misses, after.Misses)
	}
}

func TestMount_Write(t *testing.T) {
	h := start(t)
	h.write("keep.txt", "keep\n")
	h.write("old.txt", "old\n")
	h.write("gone.txt", "gone\n")
	m, dir := h.mount("")

	mustWrite(t, filepath.Join(dir, "new/deep/file.txt"), "new content\n")
	if err := os.Rename(filepath.Join(dir, "old.txt"), filepath.Join(dir, "new/renamed.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "gone.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("keep.txt", filepath.Join(dir, "ln")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "keep.txt"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Setxattr(filepath.Join(dir, "keep.txt"), "user.tag", []byte("v1"), 0); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "keep.txt"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("more\n"); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("fsync: %v", err)
	}
	// fsync returned: everything is on the service.
	if got := h.read("keep.txt"); got != "keep\nmore\n" {
		t.Errorf("keep.txt on the service: got %q", got)
	}
	f.Close()
	if got := h.read("new/deep/file.txt"); got != "new content\n" {
		t.Errorf("new file: got %q", got)
	}
	if got := h.read("new/renamed.txt"); got != "old\n" {
		t.Errorf("renamed: got %q", got)
	}
	man, err := h.c.Manifest(context.Background(), client.ManifestRequest{Session: h.session, Xattrs: true})
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, e := range man.Entries {
		paths = append(paths, e.Path)
		switch e.Path {
		case "keep.txt":
			if e.Mode != 0o755 || string(e.Xattrs["user.tag"]) != "v1" {
				t.Errorf("keep.txt: got mode %o xattrs %v, want 755 and user.tag=v1", e.Mode, e.Xattrs)
			}
		case "ln":
			if e.Target != "keep.txt" {
				t.Errorf("ln: got target %q", e.Target)
			}
		}
	}
	sort.Strings(paths)
	want := "keep.txt ln new new/deep new/deep/file.txt new/renamed.txt"
	if got := strings.Join(paths, " "); got != want {
		t.Errorf("tree: got %q, want %q", got, want)
	}
	// Every event the mount stored names its actor.
	evs, err := h.c.Events(context.Background(), client.EventsRequest{Session: h.session, From: 0, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	batches := 0
	for _, e := range evs.Events {
		if e.Type == "BatchApplied" {
			batches++
			if e.Actor != "mounter" {
				t.Errorf("event %d: actor %q, want mounter", e.Position, e.Actor)
			}
		}
	}
	if batches == 0 {
		t.Errorf("no batch events stored")
	}
	if st := m.Status(); st.Pending != 0 || len(st.Conflicts) != 0 {
		t.Errorf("status after fsync: %+v", st)
	}
}

func TestMount_ReadOnlyAt(t *testing.T) {
	h := start(t)
	h.write("a.txt", "v1\n")
	cp, err := h.c.CreateCheckpoint(context.Background(), client.CheckpointRequest{Session: h.session, Name: "first"})
	if err != nil {
		t.Fatal(err)
	}
	_ = cp
	h.write("a.txt", "v2\n")
	_, dir := h.mount("first")
	if got := mustRead(t, filepath.Join(dir, "a.txt")); got != "v1\n" {
		t.Errorf("a.txt at first: got %q, want v1", got)
	}
	err = os.WriteFile(filepath.Join(dir, "a.txt"), []byte("x"), 0o644)
	if !errors.Is(err, syscall.EROFS) {
		t.Errorf("write to a read-only mount: got %v, want EROFS", err)
	}
}

func TestMount_Live(t *testing.T) {
	h := start(t)
	h.write("a.txt", "v1\n")
	_, dir := h.mount("")
	mustRead(t, filepath.Join(dir, "a.txt"))
	// A listing the kernel holds (directories are listed without opens,
	// and the kernel keeps their listings) must follow remote changes too.
	listed := func(d string) map[string]bool {
		ents, err := os.ReadDir(d)
		if err != nil {
			return nil
		}
		names := map[string]bool{}
		for _, e := range ents {
			names[e.Name()] = true
		}
		return names
	}
	if got := listed(dir); !got["a.txt"] || got["b"] {
		t.Fatalf("root lists %v, want a.txt and no b", got)
	}
	h.write("a.txt", "v2\n")
	h.write("b/new.txt", "hello\n")
	took := eventually(t, 15*time.Second, "remote change shows", func() bool {
		b, err := os.ReadFile(filepath.Join(dir, "a.txt"))
		_, err2 := os.Stat(filepath.Join(dir, "b/new.txt"))
		return err == nil && string(b) == "v2\n" && err2 == nil
	})
	eventually(t, 15*time.Second, "remote change listed", func() bool {
		return listed(dir)["b"] && listed(filepath.Join(dir, "b"))["new.txt"]
	})
	t.Logf("another writer's change showed after %s", took)
	if _, err := h.c.Remove(context.Background(), client.RemoveRequest{Session: h.session, Path: "b", Recursive: true}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "remote removal shows", func() bool {
		_, err := os.Stat(filepath.Join(dir, "b"))
		return errors.Is(err, os.ErrNotExist) && !listed(dir)["b"]
	})
}

// TestMount_LiveAfterLocalWrite: a file this mount wrote, closed and
// flushed goes to the cache and follows other writers like any other.
// Three things had kept its staging copy, and with it the local version
// over every later remote one: a flush let go of nothing (the ops it had
// just stored still counted as in flight); a file created after the
// kernel stopped sending opens held a handle the kernel never releases
// (it sends no RELEASE in that mode either); a large file written without
// opens is kept on purpose until the kernel forgets it.
func TestMount_LiveAfterLocalWrite(t *testing.T) {
	h := start(t)
	h.write("seen.txt", "seen\n")
	h.write("big.bin", "small for now\n")
	m, dir := h.mount("")
	// A read-only open first: the kernel stops sending opens (noopen.go).
	mustRead(t, filepath.Join(dir, "seen.txt"))
	mustWrite(t, filepath.Join(dir, "small.txt"), "local\n")
	big := bytes.Repeat([]byte("local big file\n"), 40_000) // 600 KB, over one chunk
	if err := os.WriteFile(filepath.Join(dir, "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := m.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := h.read("big.bin"); got != string(big) {
		t.Fatalf("big.bin on the service: %d bytes, want the %d written", len(got), len(big))
	}
	// Stored, so small.txt's copy is in the cache now; big.bin's stays.
	if n := m.Staged(); n != 1 {
		t.Errorf("after the flush the mount holds %d staging files, want 1 (big.bin)", n)
	}
	h.write("small.txt", "remote\n")
	h.write("big.bin", "remote big\n")
	took := eventually(t, 15*time.Second, "the remote versions show", func() bool {
		s, err := os.ReadFile(filepath.Join(dir, "small.txt"))
		b, err2 := os.ReadFile(filepath.Join(dir, "big.bin"))
		return err == nil && err2 == nil && string(s) == "remote\n" && string(b) == "remote big\n"
	})
	t.Logf("another writer's change to files written here showed after %s", took)
	if n := m.Staged(); n != 0 {
		t.Errorf("after the remote changes the mount holds %d staging files, want 0", n)
	}
}

// TestMount_LiveAfterClose: another writer's change to a file open for
// writing here (its changes flushed) shows once the file is closed. The
// mount had passed over it while the file was open, and never looked
// again.
func TestMount_LiveAfterClose(t *testing.T) {
	h := start(t)
	m, dir := h.mount("")
	p := filepath.Join(dir, "open.txt")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("local\n"); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	h.write("open.txt", "remote\n")
	// Let the mount see the remote change while the file is open.
	eventually(t, 15*time.Second, "the mount reads the new head", func() bool {
		return m.Status().Position >= 3
	})
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	took := eventually(t, 15*time.Second, "the remote version shows after the close", func() bool {
		b, err := os.ReadFile(p)
		return err == nil && string(b) == "remote\n"
	})
	t.Logf("showed %s after the close", took)
}
