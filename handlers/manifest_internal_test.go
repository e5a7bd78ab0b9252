package handlers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

// TestListings_PagesEqualWalk holds the cached listing of a whole tree to
// the walk it replaces: for both encodings, with and without xattrs, any
// page size and any cursor (listed paths, paths between them, before the
// first and past the last, asked for in any order and from several
// goroutines at once), a page is byte for byte the reply the walk would
// encode.
func TestListings_PagesEqualWalk(t *testing.T) {
	rng := rand.New(rand.NewPCG(16, 5))
	tree := domain.Tree{}
	// Names that order differently bytewise and component-wise ("a.b"
	// sorts between "a" and "a/b" as a string, after all of a/ as a path).
	names := []string{"a", "a.b", "a-b", "b", "z", "é", "<x>"}
	for i := 0; i < 400; i++ {
		p := names[rng.IntN(len(names))]
		for range rng.IntN(4) {
			p += "/" + names[rng.IntN(len(names))]
		}
		p += fmt.Sprint(i % 37)
		var n *domain.Node
		switch rng.IntN(6) {
		case 0:
			n = domain.NewSymlink("../"+p, nil)
		case 1:
			n = domain.NewFile(domain.Sum([]byte(p)), int64(i), 0o644, map[string][]byte{"user.k": {byte(i), 0}})
		default:
			n = domain.NewFile(domain.Sum([]byte(p)), int64(i), 0o600, nil)
		}
		if next, err := tree.Put(p, n); err == nil {
			tree = next
		}
	}
	var all []string
	tree.Walk("", "", func(e domain.Entry) bool { all = append(all, e.Path); return true })
	cursors := []string{"", "0", "a", "a/", "a.b", "zz", "\xff", all[len(all)-1]}
	for range 40 {
		c := all[rng.IntN(len(all))]
		cursors = append(cursors, c, c+"0")
	}
	const position = 77
	want := func(enc string, xattrs bool, after string, limit int) []byte {
		walked, next := walkPrefix(tree, "", true, after, limit)
		if enc == client.ManifestMsgpack {
			r, err := manifestMsgpack(position, tree.Hash(), next, walked, xattrs)
			if err != nil {
				t.Fatal(err)
			}
			return r.(encodedReply).body
		}
		reply := client.ManifestReply{Entries: []client.EntryView{}, Position: position, Root: tree.Hash().String(), NextCursor: next}
		for _, e := range walked {
			reply.Entries = append(reply.Entries, listingView(e, xattrs))
		}
		b, err := json.Marshal(reply)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, enc := range []string{client.ManifestJSON, client.ManifestMsgpack} {
		for _, xattrs := range []bool{false, true} {
			c := newListings(1 << 20)
			var wg sync.WaitGroup
			for g := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					order := rand.New(rand.NewPCG(uint64(g), 1)).Perm(len(cursors))
					for _, k := range order {
						after := cursors[k]
						for _, limit := range []int{1, 7, 1000} {
							l := c.get(listingKey{root: tree.Hash(), encoding: enc, xattrs: xattrs}, tree)
							r, err := c.page(l, position, after, limit)
							if err != nil {
								t.Errorf("%s page after %q: %v", enc, after, err)
								return
							}
							if got, want := r.(encodedReply).body, want(enc, xattrs, after, limit); !bytes.Equal(got, want) {
								t.Errorf("%s xattrs=%v, page of %d after %q:\n got %q\nwant %q", enc, xattrs, limit, after, got, want)
								return
							}
						}
					}
				}()
			}
			wg.Wait()
		}
	}

	t.Run("Bounded", func(t *testing.T) {
		// A cache smaller than one listing keeps none, and still answers.
		c := newListings(100)
		for _, after := range []string{"", all[10]} {
			l := c.get(listingKey{root: tree.Hash(), encoding: client.ManifestMsgpack}, tree)
			r, err := c.page(l, position, after, 5)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := r.(encodedReply).body, want(client.ManifestMsgpack, false, after, 5); !bytes.Equal(got, want) {
				t.Errorf("page after %q differs from the walk's", after)
			}
		}
		if c.lru.Len() != 0 || c.bytes != 0 {
			t.Errorf("cache of 100 bytes holds %d listings, %d bytes; want none", c.lru.Len(), c.bytes)
		}
	})
}
