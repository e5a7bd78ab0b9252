package handlers_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/handlers"
	"github.com/strand-dev/strand/streams/streamstest"
)

// diffEnv is a real embedded JetStream with the service and a client for
// tenant "acme", and shorthands for the calls the diff tests make.
type diffEnv struct {
	t   *testing.T
	ctx context.Context
	c   *client.Client
}

// on returns the environment for a subtest, so that its helpers fail the
// subtest.
func (e *diffEnv) on(t *testing.T) *diffEnv {
	c := *e
	c.t = t
	return &c
}

func startDiffEnv(t *testing.T) *diffEnv {
	t.Helper()
	env := streamstest.StartSuite(t)
	svc := handlers.NewService(env.Store, handlers.Options{})
	if err := svc.Start(env.NC); err != nil {
		t.Fatalf("start service: %v", err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return &diffEnv{t: t, ctx: ctx, c: client.NewClient(env.NC, "acme")}
}

func (e *diffEnv) create() string {
	e.t.Helper()
	r, err := e.c.CreateSession(e.ctx, client.CreateSessionRequest{})
	if err != nil {
		e.t.Fatalf("create session: %v", err)
	}
	return r.Session.ID
}

func (e *diffEnv) write(id, p, data string) uint64 {
	e.t.Helper()
	r, err := e.c.Write(e.ctx, client.WriteRequest{Session: id, Path: p, Content: []byte(data)})
	if err != nil {
		e.t.Fatalf("write %s: %v", p, err)
	}
	return r.Position
}

func (e *diffEnv) rename(id, from, to string) uint64 {
	e.t.Helper()
	r, err := e.c.Rename(e.ctx, client.RenameRequest{Session: id, From: from, To: to})
	if err != nil {
		e.t.Fatalf("rename %s: %v", from, err)
	}
	return r.Position
}

func (e *diffEnv) remove(id, p string, recursive bool) uint64 {
	e.t.Helper()
	r, err := e.c.Remove(e.ctx, client.RemoveRequest{Session: id, Path: p, Recursive: recursive})
	if err != nil {
		e.t.Fatalf("remove %s: %v", p, err)
	}
	return r.Position
}

func (e *diffEnv) fork(id string, at client.At) client.SessionReply {
	e.t.Helper()
	r, err := e.c.Fork(e.ctx, client.ForkRequest{Session: id, At: at})
	if err != nil {
		e.t.Fatalf("fork %s: %v", id, err)
	}
	return r
}

func (e *diffEnv) diff(req client.DiffRequest) client.DiffReply {
	e.t.Helper()
	r, err := e.c.Diff(e.ctx, req)
	if err != nil {
		e.t.Fatalf("diff %+v: %v", req, err)
	}
	return r
}

func diffFrom(id string, at client.At) *client.DiffSide {
	return &client.DiffSide{Session: id, At: at}
}

// diffLines renders a reply's lists as "A path", "M path", "D path" and
// "R from -> to".
func diffLines(r client.DiffReply) []string {
	out := []string{}
	for _, v := range r.Added {
		out = append(out, "A "+v.Path)
	}
	for _, v := range r.Modified {
		out = append(out, "M "+v.Path)
	}
	for _, v := range r.Deleted {
		out = append(out, "D "+v.Path)
	}
	for _, v := range r.Renamed {
		out = append(out, "R "+v.From+" -> "+v.To)
	}
	return out
}

func wantDiff(t *testing.T, r client.DiffReply, want ...string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	if got := diffLines(r); !slices.Equal(got, want) {
		t.Errorf("diff from %s@%d to %s@%d:\n got %q\nwant %q", r.From.Session, r.From.Position, r.To.Session, r.To.Position, got, want)
	}
	c := r.Counts
	if c.Added != len(r.Added) || c.Modified != len(r.Modified) || c.Deleted != len(r.Deleted) || c.Renamed != len(r.Renamed) || r.Truncated {
		t.Errorf("counts %+v (truncated %v) do not match the lists", c, r.Truncated)
	}
}

func TestService_Diff(t *testing.T) {
	e := startDiffEnv(t)
	parent := e.create()
	e.write(parent, "README.md", "hello\n")
	e.write(parent, "src/main.go", "package main\n\nfunc main() {\n\tprintln(1)\n}\n")
	e.write(parent, "src/util.go", "package main\n// util\n")
	v1 := e.write(parent, "docs/guide.md", "# Guide\n")
	if _, err := e.c.CreateCheckpoint(e.ctx, client.CheckpointRequest{Session: parent, Name: "v1"}); err != nil {
		t.Fatalf("checkpoint: %v", err)
	}
	emptyRoot := (domain.Tree{}).Hash().String()

	forked := e.fork(parent, "")
	child, forkAt, childStart := forked.Session.ID, forked.Session.Origin.Position, forked.Position
	e.write(child, "src/main.go", "package main\n\nfunc main() {\n\tprintln(2)\n}\n")
	e.rename(child, "docs/guide.md", "docs/manual.md")
	e.remove(child, "src/util.go", false)
	childHead := e.write(child, "NEW", "new file\n")

	t.Run("AgainstForkPoint", func(t *testing.T) {
		e := e.on(t)
		r := e.diff(client.DiffRequest{To: client.DiffSide{Session: child}})
		wantDiff(t, r, "A NEW", "M src/main.go", "D src/util.go", "R docs/guide.md -> docs/manual.md")
		if r.From.Session != parent || r.From.Position != forkAt {
			t.Errorf("from: got %s@%d, want the fork point %s@%d", r.From.Session, r.From.Position, parent, forkAt)
		}
		if r.To.Session != child || r.To.Position != childHead {
			t.Errorf("to: got %s@%d, want %s@%d", r.To.Session, r.To.Position, child, childHead)
		}
		m := r.Modified[0]
		if m.Kind != "file" || m.Old == nil || m.New == nil || m.Old.Hash == m.New.Hash || m.Old.Size != m.New.Size || m.Old.Mode != 0o644 {
			t.Errorf("modified src/main.go: got %+v old %+v new %+v", m, m.Old, m.New)
		}
		if a := r.Added[0]; a.Old != nil || a.New == nil || a.New.Size != int64(len("new file\n")) || a.New.Hash != domain.Sum([]byte("new file\n")).String() {
			t.Errorf("added NEW: got old %+v new %+v", a.Old, a.New)
		}
		if rn := r.Renamed[0]; rn.Kind != "file" || rn.Old.Hash != rn.New.Hash {
			t.Errorf("renamed: got %+v", rn)
		}
	})
	t.Run("FromWithoutSessionIsTheBase", func(t *testing.T) {
		e := e.on(t)
		r := e.diff(client.DiffRequest{From: &client.DiffSide{}, To: client.DiffSide{Session: child}})
		if r.From.Session != parent || r.From.Position != forkAt || len(r.Renamed) != 1 {
			t.Errorf("from {}: got from %s@%d with %q, want the fork point", r.From.Session, r.From.Position, diffLines(r))
		}
	})
	t.Run("BlankSessionAgainstItsBase", func(t *testing.T) {
		e := e.on(t)
		r := e.diff(client.DiffRequest{To: client.DiffSide{Session: parent}})
		wantDiff(t, r, "A README.md", "A docs", "A docs/guide.md", "A src", "A src/main.go", "A src/util.go")
		if r.From.Session != parent || r.From.Root != emptyRoot {
			t.Errorf("from: got %+v, want %s at its first event with the empty root %s", r.From, parent, emptyRoot)
		}
	})
	t.Run("AgainstCheckpoint", func(t *testing.T) {
		e := e.on(t)
		e.write(parent, "README.md", "hello again\n")
		r := e.diff(client.DiffRequest{From: diffFrom(parent, "v1"), To: client.DiffSide{Session: parent}})
		wantDiff(t, r, "M README.md")
		if r.From.Position != v1 {
			t.Errorf("from: got position %d, want the checkpoint's %d", r.From.Position, v1)
		}
	})
	t.Run("TwoForksOfOneParent", func(t *testing.T) {
		e := e.on(t)
		other := e.fork(parent, "v1").Session.ID
		e.write(other, "src/main.go", "package main\n")
		r := e.diff(client.DiffRequest{From: diffFrom(child, ""), To: client.DiffSide{Session: other}})
		wantDiff(t, r, "A src/util.go", "M src/main.go", "D NEW", "R docs/manual.md -> docs/guide.md")
	})
	t.Run("TwoPositionsOfOneSession", func(t *testing.T) {
		e := e.on(t)
		r := e.diff(client.DiffRequest{From: diffFrom(child, client.AtPosition(childStart)), To: client.DiffSide{Session: child, At: client.AtPosition(childHead)}})
		wantDiff(t, r, "A NEW", "M src/main.go", "D src/util.go", "R docs/guide.md -> docs/manual.md")
		if r.From.Position != childStart || r.To.Position != childHead {
			t.Errorf("positions %d..%d: got from %d to %d", childStart, childHead, r.From.Position, r.To.Position)
		}
		same := e.diff(client.DiffRequest{From: diffFrom(child, client.AtPosition(childHead)), To: client.DiffSide{Session: child, At: client.AtPosition(childHead)}})
		wantDiff(t, same)
		if same.From.Root != same.To.Root {
			t.Errorf("a position against itself: roots %s and %s", same.From.Root, same.To.Root)
		}
	})
	t.Run("DirectoryRemovedAsAWhole", func(t *testing.T) {
		e := e.on(t)
		s := e.fork(parent, "v1").Session.ID
		e.remove(s, "src", true)
		r := e.diff(client.DiffRequest{To: client.DiffSide{Session: s}})
		wantDiff(t, r, "D src", "D src/main.go", "D src/util.go")
	})
	t.Run("Unified", func(t *testing.T) {
		e := e.on(t)
		r := e.diff(client.DiffRequest{To: client.DiffSide{Session: child}, Path: "/src/main.go"})
		want := "--- a/src/main.go\n+++ b/src/main.go\n@@ -1,5 +1,5 @@\n package main\n \n func main() {\n-\tprintln(1)\n+\tprintln(2)\n }\n"
		if r.Unified != want || r.UnifiedTruncated {
			t.Errorf("unified diff of src/main.go:\n got %q\nwant %q", r.Unified, want)
		}
		if len(r.Modified) != 1 {
			t.Errorf("with a path the lists still hold every change: got %q", diffLines(r))
		}
	})
	t.Run("UnifiedContext", func(t *testing.T) {
		e := e.on(t)
		zero := 0
		r := e.diff(client.DiffRequest{To: client.DiffSide{Session: child}, Path: "src/main.go", Context: &zero})
		want := "--- a/src/main.go\n+++ b/src/main.go\n@@ -4 +4 @@\n-\tprintln(1)\n+\tprintln(2)\n"
		if r.Unified != want {
			t.Errorf("unified diff with context 0:\n got %q\nwant %q", r.Unified, want)
		}
	})
	t.Run("UnifiedAddedAndDeleted", func(t *testing.T) {
		e := e.on(t)
		r := e.diff(client.DiffRequest{To: client.DiffSide{Session: child}, Path: "NEW"})
		if want := "--- /dev/null\n+++ b/NEW\n@@ -0,0 +1 @@\n+new file\n"; r.Unified != want {
			t.Errorf("unified diff of an added file:\n got %q\nwant %q", r.Unified, want)
		}
		r = e.diff(client.DiffRequest{To: client.DiffSide{Session: child}, Path: "src/util.go"})
		if want := "--- a/src/util.go\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-package main\n-// util\n"; r.Unified != want {
			t.Errorf("unified diff of a deleted file:\n got %q\nwant %q", r.Unified, want)
		}
	})
	t.Run("UnifiedUnchangedIsEmpty", func(t *testing.T) {
		e := e.on(t)
		if r := e.diff(client.DiffRequest{To: client.DiffSide{Session: child}, Path: "README.md"}); r.Unified != "" {
			t.Errorf("unified diff of an unchanged file: got %q, want empty", r.Unified)
		}
	})
	t.Run("UnifiedBinary", func(t *testing.T) {
		e := e.on(t)
		s := e.fork(parent, "v1").Session.ID
		e.write(s, "img.bin", "\x89PNG\x00\x01")
		base := e.diff(client.DiffRequest{To: client.DiffSide{Session: s}})
		e.write(s, "img.bin", "\x89PNG\x00\x02")
		r := e.diff(client.DiffRequest{From: diffFrom(s, client.AtPosition(base.To.Position)), To: client.DiffSide{Session: s}, Path: "img.bin"})
		if !strings.Contains(r.Unified, "Binary files differ") {
			t.Errorf("unified diff of a binary file: got %q", r.Unified)
		}
	})
	t.Run("Limit", func(t *testing.T) {
		e := e.on(t)
		r := e.diff(client.DiffRequest{To: client.DiffSide{Session: child}, Limit: 2})
		if got := diffLines(r); !r.Truncated || !slices.Equal(got, []string{"A NEW", "R docs/guide.md -> docs/manual.md"}) {
			t.Errorf("limit 2: got %q (truncated %v), want the first two changes in tree order", got, r.Truncated)
		}
		if c := r.Counts; c.Added != 1 || c.Modified != 1 || c.Deleted != 1 || c.Renamed != 1 {
			t.Errorf("limit 2: counts %+v, want every change counted", c)
		}
	})
	t.Run("Subject", func(t *testing.T) {
		e := e.on(t)
		body, _ := json.Marshal(client.DiffRequest{To: client.DiffSide{Session: child}})
		msg, err := e.c.Conn().Request("strand.v1.acme.diff", body, 10*time.Second)
		if err != nil {
			t.Fatalf("request on strand.v1.acme.diff: %v", err)
		}
		var r client.DiffReply
		if err := json.Unmarshal(msg.Data, &r); err != nil || r.To.Session != child {
			t.Errorf("reply on strand.v1.acme.diff: %s (%v)", msg.Data, err)
		}
	})
}

func TestService_DiffErrors(t *testing.T) {
	e := startDiffEnv(t)
	s := e.create()
	e.write(s, "dir/f", "x\n")
	deleted := e.create()
	at := e.write(deleted, "f", "x\n")
	if _, err := e.c.DeleteSession(e.ctx, client.SessionRequest{Session: deleted}); err != nil {
		t.Fatalf("delete: %v", err)
	}
	unknown := "01ARZ3NDEKTSV4RRFFQ69G5FAV"
	neg := -1
	tests := []struct {
		name string
		req  client.DiffRequest
		want domain.Code
	}{
		{"NoTo", client.DiffRequest{}, domain.CodeInvalidArgument},
		{"BadSessionID", client.DiffRequest{To: client.DiffSide{Session: "nope"}}, domain.CodeInvalidArgument},
		{"UnknownTo", client.DiffRequest{To: client.DiffSide{Session: unknown}}, domain.CodeNotFound},
		{"UnknownFrom", client.DiffRequest{From: diffFrom(unknown, ""), To: client.DiffSide{Session: s}}, domain.CodeNotFound},
		{"UnknownCheckpoint", client.DiffRequest{To: client.DiffSide{Session: s, At: "nope"}}, domain.CodeNotFound},
		{"UnknownPosition", client.DiffRequest{To: client.DiffSide{Session: s, At: "999999"}}, domain.CodeNotFound},
		{"PositionZero", client.DiffRequest{To: client.DiffSide{Session: s, At: "0"}}, domain.CodeInvalidArgument},
		{"BadAt", client.DiffRequest{To: client.DiffSide{Session: s, At: "no such/name"}}, domain.CodeInvalidArgument},
		{"FromAtWithoutSession", client.DiffRequest{From: &client.DiffSide{At: "1"}, To: client.DiffSide{Session: s}}, domain.CodeInvalidArgument},
		{"PathMissing", client.DiffRequest{To: client.DiffSide{Session: s}, Path: "nope"}, domain.CodeNotFound},
		{"PathIsADirectory", client.DiffRequest{To: client.DiffSide{Session: s}, Path: "dir"}, domain.CodeNotFound},
		{"PathInvalid", client.DiffRequest{To: client.DiffSide{Session: s}, Path: "../x"}, domain.CodeInvalidArgument},
		{"NegativeContext", client.DiffRequest{To: client.DiffSide{Session: s}, Path: "dir/f", Context: &neg}, domain.CodeInvalidArgument},
		{"LimitTooLarge", client.DiffRequest{To: client.DiffSide{Session: s}, Limit: client.MaxDiffLimit + 1}, domain.CodeInvalidArgument},
		{"DeletedSessionHead", client.DiffRequest{To: client.DiffSide{Session: deleted}}, domain.CodeNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.c.Diff(e.ctx, tc.req)
			if got := client.ErrorCode(err); got != tc.want {
				t.Errorf("Diff(%+v): got %v (code %q), want code %q", tc.req, err, got, tc.want)
			}
		})
	}
	t.Run("UnknownField", func(t *testing.T) {
		e := e.on(t)
		err := e.c.RequestRaw(e.ctx, "diff", "", []byte(`{"to":{"session":"`+s+`"},"bogus":1}`), nil)
		if got := client.ErrorCode(err); got != domain.CodeInvalidArgument {
			t.Errorf("unknown field: got %v, want invalid_argument", err)
		}
	})
	t.Run("DeletedSessionInThePast", func(t *testing.T) {
		e := e.on(t)
		r := e.diff(client.DiffRequest{To: client.DiffSide{Session: deleted, At: client.AtPosition(at)}})
		wantDiff(t, r, "A f")
	})
}

// TestService_DiffFitsInAReply checks that a unified diff larger than a
// reply can carry is cut at a line end rather than lost: every "<" takes
// six bytes in JSON, so 2 MiB of them would be 12 MiB on the wire.
func TestService_DiffFitsInAReply(t *testing.T) {
	e := startDiffEnv(t)
	s := e.create()
	old := e.write(s, "page.html", strings.Repeat("<<<<<<<<<<<<<<<\n", 1<<16))
	e.write(s, "page.html", strings.Repeat(">>>>>>>>>>>>>>>\n", 1<<16))
	r := e.diff(client.DiffRequest{From: diffFrom(s, client.AtPosition(old)), To: client.DiffSide{Session: s}, Path: "page.html"})
	if !r.UnifiedTruncated || len(r.Unified) == 0 || !strings.HasSuffix(r.Unified, "\n") {
		t.Fatalf("unified diff of 2 MiB of escaped text: got %d bytes (truncated %v), want a part cut at a line end", len(r.Unified), r.UnifiedTruncated)
	}
	if !strings.HasPrefix(r.Unified, "--- a/page.html\n+++ b/page.html\n@@ -1,65536 +1,65536 @@\n-<<<") {
		t.Errorf("unified diff starts %q", r.Unified[:min(80, len(r.Unified))])
	}
	if len(r.Modified) != 1 {
		t.Errorf("lists: got %q, want page.html modified", diffLines(r))
	}
}
