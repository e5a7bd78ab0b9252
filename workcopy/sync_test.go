package workcopy_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/handlers"
	"github.com/strand-dev/strand/workcopy"
)

func TestPush_ConflictThenPull(t *testing.T) {
	e := start(t)
	ctx := ctxOf(t)
	id := e.session(t,
		write("shared.txt", "one\ntwo\nthree\nfour\nfive\n", 0o644),
		write("only-a.txt", "a\n", 0o644),
		write("gone.txt", "bye\n", 0o644),
		write("other.txt", "x\n", 0o644),
	)
	da, db := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	a, b := e.checkout(t, id, da), e.checkout(t, id, db)

	// A: edits line one of shared.txt, changes only-a.txt, deletes gone.txt, renames other.txt.
	writeLocal(t, da, "shared.txt", "ONE\ntwo\nthree\nfour\nfive\n", 0o644)
	writeLocal(t, da, "only-a.txt", "a, changed\n", 0o644)
	must(t, os.Remove(filepath.Join(da, "gone.txt")))
	must(t, os.Rename(filepath.Join(da, "other.txt"), filepath.Join(da, "moved.txt")))
	// B: edits line five of shared.txt and adds a file.
	writeLocal(t, db, "shared.txt", "one\ntwo\nthree\nfour\nFIVE\n", 0o644)
	writeLocal(t, db, "b-new.txt", "from b\n", 0o644)

	ra, err := a.Push(ctx, workcopy.PushOptions{})
	must(t, err)
	// B is behind: refused with conflict, and nothing is written.
	_, err = b.Push(ctx, workcopy.PushOptions{})
	if client.ErrorCode(err) != domain.CodeConflict {
		t.Fatalf("push of a working copy behind the session: %v, want conflict", err)
	}
	head, err := e.c.GetSession(ctx, id, "")
	must(t, err)
	if head.Session.Position != ra.Position {
		t.Fatalf("a refused push moved the session from %d to %d", ra.Position, head.Session.Position)
	}
	// Pull merges: different lines of shared.txt, A's other changes come in.
	pr, err := b.Pull(ctx)
	must(t, err)
	if len(pr.Conflicts) != 0 || pr.Merged != 1 || pr.To != ra.Position {
		t.Fatalf("pull = %+v, want one clean merge up to %d", pr, ra.Position)
	}
	got := localTree(t, db)
	for p, want := range map[string]string{
		"shared.txt": `file 644 "ONE\ntwo\nthree\nfour\nFIVE\n"`, "only-a.txt": `file 644 "a, changed\n"`,
		"moved.txt": `file 644 "x\n"`, "b-new.txt": `file 644 "from b\n"`,
	} {
		if got[p] != want {
			t.Errorf("after pull %s is %s, want %s", p, got[p], want)
		}
	}
	if _, ok := got["gone.txt"]; ok {
		t.Error("gone.txt, deleted by A, is still there after the pull")
	}
	st, err := b.Status()
	must(t, err)
	wantChanges(t, st, "modified shared.txt", "added b-new.txt")
	rb, err := b.Push(ctx, workcopy.PushOptions{})
	must(t, err)
	sameTrees(t, "after B's push", localTree(t, db), e.remoteTree(t, id))

	// Now both change the same line: A pulls B's work first (fast forward).
	pr, err = a.Pull(ctx)
	must(t, err)
	if pr.To != rb.Position || len(pr.Conflicts) != 0 {
		t.Fatalf("fast-forward pull = %+v", pr)
	}
	sameTrees(t, "A after fast-forward", localTree(t, da), localTree(t, db))
	writeLocal(t, da, "shared.txt", "ONE\ntwo\nTHREE by a\nfour\nFIVE\n", 0o644)
	writeLocal(t, db, "shared.txt", "ONE\ntwo\nthree by b\nfour\nFIVE\n", 0o644)
	_, err = a.Push(ctx, workcopy.PushOptions{})
	must(t, err)
	pr, err = b.Pull(ctx)
	must(t, err)
	if len(pr.Conflicts) != 1 || pr.Conflicts[0].Path != "shared.txt" {
		t.Fatalf("pull of a conflicting change: %+v, want a conflict on shared.txt", pr)
	}
	data, err := os.ReadFile(filepath.Join(db, "shared.txt"))
	must(t, err)
	for _, want := range []string{"<<<<<<< local\n", "three by b", "=======\n", "THREE by a", ">>>>>>> " + id + "@"} {
		if !strings.Contains(string(data), want) {
			t.Fatalf("conflict file lacks %q:\n%s", want, data)
		}
	}
	// Nothing was resolved silently: push refuses until the file is edited.
	_, err = b.Push(ctx, workcopy.PushOptions{})
	if client.ErrorCode(err) != domain.CodeConflict || !strings.Contains(err.Error(), "shared.txt") {
		t.Fatalf("push with the conflict unresolved: %v, want conflict naming shared.txt", err)
	}
	writeLocal(t, db, "shared.txt", "ONE\ntwo\nthree by both\nfour\nFIVE\n", 0o644)
	_, err = b.Push(ctx, workcopy.PushOptions{})
	must(t, err)
	sameTrees(t, "after resolution", localTree(t, db), e.remoteTree(t, id))
}

func TestPush_InterruptedRunAgain(t *testing.T) {
	e := start(t)
	ctx := ctxOf(t)
	id := e.session(t, write("a.txt", "a", 0o644))
	dir := filepath.Join(t.TempDir(), "wc")
	w := e.checkout(t, id, dir)
	writeLocal(t, dir, "a.txt", "changed", 0o644)
	writeLocal(t, dir, "big.bin", string(big), 0o644)
	// Keep the metadata as it was before the push: a push that the
	// service stored but whose answer never reached the working copy.
	meta := filepath.Join(dir, workcopy.MetaDir)
	saved := filepath.Join(t.TempDir(), "meta")
	must(t, exec.Command("cp", "-a", meta, saved).Run())
	first, err := w.Push(ctx, workcopy.PushOptions{})
	must(t, err)
	if first.Uploaded != 4 {
		t.Fatalf("first push uploaded %d chunks, want 4", first.Uploaded)
	}
	must(t, os.RemoveAll(meta))
	must(t, exec.Command("cp", "-a", saved, meta).Run())
	again, err := e.open(t, dir).Push(ctx, workcopy.PushOptions{})
	must(t, err)
	if !again.Replayed || again.Position != first.Position || again.RequestID != first.RequestID {
		t.Fatalf("push run again = %+v, want the first push (%d, %s) replayed", again, first.Position, first.RequestID)
	}
	if again.Uploaded != 0 || again.Skipped != 4 {
		t.Fatalf("push run again uploaded %d and skipped %d chunks, want 0 and 4", again.Uploaded, again.Skipped)
	}
	head, err := e.c.GetSession(ctx, id, "")
	must(t, err)
	if head.Session.Position != first.Position {
		t.Fatalf("the session is at %d after the push ran twice, want %d", head.Session.Position, first.Position)
	}
	st, err := e.open(t, dir).Status()
	must(t, err)
	wantChanges(t, st)
}

func TestStatus_Ignore(t *testing.T) {
	e := start(t)
	ctx := ctxOf(t)
	id := e.session(t, write("src/main.go", "package main\n", 0o644), write("keep.log", "tracked\n", 0o644))
	dir := filepath.Join(t.TempDir(), "wc")
	w := e.checkout(t, id, dir)
	writeLocal(t, dir, workcopy.IgnoreFile, "# build outputs\nbuild/\n*.log\n!important.log\nnode_modules\n", 0o644)
	writeLocal(t, dir, "src/"+workcopy.IgnoreFile, "generated.go\n", 0o644)
	writeLocal(t, dir, "build/out.bin", "binary", 0o644)
	writeLocal(t, dir, "debug.log", "noise", 0o644)
	writeLocal(t, dir, "important.log", "keep me", 0o644)
	writeLocal(t, dir, "node_modules/pkg/index.js", "x", 0o644)
	writeLocal(t, dir, "src/generated.go", "package main // generated\n", 0o644)
	writeLocal(t, dir, "generated.go", "not under src: pushed\n", 0o644)
	writeLocal(t, dir, "keep.log", "tracked, so not ignored\n", 0o644)
	st, err := w.Status()
	must(t, err)
	wantChanges(t, st, "added "+workcopy.IgnoreFile, "added src/"+workcopy.IgnoreFile, "added important.log",
		"added generated.go", "modified keep.log")
	_, err = w.Push(ctx, workcopy.PushOptions{})
	must(t, err)
	remote := e.remoteTree(t, id)
	for _, p := range []string{"build", "build/out.bin", "debug.log", "node_modules", "src/generated.go", workcopy.MetaDir} {
		if _, ok := remote[p]; ok {
			t.Errorf("%s was pushed, though ignored", p)
		}
	}
	for _, p := range []string{"important.log", "generated.go", "keep.log"} {
		if _, ok := remote[p]; !ok {
			t.Errorf("%s was not pushed", p)
		}
	}
}

func TestPush_SkipsContentAlreadyUploaded(t *testing.T) {
	e := start(t)
	ctx := ctxOf(t)
	one, two := e.session(t, write("x", "x", 0)), e.session(t, write("y", "y", 0))
	d1, d2 := filepath.Join(t.TempDir(), "1"), filepath.Join(t.TempDir(), "2")
	w1, w2 := e.checkout(t, one, d1), e.checkout(t, two, d2)
	writeLocal(t, d1, "big.bin", string(big), 0o644)
	r1, err := w1.Push(ctx, workcopy.PushOptions{})
	must(t, err)
	writeLocal(t, d2, "copy/of/big.bin", string(big), 0o755)
	r2, err := w2.Push(ctx, workcopy.PushOptions{})
	must(t, err)
	if r1.Uploaded != 4 || r2.Uploaded != 0 || r2.Skipped != 4 {
		t.Fatalf("uploads: first push %d, second %d (skipped %d); want 4, 0 and 4", r1.Uploaded, r2.Uploaded, r2.Skipped)
	}
	sameTrees(t, "second session", localTree(t, d2), e.remoteTree(t, two))
}

func TestPush_LockedPath(t *testing.T) {
	e := start(t)
	ctx := ctxOf(t)
	id := e.session(t, write("locked.txt", "v1", 0))
	dir := filepath.Join(t.TempDir(), "wc")
	w := e.checkout(t, id, dir)
	other := client.NewClient(e.c.Conn(), "acme")
	other.Actor = "someone-else"
	lease, err := other.Lock(ctx, "acquire", client.LockRequest{Session: id, Path: "locked.txt", TTL: "1m"})
	must(t, err)
	writeLocal(t, dir, "locked.txt", "v2", 0o644)
	// Taking the lease is an event: catch up with it first.
	_, err = w.Pull(ctx)
	must(t, err)
	_, err = w.Push(ctx, workcopy.PushOptions{})
	if client.ErrorCode(err) != domain.CodeLocked {
		t.Fatalf("push over a lock held by another: %v, want locked", err)
	}
	if _, err := w.Push(ctx, workcopy.PushOptions{Token: lease.Lock.Token}); err != nil {
		t.Fatalf("push with the lease token: %v", err)
	}
}

// TestPush_TwoAtOnce: two working copies of one session push at the same
// moment; one wins, the other gets conflict and nothing of it is written,
// and after a pull its push goes in.
func TestPush_TwoAtOnce(t *testing.T) {
	e := start(t)
	ctx := ctxOf(t)
	id := e.session(t, write("a.txt", "a\n", 0o644))
	da, db := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	a, b := e.checkout(t, id, da), e.checkout(t, id, db)
	writeLocal(t, da, "from-a.txt", "a\n", 0o644)
	writeLocal(t, db, "from-b.txt", "b\n", 0o644)
	errs := make(chan error, 2)
	for _, w := range []*workcopy.Copy{a, b} {
		go func() {
			_, err := w.Push(ctx, workcopy.PushOptions{})
			errs <- err
		}()
	}
	var won, lost int
	for range 2 {
		switch err := <-errs; {
		case err == nil:
			won++
		case client.ErrorCode(err) == domain.CodeConflict:
			lost++
		default:
			t.Fatalf("push: %v", err)
		}
	}
	if won != 1 || lost != 1 {
		t.Fatalf("%d pushes won and %d got conflict, want one each", won, lost)
	}
	remote := e.remoteTree(t, id)
	_, hasA := remote["from-a.txt"]
	_, hasB := remote["from-b.txt"]
	if hasA == hasB {
		t.Fatalf("after two pushes at once the session holds from-a %v, from-b %v: want exactly one", hasA, hasB)
	}
	loser := a
	if hasA {
		loser = b
	}
	_, err := loser.Pull(ctx)
	must(t, err)
	_, err = loser.Push(ctx, workcopy.PushOptions{})
	must(t, err)
	remote = e.remoteTree(t, id)
	if _, ok := remote["from-a.txt"]; !ok {
		t.Fatal("from-a.txt missing after the loser pulled and pushed")
	}
	if _, ok := remote["from-b.txt"]; !ok {
		t.Fatal("from-b.txt missing after the loser pulled and pushed")
	}
}

// TestPush_MakesApprovalsStale: a push is a write like any other; an
// approval requested for the content before it authorises nothing after.
func TestPush_MakesApprovalsStale(t *testing.T) {
	e := start(t)
	ctx := ctxOf(t)
	id := e.session(t, write("a.txt", "a\n", 0o644))
	dir := filepath.Join(t.TempDir(), "wc")
	w := e.checkout(t, id, dir)
	req, err := e.c.RequestApproval(ctx, client.ApprovalRequestRequest{Session: id, Reason: "commit"})
	must(t, err)
	// The request is an event: catch up, then change the content.
	_, err = w.Pull(ctx)
	must(t, err)
	writeLocal(t, dir, "a.txt", "changed after the request\n", 0o644)
	_, err = w.Push(ctx, workcopy.PushOptions{})
	must(t, err)
	p, err := e.c.Pending(ctx, client.PendingRequest{Session: id, All: true})
	must(t, err)
	for _, q := range p.Requests {
		if q.ID == req.Request.ID && q.State != domain.ApprovalStaleState {
			t.Fatalf("request after a push changed the content: %s, want %s", q.State, domain.ApprovalStaleState)
		}
	}
}

// TestCheckout_UnderRateLimit: a checkout that needs more requests than the
// tenant's burst waits as the refusals say and completes.
func TestCheckout_UnderRateLimit(t *testing.T) {
	lim := handlers.LimitsConfig{Tenants: map[string]handlers.Limits{"acme": {RequestsPerSecond: 20, Burst: 2}}}
	e := startWith(t, handlers.Options{Limits: &lim})
	ctx := ctxOf(t)
	var ops []client.BatchOp
	for i := range 300 {
		ops = append(ops, write(fmt.Sprintf("d%d/f%03d.txt", i%7, i), strings.Repeat("x", 9000+i), 0o644))
	}
	id := e.session(t, ops...)
	// The session's head, the manifest and the content: more requests than
	// a burst of 2, sent at once.
	dir := filepath.Join(t.TempDir(), "wc")
	w, err := workcopy.Checkout(ctx, e.c, e.cache, id, "", dir, workcopy.CheckoutOptions{})
	must(t, err)
	if w.Entries() != 307 {
		t.Fatalf("checkout under the rate limit holds %d entries, want 307", w.Entries())
	}
	sameTrees(t, "checkout under the rate limit", localTree(t, dir), e.remoteTree(t, id))
}

// TestPull_Modes: a chmod made in the session (a folder's, a file's)
// reaches the working copy on pull, and leaves it clean.
func TestPull_Modes(t *testing.T) {
	e := start(t)
	ctx := ctxOf(t)
	id := e.session(t, write("cfg/a.toml", "a", 0), write("run.sh", "echo\n", 0o644))
	dir := filepath.Join(t.TempDir(), "wc")
	w := e.checkout(t, id, dir)
	for p, m := range map[string]uint32{"cfg": 0o700, "run.sh": 0o755} {
		if _, err := e.c.Chmod(ctx, client.ChmodRequest{Session: id, Path: p, Mode: &m}); err != nil {
			t.Fatal(err)
		}
	}
	res, err := w.Pull(ctx)
	must(t, err)
	if res.Updated != 2 || len(res.Conflicts) != 0 {
		t.Fatalf("pull = %+v, want 2 paths updated and no conflict", res)
	}
	for p, want := range map[string]os.FileMode{"cfg": 0o700, "run.sh": 0o755} {
		fi, err := os.Stat(filepath.Join(dir, p))
		must(t, err)
		if fi.Mode().Perm() != want {
			t.Errorf("%s after pull: %v, want %v", p, fi.Mode().Perm(), want)
		}
	}
	st, err := w.Status()
	must(t, err)
	wantChanges(t, st)
	sameTrees(t, "after pull", localTree(t, dir), e.remoteTree(t, id))
}

// TestPush_InParts: a change larger than one event holds (2,600 files in
// 52 new directories, removals of a directory and of files, a rename, a
// mode change, and 300 files of 48 KiB, 14 MiB of content inside the
// requests) is pushed in parts, each an event that expects the one
// before; the session ends up as the folder is, and the working copy is
// clean. With Atomic the same push is refused with too_large and nothing
// is written.
func TestPush_InParts(t *testing.T) {
	e := start(t)
	ctx := ctxOf(t)
	var seed []client.BatchOp
	for i := range 30 {
		seed = append(seed, write(fmt.Sprintf("old/f%02d.txt", i), "old", 0o644))
	}
	seed = append(seed, write("gone.txt", "gone", 0o644), write("moved.txt", "moved along", 0o644), write("run.sh", "echo", 0o644))
	id := e.session(t, seed...)
	dir := filepath.Join(t.TempDir(), "wc")
	w := e.checkout(t, id, dir)
	must(t, os.RemoveAll(filepath.Join(dir, "old")))
	must(t, os.Remove(filepath.Join(dir, "gone.txt")))
	must(t, os.Rename(filepath.Join(dir, "moved.txt"), filepath.Join(dir, "renamed.txt")))
	must(t, os.Chmod(filepath.Join(dir, "run.sh"), 0o755))
	for i := range 2600 {
		writeLocal(t, dir, fmt.Sprintf("src/p%02d/f%04d.go", i/50, i), fmt.Sprintf("package p%02d // %d\n", i/50, i), 0o644)
	}
	large := bytes.Repeat([]byte("0123456789abcdef"), 3<<10) // 48 KiB: inline in a push
	for i := range 300 {
		writeLocal(t, dir, fmt.Sprintf("assets/a%03d.bin", i), fmt.Sprintf("%03d", i)+string(large[3:]), 0o644)
	}
	before, err := e.c.GetSession(ctx, id, "")
	must(t, err)

	_, err = w.Push(ctx, workcopy.PushOptions{Atomic: true})
	if client.ErrorCode(err) != domain.CodeTooLarge {
		t.Fatalf("atomic push of a change larger than one event: %v, want too_large", err)
	}
	if s, err := e.c.GetSession(ctx, id, ""); err != nil || s.Session.Position != before.Session.Position {
		t.Fatalf("after the refused push the session is at %d (%v), want %d", s.Session.Position, err, before.Session.Position)
	}

	r, err := e.open(t, dir).Push(ctx, workcopy.PushOptions{})
	must(t, err)
	// About 2,960 operations (two removals, 54 directories, a rename,
	// 2,900 writes, a mode change) need three parts by count; the 300
	// large files (14 MiB inside the requests, in name order before src/)
	// need four by bytes, and the small files fill the last of those.
	if r.Parts < 5 || r.Position != before.Session.Position+uint64(r.Parts) {
		t.Fatalf("push = %+v from position %d, want 5 or more parts, one event each", r, before.Session.Position)
	}
	if r.Changes < 2900 {
		t.Fatalf("push reported %d changes, want the whole change (2,900 files and more)", r.Changes)
	}
	sameTrees(t, "after the push in parts", e.remoteTree(t, id), localTree(t, dir))
	st, err := e.open(t, dir).Status()
	must(t, err)
	wantChanges(t, st)
	// Every part is a tree of its own: the history holds the parts in order.
	ev, err := e.c.Events(ctx, client.EventsRequest{Session: id, From: before.Session.Position + 1, Limit: 100})
	must(t, err)
	if len(ev.Events) != r.Parts {
		t.Fatalf("%d events after the push, want its %d parts", len(ev.Events), r.Parts)
	}
}

// TestPush_InPartsStopsAndResumes: a push in parts whose second part is
// refused (a path under another's lease) leaves the working copy at the
// first part: HEAD and the index moved with it, so status shows only what
// was not stored, and the next push sends the rest.
func TestPush_InPartsStopsAndResumes(t *testing.T) {
	e := start(t)
	ctx := ctxOf(t)
	id := e.session(t, write("zz/locked.txt", "v1", 0o644))
	dir := filepath.Join(t.TempDir(), "wc")
	w := e.checkout(t, id, dir)
	other := client.NewClient(e.c.Conn(), "acme")
	other.Actor = "someone-else"
	lease, err := other.Lock(ctx, "acquire", client.LockRequest{Session: id, Path: "zz/locked.txt", TTL: "1m"})
	must(t, err)
	_, err = w.Pull(ctx)
	must(t, err)
	// 1,500 new files (parents first: a00..a29 sort before zz), then the
	// locked file's change in the second part.
	for i := range 1500 {
		writeLocal(t, dir, fmt.Sprintf("a%02d/f%04d.txt", i/50, i), fmt.Sprint(i), 0o644)
	}
	writeLocal(t, dir, "zz/locked.txt", "v2", 0o644)
	head, err := e.c.GetSession(ctx, id, "")
	must(t, err)
	_, err = w.Push(ctx, workcopy.PushOptions{})
	if client.ErrorCode(err) != domain.CodeLocked || !strings.Contains(err.Error(), "1 of 2 parts") {
		t.Fatalf("push whose second part touches a locked path: %v, want locked after 1 of 2 parts", err)
	}
	after, err := e.c.GetSession(ctx, id, "")
	must(t, err)
	if after.Session.Position != head.Session.Position+1 {
		t.Fatalf("session at %d after the first part, want %d", after.Session.Position, head.Session.Position+1)
	}
	w = e.open(t, dir)
	if w.Head.Position != after.Session.Position {
		t.Fatalf("working copy HEAD %d, want the first part's position %d", w.Head.Position, after.Session.Position)
	}
	st, err := w.Status()
	must(t, err)
	if n := len(st.Changes); n == 0 || n >= 1000 {
		t.Fatalf("status after the first part shows %d changes, want only what the second part holds", n)
	}
	r, err := w.Push(ctx, workcopy.PushOptions{Token: lease.Lock.Token})
	must(t, err)
	if r.Parts != 1 {
		t.Fatalf("the rest went in %d parts, want 1", r.Parts)
	}
	sameTrees(t, "after the rest", e.remoteTree(t, id), localTree(t, dir))
}
