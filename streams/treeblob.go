package streams

import (
	"context"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/strand-dev/strand/domain"
)

// treeFormat is bumped when treeDoc changes incompatibly. Unlike a snapshot,
// a tree blob is not a cache: a source revision names it for good, so an
// old format must stay readable.
const treeFormat = 1

// treeDoc is the stored form of a tree: its entries in tree order (a
// directory before its entries, names sorted bytewise), the encoding that
// snapshots use, and the root it must rebuild.
type treeDoc struct {
	Format  int         `msgpack:"f"`
	Root    []byte      `msgpack:"root"`
	Entries []snapEntry `msgpack:"entries"`
}

// treeEntries lists a tree's entries in tree order.
func treeEntries(t domain.Tree) []snapEntry {
	var out []snapEntry
	t.Walk("", "", func(e domain.Entry) bool {
		n := e.Node
		out = append(out, snapEntry{
			Path: e.Path, Kind: uint8(n.Kind), Mode: n.Mode, Size: n.Size,
			Content: n.Content.Bytes(), Target: n.Target, Xattrs: n.Xattrs, Data: n.Data,
		})
		return true
	})
	return out
}

// entriesTree rebuilds a tree from its entries in tree order.
func entriesTree(entries []snapEntry) (domain.Tree, error) {
	list := make([]domain.Entry, len(entries))
	for i, e := range entries {
		var n *domain.Node
		switch domain.Kind(e.Kind) {
		case domain.KindFile:
			h, ok := domain.HashFromBytes(e.Content)
			if !ok {
				return domain.Tree{}, fmt.Errorf("entry %q: bad hash", e.Path)
			}
			if len(e.Data) > 0 && (domain.Sum(e.Data) != h || int64(len(e.Data)) != e.Size) {
				return domain.Tree{}, fmt.Errorf("entry %q: inline content does not match its hash", e.Path)
			}
			n = domain.NewFile(h, e.Size, e.Mode, e.Xattrs)
			n.Data = e.Data
		case domain.KindDir:
			n = domain.NewDir(e.Mode, e.Xattrs)
		case domain.KindSymlink:
			n = domain.NewSymlink(e.Target, e.Xattrs)
		default:
			return domain.Tree{}, fmt.Errorf("entry %q: bad kind", e.Path)
		}
		list[i] = domain.Entry{Path: e.Path, Node: n}
	}
	return domain.Build(list)
}

// encodeTree returns the stored form of a tree.
func encodeTree(t domain.Tree) ([]byte, error) {
	return msgpack.Marshal(&treeDoc{Format: treeFormat, Root: t.Hash().Bytes(), Entries: treeEntries(t)})
}

// decodeTree parses the stored form of a tree and checks that it rebuilds
// the root it records.
func decodeTree(b []byte) (domain.Tree, error) {
	var doc treeDoc
	if err := domain.DecodeMsgpack(b, &doc); err != nil {
		return domain.Tree{}, fmt.Errorf("decode tree: %w", err)
	}
	if doc.Format != treeFormat {
		return domain.Tree{}, fmt.Errorf("decode tree: unknown format %d", doc.Format)
	}
	t, err := entriesTree(doc.Entries)
	if err != nil {
		return domain.Tree{}, fmt.Errorf("decode tree: %w", err)
	}
	if root, _ := domain.HashFromBytes(doc.Root); t.Hash() != root {
		return domain.Tree{}, fmt.Errorf("decode tree: entries give root %s, recorded %s", t.Hash(), root)
	}
	return t, nil
}

// PutTree stores a tree as a content-addressed blob and returns the blob's
// hash. Storing the same tree again stores nothing new.
func (st *Store) PutTree(ctx context.Context, t domain.Tree) (domain.Hash, error) {
	body, err := encodeTree(t)
	if err != nil {
		return domain.Hash{}, domain.Wrap(err, "encode tree")
	}
	h, err := st.Blobs.Put(ctx, body)
	if err != nil {
		return domain.Hash{}, domain.Wrap(err, "store tree")
	}
	return h, nil
}

// GetTree reads a tree stored by PutTree. Trees are cached by root hash: a
// root names exactly one tree, so the cache is shared by every store.
func (st *Store) GetTree(ctx context.Context, blob, root domain.Hash) (domain.Tree, error) {
	if t, ok := treeCache.Get(root); ok {
		return t, nil
	}
	body, err := st.Blobs.Get(ctx, blob)
	if err != nil {
		return domain.Tree{}, domain.Wrap(err, "read tree")
	}
	t, err := decodeTree(body)
	if err != nil {
		return domain.Tree{}, domain.Wrap(err, "read tree")
	}
	if t.Hash() != root {
		return domain.Tree{}, domain.Wrap(fmt.Errorf("tree blob %s has root %s, not %s", blob, t.Hash(), root), "read tree")
	}
	treeCache.Add(root, t)
	return t, nil
}
