package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strand-dev/strand/client"
)

// needFuse skips where the machine has no /dev/fuse (see mount/helpers_test.go).
func needFuse(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil {
		if os.Getenv("STRAND_REQUIRE_FUSE") != "" {
			t.Fatalf("STRAND_REQUIRE_FUSE is set but /dev/fuse is missing: %v", err)
		}
		t.Skipf("no /dev/fuse on this machine (%v): FUSE mount tests need it", err)
	}
}

// runMount runs `strand mount` in the test process until it is unmounted;
// the returned channel gets its exit code.
func runMount(t *testing.T, c *cli, args ...string) (*syncBuffer, chan int) {
	t.Helper()
	var stdout, stderr syncBuffer
	m := NewMain(strings.NewReader(""), &stdout, &stderr)
	m.Getenv = func(k string) string { return c.env[k] }
	done := make(chan int, 1)
	// exited is closed when Run returned: the test may have taken the exit
	// code from done already.
	exited := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
		}
	})
	go func() {
		done <- m.Run(ctx, append(args, "--server", c.server))
		close(exited)
	}()
	waitFor(t, "mount ready", func() bool {
		select {
		case code := <-done:
			t.Fatalf("strand mount exited with %d; stderr: %s", code, &stderr)
		default:
		}
		return strings.Contains(stdout.String(), "mounted ")
	})
	return &stderr, done
}

// TestCLI_MountToolchain: real tools in a mounted session (git, go build,
// tar x of 1,000 files); after unmount, fs ls and export tar match what was
// written and audit verify passes.
func TestCLI_MountToolchain(t *testing.T) {
	needFuse(t)
	for _, tool := range []string{"git", "go", "tar"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: %v", tool, err)
		}
	}
	srv := startServe(t, t.TempDir())
	c := newCLI(t, srv.URL)
	var created client.SessionReply
	c.okJSON(&created, "session", "create")
	id := created.Session.ID
	dir := t.TempDir()
	state, cache := t.TempDir(), t.TempDir()
	flags := []string{"--state", state, "--cache", cache}
	stderr, done := runMount(t, c, append([]string{"mount", id, dir, "--flush-interval", "200ms"}, flags...)...)

	// Tools run with their working directory outside the mount and are
	// told where to work (-C): between fork and exec a child of this
	// process must not touch the mount this same process serves (a Go
	// program stopped for its garbage collector while the child waits on
	// the file system would wait forever; see docs/mounts.md).
	outside := t.TempDir()
	sh := func(name string, args ...string) {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = outside
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
			"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com", "GOFLAGS=-mod=mod", "GOWORK=off")
		start := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		t.Logf("%s %s: %s", name, strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
	}
	// go build of a small module.
	mod := filepath.Join(dir, "hello")
	if err := os.MkdirAll(mod, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(mod, "go.mod"), "module example.com/hello\n\ngo 1.21\n")
	writeFile(t, filepath.Join(mod, "main.go"), "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello from a mount\") }\n")
	sh("go", "build", "-C", mod, "-o", "hello", ".")
	// Run a copy: exec of a file on the mount from the process serving it
	// is what the note above forbids.
	bin, err := os.ReadFile(filepath.Join(mod, "hello"))
	if err != nil {
		t.Fatal(err)
	}
	runnable := filepath.Join(outside, "hello")
	if err := os.WriteFile(runnable, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(runnable).Output(); err != nil || string(out) != "hello from a mount\n" {
		t.Fatalf("the built binary: %q, %v", out, err)
	}
	// tar x of a 1,000-file archive.
	archive := filepath.Join(t.TempDir(), "files.tar")
	want := makeArchive(t, archive, 1000)
	sh("tar", "-C", dir, "-xf", archive, "--no-same-owner")
	// git init, add, commit (lock files, renames, fsyncs).
	sh("git", "-C", dir, "init", "-q")
	sh("git", "-C", dir, "add", "-A")
	sh("git", "-C", dir, "commit", "-q", "-m", "work done in a mount")
	sh("git", "-C", dir, "status", "--porcelain")

	local := readTree(t, dir)
	for p, content := range want {
		if local["tree/"+p] != content {
			t.Fatalf("tree/%s in the mount: got %q, want %q", p, local["tree/"+p], content)
		}
	}
	c.ok(append([]string{"mount", "--status", dir}, flags...)...)
	c.ok(append([]string{"unmount", dir}, flags...)...)
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("strand mount exited with %d; stderr: %s", code, stderr)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("strand mount did not exit after unmount")
	}
	if ents, err := os.ReadDir(dir); err != nil || len(ents) != 0 {
		t.Errorf("mount point after unmount: %d entries, %v; want empty", len(ents), err)
	}

	// The service holds exactly what was written: export tar equals the
	// tree seen in the mount, and fs ls lists the same paths.
	var ls struct {
		Entries []client.EntryView `json:"entries"`
	}
	lsOut := c.ok("fs", "ls", id, "--json")
	if err := json.Unmarshal([]byte(lsOut), &ls); err != nil {
		t.Fatalf("fs ls: %v\n%.300s", err, lsOut)
	}
	exported := untar(t, []byte(c.ok("export", "tar", id)))
	if len(exported) != len(local) {
		t.Errorf("export tar: %d files, the mount had %d", len(exported), len(local))
	}
	for p, content := range local {
		if exported[p] != content {
			t.Errorf("export tar: %s differs from what was written in the mount", p)
			break
		}
	}
	if len(ls.Entries) == 0 {
		t.Errorf("fs ls lists nothing")
	}
	if out := c.ok("audit", "verify", "--session", id); !strings.HasPrefix(out, "OK") {
		t.Errorf("audit verify: %s", out)
	}
}

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// makeArchive writes a tar of n small files in nested folders and returns
// their contents by path.
func makeArchive(t *testing.T, name string, n int) map[string]string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	want := map[string]string{}
	dirs := map[string]bool{}
	for i := 0; i < n; i++ {
		d := fmt.Sprintf("tree/d%02d/e%d", i%40, i%3)
		for _, dd := range []string{"tree", filepath.Dir(d), d} {
			if !dirs[dd] {
				dirs[dd] = true
				_ = tw.WriteHeader(&tar.Header{Name: dd + "/", Typeflag: tar.TypeDir, Mode: 0o755})
			}
		}
		p := fmt.Sprintf("%s/f%04d.txt", d, i)
		content := strings.Repeat(fmt.Sprintf("line %d of file %d\n", i%7, i), 1+i%20)
		if err := tw.WriteHeader(&tar.Header{Name: p, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(content)); err != nil {
			t.Fatal(err)
		}
		want[strings.TrimPrefix(p, "tree/")] = content
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return want
}

// readTree reads every regular file under dir by relative path (symlinks
// by their target, prefixed with "->").
func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			out[rel] = "->" + target
			return err
		case d.Type().IsRegular():
			b, err := os.ReadFile(p)
			out[rel] = string(b)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func untar(t *testing.T, data []byte) map[string]string {
	t.Helper()
	out := map[string]string{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("export tar: %v", err)
		}
		switch h.Typeflag {
		case tar.TypeReg:
			b, _ := io.ReadAll(tr)
			out[strings.TrimPrefix(h.Name, "./")] = string(b)
		case tar.TypeSymlink:
			out[strings.TrimPrefix(h.Name, "./")] = "->" + h.Linkname
		}
	}
}
