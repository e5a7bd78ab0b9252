package workcopy_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/workcopy"
)

func TestCopy_RoundTrip(t *testing.T) {
	e := start(t)
	ctx := ctxOf(t)
	id := e.session(t,
		write("README.md", "# demo\n", 0o644),
		write("bin/run.sh", "#!/bin/sh\necho hi\n", 0o755),
		write("secret.txt", "s3cret", 0o600),
		write("dir with spaces/ünïcödé 文件.txt", "unicode\n", 0o644),
		write("same/a.txt", "same content", 0o644),
		write("same/b.txt", "same content", 0o644),
		write("empty.txt", "", 0o644),
		client.BatchOp{Op: "mkdir", Path: "empty-dir"},
		client.BatchOp{Op: "symlink", Path: "link", Target: "README.md"},
		client.BatchOp{Op: "symlink", Path: "dangling", Target: "../nowhere"},
	)
	if _, err := e.c.Write(ctx, client.WriteRequest{Session: id, Path: "data/big.bin", Content: big}); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "wc")
	w := e.checkout(t, id, dir)
	sameTrees(t, "checkout", localTree(t, dir), e.remoteTree(t, id))
	st, err := w.Status()
	must(t, err)
	wantChanges(t, st)

	// Every kind of local change.
	writeLocal(t, dir, "README.md", "# demo, edited\n", 0o644)
	must(t, os.Chmod(filepath.Join(dir, "secret.txt"), 0o640))
	must(t, os.Remove(filepath.Join(dir, "empty.txt")))
	must(t, os.Rename(filepath.Join(dir, "bin/run.sh"), filepath.Join(dir, "bin/start.sh")))
	must(t, os.RemoveAll(filepath.Join(dir, "same")))
	writeLocal(t, dir, "new/deep/file.go", "package deep\n", 0o644)
	writeLocal(t, dir, "new/big2.bin", string(big[:700_000])+"tail", 0o644)
	must(t, os.Mkdir(filepath.Join(dir, "another-empty"), 0o755))
	must(t, os.Remove(filepath.Join(dir, "link")))
	must(t, os.Symlink("secret.txt", filepath.Join(dir, "link")))
	must(t, os.Remove(filepath.Join(dir, "dangling")))
	writeLocal(t, dir, "dangling", "now a file", 0o644)
	st, err = w.Status()
	must(t, err)
	wantChanges(t, st,
		"modified README.md", "mode secret.txt", "deleted empty.txt", "renamed bin/run.sh -> bin/start.sh",
		"deleted same", "deleted same/a.txt", "deleted same/b.txt", "added new", "added new/deep", "added new/deep/file.go",
		"added new/big2.bin", "added another-empty", "modified link", "modified dangling")

	before, err := e.c.GetSession(ctx, id, "")
	must(t, err)
	res, err := w.Push(ctx, workcopy.PushOptions{Checkpoint: "after-edit", Message: "every kind of change"})
	must(t, err)
	if res.Position != before.Session.Position+1 || res.Changes != 14 || res.Checkpoint != "after-edit" {
		t.Fatalf("push = %+v, want one event after %d holding 14 changes", res, before.Session.Position)
	}
	sameTrees(t, "after push", localTree(t, dir), e.remoteTree(t, id))
	st, err = w.Status()
	must(t, err)
	wantChanges(t, st)

	// One event: the history grew by exactly one change plus the checkpoint.
	ev, err := e.c.Events(ctx, client.EventsRequest{Session: id, From: before.Session.Position + 1})
	must(t, err)
	if len(ev.Events) != 2 || ev.Events[0].Type != "BatchApplied" {
		t.Fatalf("events after the push: %d (%v), want BatchApplied then the checkpoint", len(ev.Events), ev.Events)
	}
	// A mode change alone sends the mode, not the file again.
	for _, op := range ev.Events[0].Ops {
		if op.Path == "secret.txt" && (op.Op != domain.OpChmod || op.Mode != 0o640) {
			t.Errorf("the mode change of secret.txt was pushed as %+v, want a chmod to 640", op)
		}
	}

	// A second checkout, from the now warm cache, is the same tree.
	dir2 := filepath.Join(t.TempDir(), "wc2")
	e.checkout(t, id, dir2)
	sameTrees(t, "second checkout", localTree(t, dir2), localTree(t, dir))

	// A checkout of the past, by checkpoint name.
	old := filepath.Join(t.TempDir(), "old")
	if _, err := workcopy.Checkout(ctx, e.c, e.cache, id, client.AtPosition(before.Session.Position), old, workcopy.CheckoutOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := localTree(t, old)["README.md"]; got != `file 644 "# demo\n"` {
		t.Fatalf("checkout at %d: README.md is %s", before.Session.Position, got)
	}
}

func TestCheckout_BadTargets(t *testing.T) {
	e := start(t)
	ctx := ctxOf(t)
	id := e.session(t, write("a", "a", 0))
	dir := t.TempDir()
	writeLocal(t, dir, "something", "x", 0o644)
	_, err := workcopy.Checkout(ctx, e.c, e.cache, id, "", dir, workcopy.CheckoutOptions{})
	if client.ErrorCode(err) != domain.CodeAlreadyExists {
		t.Fatalf("checkout into a non-empty directory: %v, want already_exists", err)
	}
	_, err = workcopy.Checkout(ctx, e.c, e.cache, "01M8639GP38ZZVG1GPASRX3QZR", "", filepath.Join(t.TempDir(), "x"), workcopy.CheckoutOptions{})
	if client.ErrorCode(err) != domain.CodeNotFound {
		t.Fatalf("checkout of an unknown session: %v, want not_found", err)
	}
	if _, err := workcopy.Open(t.TempDir(), e.c, e.cache); err == nil {
		t.Fatal("Open of a plain directory succeeded")
	}
	if _, err := workcopy.Find(t.TempDir()); err == nil {
		t.Fatal("Find outside any working copy succeeded")
	}
	w := e.checkout(t, id, filepath.Join(t.TempDir(), "wc"))
	must(t, os.MkdirAll(filepath.Join(w.Dir, "deep", "er"), 0o755))
	if root, err := workcopy.Find(filepath.Join(w.Dir, "deep", "er")); err != nil || root != w.Dir {
		t.Fatalf("Find below the root = %q, %v; want %s", root, err, w.Dir)
	}
	if _, err := workcopy.Open(w.Dir, client.NewClient(e.c.Conn(), "globex"), e.cache); client.ErrorCode(err) != domain.CodeInvalidArgument {
		t.Fatalf("Open as another tenant: %v, want invalid_argument", err)
	}
}
