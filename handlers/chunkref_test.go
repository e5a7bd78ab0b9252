package handlers_test

import (
	"bytes"
	"testing"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

// TestFS_WriteByChunksOfExpected: a write by chunks may name the chunks of
// the content its expected_hash names (a small change to a large file sends
// only the changed chunk), but naming content does not grant it: the write
// is refused unless the path holds that content.
func TestFS_WriteByChunksOfExpected(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx := t.Context()
	id := h.session(t)
	const chunk = 512 << 10
	data := bytes.Repeat([]byte("0123456789abcdef"), 3*chunk/16) // three chunks
	old, err := h.c.Write(ctx, client.WriteRequest{Session: id, Path: "big.bin", Content: data})
	if err != nil {
		t.Fatal(err)
	}
	changed := append([]byte(nil), data...)
	copy(changed[chunk+10:], "patched")
	up, err := h.c.Upload(ctx, id, changed[chunk:2*chunk])
	if err != nil {
		t.Fatal(err)
	}
	chunks := []string{domain.Sum(data[:chunk]).String(), up.Hash, domain.Sum(data[2*chunk:]).String()}
	want := domain.Sum(changed).String()

	t.Run("Other tenant", func(t *testing.T) {
		other := h.client("other")
		oid, err := other.CreateSession(ctx, client.CreateSessionRequest{})
		if err != nil {
			t.Fatal(err)
		}
		h.unchanged(t, "a write naming content the path does not hold", func() {
			_, err := other.Write(ctx, client.WriteRequest{Session: oid.Session.ID, Path: "x", Chunks: chunks[:1], ExpectedHash: old.Hash})
			if err == nil {
				t.Fatalf("a write by another tenant's chunks succeeded")
			}
		})
	})
	t.Run("Wrong expectation", func(t *testing.T) {
		h.unchanged(t, "a write whose expectation fails", func() {
			_, err := h.c.Write(ctx, client.WriteRequest{Session: id, Path: "other.bin", Chunks: chunks, Hash: want, ExpectedHash: old.Hash})
			wantCode(t, "expected content at another path", err, domain.CodeConflict)
		})
	})
	r, err := h.c.Batch(ctx, client.BatchRequest{Session: id, Ops: []client.BatchOp{
		{Op: "write", Path: "big.bin", Chunks: chunks, Hash: want, ExpectedHash: old.Hash},
		{Op: "setxattr", Path: "big.bin", Name: "user.kind", Value: []byte("data")},
	}})
	if err != nil {
		t.Fatalf("batch write by chunks of the expected content: %v", err)
	}
	h.wantHead(t, "batch", r.Position)
	if got := h.read(t, id, "big.bin", ""); got != string(changed) {
		t.Errorf("big.bin: the content differs from the patched one")
	}
	var x client.XattrReply
	if err := h.c.Request(ctx, "fs", "xattr.get", client.XattrRequest{Session: id, Path: "big.bin", Name: "user.kind"}, &x); err != nil || string(x.Value) != "data" {
		t.Errorf("xattr set in the batch: got %q, %v", x.Value, err)
	}
	t.Run("Bad xattr ops", func(t *testing.T) {
		h.unchanged(t, "bad xattr ops", func() {
			_, err := h.c.Batch(ctx, client.BatchRequest{Session: id, Ops: []client.BatchOp{{Op: "rmxattr", Path: "big.bin", Name: "user.kind", Value: []byte("v")}}})
			wantCode(t, "rmxattr with a value", err, domain.CodeInvalidArgument)
			_, err = h.c.Batch(ctx, client.BatchRequest{Session: id, Ops: []client.BatchOp{{Op: "mkdir", Path: "d", Name: "user.kind"}}})
			wantCode(t, "mkdir with a name", err, domain.CodeInvalidArgument)
		})
	})
}
