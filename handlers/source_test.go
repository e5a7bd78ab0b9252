package handlers_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/handlers"
	"github.com/strand-dev/strand/streams"
	"github.com/strand-dev/strand/streams/streamstest"
)

// srcEnv is an embedded JetStream with the service on it, importing
// directories allowed, and a client for tenant "acme" that uploads in
// small chunks (so archives span several).
type srcEnv struct {
	root *testing.T
	env  *streamstest.Env
	svc  *handlers.Service
	c    *client.Client
	opts handlers.Options
}

func startSources(t *testing.T, opts ...handlers.Options) *srcEnv {
	t.Helper()
	var o handlers.Options
	if len(opts) > 0 {
		o = opts[0]
	}
	env := streamstest.StartSuite(t)
	e := &srcEnv{root: t, env: env, c: client.NewClient(env.NC, "acme"), opts: o}
	e.c.ChunkSize = 4 << 10
	e.svc = startService(t, t, env, env.Store, o)
	return e
}

// session creates an empty session and returns its id.
func (e *srcEnv) session(t *testing.T) string {
	t.Helper()
	s, err := e.c.CreateSession(t.Context(), client.CreateSessionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return s.Session.ID
}

// restartFresh replaces the service with one on a new store: no cached
// state, every answer from the streams.
func (e *srcEnv) restartFresh(t *testing.T) {
	t.Helper()
	if err := e.svc.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store, err := streams.Open(ctx, e.env.NC, streams.Config{}, nil)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	e.root.Cleanup(store.Close)
	e.svc = startService(t, e.root, e.env, store, e.opts)
}

// srcFile is one entry of a test archive or tree.
type srcFile struct {
	path, kind, body string // kind: file, dir, symlink (body: target)
	mode             int64
}

var srcFiles = []srcFile{
	{"README.md", "file", "# project\n", 0o644},
	{"bin", "dir", "", 0o755},
	{"bin/run.sh", "file", "#!/bin/sh\necho run\n", 0o755},
	{"src", "dir", "", 0o750},
	{"src/main.go", "file", "package main\n\nfunc main() {}\n", 0o644},
	{"src/big.bin", "file", strings.Repeat("0123456789abcdef", 2048) + "\x00tail", 0o600},
	{"src/empty", "file", "", 0o644},
	{"link-to-main", "symlink", "src/main.go", 0},
	{"src/up", "symlink", "../README.md", 0},
}

// srcTar makes a tar (gzip-compressed when gz) of entries.
func srcTar(t *testing.T, gz bool, files []srcFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w *tar.Writer
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(&buf)
		w = tar.NewWriter(zw)
	} else {
		w = tar.NewWriter(&buf)
	}
	for _, f := range files {
		h := &tar.Header{Name: f.path, Mode: f.mode, ModTime: time.Unix(1700000000, 0)}
		switch f.kind {
		case "dir":
			h.Typeflag, h.Name = tar.TypeDir, f.path+"/"
		case "symlink":
			h.Typeflag, h.Linkname, h.Mode = tar.TypeSymlink, f.body, 0o777
		case "hardlink":
			h.Typeflag, h.Linkname = tar.TypeLink, f.body
		case "device":
			h.Typeflag = tar.TypeChar
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.body))
		}
		if err := w.WriteHeader(h); err != nil {
			t.Fatalf("tar header %s: %v", f.path, err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := w.Write([]byte(f.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// importTar uploads an archive, imports it and waits for the job.
func (e *srcEnv) importTar(t *testing.T, name string, archive []byte) domain.Job {
	t.Helper()
	chunks, err := e.c.UploadArchive(t.Context(), archive)
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	return e.runImport(t, client.SourceImportRequest{Name: name, Tar: &client.TarSpec{Chunks: chunks}})
}

func (e *srcEnv) runImport(t *testing.T, req client.SourceImportRequest) domain.Job {
	t.Helper()
	r, err := e.c.ImportSource(t.Context(), req)
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	if r.Job.ID == "" || r.Job.Done() {
		t.Fatalf("import answered %+v, want a job not yet done", r.Job)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	job, err := e.c.WaitJob(ctx, r.Job.ID, 20*time.Millisecond)
	if err != nil {
		t.Fatalf("wait for job: %v", err)
	}
	return job
}

func (e *srcEnv) createSource(t *testing.T, name string) {
	t.Helper()
	if _, err := e.c.CreateSource(t.Context(), client.SourceCreateRequest{Name: name}); err != nil {
		t.Fatalf("create source %s: %v", name, err)
	}
}

// tree reads a session's whole tree at a point as path -> srcFile.
func (e *srcEnv) tree(t *testing.T, id string, at client.At) map[string]srcFile {
	t.Helper()
	out := map[string]srcFile{}
	after := ""
	for {
		page, err := e.c.Manifest(t.Context(), client.ManifestRequest{Session: id, At: at, After: after})
		if err != nil {
			t.Fatalf("manifest: %v", err)
		}
		for _, en := range page.Entries {
			f := srcFile{path: en.Path, kind: en.Kind, mode: int64(en.Mode)}
			switch en.Kind {
			case "symlink":
				f.body, f.mode = en.Target, 0
			case "file":
				data, _, err := e.c.ReadAll(t.Context(), id, en.Path, client.AtPosition(page.Position))
				if err != nil {
					t.Fatalf("read %s: %v", en.Path, err)
				}
				f.body = string(data)
			}
			out[en.Path] = f
		}
		if page.NextCursor == "" {
			return out
		}
		after = page.NextCursor
	}
}

func checkTree(t *testing.T, got map[string]srcFile, want []srcFile) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("tree has %d entries, want %d: %v", len(got), len(want), got)
	}
	for _, w := range want {
		g, ok := got[w.path]
		if !ok {
			t.Errorf("%s missing", w.path)
			continue
		}
		if w.kind == "symlink" {
			w.mode = 0
		}
		if g != w {
			t.Errorf("%s = %+v, want %+v", w.path, g, w)
		}
	}
}

func TestSource_TarRoundTrip(t *testing.T) {
	t.Parallel()
	e := startSources(t)
	e.createSource(t, "proj")
	job := e.importTar(t, "proj", srcTar(t, true, srcFiles))
	if job.State != domain.JobSucceeded || job.Revision != 1 || job.Files != 5 {
		t.Fatalf("job = %+v, want succeeded with revision 1 and 5 files", job)
	}
	src, err := e.c.GetSource(t.Context(), "proj")
	if err != nil {
		t.Fatal(err)
	}
	if rv := src.Source.Revisions; len(rv) != 1 || rv[0].Origin.Kind != domain.OriginTar || rv[0].Root != job.Root {
		t.Fatalf("revisions = %+v", rv)
	}
	s, err := e.c.CreateSession(t.Context(), client.CreateSessionRequest{Source: "proj"})
	if err != nil {
		t.Fatalf("session from source: %v", err)
	}
	if s.Session.Root != job.Root || s.Session.Origin == nil || s.Session.Origin.Revision != 1 {
		t.Fatalf("session = %+v, want root %s from proj@1", s.Session, job.Root)
	}
	checkTree(t, e.tree(t, s.Session.ID, ""), srcFiles)
	live := map[domain.Hash]bool{}
	if err := e.env.Store.SourceBlobs(t.Context(), func(h domain.Hash) error { live[h] = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if tree, _ := domain.ParseHash(src.Source.Revisions[0].Tree); !live[tree] || !live[domain.Sum([]byte(srcFiles[0].body))] || len(live) != 6 {
		t.Fatalf("live source blobs = %d, want the tree blob and 5 contents", len(live))
	}
	// A plain tar gives the same tree.
	job2 := e.importTar(t, "proj", srcTar(t, false, srcFiles))
	if job2.Revision != 2 || job2.Root != job.Root {
		t.Fatalf("plain tar: %+v, want revision 2 with root %s", job2, job.Root)
	}

	t.Run("DeleteKeepsSessions", func(t *testing.T) {
		e.write(t, s.Session.ID, "src/main.go", "package main // changed\n")
		if _, err := e.c.DeleteSource(t.Context(), client.SourceRequest{Name: "proj"}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.c.CreateSession(t.Context(), client.CreateSessionRequest{Source: "proj"}); client.ErrorCode(err) != domain.CodeNotFound {
			t.Fatalf("session from a deleted source: %v, want not_found", err)
		}
		e.restartFresh(t)
		got := e.tree(t, s.Session.ID, "")
		if got["src/main.go"].body != "package main // changed\n" || got["bin/run.sh"].mode != 0o755 {
			t.Fatalf("session from a deleted source after restart: %v", got)
		}
		list, err := e.c.ListSources(t.Context())
		if err != nil || len(list.Sources) != 1 || !list.Sources[0].Deleted || list.Sources[0].Latest != 2 {
			t.Fatalf("list = %+v, %v", list, err)
		}
	})
}

func (e *srcEnv) write(t *testing.T, id, path, content string) client.ChangeReply {
	t.Helper()
	r, err := e.c.Write(t.Context(), client.WriteRequest{Session: id, Path: path, Content: []byte(content)})
	if err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	return r
}

func TestSource_BadArchive(t *testing.T) {
	t.Parallel()
	e := startSources(t)
	good := srcTar(t, true, srcFiles)
	corrupt := bytes.Clone(good)
	corrupt[len(corrupt)/2] ^= 0xff
	cases := []struct {
		name    string
		archive []byte
	}{
		{"TruncatedGzip", good[:len(good)*2/3]},
		{"CorruptGzip", corrupt},
		{"TruncatedTar", srcTar(t, false, srcFiles)[:3000]},
		{"Traversal", srcTar(t, false, []srcFile{{"ok.txt", "file", "ok", 0o644}, {"../x", "file", "evil", 0o644}})},
		{"TraversalInside", srcTar(t, false, []srcFile{{"a/../../x", "file", "evil", 0o644}})},
		{"Absolute", srcTar(t, false, []srcFile{{"/etc/passwd", "file", "evil", 0o644}})},
		{"LinkEscapes", srcTar(t, false, []srcFile{{"d/l", "symlink", "../../outside", 0}})},
		{"LinkAbsolute", srcTar(t, false, []srcFile{{"l", "symlink", "/etc/passwd", 0}})},
		{"LinkThroughLink", srcTar(t, false, []srcFile{{"a/up", "symlink", "..", 0}, {"b", "symlink", "a/up/../x", 0}})},
		{"HardLink", srcTar(t, false, []srcFile{{"a", "file", "a", 0o644}, {"b", "hardlink", "a", 0o644}})},
		{"Device", srcTar(t, false, []srcFile{{"dev", "device", "", 0o644}})},
		{"FileAsParent", srcTar(t, false, []srcFile{{"a", "file", "a", 0o644}, {"a/b", "file", "b", 0o644}})},
		{"NotATar", []byte(strings.Repeat("this is not a tar archive\n", 40))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			name := "bad" + strings.ToLower(tc.name)
			e.createSource(t, name)
			job := e.importTar(t, name, tc.archive)
			if job.State != domain.JobFailed || job.ErrorCode != string(domain.CodeInvalidArgument) || job.Revision != 0 {
				t.Fatalf("job = %+v, want failed with invalid_argument", job)
			}
			src, err := e.c.GetSource(t.Context(), name)
			if err != nil || len(src.Source.Revisions) != 0 {
				t.Fatalf("source after a failed import: %+v, %v; want no revision", src.Source, err)
			}
		})
	}
	t.Run("Refusals", func(t *testing.T) {
		e.createSource(t, "refusals")
		_, err := e.c.ImportSource(t.Context(), client.SourceImportRequest{Name: "refusals", Dir: &client.DirSpec{Path: t.TempDir()}})
		if client.ErrorCode(err) != domain.CodeForbidden {
			t.Errorf("dir import without the flag: %v, want forbidden", err)
		}
		_, err = e.c.ImportSource(t.Context(), client.SourceImportRequest{Name: "nosuch", Tar: &client.TarSpec{Chunks: []string{domain.Sum(nil).String()}}})
		if client.ErrorCode(err) != domain.CodeNotFound {
			t.Errorf("import into a missing source: %v, want not_found", err)
		}
		_, err = e.c.ImportSource(t.Context(), client.SourceImportRequest{Name: "refusals"})
		if client.ErrorCode(err) != domain.CodeInvalidArgument {
			t.Errorf("import of nothing: %v, want invalid_argument", err)
		}
		if _, err := e.c.CreateSource(t.Context(), client.SourceCreateRequest{Name: "refusals"}); client.ErrorCode(err) != domain.CodeAlreadyExists {
			t.Errorf("create twice: %v, want already_exists", err)
		}
		if _, err := e.c.CreateSource(t.Context(), client.SourceCreateRequest{Name: "a.b"}); client.ErrorCode(err) != domain.CodeInvalidArgument {
			t.Errorf("create a.b: %v, want invalid_argument", err)
		}
		// Another tenant's upload cannot be named by its hash.
		chunks, err := e.c.UploadArchive(t.Context(), srcTar(t, false, srcFiles))
		if err != nil {
			t.Fatal(err)
		}
		other := client.NewClient(e.env.NC, "other")
		if _, err := other.CreateSource(t.Context(), client.SourceCreateRequest{Name: "theft"}); err != nil {
			t.Fatal(err)
		}
		if _, err := other.ImportSource(t.Context(), client.SourceImportRequest{Name: "theft", Tar: &client.TarSpec{Chunks: chunks}}); client.ErrorCode(err) != domain.CodeNotFound {
			t.Errorf("import of another tenant's upload: %v, want not_found", err)
		}
		if _, err := e.c.Job(t.Context(), "NOSUCHJOB"); client.ErrorCode(err) != domain.CodeNotFound {
			t.Errorf("unknown job: %v, want not_found", err)
		}
	})
}

func TestSource_JobOfDeadInstance(t *testing.T) {
	t.Parallel()
	e := startSources(t, handlers.Options{JobTimeout: time.Second})
	old := time.Now().Add(-time.Minute).UTC()
	job := &domain.Job{ID: "ORPHAN", Tenant: "acme", Kind: "tar", Source: "x", State: domain.JobRunning,
		Instance: "gone", CreatedAt: old, UpdatedAt: old, Heartbeat: old}
	if err := e.env.Store.CreateJob(t.Context(), job); err != nil {
		t.Fatal(err)
	}
	r, err := e.c.Job(t.Context(), "ORPHAN")
	if err != nil || r.Job.State != domain.JobFailed || r.Job.ErrorCode != string(domain.CodeUnavailable) {
		t.Fatalf("job of a dead instance = %+v, %v; want failed with unavailable", r.Job, err)
	}
	fresh := &domain.Job{ID: "ALIVE", Tenant: "acme", Kind: "tar", Source: "x", State: domain.JobRunning,
		CreatedAt: time.Now(), UpdatedAt: time.Now(), Heartbeat: time.Now().UTC()}
	if err := e.env.Store.CreateJob(t.Context(), fresh); err != nil {
		t.Fatal(err)
	}
	if r, err := e.c.Job(t.Context(), "ALIVE"); err != nil || r.Job.State != domain.JobRunning {
		t.Fatalf("job with a fresh heartbeat = %+v, %v; want running", r.Job, err)
	}
}

// gitRun runs git in dir with a fixed identity and time.
func gitRun(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=T", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=T",
		"GIT_COMMITTER_EMAIL=t@example.com", "GIT_AUTHOR_DATE=2024-01-01T00:00:00Z", "GIT_COMMITTER_DATE=2024-01-01T00:00:00Z",
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// srcWriteFiles writes entries into a directory.
func srcWriteFiles(t *testing.T, dir string, files []srcFile) {
	t.Helper()
	for _, f := range files {
		p := filepath.Join(dir, filepath.FromSlash(f.path))
		var err error
		switch f.kind {
		case "dir":
			err = os.MkdirAll(p, 0o755)
			if err == nil {
				err = os.Chmod(p, os.FileMode(f.mode))
			}
		case "symlink":
			err = os.Symlink(f.body, p)
		default:
			if err = os.MkdirAll(filepath.Dir(p), 0o755); err == nil {
				err = os.WriteFile(p, []byte(f.body), os.FileMode(f.mode))
				if err == nil {
					err = os.Chmod(p, os.FileMode(f.mode))
				}
			}
		}
		if err != nil {
			t.Fatalf("write %s: %v", f.path, err)
		}
	}
}

func TestSource_Git(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	e := startSources(t, handlers.Options{AllowDirImport: true}) // git by path is a host path
	repo := t.TempDir()
	gitRun(t, repo, "init", "-q", "-b", "main")
	v1 := []srcFile{
		{"README.md", "file", "v1\n", 0o644},
		{"bin", "dir", "", 0o755},
		{"bin/tool", "file", "#!/bin/sh\n", 0o755},
		{"docs", "dir", "", 0o755},
		{"docs/link", "symlink", "../README.md", 0},
	}
	srcWriteFiles(t, repo, v1)
	gitRun(t, repo, "add", "-A")
	gitRun(t, repo, "commit", "-q", "-m", "v1")
	gitRun(t, repo, "tag", "-a", "v1.0", "-m", "release")
	first := gitRun(t, repo, "rev-parse", "HEAD")
	if err := os.WriteFile(filepath.Join(repo, "README.md"), []byte("v2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gitRun(t, repo, "commit", "-q", "-am", "v2")
	gitRun(t, repo, "checkout", "-q", "-b", "feature")
	if err := os.WriteFile(filepath.Join(repo, "feature.txt"), []byte("f\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gitRun(t, repo, "add", "-A")
	gitRun(t, repo, "commit", "-q", "-m", "feature")
	gitRun(t, repo, "checkout", "-q", "main")
	bundle := filepath.Join(t.TempDir(), "repo.bundle")
	gitRun(t, repo, "bundle", "create", bundle, "--all")
	bundleBytes, err := os.ReadFile(bundle)
	if err != nil {
		t.Fatal(err)
	}
	chunks, err := e.c.UploadArchive(t.Context(), bundleBytes)
	if err != nil {
		t.Fatal(err)
	}
	readme := func(body string) []srcFile {
		out := append([]srcFile{}, v1...)
		out[0].body = body
		return out
	}
	cases := []struct {
		name string
		spec client.GitSpec
		want []srcFile
	}{
		{"Head", client.GitSpec{Path: repo}, readme("v2\n")},
		{"Tag", client.GitSpec{Path: repo, Ref: "v1.0"}, v1},
		{"Commit", client.GitSpec{Path: repo, Ref: first}, v1},
		{"Branch", client.GitSpec{Path: repo, Ref: "feature"}, append(readme("v2\n"), srcFile{"feature.txt", "file", "f\n", 0o644})},
		{"BundlePath", client.GitSpec{Path: bundle, Ref: "v1.0"}, v1},
		{"BundleUpload", client.GitSpec{Chunks: chunks, Ref: "feature"}, append(readme("v2\n"), srcFile{"feature.txt", "file", "f\n", 0o644})},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			name := "git" + strings.ToLower(tc.name)
			e.createSource(t, name)
			spec := tc.spec
			job := e.runImport(t, client.SourceImportRequest{Name: name, Git: &spec})
			if job.State != domain.JobSucceeded {
				t.Fatalf("job = %+v", job)
			}
			s, err := e.c.CreateSession(t.Context(), client.CreateSessionRequest{Source: name})
			if err != nil {
				t.Fatal(err)
			}
			checkTree(t, e.tree(t, s.Session.ID, ""), tc.want)
			src, _ := e.c.GetSource(t.Context(), name)
			if o := src.Source.Revisions[0].Origin; o.Kind != domain.OriginGit || len(o.Commit) != 40 {
				t.Errorf("origin = %+v", o)
			}
		})
	}
	t.Run("UnknownRef", func(t *testing.T) {
		e.createSource(t, "gitbadref")
		job := e.runImport(t, client.SourceImportRequest{Name: "gitbadref", Git: &client.GitSpec{Path: repo, Ref: "nope"}})
		if job.State != domain.JobFailed || job.ErrorCode != string(domain.CodeNotFound) {
			t.Fatalf("job = %+v, want failed with not_found", job)
		}
	})
}

func TestSource_Dir(t *testing.T) {
	t.Parallel()
	e := startSources(t, handlers.Options{AllowDirImport: true})
	dir := t.TempDir()
	srcWriteFiles(t, dir, srcFiles)
	e.createSource(t, "dir")
	job := e.runImport(t, client.SourceImportRequest{Name: "dir", Dir: &client.DirSpec{Path: dir}})
	if job.State != domain.JobSucceeded {
		t.Fatalf("job = %+v", job)
	}
	s, err := e.c.CreateSession(t.Context(), client.CreateSessionRequest{Source: "dir", Revision: 1})
	if err != nil {
		t.Fatal(err)
	}
	checkTree(t, e.tree(t, s.Session.ID, ""), srcFiles)

	escape := t.TempDir()
	if err := os.Symlink("/etc", filepath.Join(escape, "etc")); err != nil {
		t.Fatal(err)
	}
	e.createSource(t, "escape")
	job = e.runImport(t, client.SourceImportRequest{Name: "escape", Dir: &client.DirSpec{Path: escape}})
	if job.State != domain.JobFailed || job.ErrorCode != string(domain.CodeInvalidArgument) {
		t.Fatalf("dir with an escaping link: %+v, want failed with invalid_argument", job)
	}
}

func TestSource_GitPathNeedsTheOperatorSwitch(t *testing.T) {
	t.Parallel()
	e := startSources(t)
	e.createSource(t, "x")
	_, err := e.c.ImportSource(t.Context(), client.SourceImportRequest{Name: "x", Git: &client.GitSpec{Path: t.TempDir()}})
	if got := client.ErrorCode(err); got != domain.CodeForbidden {
		t.Fatalf("git import by host path without --allow-dir-import: got %v, want forbidden", err)
	}
}
