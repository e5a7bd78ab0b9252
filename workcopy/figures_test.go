package workcopy_test

import (
	"path/filepath"
	"testing"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/workcopy"
)

// TestProcessFigures: checkouts, pushes and pulls (and a failed checkout)
// are counted with their files and bytes.
func TestProcessFigures(t *testing.T) {
	e := start(t)
	ctx := ctxOf(t)
	id := e.session(t, write("a.txt", "hello\n", 0o644), write("b/c.txt", "12345", 0o644))
	before := workcopy.ProcessFigures()
	dir := filepath.Join(t.TempDir(), "wc")
	w := e.checkout(t, id, dir)
	writeLocal(t, dir, "d.txt", "four", 0o644)
	writeLocal(t, dir, "a.txt", "hello, world\n", 0o644)
	res, err := w.Push(ctx, workcopy.PushOptions{})
	must(t, err)
	if res.Bytes != int64(len("four")+len("hello, world\n")) {
		t.Errorf("push result bytes %d, want %d", res.Bytes, len("four")+len("hello, world\n"))
	}
	other := e.checkout(t, id, filepath.Join(t.TempDir(), "other"))
	if _, err := e.c.Write(ctx, client.WriteRequest{Session: id, Path: "e.txt", Content: []byte("new")}); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Pull(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := workcopy.Checkout(ctx, e.c, nil, id, "", dir, workcopy.CheckoutOptions{}); err == nil {
		t.Fatal("a checkout into a working copy succeeded, want an error")
	}
	after := workcopy.ProcessFigures()
	got := workcopy.Figures{
		Checkouts: after.Checkouts - before.Checkouts, CheckoutFiles: after.CheckoutFiles - before.CheckoutFiles,
		CheckoutBytes: after.CheckoutBytes - before.CheckoutBytes, Pushes: after.Pushes - before.Pushes,
		PushChanges: after.PushChanges - before.PushChanges, PushBytes: after.PushBytes - before.PushBytes,
		Pulls: after.Pulls - before.Pulls, PullUpdated: after.PullUpdated - before.PullUpdated,
	}
	// Two checkouts: 2 files of 11 bytes, then 3 files of 13+5+4 bytes.
	want := workcopy.Figures{Checkouts: 2, CheckoutFiles: 5, CheckoutBytes: 11 + 22, Pushes: 1, PushChanges: 2,
		PushBytes: 17, Pulls: 1, PullUpdated: 1}
	if got.Checkouts != want.Checkouts || got.CheckoutFiles != want.CheckoutFiles || got.CheckoutBytes != want.CheckoutBytes ||
		got.Pushes != want.Pushes || got.PushChanges != want.PushChanges || got.PushBytes != want.PushBytes ||
		got.Pulls != want.Pulls || got.PullUpdated != want.PullUpdated {
		t.Errorf("figures moved by %+v, want %+v", got, want)
	}
	if n := after.Failures["checkout"] - before.Failures["checkout"]; n != 1 {
		t.Errorf("failed checkouts counted %d, want 1", n)
	}
}
