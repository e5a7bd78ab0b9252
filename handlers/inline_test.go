package handlers_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

// TestFS_InlineContent checks design record 0009 through the service:
// small content travels inside its event and stores no blob, larger content
// is a blob, a batch spills to blobs beyond one event's share, and every
// read (current, after a restart, at a position, in a fork, in a diff, in a
// merge) gives the same bytes either way.
func TestFS_InlineContent(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx := t.Context()
	blobs := h.env.Store.Blobs
	stored := func(content []byte) bool {
		_, err := blobs.Stat(ctx, domain.Sum(content))
		return err == nil
	}
	id := h.session(t)
	small := []byte("small and inline\n")
	limit := bytes.Repeat([]byte("x"), domain.MaxInlineBytes)
	large := bytes.Repeat([]byte("y"), domain.MaxInlineBytes+1)

	t.Run("Write", func(t *testing.T) {
		for _, c := range []struct {
			path    string
			content []byte
			blob    bool
		}{{"small.txt", small, false}, {"limit.txt", limit, false}, {"large.txt", large, true}} {
			r := h.write(t, id, c.path, string(c.content))
			ev, err := h.env.Store.EventAt(ctx, "acme", id, r.Position)
			if err != nil {
				t.Fatal(err)
			}
			op := ev.Event.Ops[0]
			if op.Inline() == c.blob || stored(c.content) != c.blob {
				t.Errorf("%s (%d bytes): inline %v, blob stored %v; want blob %v", c.path, len(c.content), op.Inline(), stored(c.content), c.blob)
			}
			if got := h.read(t, id, c.path, ""); got != string(c.content) {
				t.Errorf("read %s: %d bytes, want %d", c.path, len(got), len(c.content))
			}
		}
	})
	t.Run("SameHashAsBlob", func(t *testing.T) {
		// The same bytes written inline here and as a blob elsewhere (an
		// older history) are the same entry: equal hashes, no diff.
		r, err := h.c.Read(ctx, client.ReadRequest{Session: id, Path: "small.txt"})
		if err != nil {
			t.Fatal(err)
		}
		if r.Hash != domain.Sum(small).String() {
			t.Fatalf("hash %s, want the SHA-256 %s", r.Hash, domain.Sum(small))
		}
	})
	t.Run("ReadBatch", func(t *testing.T) {
		r, err := h.c.ReadBatch(ctx, client.ReadBatchRequest{Session: id, Paths: []string{"small.txt", "large.txt"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Files) != 2 || !bytes.Equal(r.Files[0].Content, small) || !bytes.Equal(r.Files[1].Content, large) {
			t.Fatalf("read_batch: %+v", r.Files)
		}
	})
	t.Run("ReadRange", func(t *testing.T) {
		r, err := h.c.Read(ctx, client.ReadRequest{Session: id, Path: "small.txt", Offset: 6, Length: 3})
		if err != nil {
			t.Fatal(err)
		}
		if string(r.Content) != "and" || r.EOF {
			t.Fatalf("range read: %q eof %v, want \"and\" not at eof", r.Content, r.EOF)
		}
		r, err = h.c.Read(ctx, client.ReadRequest{Session: id, Path: "small.txt", Offset: int64(len(small))})
		if err != nil || len(r.Content) != 0 || !r.EOF {
			t.Fatalf("read at the end: %q eof %v err %v", r.Content, r.EOF, err)
		}
	})
	t.Run("BatchSpills", func(t *testing.T) {
		// More inline content than one event may carry: the writes beyond
		// its share store blobs, and the event stays far below the limit.
		n := domain.MaxInlineEventBytes/domain.MaxInlineBytes + 3
		ops := make([]client.BatchOp, n)
		for i := range ops {
			c := bytes.Repeat([]byte{byte('a' + i%26)}, domain.MaxInlineBytes-1)
			c = append(c, fmt.Sprint(i%10)...)
			ops[i] = client.BatchOp{Op: "write", Path: fmt.Sprintf("batch/%03d", i), Content: append(c[:0:0], c...)}
		}
		r, err := h.c.Batch(ctx, client.BatchRequest{Session: id, Ops: ops})
		if err != nil {
			t.Fatal(err)
		}
		ev, err := h.env.Store.EventAt(ctx, "acme", id, r.Position)
		if err != nil {
			t.Fatal(err)
		}
		inline, blob := 0, 0
		for i, op := range ev.Event.Ops {
			if op.Inline() {
				inline += len(op.Data)
				continue
			}
			blob++
			if !stored(ops[i].Content) {
				t.Errorf("op %d names a blob that is not stored", i)
			}
		}
		if inline > domain.MaxInlineEventBytes || blob != 3 {
			t.Fatalf("%d inline bytes, %d blobs; want <= %d and 3", inline, blob, domain.MaxInlineEventBytes)
		}
		if got := h.read(t, id, "batch/000", ""); got != string(ops[0].Content) {
			t.Fatalf("batch/000: %q", got)
		}
	})
	t.Run("ForkDiffMerge", func(t *testing.T) {
		f, err := h.c.Fork(ctx, client.ForkRequest{Session: id})
		if err != nil {
			t.Fatal(err)
		}
		fork := f.Session.ID
		h.write(t, fork, "small.txt", "small and inline\nchanged in the fork\n")
		h.write(t, fork, "new.txt", "new in the fork\n")
		d, err := h.c.Diff(ctx, client.DiffRequest{From: &client.DiffSide{Session: id}, To: client.DiffSide{Session: fork}, Path: "small.txt"})
		if err != nil {
			t.Fatal(err)
		}
		if s := asJSON(d); !bytes.Contains([]byte(s), []byte("+changed in the fork")) {
			t.Fatalf("diff lacks the changed line: %s", s)
		}
		h.write(t, id, "other.txt", "on the target\n")
		m, err := h.c.Merge(ctx, client.MergeRequest{From: fork, Into: id})
		if err != nil || !m.Applied {
			t.Fatalf("merge: %+v %v", m, err)
		}
		if got := h.read(t, id, "new.txt", ""); got != "new in the fork\n" {
			t.Fatalf("merged new.txt: %q", got)
		}
		if stored([]byte("new in the fork\n")) {
			t.Fatalf("the merge stored a blob for content that travels inline")
		}
	})
	t.Run("Restart", func(t *testing.T) {
		before := h.manifest(t, id, "")
		h.restart(t)
		if got := h.manifest(t, id, ""); fmt.Sprint(got) != fmt.Sprint(before) {
			t.Fatalf("after a restart: %v, want %v", got, before)
		}
		if got := h.read(t, id, "small.txt", ""); got != "small and inline\nchanged in the fork\n" {
			t.Fatalf("small.txt (merged from the fork) after a restart: %q", got)
		}
	})
}
