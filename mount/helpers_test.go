package mount_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/contentcache"
	"github.com/strand-dev/strand/handlers"
	"github.com/strand-dev/strand/mount"
	"github.com/strand-dev/strand/streams/streamstest"
)

// needFuse skips a test where the machine has no /dev/fuse, saying why. On
// a machine that has it, nothing is skipped: a mount that fails fails the
// test (and CI, which runs these as root).
func needFuse(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil {
		if os.Getenv("STRAND_REQUIRE_FUSE") != "" {
			t.Fatalf("STRAND_REQUIRE_FUSE is set but /dev/fuse is missing: %v", err)
		}
		t.Skipf("no /dev/fuse on this machine (%v): FUSE mount tests need it (and root or fusermount3)", err)
	}
}

// harness is an embedded JetStream with the service on it, a client of
// tenant acme and a session to mount.
type harness struct {
	t       *testing.T
	c       *client.Client
	session string
	cache   *contentcache.Cache
	state   string
	logs    *bytes.Buffer
	url     string // the embedded server's client URL, for other processes
}

func start(t *testing.T) *harness {
	t.Helper()
	return startWith(t, handlers.Options{})
}

// startWith is start with the service's options.
func startWith(t *testing.T, opts handlers.Options) *harness {
	t.Helper()
	needFuse(t)
	env := streamstest.Start(t)
	svc := handlers.NewService(env.Store, opts)
	if err := svc.Start(env.NC); err != nil {
		t.Fatalf("start service: %v", err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	if err := env.NC.Flush(); err != nil {
		t.Fatalf("flush: %v", err)
	}
	c := client.NewClient(env.NC, "acme")
	c.Actor = "mounter"
	s, err := c.CreateSession(context.Background(), client.CreateSessionRequest{})
	if err != nil {
		t.Fatalf("create session: %v", err)
	}
	cache, err := contentcache.Open(t.TempDir(), 0)
	if err != nil {
		t.Fatalf("open cache: %v", err)
	}
	return &harness{t: t, c: c, session: s.Session.ID, cache: cache, state: t.TempDir(), logs: &bytes.Buffer{},
		url: env.Server.ClientURL()}
}

func (h *harness) write(path, content string) {
	h.t.Helper()
	if _, err := h.c.Write(context.Background(), client.WriteRequest{Session: h.session, Path: path, Content: []byte(content)}); err != nil {
		h.t.Fatalf("write %s: %v", path, err)
	}
}

func (h *harness) read(path string) string {
	h.t.Helper()
	data, _, err := h.c.ReadAll(context.Background(), h.session, path, "")
	if err != nil {
		h.t.Fatalf("read %s: %v", path, err)
	}
	return string(data)
}

// mount mounts the session (at, when set) on a new folder.
func (h *harness) mount(at string, opts ...func(*mount.Options)) (*mount.Mount, string) {
	h.t.Helper()
	dir := h.t.TempDir()
	o := mount.Options{Client: h.c, Session: h.session, At: at, Dir: dir, Cache: h.cache, StateDir: h.state,
		FlushInterval: 50 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.MultiWriter(h.logs, testWriter{h.t}), nil))}
	for _, f := range opts {
		f(&o)
	}
	m, err := mount.New(context.Background(), o)
	if err != nil {
		h.t.Fatalf("mount: %v", err)
	}
	h.t.Cleanup(func() { _ = m.Close() })
	return m, dir
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", bytes.TrimRight(p, "\n"))
	return len(p), nil
}

// eventually waits for cond, failing after d.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

func mustWrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return string(b)
}

// otherUser is an ordinary user (nonRootUser) for tests that need a
// second, unprivileged caller, and a folder it can reach. It needs root.
type otherUser struct {
	t        *testing.T
	uid, gid int
	base     string
}

func newOtherUser(t *testing.T) *otherUser {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("not root (uid %d): a second, unprivileged user needs root to start its processes", os.Geteuid())
	}
	uid, gid := ordinaryUser(t)
	// t.TempDir's parents are root's, 0700: the user could not reach it.
	base, err := os.MkdirTemp("", "strand-"+nonRootUser+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	return &otherUser{t: t, uid: uid, gid: gid, base: base}
}

// dir makes a folder of the base the user can enter.
func (u *otherUser) dir(name string) string {
	u.t.Helper()
	d := filepath.Join(u.base, name)
	if err := os.Mkdir(d, 0o755); err != nil {
		u.t.Fatal(err)
	}
	return d
}

// run runs a shell script as the user, with path as $1.
func (u *otherUser) run(script, path string) ([]byte, error) {
	cmd := exec.Command("/bin/sh", "-c", script, "sh", path)
	cmd.Dir = u.base
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(u.uid), Gid: uint32(u.gid)}}
	return cmd.CombinedOutput()
}
