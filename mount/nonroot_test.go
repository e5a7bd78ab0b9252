package mount_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/contentcache"
	"github.com/strand-dev/strand/mount"
)

// nonRootUser is the ordinary user TestMount_NonRoot mounts as (made with
// useradd when the machine lacks it).
const nonRootUser = "strand-mount"

// The environment that makes the test binary the non-root mount process
// (TestMain) instead of running tests.
const (
	envNonRoot     = "STRAND_TEST_NONROOT_MOUNT"
	envNonRootNATS = "STRAND_TEST_NONROOT_NATS"
	envNonRootSess = "STRAND_TEST_NONROOT_SESSION"
)

func TestMain(m *testing.M) {
	if os.Getenv(envNonRoot) != "" {
		if err := nonRootMount(os.Getenv(envNonRoot)); err != nil {
			fmt.Fprintln(os.Stderr, "non-root mount:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestMount_NonRoot mounts a session as an ordinary user, through
// fusermount3 (no mount(2) permission): the test binary runs again under
// that user's uid and gid, mounts, reads what the service holds, writes a
// file and fsyncs it, checks the kernel's record of the mount, and
// unmounts through fusermount3. The service then holds the file, stored
// by the mount's actor.
func TestMount_NonRoot(t *testing.T) {
	needFuse(t)
	if os.Geteuid() != 0 {
		// The whole suite runs as an ordinary user here, through
		// fusermount3: every other test covers this case.
		t.Skipf("not root (uid %d): the other mount tests already run as an ordinary user", os.Geteuid())
	}
	if _, err := exec.LookPath("fusermount3"); err != nil {
		t.Fatalf("an ordinary user mounts through fusermount3 (package fuse3): %v", err)
	}
	h := start(t)
	h.write("hello.txt", "hello from the service\n")
	u := newOtherUser(t)
	uid, gid, base := u.uid, u.gid, u.base
	for _, d := range []string{"mnt", "state", "cache", "home"} {
		if err := os.Chown(u.dir(d), uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	// The test binary, where the user can run it.
	bin := filepath.Join(base, "mount.test")
	if err := copyExecutable(os.Args[0], bin); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Dir = filepath.Join(base, "home")
	cmd.Env = append(os.Environ(), envNonRoot+"="+base, envNonRootNATS+"="+h.url,
		envNonRootSess+"="+h.session, "HOME="+filepath.Join(base, "home"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	out, err := cmd.CombinedOutput()
	t.Logf("mount process (uid %d):\n%s", uid, out)
	if err != nil {
		t.Fatalf("the mount as uid %d failed: %v", uid, err)
	}
	if got := h.read("from-user.txt"); got != fmt.Sprintf("written by uid %d\n", uid) {
		t.Errorf("from-user.txt on the service: got %q", got)
	}
	page, err := h.c.Events(context.Background(), client.EventsRequest{Session: h.session})
	if err != nil {
		t.Fatal(err)
	}
	last := page.Events[len(page.Events)-1]
	if last.Actor != "ordinary-user" {
		t.Errorf("the mount's event: actor %q, want ordinary-user", last.Actor)
	}
}

// ordinaryUser returns the uid and gid of nonRootUser, making the user
// (no home, no login) when the machine lacks it.
func ordinaryUser(t *testing.T) (int, int) {
	t.Helper()
	u, err := user.Lookup(nonRootUser)
	if err != nil {
		path, lerr := exec.LookPath("useradd")
		if lerr != nil {
			t.Fatalf("no user %s and no useradd to make one: %v", nonRootUser, lerr)
		}
		if out, err := exec.Command(path, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", nonRootUser).CombinedOutput(); err != nil {
			// Another test process may have made it meanwhile.
			if _, lerr := user.Lookup(nonRootUser); lerr != nil {
				t.Fatalf("useradd %s: %v: %s", nonRootUser, err, out)
			}
		}
		if u, err = user.Lookup(nonRootUser); err != nil {
			t.Fatal(err)
		}
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		t.Fatal(err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		t.Fatal(err)
	}
	if uid == 0 {
		t.Fatalf("user %s is root", nonRootUser)
	}
	return uid, gid
}

func copyExecutable(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}

// nonRootMount is the mount process of TestMount_NonRoot, running as the
// ordinary user in the folder base.
func nonRootMount(base string) error {
	if os.Geteuid() == 0 {
		return fmt.Errorf("running as root")
	}
	nc, err := nats.Connect(os.Getenv(envNonRootNATS))
	if err != nil {
		return err
	}
	defer nc.Close()
	c := client.NewClient(nc, "acme")
	c.Actor = "ordinary-user"
	cache, err := contentcache.Open(filepath.Join(base, "cache"), 0)
	if err != nil {
		return err
	}
	dir := filepath.Join(base, "mnt")
	ctx := context.Background()
	m, err := mount.New(ctx, mount.Options{Client: c, Session: os.Getenv(envNonRootSess), Dir: dir, Cache: cache,
		StateDir: filepath.Join(base, "state"), Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	if err != nil {
		return err
	}
	defer m.Close() //nolint:errcheck // closed below; this is for the failures
	// The kernel records the mount as the user's (fusermount3 adds
	// user_id) and as a FUSE file system.
	info, err := mountInfo(dir)
	if err != nil {
		return err
	}
	fmt.Println("mountinfo:", info)
	if !strings.Contains(info, " fuse") || !strings.Contains(info, "user_id="+strconv.Itoa(os.Getuid())) {
		return fmt.Errorf("mountinfo of %s: %q: not a FUSE mount of uid %d", dir, info, os.Getuid())
	}
	got, err := os.ReadFile(filepath.Join(dir, "hello.txt"))
	if err != nil {
		return err
	}
	if string(got) != "hello from the service\n" {
		return fmt.Errorf("hello.txt: got %q", got)
	}
	f, err := os.Create(filepath.Join(dir, "from-user.txt"))
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(f, "written by uid %d\n", os.Getuid()); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync: %w", err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(dir, "from-user.txt"), &st); err != nil {
		return err
	}
	if int(st.Uid) != os.Getuid() {
		return fmt.Errorf("from-user.txt is owned by uid %d, want %d", st.Uid, os.Getuid())
	}
	if err := m.Close(); err != nil {
		return fmt.Errorf("unmount: %w", err)
	}
	if info, _ := mountInfo(dir); info != "" {
		return fmt.Errorf("still mounted after Close: %s", info)
	}
	fmt.Println("mounted, read, wrote, fsynced and unmounted as uid", os.Getuid())
	return nil
}

// mountInfo returns the line of /proc/self/mountinfo for the mount point
// dir ("" if none).
func mountInfo(dir string) (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) > 4 && fields[4] == dir {
			return sc.Text(), nil
		}
	}
	return "", sc.Err()
}
