package mount_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/mount"
)

// TestMount_KillPriv checks that a write, a truncate and a change of owner
// clear set-ID bits and capabilities on the mount as they do on the local
// disk: the same steps run in a folder of the machine's own file system and
// in the mount, and every file ends with the same mode and the same
// security.capability in both. The mount clears them itself
// (FUSE_HANDLE_KILLPRIV_V2, killpriv.go); the kernel no longer asks before
// each write. Writes by a caller without CAP_FSETID run as an ordinary
// user, so the test needs root.
func TestMount_KillPriv(t *testing.T) {
	needFuse(t)
	h := start(t)
	u := newOtherUser(t)
	native, mnt := u.dir("native"), u.dir("mnt")
	m, _ := h.mount("", func(o *mount.Options) { o.Dir = mnt; o.AllowOther = true })
	asUser := func(script, path string) {
		t.Helper()
		if out, err := u.run(script, path); err != nil {
			t.Fatalf("as %s: %s %s: %v: %s", nonRootUser, script, path, err, out)
		}
	}
	appendRoot := func(path string) {
		t.Helper()
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString("more\n"); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	chown := func(path string) {
		t.Helper()
		if err := os.Chown(path, 0, 0); err != nil {
			t.Fatal(err)
		}
	}
	// A capability set as setcap(8) writes it: revision 2, effective,
	// CAP_NET_RAW permitted.
	caps := []byte{0x01, 0, 0, 0x02, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	hasCaps := func(path string) string {
		t.Helper()
		buf := make([]byte, 64)
		_, err := syscall.Getxattr(path, "security.capability", buf)
		switch {
		case err == nil:
			return "caps"
		case errors.Is(err, syscall.ENODATA):
			return "no caps"
		default:
			t.Fatalf("getxattr %s: %v", path, err)
			return ""
		}
	}
	setCaps := func(path string) {
		t.Helper()
		if err := syscall.Setxattr(path, "security.capability", caps, 0); err != nil {
			t.Fatalf("setxattr security.capability %s: %v", path, err)
		}
	}

	steps := []struct {
		name string
		mode uint32
		do   func(path string) string // what else to compare
	}{
		{"user-write-setuid", 0o4757, func(p string) string { asUser(`printf more >> "$1"`, p); return "" }},
		{"user-write-setgid-groupexec", 0o2777, func(p string) string { asUser(`printf more >> "$1"`, p); return "" }},
		{"user-write-setgid-nogroupexec", 0o2767, func(p string) string { asUser(`printf more >> "$1"`, p); return "" }},
		{"user-truncate-setuid", 0o4757, func(p string) string { asUser(`: > "$1"`, p); return "" }},
		{"root-write-setuid", 0o4757, func(p string) string { appendRoot(p); return "" }},
		{"root-chown-setuid", 0o4755, func(p string) string { chown(p); return "" }},
		{"root-chown-setgid-groupexec", 0o2755, func(p string) string { chown(p); return "" }},
		{"root-chown-setgid-nogroupexec", 0o2745, func(p string) string { chown(p); return "" }},
		{"root-chmod-setuid", 0o755, func(p string) string {
			if err := syscall.Chmod(p, 0o4755); err != nil {
				t.Fatal(err)
			}
			return ""
		}},
		// The kernel checks a file for capabilities once, then leaves
		// it to the mount: the second write is the mount's.
		{"root-write-caps-twice", 0o755, func(p string) string {
			setCaps(p)
			before := hasCaps(p)
			appendRoot(p)
			first := hasCaps(p)
			setCaps(p)
			appendRoot(p)
			return strings.Join([]string{before, first, hasCaps(p)}, ", ")
		}},
		{"user-write-caps", 0o757, func(p string) string {
			setCaps(p)
			asUser(`printf more >> "$1"`, p)
			return hasCaps(p)
		}},
	}
	run := func(root string) map[string]string {
		got := map[string]string{}
		for _, s := range steps {
			p := filepath.Join(root, s.name)
			if err := os.WriteFile(p, []byte("content\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := syscall.Chmod(p, s.mode); err != nil {
				t.Fatal(err)
			}
			extra := s.do(p)
			var st syscall.Stat_t
			if err := syscall.Stat(p, &st); err != nil {
				t.Fatal(err)
			}
			got[s.name] = fmt.Sprintf("%04o %s", st.Mode&0o7777, extra)
		}
		return got
	}
	want, got := run(native), run(mnt)
	for _, s := range steps {
		if got[s.name] != want[s.name] {
			t.Errorf("%s: mount %q, local disk %q", s.name, got[s.name], want[s.name])
		}
	}
	// The local disk is the reference; that it cleared what it should is
	// the premise of the comparison.
	if want["user-write-setuid"] != "0757 " || want["root-chown-setuid"] != "0755 " || want["root-write-caps-twice"] != "0755 caps, no caps, no caps" {
		t.Fatalf("the local disk did not clear set-ID bits or capabilities as expected: %v", want)
	}

	// A capability set by another writer reaches the mount through the
	// live tail, unseen by the kernel, which checked the file before and
	// does not again: the mount removes it on the next write.
	ctx := context.Background()
	remote := filepath.Join(mnt, "remote-caps")
	if err := os.WriteFile(remote, []byte("content\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	appendRoot(remote)
	if err := m.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.c.Request(ctx, "fs", "xattr.set", client.XattrRequest{Session: h.session, Path: "remote-caps", Name: "security.capability", Value: caps}, nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the capability set on the service shows in the mount", func() bool { return hasCaps(remote) == "caps" })
	appendRoot(remote)
	if got := hasCaps(remote); got != "no caps" {
		t.Errorf("remote-caps after a write: %s, want no caps", got)
	}

	// The modes the mount cleared reach the service.
	if err := m.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	man, err := h.c.Manifest(ctx, client.ManifestRequest{Session: h.session, Xattrs: true})
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, e := range man.Entries {
		if e.Path == "remote-caps" {
			if _, ok := e.Xattrs["security.capability"]; ok {
				t.Errorf("%s on the service: still has security.capability", e.Path)
			}
		}
		for _, s := range steps {
			if e.Path != s.name {
				continue
			}
			seen++
			mode, _, _ := strings.Cut(want[s.name], " ")
			if fmt.Sprintf("%04o", e.Mode) != mode {
				t.Errorf("%s on the service: mode %04o, want %s", e.Path, e.Mode, mode)
			}
			if _, ok := e.Xattrs["security.capability"]; ok {
				t.Errorf("%s on the service: still has security.capability", e.Path)
			}
		}
	}
	if seen != len(steps) {
		t.Errorf("the service holds %d of the %d files", seen, len(steps))
	}
}

// TestMount_AllowOtherPermissions: with --allow-other, other users meet
// the same permission checks in the mount as on the local disk (the mount
// asks the kernel for default_permissions); files show as the mounting
// user's.
func TestMount_AllowOtherPermissions(t *testing.T) {
	h := start(t)
	u := newOtherUser(t)
	native, mnt := u.dir("native"), u.dir("mnt")
	h.mount("", func(o *mount.Options) { o.Dir = mnt; o.AllowOther = true })
	files := []struct {
		name string
		mode uint32
	}{{"private", 0o600}, {"readable", 0o644}, {"shared", 0o666}}
	try := func(root string) map[string]string {
		got := map[string]string{}
		for _, f := range files {
			p := filepath.Join(root, f.name)
			if err := os.WriteFile(p, []byte("content\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, os.FileMode(f.mode)); err != nil {
				t.Fatal(err)
			}
			_, rerr := u.run(`cat "$1" > /dev/null`, p)
			_, werr := u.run(`printf more >> "$1"`, p)
			got[f.name] = fmt.Sprintf("read %v, write %v", rerr == nil, werr == nil)
		}
		d := filepath.Join(root, "dir")
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		_, cerr := u.run(`printf x > "$1"/new`, d)
		got["create in a 0755 folder of root's"] = fmt.Sprintf("%v", cerr == nil)
		return got
	}
	want, got := try(native), try(mnt)
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s, as %s: mount %q, local disk %q", k, nonRootUser, got[k], w)
		}
	}
	if want["private"] != "read false, write false" || want["shared"] != "read true, write true" {
		t.Fatalf("the local disk did not check permissions as expected: %v", want)
	}
}
