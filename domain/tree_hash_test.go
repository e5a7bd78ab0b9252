package domain

import (
	"strings"
	"sync"
	"testing"
)

// goldenTree builds a tree that exercises every part of the Merkle hash:
// files (mode, size, content), a symlink, directories nested and empty,
// extended attributes, long and short names, and enough entries for
// treaps of several levels.
func goldenTree(t *testing.T) Tree {
	t.Helper()
	var tr Tree
	put := func(p string, n *Node) {
		var err error
		if tr, err = tr.Put(p, n); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 40 {
		name := strings.Repeat("n", i%7+1) + string(rune('a'+i%26))
		put("src/"+name+".go", NewFile(Sum([]byte(name)), int64(i), 0o644, nil))
	}
	put("bin/run", NewFile(Sum([]byte("#!/bin/sh")), 9, 0o755, map[string][]byte{"user.tag": []byte("x"), "user.a": nil}))
	put("link", NewSymlink("src/aa.go", nil))
	put("empty", NewDir(0o700, nil))
	put(strings.Repeat("long", 50)+"/f", NewFile(Sum(nil), 0, 0o600, nil))
	tr = tr.Delete("src/nnnd.go")
	return tr
}

// TestTree_GoldenHash pins the Merkle root of goldenTree. Every event
// records the root after it, so the hash of a tree may never change: a
// change here would make every stored history fail verification. The value
// was computed by the first implementation (hash.Hash writes, before
// hashing moved to one buffer per node).
func TestTree_GoldenHash(t *testing.T) {
	const want = "4fa5472bd568cb4d533365a12ac512bc50660d8d4e6056bcc1f89b28e9783f08"
	if got := goldenTree(t).Hash().String(); got != want {
		t.Fatalf("root of the golden tree = %s, want %s", got, want)
	}
}

// TestTree_HashConcurrent asks for the hashes of a tree nobody hashed yet
// from many goroutines at once: nodes compute their hash when first asked,
// and a tree is shared between concurrent requests, so the hand-over must
// be race-free (the suite runs with -race) and every answer the same.
func TestTree_HashConcurrent(t *testing.T) {
	want := goldenTree(t).Hash()
	for range 20 {
		tr := goldenTree(t) // fresh nodes, none hashed
		var wg sync.WaitGroup
		got := make([]Hash, 8)
		for i := range got {
			wg.Go(func() {
				if i%2 == 0 {
					tr.Walk("", "", func(e Entry) bool { e.Node.Hash(); return true })
				}
				got[i] = tr.Hash()
			})
		}
		wg.Wait()
		for i, h := range got {
			if h != want {
				t.Fatalf("goroutine %d: root %s, want %s", i, h, want)
			}
		}
	}
}
