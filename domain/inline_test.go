package domain_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/strand-dev/strand/domain"
)

func inline(p, data string) domain.FileOp {
	op := write(p, data)
	op.Data = []byte(data)
	return op
}

// TestExecute_InlineContent checks the writes that carry their content
// (design record 0009): recorded in the event, held by the tree's node,
// hashed exactly as a blob of the same bytes, refused when they do not
// match their hash and size or exceed the limits.
func TestExecute_InlineContent(t *testing.T) {
	l := newLog(t)
	l.create("s")
	s, ev, err := l.exec("s", one(inline("a.txt", "hello")))
	if err != nil {
		t.Fatal(err)
	}
	if !ev.Ops[0].Inline() || string(ev.Ops[0].Data) != "hello" || len(ev.Blobs()) != 0 {
		t.Fatalf("event op %+v, blobs %v: want inline content and no blob", ev.Ops[0], ev.Blobs())
	}
	n := s.Tree.Lookup("a.txt")
	if !n.Inline() || string(n.Data) != "hello" {
		t.Fatalf("node %+v: want the content held inline", n)
	}
	l.create("b")
	blob := l.must("b", one(write("a.txt", "hello")))
	if blob.Tree.Hash() != s.Tree.Hash() {
		t.Fatalf("inline root %s, blob root %s: the same bytes must give the same tree", s.Tree.Hash(), blob.Tree.Hash())
	}
	if d := domain.Diff(blob.Tree, s.Tree); d.Len() != 0 {
		t.Fatalf("diff between the inline and the blob tree: %+v", d)
	}
	states, err := l.replay()
	if err != nil {
		t.Fatal(err)
	}
	if got := states["s"][s.Position].Tree.Lookup("a.txt"); string(got.Data) != "hello" {
		t.Fatalf("replayed node %+v: want the inline content back", got)
	}

	for _, c := range []struct {
		name string
		op   domain.FileOp
		code domain.Code
	}{
		{"WrongHash", func() domain.FileOp { o := inline("x", "abc"); o.Data = []byte("abd"); return o }(), domain.CodeInvalidArgument},
		{"WrongSize", func() domain.FileOp { o := inline("x", "abc"); o.Size = 4; return o }(), domain.CodeInvalidArgument},
		{"TooLarge", inline("x", string(bytes.Repeat([]byte("z"), domain.MaxInlineBytes+1))), domain.CodeTooLarge},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := l.exec("s", one(c.op))
			wantCode(t, c.name, err, c.code)
		})
	}
	t.Run("EventShare", func(t *testing.T) {
		var ops []domain.FileOp
		for i := 0; i <= domain.MaxInlineEventBytes/domain.MaxInlineBytes; i++ {
			ops = append(ops, inline(fmt.Sprintf("many/%d", i), string(bytes.Repeat([]byte{byte('a' + i%26)}, domain.MaxInlineBytes))))
		}
		_, _, err := l.exec("s", batch(ops...))
		wantCode(t, "batch over the inline share", err, domain.CodeTooLarge)
	})
}

// TestMerge_InlineContent checks that a merge carries theirs' inline
// content into the target's event (the target has no blob for it), within
// one event's share, and hands what is beyond it back to be stored as blobs.
func TestMerge_InlineContent(t *testing.T) {
	l := newLog(t)
	base := l.create("base")
	n := domain.MaxInlineEventBytes/domain.MaxInlineBytes + 2
	var ops []domain.FileOp
	for i := range n {
		ops = append(ops, inline(fmt.Sprintf("f/%03d", i), string(bytes.Repeat([]byte{byte('a' + i%26)}, domain.MaxInlineBytes-3))+fmt.Sprintf("%03d", i)))
	}
	l.must("base", batch(ops[:n/2]...))
	theirs := l.must("base", batch(ops[n/2:]...))
	out, err := domain.Merge(domain.MergeInput{Base: base.Tree, Ours: base.Tree, Theirs: theirs.Tree})
	if err != nil {
		t.Fatal(err)
	}
	carried, spilled := 0, 0
	for _, op := range out.Ops {
		h, _ := domain.HashFromBytes(op.Content)
		switch {
		case op.Kind != domain.OpWrite:
		case op.Inline():
			carried += len(op.Data)
		case out.Content[h] != nil:
			spilled++
		default:
			t.Fatalf("op %s names content that is neither inline nor handed back", op.Path)
		}
	}
	if carried > domain.MaxInlineEventBytes || spilled != 2 || carried+spilled*(domain.MaxInlineBytes) != n*domain.MaxInlineBytes {
		t.Fatalf("carried %d inline bytes, spilled %d; want <= %d and 2", carried, spilled, domain.MaxInlineEventBytes)
	}
}
