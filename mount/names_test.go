package mount_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/handlers"
	"github.com/strand-dev/strand/mount"
)

// TestMount_NamesTheServiceRefuses: a name the service would refuse is
// refused when it is made, as a local disk refuses one it cannot hold (a
// name over 255 bytes ENAMETOOLONG; a control character, a backslash or
// bytes that are not UTF-8 EINVAL), never taken here and set aside as a
// conflict at the flush. The longest name and the deepest path the service
// takes work.
func TestMount_NamesTheServiceRefuses(t *testing.T) {
	h := start(t)
	m, dir := h.mount("", func(o *mount.Options) { o.FlushInterval = time.Hour })
	long := strings.Repeat("n", 256)
	if err := os.WriteFile(filepath.Join(dir, "ok.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		want syscall.Errno
	}{
		{long, syscall.ENAMETOOLONG},
		{"new\nline", syscall.EINVAL},
		{"tab\there", syscall.EINVAL},
		{"back\\slash", syscall.EINVAL},
		{"bad\xffutf8", syscall.EINVAL},
	} {
		p := filepath.Join(dir, tc.name)
		for what, err := range map[string]error{
			"create":  os.WriteFile(p, []byte("x"), 0o644),
			"mkdir":   os.Mkdir(p, 0o755),
			"symlink": os.Symlink("ok.txt", p),
			"rename":  os.Rename(filepath.Join(dir, "ok.txt"), p),
		} {
			if !errors.Is(err, tc.want) {
				t.Errorf("%s %q: %v, want %v", what, tc.name, err, tc.want)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, long)); !errors.Is(err, syscall.ENAMETOOLONG) {
		t.Errorf("stat of a 256-byte name: %v, want ENAMETOOLONG", err)
	}
	// The longest name, and a path 64 deep (one more is refused).
	longest := strings.Repeat("l", domain.MaxComponentBytes)
	if err := os.WriteFile(filepath.Join(dir, longest), []byte("longest"), 0o644); err != nil {
		t.Fatalf("a %d-byte name: %v", len(longest), err)
	}
	deep := dir
	for range domain.MaxPathDepth - 1 {
		deep = filepath.Join(deep, "d")
	}
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatalf("a path %d deep: %v", domain.MaxPathDepth-1, err)
	}
	if err := os.WriteFile(filepath.Join(deep, "leaf"), []byte("deep"), 0o644); err != nil {
		t.Fatalf("a file %d deep: %v", domain.MaxPathDepth, err)
	}
	if err := os.Mkdir(filepath.Join(deep, "leaf2"), 0o755); err != nil {
		t.Fatalf("a folder %d deep: %v", domain.MaxPathDepth, err)
	}
	if err := os.Mkdir(filepath.Join(deep, "leaf2", "x"), 0o755); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("a folder %d deep: %v, want EINVAL", domain.MaxPathDepth+1, err)
	}
	if err := m.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := m.Status(); len(st.Conflicts) != 0 || st.Pending != 0 {
		t.Errorf("after the flush: %d conflicts (%+v), %d pending", len(st.Conflicts), st.Conflicts, st.Pending)
	}
	if got := h.read(longest); got != "longest" {
		t.Errorf("%d-byte name on the service: %q", len(longest), got)
	}
	if got := h.read(strings.TrimPrefix(filepath.Join(strings.TrimPrefix(deep, dir), "leaf"), "/")); got != "deep" {
		t.Errorf("the deep file on the service: %q", got)
	}
}

// TestMount_SecondMountRefused: a second read-write mount of a session
// with the same state folder is refused with conflict, naming where the
// first one is; a read-only one at a position is not; once the first is
// unmounted the session mounts again.
func TestMount_SecondMountRefused(t *testing.T) {
	h := start(t)
	h.write("a.txt", "a")
	first, dir := h.mount("")
	second := mount.Options{Client: h.c, Session: h.session, Dir: t.TempDir(), Cache: h.cache, StateDir: h.state}
	_, err := mount.New(context.Background(), second)
	if err == nil {
		t.Fatal("a second read-write mount of the session was made")
	}
	if domain.ErrorCode(err) != domain.CodeConflict || !strings.Contains(err.Error(), dir) {
		t.Errorf("second mount: %v; want conflict naming %s", err, dir)
	}
	ro := second
	ro.At = "1"
	m, err := mount.New(context.Background(), ro)
	if err != nil {
		t.Fatalf("a read-only mount beside it: %v", err)
	}
	_ = m.Close()
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	m, err = mount.New(context.Background(), second)
	if err != nil {
		t.Fatalf("mount after the first was unmounted: %v", err)
	}
	_ = m.Close()
}

// TestMount_FsyncErrors: an fsync whose flush the service refuses answers
// what a local disk answers in the same case: the tenant's bytes used up,
// EDQUOT; the session archived, EROFS. The changes stay pending.
func TestMount_FsyncErrors(t *testing.T) {
	h := startWith(t, handlers.Options{UsageRefresh: 20 * time.Millisecond,
		Limits: &handlers.LimitsConfig{Default: handlers.Limits{BytesStored: 64 << 10}}})
	m, dir := h.mount("", func(o *mount.Options) { o.FlushInterval = time.Hour })
	fsync := func(name string, size int) error {
		t.Helper()
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.Write(make([]byte, size)); err != nil {
			t.Fatal(err)
		}
		return f.Sync()
	}
	// The first write fits; the tenant's count catches up with it, and a
	// write after that is refused.
	if err := fsync("first.bin", 100<<10); err != nil {
		t.Fatalf("the first write: %v", err)
	}
	var err error
	eventually(t, 10*time.Second, "a write past the tenant's bytes refused", func() bool {
		err = fsync("more.bin", 1000)
		return err != nil
	})
	if !errors.Is(err, syscall.EDQUOT) {
		t.Errorf("fsync past the tenant's bytes: %v, want EDQUOT", err)
	}
	if st := m.Status(); st.Pending == 0 {
		t.Error("the refused change is not pending any more")
	}

	h2 := start(t)
	m2, dir2 := h2.mount("", func(o *mount.Options) { o.FlushInterval = time.Hour })
	if _, err := h2.c.ArchiveSession(context.Background(), client.SessionRequest{Session: h2.session}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir2, "after.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("x"); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); !errors.Is(err, syscall.EROFS) {
		t.Errorf("fsync in an archived session: %v, want EROFS", err)
	}
	if st := m2.Status(); st.Pending == 0 {
		t.Error("the refused change is not pending any more")
	}
}

// TestMount_FolderRenamePastThePathBounds: moving a folder where a path
// below it would be longer or deeper than the service takes is refused
// by the rename itself (ENAMETOOLONG, EINVAL), as nameErrno refuses a
// name; the folder stays where it was, and a move that fits is taken.
func TestMount_FolderRenamePastThePathBounds(t *testing.T) {
	h := start(t)
	m, dir := h.mount("", func(o *mount.Options) { o.FlushInterval = time.Hour })
	// Long: 15 names of 255 bytes below "long" (3,840 bytes with their
	// slashes), then a file.
	name := strings.Repeat("n", domain.MaxComponentBytes)
	p := filepath.Join(dir, "long")
	for range 15 {
		p = filepath.Join(p, name)
	}
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p, "leaf.txt"), []byte("long"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Deep: 60 folders below "deep", then a file.
	p = filepath.Join(dir, "deep")
	for range 60 {
		p = filepath.Join(p, "d")
	}
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p, "leaf.txt"), []byte("deep"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Room below "wide" for "long" and its subtree but not for "long2";
	// room for "deep" and its subtree three folders down but not four.
	wide := filepath.Join(dir, strings.Repeat("w", domain.MaxPathBytes-3840-len("/leaf.txt")-len("/long")))
	if err := os.Mkdir(wide, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "a", "b", "c"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		from, to string
		want     error
	}{
		{"long", filepath.Join(wide, "long2"), syscall.ENAMETOOLONG},
		{"deep", filepath.Join(dir, "a", "b", "c", "deep"), syscall.EINVAL},
		{"long", filepath.Join(wide, "long"), nil},
		{"deep", filepath.Join(dir, "a", "b", "deep"), nil},
	} {
		from := filepath.Join(dir, tc.from)
		if tc.want == nil {
			if err := os.Rename(from, tc.to); err != nil {
				t.Errorf("rename %s to %s: %v", tc.from, strings.TrimPrefix(tc.to, dir), err)
			}
			continue
		}
		if err := os.Rename(from, tc.to); !errors.Is(err, tc.want) {
			t.Errorf("rename %s to %d bytes, %d deep: %v, want %v", tc.from, len(tc.to)-len(dir), strings.Count(tc.to[len(dir):], "/"), err, tc.want)
		}
		if _, err := os.Stat(from); err != nil {
			t.Errorf("%s after its rename was refused: %v", tc.from, err)
		}
	}
	if err := m.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := m.Status(); len(st.Conflicts) != 0 || st.Pending != 0 {
		t.Errorf("after the flush: %d conflicts (%+v), %d pending", len(st.Conflicts), st.Conflicts, st.Pending)
	}
	deep := "a/b/deep" + strings.Repeat("/d", 60) + "/leaf.txt"
	if got := h.read(deep); got != "deep" {
		t.Errorf("%s on the service: %q", deep, got)
	}
}
