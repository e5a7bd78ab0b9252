package workcopy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/streams/streamstest"
	"github.com/strand-dev/strand/workcopy"
)

// script is a real shell script: it edits, adds and deletes files, checks
// its environment, and exits 3.
const script = `set -e
test "$STRAND_SESSION" != ""
test "$STRAND_TENANT" = acme
printf 'edited by the run\n' > README.md
mkdir -p out
printf '%s\n' "$STRAND_SESSION" > out/session.txt
rm obsolete.txt
echo "to stderr" >&2
exit 3
`

func TestRun_ScriptExitsNonZero(t *testing.T) {
	e := start(t)
	ctx := ctxOf(t)
	base := e.session(t, write("README.md", "# base\n", 0o644), write("obsolete.txt", "old\n", 0o644))
	var stdout, stderr bytes.Buffer
	out, err := workcopy.Run(ctx, e.c, e.cache, workcopy.RunOptions{
		Session: base, Fork: true, CheckpointBefore: "before-try",
		Command: []string{"sh", "-c", script}, Stdout: &stdout, Stderr: &stderr,
	})
	must(t, err)
	if out.ExitCode != 3 || out.Parent != base || out.Session == base || out.Changes != 4 || out.Dir != "" {
		t.Fatalf("outcome %+v, want exit 3 on a fork of %s with 4 changes pushed and the temp dir gone", out, base)
	}
	if !strings.Contains(stderr.String(), "to stderr") {
		t.Errorf("the command's stderr was not passed on: %q", stderr.String())
	}
	// The baseline is untouched; the fork holds the script's work.
	if got := e.remoteTree(t, base)["README.md"]; got != `file 644 "# base\n"` {
		t.Errorf("baseline README.md is %s after a forked run", got)
	}
	fork := e.remoteTree(t, out.Session)
	want := map[string]string{
		"README.md":       `file 644 "edited by the run\n"`,
		"out":             "dir 755",
		"out/session.txt": `file 644 "` + out.Session + `\n"`,
	}
	sameTrees(t, "fork after the run", fork, want)
	// The checkpoint before names the fork's state before the command.
	cps, err := e.c.ListCheckpoints(ctx, client.CheckpointListRequest{Session: out.Session})
	must(t, err)
	if len(cps.Checkpoints) != 1 || cps.Checkpoints[0].Name != "before-try" {
		t.Fatalf("checkpoints of the fork: %+v, want before-try", cps.Checkpoints)
	}
	// The pushed change is one event.
	ev, err := e.c.Events(ctx, client.EventsRequest{Session: out.Session, Types: []string{"BatchApplied"}})
	must(t, err)
	if len(ev.Events) != 1 {
		t.Fatalf("the run pushed %d events, want 1", len(ev.Events))
	}
	// The health report: failing, with the exit code, duration and command.
	h, err := e.c.Health(ctx, client.HealthRequest{Session: out.Session})
	must(t, err)
	if h.Health == nil || h.Health.Passing || !strings.Contains(h.Health.Summary, "exit 3") {
		t.Fatalf("health %+v, want failing with exit 3", h.Health)
	}
	var details workcopy.RunOutcome
	must(t, json.Unmarshal(h.Health.Details, &details))
	if details.ExitCode != 3 || details.Command[0] != "sh" || details.DurationMs < 0 || details.Position != out.Position {
		t.Fatalf("health details %+v", details)
	}
}

func TestRun_ReuseDirAndPassing(t *testing.T) {
	e := start(t)
	ctx := ctxOf(t)
	id := e.session(t, write("n.txt", "1", 0o644))
	dir := filepath.Join(t.TempDir(), "wc")
	run := func() workcopy.RunOutcome {
		out, err := workcopy.Run(ctx, e.c, e.cache, workcopy.RunOptions{Session: id, Dir: dir,
			Command: []string{"sh", "-c", `echo "$(cat n.txt)1" > n.txt`}})
		must(t, err)
		return out
	}
	first := run()
	// Someone else writes between runs: the reused directory pulls first.
	_, err := e.c.Write(ctx, client.WriteRequest{Session: id, Path: "other.txt", Content: []byte("x")})
	must(t, err)
	second := run()
	if first.ExitCode != 0 || second.ExitCode != 0 || second.Dir != dir {
		t.Fatalf("runs: %+v then %+v", first, second)
	}
	if got := e.remoteTree(t, id)["n.txt"]; got != `file 644 "111\n"` {
		t.Fatalf("after two runs n.txt is %s", got)
	}
	h, err := e.c.Health(ctx, client.HealthRequest{Session: id})
	must(t, err)
	if !h.Health.Passing {
		t.Fatalf("health after a passing run: %+v", h.Health)
	}
	// The working copy is clean and up to date: pushing needs no pull.
	w := e.open(t, dir)
	st, err := w.Status()
	must(t, err)
	wantChanges(t, st)
	writeLocal(t, dir, "after.txt", "after", 0o644)
	_, err = w.Push(ctx, workcopy.PushOptions{})
	must(t, err)
}

func TestRun_InterruptPushesWhatChanged(t *testing.T) {
	e := start(t)
	ctx := ctxOf(t)
	id := e.session(t, write("a.txt", "a", 0o644))
	dir := filepath.Join(t.TempDir(), "wc")
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Cancel (as Ctrl-C does) once the command has written its first file.
	go func() {
		if streamstest.Poll(30*time.Second, func() bool {
			_, err := os.Stat(filepath.Join(dir, "started.txt"))
			return err == nil
		}) {
			cancel()
		}
	}()
	out, err := workcopy.Run(runCtx, e.c, e.cache, workcopy.RunOptions{Session: id, Dir: dir,
		Command: []string{"sh", "-c", `trap 'echo bye > trapped.txt; exit 130' INT; echo go > started.txt; while :; do sleep 0.05; done`}})
	must(t, err)
	if !out.Interrupted || out.ExitCode != 130 {
		t.Fatalf("outcome %+v, want interrupted with exit 130", out)
	}
	remote := e.remoteTree(t, id)
	if remote["started.txt"] != `file 644 "go\n"` || remote["trapped.txt"] != `file 644 "bye\n"` {
		t.Fatalf("after the interrupt the session holds %v, want started.txt and trapped.txt", remote)
	}
	h, err := e.c.Health(ctx, client.HealthRequest{Session: id})
	must(t, err)
	if h.Health.Passing || !strings.Contains(h.Health.Summary, "interrupted") {
		t.Fatalf("health after an interrupt: %+v", h.Health)
	}
}

func TestRun_PushEvery(t *testing.T) {
	e := start(t)
	ctx := ctxOf(t)
	id := e.session(t, write("a.txt", "a", 0o644))
	dir := filepath.Join(t.TempDir(), "wc")
	// The test waits until one.txt is in the session (pushed while the
	// command runs), then lets the command go on; .go-on is ignored.
	go func() {
		if streamstest.Poll(30*time.Second, func() bool {
			r, err := e.c.ReadBatch(ctx, client.ReadBatchRequest{Session: id, Paths: []string{"one.txt"}})
			return err == nil && r.Files[0].Error == nil
		}) {
			_ = os.WriteFile(filepath.Join(dir, ".go-on"), nil, 0o644)
		}
	}()
	out, err := workcopy.Run(ctx, e.c, e.cache, workcopy.RunOptions{Session: id, Dir: dir, PushEvery: 50 * time.Millisecond,
		Command: []string{"sh", "-c", `echo .go-on > .strandignore; echo 1 > one.txt; while [ ! -e .go-on ]; do sleep 0.02; done; echo 2 > two.txt`},
	})
	must(t, err)
	if out.Pushes < 2 || out.ExitCode != 0 {
		t.Fatalf("outcome %+v, want at least two pushes (one while running)", out)
	}
	remote := e.remoteTree(t, id)
	if _, ok := remote["two.txt"]; !ok {
		t.Fatalf("two.txt, written after the push while running, is not in the session: %v", remote)
	}
	if _, ok := remote[".go-on"]; ok {
		t.Fatal(".go-on was pushed, though ignored")
	}
}
