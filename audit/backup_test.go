package audit_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/strand-dev/strand/audit"
	"github.com/strand-dev/strand/names"
	"github.com/strand-dev/strand/streams"
	"github.com/strand-dev/strand/streams/streamstest"
)

// natsCLI finds the standard nats command-line tool: on PATH, or where
// .ci/install-tools.sh puts it (go install: $GOBIN or $GOPATH/bin).
func natsCLI(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("nats"); err == nil {
		return p
	}
	for _, v := range []string{"GOBIN", "GOPATH"} {
		out, err := exec.Command("go", "env", v).Output()
		dir := strings.TrimSpace(string(out))
		if err != nil || dir == "" {
			continue
		}
		if v == "GOPATH" {
			dir = filepath.Join(filepath.SplitList(dir)[0], "bin")
		}
		p := filepath.Join(dir, "nats")
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	t.Skip("the nats CLI (natscli v0.5.0) is not installed: run .ci/install-tools.sh, or go install github.com/nats-io/natscli/nats@v0.5.0")
	return ""
}

// runNats runs the nats tool with no user configuration (no saved
// contexts) against one server.
func runNats(t *testing.T, bin, server string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(args, "--server", server)...)
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+home, "NATS_CONTEXT=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("nats %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestBackup_RestoreElsewhere follows docs/audit.md: back up both streams
// of one server with the standard nats tool, restore them into a fresh
// server, and audit there: verify finds the same histories and heads, and
// replay writes the same trees. Then the live copy docs/audit.md describes:
// mirrors on the same server, read under their own names.
func TestBackup_RestoreElsewhere(t *testing.T) {
	bin := natsCLI(t)
	f := newFixture(t)
	orig := verify(t, f.reader(t, audit.Streams{}), audit.Scope{})
	if !orig.OK() {
		t.Fatalf("original: %v", orig.Findings)
	}
	backup := t.TempDir()
	all := []string{names.EventStream, names.BlobStream, names.SourceStream}
	for _, s := range all {
		runNats(t, bin, f.env.Server.ClientURL(), "stream", "backup", s, filepath.Join(backup, s), "--no-progress")
	}

	other, err := streams.StartEmbedded(streams.EmbeddedOptions{DataDir: t.TempDir(), Listen: "127.0.0.1:-1", ServerName: "restored"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(other.Shutdown)
	for _, s := range all {
		runNats(t, bin, other.ClientURL(), "stream", "restore", filepath.Join(backup, s), "--no-progress")
	}
	nc, err := other.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	r, err := audit.Open(context.Background(), nc, audit.Streams{})
	if err != nil {
		t.Fatal(err)
	}
	rep := verify(t, r, audit.Scope{}, orig.Heads...)
	if !rep.OK() || rep.Events != orig.Events || rep.Blobs != orig.Blobs || !slices.Equal(rep.Heads, orig.Heads) {
		t.Fatalf("restored: %d events, %d blobs, findings %v; original %d, %d", rep.Events, rep.Blobs, rep.Findings, orig.Events, orig.Blobs)
	}
	for _, at := range []struct{ tenant, session, at string }{{"acme", f.A, "cp1"}, {"acme", f.A, ""}, {"other", f.E, ""}} {
		s, err := r.StateAt(context.Background(), at.tenant, at.session, at.at)
		if err != nil {
			t.Fatal(err)
		}
		want := f.states[s.Position]
		if want == nil || s.Tree.Hash() != want.Tree.Hash() {
			t.Fatalf("restored %s at %q: root %s, want the original's", at.session, at.at, s.Tree.Hash())
		}
		dir := filepath.Join(t.TempDir(), "out")
		if _, err := r.WriteTree(context.Background(), s.Tree, dir, audit.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		compareDir(t, r, want.Tree, dir)
	}

	// A live copy on the same server: mirrors keep every sequence.
	j := js(t, f.env.NC)
	for _, s := range []string{"EVENTS", "SOURCES", "BLOBS"} {
		runNats(t, bin, f.env.Server.ClientURL(), "stream", "add", "COPY_"+s, "--mirror", "STRAND_"+s, "--defaults")
		src, err := j.Stream(context.Background(), "STRAND_"+s)
		if err != nil {
			t.Fatal(err)
		}
		want, err := src.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var last uint64
		if !streamstest.Poll(10*time.Second, func() bool {
			m, err := j.Stream(context.Background(), "COPY_"+s)
			if err != nil {
				t.Fatal(err)
			}
			if info, err := m.Info(context.Background()); err == nil {
				last = info.State.LastSeq
			}
			return last == want.State.LastSeq
		}) {
			t.Fatalf("mirror COPY_%s did not catch up: last sequence %d, want %d", s, last, want.State.LastSeq)
		}
	}
	mirrored := verify(t, f.reader(t, audit.StreamsWithPrefix("COPY")), audit.Scope{}, orig.Heads...)
	if !mirrored.OK() || !slices.Equal(mirrored.Heads, orig.Heads) {
		t.Fatalf("mirrors: findings %v", mirrored.Findings)
	}
}
