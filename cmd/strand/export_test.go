package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

// exEntry is one entry of a test tree.
type exEntry struct {
	name, kind, body string // kind: file, dir, symlink (body: target)
	mode             int64
}

var exTree = []exEntry{
	{"README.md", "file", "# export\n", 0o644},
	{"bin", "dir", "", 0o755},
	{"bin/run", "file", "#!/bin/sh\necho hi\n", 0o755},
	{"lib", "dir", "", 0o755},
	{"lib/a.go", "file", "package lib\n", 0o644},
	{"lib/blob", "file", strings.Repeat("x", 700<<10), 0o644},
	{"lib/link", "symlink", "a.go", 0o777},
	{"lib-file", "file", "sorts after lib/ in git\n", 0o644},
}

func exTar(t *testing.T, entries []exEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode}
		switch e.kind {
		case "dir":
			h.Typeflag, h.Name = tar.TypeDir, e.name+"/"
		case "symlink":
			h.Typeflag, h.Linkname = tar.TypeSymlink, e.body
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.kind == "file" {
			tw.Write([]byte(e.body))
		}
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

// readTar reads an archive into name -> entry.
func readTar(t *testing.T, b []byte) (map[string]exEntry, []string, time.Time) {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(b))
	out := map[string]exEntry{}
	var order []string
	var mtime time.Time
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("exported tar: %v", err)
		}
		e := exEntry{name: strings.TrimSuffix(h.Name, "/"), mode: h.Mode}
		switch h.Typeflag {
		case tar.TypeDir:
			e.kind = "dir"
		case tar.TypeSymlink:
			e.kind, e.body = "symlink", h.Linkname
		default:
			e.kind = "file"
			data, _ := io.ReadAll(tr)
			e.body = string(data)
		}
		out[e.name] = e
		order = append(order, e.name)
		mtime = h.ModTime
	}
	return out, order, mtime
}

func exGit(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func TestCLI_ImportExport(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	srv := startServe(t, t.TempDir())
	c := newCLI(t, srv.URL)
	dir := t.TempDir()
	archive := filepath.Join(dir, "in.tar.gz")
	if err := os.WriteFile(archive, exTar(t, exTree), 0o644); err != nil {
		t.Fatal(err)
	}
	c.ok("source", "create", "proj")
	var job client.JobReply
	c.okJSON(&job, "source", "import", "proj", "--tar", archive, "--wait")
	if job.Job.State != domain.JobSucceeded || job.Job.Revision != 1 {
		t.Fatalf("import job = %+v", job.Job)
	}
	var sess client.SessionReply
	c.okJSON(&sess, "session", "create", "--source", "proj@1")
	id := sess.Session.ID

	t.Run("Tar", func(t *testing.T) {
		out := c.ok("export", "tar", id)
		got, order, mtime := readTar(t, []byte(out))
		if len(got) != len(exTree) {
			t.Fatalf("exported %d entries, want %d: %v", len(got), len(exTree), order)
		}
		for _, w := range exTree {
			if g := got[w.name]; g != w {
				t.Errorf("%s = %+v, want %+v", w.name, g, w)
			}
		}
		if mtime.Before(time.Now().Add(-time.Hour)) {
			t.Errorf("mtime %v is not the event time", mtime)
		}
		if again := c.ok("export", "tar", id+"@"+strconv.FormatUint(sess.Position, 10)); again != out {
			t.Error("two exports of the same position differ")
		}
		// Round trip: the export imports back to the same root.
		back := filepath.Join(dir, "back.tar")
		c.ok("export", "tar", id, "--out", back)
		var j client.JobReply
		c.okJSON(&j, "source", "import", "proj", "--tar", back, "--wait")
		if j.Job.Root != job.Job.Root {
			t.Errorf("re-import root %s, want %s", j.Job.Root, job.Job.Root)
		}
	})

	t.Run("Git", func(t *testing.T) {
		repo := filepath.Join(dir, "export.git")
		c.ok("export", "git", id, "--repo", repo, "--branch", "main")
		exGit(t, repo, "fsck", "--strict")
		ls := exGit(t, repo, "ls-tree", "-r", "main")
		want := map[string]string{"README.md": "100644", "bin/run": "100755", "lib/a.go": "100644", "lib/blob": "100644", "lib/link": "120000", "lib-file": "100644"}
		lines := strings.Split(strings.TrimSpace(ls), "\n")
		if len(lines) != len(want) {
			t.Fatalf("ls-tree lists %d entries, want %d:\n%s", len(lines), len(want), ls)
		}
		for _, l := range lines {
			meta, path, _ := strings.Cut(l, "\t")
			if mode := strings.Fields(meta)[0]; want[path] != mode {
				t.Errorf("%s has mode %s, want %s", path, mode, want[path])
			}
		}
		for _, e := range exTree {
			if e.kind == "dir" {
				continue
			}
			if got := exGit(t, repo, "cat-file", "-p", "main:"+e.name); got != e.body {
				t.Errorf("%s in git differs (%d bytes, want %d)", e.name, len(got), len(e.body))
			}
		}

		// A Strand commit gives author and message; the previous export
		// is the parent.
		c.ok("fs", "write", id, "README.md", "--from", archiveFile(t, dir, "changed\n"))
		var cm client.CommitReply
		c.okJSON(&cm, "commit", "create", id, "--message", "Second version", "--author", "Ada Lovelace <ada@example.com>")
		first := strings.TrimSpace(exGit(t, repo, "rev-parse", "main"))
		c.ok("export", "git", id+"@"+cm.Commit.ID, "--repo", repo, "--branch", "main")
		exGit(t, repo, "fsck", "--strict")
		log := exGit(t, repo, "log", "-1", "--format=%an%n%ae%n%s%n%P", "main")
		if log != "Ada Lovelace\nada@example.com\nSecond version\n"+first+"\n" {
			t.Errorf("git log = %q", log)
		}
		if got := exGit(t, repo, "show", "main:README.md"); got != "changed\n" {
			t.Errorf("README.md = %q", got)
		}
	})

	t.Run("SyncMergePromote", func(t *testing.T) {
		next := filepath.Join(dir, "next.tar.gz")
		os.WriteFile(next, exTar(t, []exEntry{{"README.md", "file", "synced\n", 0o644}, {"new.txt", "file", "n\n", 0o644}}), 0o644)
		var sync client.SyncReply
		c.okJSON(&sync, "fs", "sync", id, "--tar", next, "--delete")
		if !sync.Changed || sync.Removed == 0 {
			t.Fatalf("sync = %+v", sync)
		}
		var fork client.SessionReply
		c.okJSON(&fork, "session", "fork", id)
		c.ok("fs", "write", fork.Session.ID, "README.md", "--from", archiveFile(t, dir, "fork\n"))
		c.ok("fs", "write", id, "README.md", "--from", archiveFile(t, dir, "parent\n"))
		c.fail("conflict", "merge", fork.Session.ID, id)
		var m client.MergeReply
		c.okJSON(&m, "merge", fork.Session.ID, id, "--path", "README.md=theirs")
		if !m.Applied {
			t.Fatalf("merge = %+v", m)
		}
		if got := c.ok("fs", "cat", id, "README.md"); got != "fork\n" {
			t.Fatalf("README.md after merge = %q", got)
		}
		var src client.SourceReply
		c.okJSON(&src, "source", "promote", "proj", id)
		if src.Revision != 3 {
			t.Fatalf("promote = %+v", src)
		}
		c.okJSON(&src, "source", "get", "proj")
		if len(src.Source.Revisions) != 3 || src.Source.Revisions[2].Origin.Session != id {
			t.Fatalf("source = %+v", src.Source)
		}
		c.ok("source", "rm", "proj")
		c.fail("not_found", "session", "create", "--source", "proj")
		if out := c.ok("source", "list"); !strings.Contains(out, "deleted") {
			t.Fatalf("source list = %q", out)
		}
	})

	t.Run("GitImport", func(t *testing.T) {
		repo := t.TempDir()
		exGit(t, repo, "init", "-q", "-b", "main")
		os.WriteFile(filepath.Join(repo, "x.sh"), []byte("#!/bin/sh\n"), 0o755)
		exGit(t, repo, "add", "-A")
		exGit(t, repo, "-c", "user.name=T", "-c", "user.email=t@e", "commit", "-q", "-m", "x")
		c.ok("source", "create", "fromgit")
		var j client.JobReply
		c.okJSON(&j, "source", "import", "fromgit", "--git", repo, "--ref", "main", "--wait")
		if j.Job.State != domain.JobSucceeded || j.Job.Files != 1 {
			t.Fatalf("git import = %+v", j.Job)
		}
		c.fail("forbidden", "source", "import", "fromgit", "--dir", repo)
	})
}

func archiveFile(t *testing.T, dir, content string) string {
	t.Helper()
	f, err := os.CreateTemp(dir, "content-*")
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(content)
	f.Close()
	return f.Name()
}
