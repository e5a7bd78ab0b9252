package main

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// upgradeFixture is testdata/upgrade/blob-content-v1: a data folder that
// `strand serve` wrote before small content travelled inside events
// (commit 82eadd8), with the heads it reported. See testdata/upgrade/README.md.
type upgradeFixture struct {
	A, B, C string
	Heads   []struct {
		ID       string `json:"id"`
		Position uint64 `json:"position"`
		Root     string `json:"root"`
	} `json:"heads"`
}

// untarGz unpacks a .tar.gz archive of plain files and directories into dir.
func untarGz(t *testing.T, archive, dir string) {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		if !strings.HasPrefix(p, filepath.Clean(dir)+string(os.PathSeparator)) {
			t.Fatalf("archive entry %q leaves the folder", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("archive entry %q: unexpected type %c", h.Name, h.Typeflag)
		}
	}
}

// TestUpgrade_BlobContentV1 serves a data folder written by the format in
// which every file's content was a blob, and checks that the current code
// rebuilds the same roots, reads the same bytes, verifies it clean, and
// keeps doing so once new (inline) writes, a fork, a merge and a promotion
// are added on top of the old history.
func TestUpgrade_BlobContentV1(t *testing.T) {
	t.Parallel()
	var fx upgradeFixture
	b, err := os.ReadFile("testdata/upgrade/blob-content-v1.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &fx); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	untarGz(t, "testdata/upgrade/blob-content-v1.tar.gz", dir)
	srv := startServe(t, dir)
	c := newCLI(t, srv.URL)
	c.env = map[string]string{"STRAND_TENANT": "acme"}

	checkHeads := func(t *testing.T, heads ...int) {
		t.Helper()
		for _, i := range heads {
			h := fx.Heads[i]
			var got struct {
				Session struct {
					Position uint64 `json:"position"`
					Root     string `json:"root"`
				} `json:"session"`
			}
			c.okJSON(&got, "session", "get", h.ID)
			if got.Session.Position != h.Position || got.Session.Root != h.Root {
				t.Errorf("session %s: position %d root %s, want %d %s (as written)", h.ID, got.Session.Position, got.Session.Root, h.Position, h.Root)
			}
		}
	}
	verify := func(t *testing.T, wantEvents int) {
		t.Helper()
		var rep struct {
			Events   int               `json:"events"`
			Findings []json.RawMessage `json:"findings"`
		}
		c.okJSON(&rep, "audit", "verify", "--all")
		if len(rep.Findings) != 0 || rep.Events < wantEvents {
			t.Fatalf("audit verify: %d events, findings %s; want >= %d events and none", rep.Events, rep.Findings, wantEvents)
		}
	}
	cat := func(t *testing.T, at, path, want string) {
		t.Helper()
		if got := c.ok("fs", "cat", at, path); got != want {
			t.Errorf("fs cat %s %s = %q, want %q", at, path, got, want)
		}
	}

	t.Run("Old", func(t *testing.T) {
		checkHeads(t, 0, 1, 2)
		cat(t, fx.A, "src/f3.txt", "small file number 483\n")
		cat(t, fx.A, "src/moved.txt", "small file number 481\n")
		cat(t, fx.B, "src/fromfork.txt", "from the fork\n")
		cat(t, fx.C, "src/fromfork.txt", "from the fork\n")
		cat(t, fx.C, "src/c.txt", "c edit\n")
		huge := c.ok("fs", "cat", fx.A, "data/huge.bin")
		if want := strings.Repeat("another line of a huge chunked file\n", 700000/36+1)[:700000]; huge != want {
			t.Errorf("data/huge.bin: %d bytes, want the %d written", len(huge), len(want))
		}
		verify(t, 528)
	})
	t.Run("NewOnTop", func(t *testing.T) {
		c.ok("fs", "write", fx.A, "src/inline.txt", "--from", writeTemp(t, "written after the upgrade\n"))
		var fork struct {
			Session struct {
				ID string `json:"id"`
			} `json:"session"`
		}
		c.okJSON(&fork, "session", "fork", fx.A)
		c.ok("fs", "write", fork.Session.ID, "src/f3.txt", "--from", writeTemp(t, "changed in the fork\n"))
		c.ok("merge", fork.Session.ID, fx.A)
		c.ok("source", "promote", "base", fx.A)
		var d struct {
			Session struct {
				ID string `json:"id"`
			} `json:"session"`
		}
		c.okJSON(&d, "session", "create", "--source", "base@2")
		cat(t, d.Session.ID, "src/inline.txt", "written after the upgrade\n")
		// The session views' consumer was made with the old filter
		// (strand.ev.*.*); the projection updates it to the stream's own
		// subject and goes on folding.
		waitFor(t, "the new session in the session list", func() bool {
			return strings.Contains(c.ok("session", "list"), d.Session.ID)
		})
		cat(t, d.Session.ID, "src/f3.txt", "changed in the fork\n")
		cat(t, d.Session.ID, "src/f5.txt", "small file number 485\n")
		verify(t, 533)
		out := filepath.Join(t.TempDir(), "a")
		c.ok("audit", "replay", fx.A, "--to", out)
		for p, want := range map[string]string{"src/inline.txt": "written after the upgrade\n", "src/f5.txt": "small file number 485\n", "src/f3.txt": "changed in the fork\n"} {
			if got, err := os.ReadFile(filepath.Join(out, p)); err != nil || string(got) != want {
				t.Errorf("replayed %s = %q (%v), want %q", p, got, err, want)
			}
		}
	})
	t.Run("Restart", func(t *testing.T) {
		before := c.ok("session", "get", fx.A, "--json")
		srv.Stop(t)
		srv2 := startServe(t, dir)
		c.server = srv2.URL
		if after := c.ok("session", "get", fx.A, "--json"); after != before {
			t.Errorf("session %s after a restart:\n%s\nwant as before:\n%s", fx.A, after, before)
		}
		checkHeads(t, 1, 2)
		cat(t, fx.A, "src/inline.txt", "written after the upgrade\n")
		verify(t, 533)
	})
}

// writeTemp writes content to a new temporary file and returns its path.
func writeTemp(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "content")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
