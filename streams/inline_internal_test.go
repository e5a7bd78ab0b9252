package streams

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/strand-dev/strand/domain"
)

// TestSnapshot_InlineContent checks that snapshots and tree blobs keep the
// content of inline files (a load from them serves it without a blob), and
// refuse content that does not hash to what the entry records.
func TestSnapshot_InlineContent(t *testing.T) {
	data := []byte("inline content\n")
	m := domain.Meta{EventID: "e1", Actor: "a", Time: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	_, s, err := domain.Execute(nil, domain.CreateSession{ID: "S1", Tenant: "acme"}, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Commit(&domain.Event{Version: 1}, 1, domain.Sum([]byte("e1")))
	m.EventID = "e2"
	ev, s, err := domain.Execute(s, domain.ChangeFiles{Ops: []domain.FileOp{
		{Kind: domain.OpWrite, Path: "a.txt", Content: domain.Sum(data), Size: int64(len(data)), Data: data},
	}}, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := ev.Encode()
	s.Commit(ev, 2, domain.Sum(body))

	snap, err := encodeSnapshot(s)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeSnapshot(snap)
	if err != nil {
		t.Fatal(err)
	}
	if n := got.Tree.Lookup("a.txt"); n == nil || !bytes.Equal(n.Data, data) || n.Content != domain.Sum(data) {
		t.Fatalf("a.txt after a snapshot round trip: %+v", n)
	}
	tb, err := encodeTree(s.Tree)
	if err != nil {
		t.Fatal(err)
	}
	tree, err := decodeTree(tb)
	if err != nil {
		t.Fatal(err)
	}
	if n := tree.Lookup("a.txt"); n == nil || !bytes.Equal(n.Data, data) {
		t.Fatalf("a.txt after a tree blob round trip: %+v", n)
	}
	if hs, err := TreeBlobContents(tb); err != nil || len(hs) != 0 {
		t.Fatalf("tree blob names blobs %v (%v), want none for inline content", hs, err)
	}
	// Same length, other bytes: the root still matches, the hash does not.
	bad := bytes.Replace(tb, data, []byte("INLINE content\n"), 1)
	if _, err := decodeTree(bad); err == nil || !strings.Contains(err.Error(), "inline content") {
		t.Fatalf("decode of altered inline content: %v, want it refused", err)
	}
}
