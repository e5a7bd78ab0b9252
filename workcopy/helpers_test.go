package workcopy_test

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/contentcache"
	"github.com/strand-dev/strand/handlers"
	"github.com/strand-dev/strand/streams/streamstest"
	"github.com/strand-dev/strand/workcopy"
)

// env is a service on a real embedded JetStream, a client of tenant acme
// and a content cache of the test's own.
type env struct {
	c     *client.Client
	cache *contentcache.Cache
	nc    *streamstest.Env
}

func start(t *testing.T) *env { return startWith(t, handlers.Options{}) }

// startWith is start with service options (limits).
func startWith(t *testing.T, opts handlers.Options) *env {
	t.Helper()
	e := streamstest.Start(t)
	svc := handlers.NewService(e.Store, opts)
	if err := svc.Start(e.NC); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	cache, err := contentcache.Open(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	return &env{c: client.NewClient(e.NC, "acme"), cache: cache, nc: e}
}

func ctxOf(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// session creates a session and fills it with one batch.
func (e *env) session(t *testing.T, ops ...client.BatchOp) string {
	t.Helper()
	ctx := ctxOf(t)
	r, err := e.c.CreateSession(ctx, client.CreateSessionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) > 0 {
		if _, err := e.c.Batch(ctx, client.BatchRequest{Session: r.Session.ID, Ops: ops}); err != nil {
			t.Fatal(err)
		}
	}
	return r.Session.ID
}

func write(path, content string, mode uint32) client.BatchOp {
	return client.BatchOp{Op: "write", Path: path, Content: []byte(content), Mode: mode}
}

func (e *env) checkout(t *testing.T, session string, dir string) *workcopy.Copy {
	t.Helper()
	w, err := workcopy.Checkout(ctxOf(t), e.c, e.cache, session, "", dir, workcopy.CheckoutOptions{})
	if err != nil {
		t.Fatalf("checkout %s into %s: %v", session, dir, err)
	}
	return w
}

func (e *env) open(t *testing.T, dir string) *workcopy.Copy {
	t.Helper()
	w, err := workcopy.Open(dir, e.c, e.cache)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// localTree describes a directory: path -> kind, mode and content or
// target. The metadata folder is left out.
func localTree(t *testing.T, dir string, skip ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if rel == "." {
			return nil
		}
		for _, s := range append(skip, workcopy.MetaDir) {
			if rel == s || strings.HasPrefix(rel, s+"/") {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case info.IsDir():
			out[rel] = fmt.Sprintf("dir %o", info.Mode().Perm())
		case info.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			out[rel] = "symlink -> " + target
		default:
			data, _ := os.ReadFile(p)
			out[rel] = fmt.Sprintf("file %o %s", info.Mode().Perm(), short(data))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func short(b []byte) string {
	if len(b) > 64 {
		return fmt.Sprintf("%d bytes %x", len(b), b[:16])
	}
	return fmt.Sprintf("%q", b)
}

// remoteTree describes a session's tree at its head as localTree does.
func (e *env) remoteTree(t *testing.T, session string) map[string]string {
	t.Helper()
	ctx := ctxOf(t)
	m, err := e.c.Manifest(ctx, client.ManifestRequest{Session: session, Limit: client.MaxManifestLimit})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, en := range m.Entries {
		switch en.Kind {
		case "dir":
			out[en.Path] = fmt.Sprintf("dir %o", en.Mode)
		case "symlink":
			out[en.Path] = "symlink -> " + en.Target
		default:
			var data []byte
			if en.Size > 0 {
				data, _, err = e.c.ReadAll(ctx, session, en.Path, client.AtPosition(m.Position))
				if err != nil {
					t.Fatal(err)
				}
			}
			out[en.Path] = fmt.Sprintf("file %o %s", en.Mode, short(data))
		}
	}
	return out
}

func sameTrees(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	var diffs []string
	for p, w := range want {
		if g, ok := got[p]; !ok {
			diffs = append(diffs, fmt.Sprintf("  missing %s (want %s)", p, w))
		} else if g != w {
			diffs = append(diffs, fmt.Sprintf("  %s: got %s, want %s", p, g, w))
		}
	}
	for p, g := range got {
		if _, ok := want[p]; !ok {
			diffs = append(diffs, fmt.Sprintf("  extra %s (%s)", p, g))
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		t.Fatalf("%s: trees differ:\n%s", what, strings.Join(diffs, "\n"))
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func writeLocal(t *testing.T, dir, p, content string, mode os.FileMode) {
	t.Helper()
	full := filepath.Join(dir, filepath.FromSlash(p))
	must(t, os.MkdirAll(filepath.Dir(full), 0o755))
	must(t, os.WriteFile(full, []byte(content), mode))
	must(t, os.Chmod(full, mode))
}

// changes renders a status as "kind path" lines (renames "renamed from -> to").
func changes(st *workcopy.Status) []string {
	var out []string
	for _, c := range st.Changes {
		if c.Kind == workcopy.Renamed {
			out = append(out, "renamed "+c.From+" -> "+c.Path)
			continue
		}
		out = append(out, c.Kind+" "+c.Path)
	}
	return out
}

func wantChanges(t *testing.T, st *workcopy.Status, want ...string) {
	t.Helper()
	got := changes(st)
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("status:\n  got  %q\n  want %q", got, want)
	}
}

// big is 1.6 MB that differ all along: four distinct chunks.
var big = func() []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < 1_600_000; i++ {
		fmt.Fprintf(&b, "line %08d of the big file\n", i)
	}
	return b.Bytes()
}()
