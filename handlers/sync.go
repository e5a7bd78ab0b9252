package handlers

import (
	"errors"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/imports"
)

var errNothingToSync = errors.New("nothing to sync")

// syncLimits bound the archive of one fs.sync: it is read while the
// request waits, and its changes must fit in one batch.
var syncLimits = imports.Limits{MaxEntries: 100_000, MaxBytes: 1 << 30}

func (s *Service) fsSync(c *call) (any, error) {
	var req client.SyncRequest
	id, err := c.decodeSession(&req, &req.Session)
	if err != nil {
		return nil, err
	}
	if req.Tar == nil {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "tar is required")
	}
	chunks, err := c.uploaded(req.Tar.Chunks)
	if err != nil {
		return nil, err
	}
	if err := c.precheck(id, req.RequestID); err != nil {
		return nil, err
	}
	blobs := s.blobs
	in, err := imports.Tar(c.ctx, blobs.ChunkReader(c.ctx, chunks), blobs, syncLimits, nil)
	if err != nil {
		return nil, err
	}
	var written, removed int
	res, err := c.change(id, req.Mutation, func(sess *domain.Session) (domain.Command, error) {
		if err := expectAt(sess, req.ExpectedPosition); err != nil {
			return nil, err
		}
		want := in.Tree
		if !req.Delete {
			if want, err = overlay(sess.Tree, in.Tree); err != nil {
				return nil, err
			}
		}
		ops := append(domain.DiffOps(sess.Tree, want, false), folderModes(sess.Tree, want, in)...)
		if len(ops) == 0 {
			return nil, errNothingToSync
		}
		if len(ops) > domain.MaxBatchOps {
			return nil, domain.Errorf(domain.CodeTooLarge, "the archive changes %d paths of the session and one fs.sync (one event) holds at most %d: "+
				"sync archives of parts of the tree, or push from a working copy (strand checkout, then strand push, which goes in parts)", len(ops), domain.MaxBatchOps)
		}
		fops := make([]domain.FileOp, len(ops))
		written, removed = 0, 0
		for i, op := range ops {
			h, _ := domain.HashFromBytes(op.Content)
			fops[i] = domain.FileOp{Kind: op.Kind, Path: op.Path, Target: op.Target, Content: h, Size: op.Size, Mode: op.Mode, Recursive: op.Recursive}
			if op.Kind == domain.OpRemove {
				removed++
			} else {
				written++
			}
		}
		return domain.ChangeFiles{Ops: fops, Batch: true, Token: req.Token}, nil
	})
	if errors.Is(err, errNothingToSync) {
		sess, err := s.store.Head(c.ctx, c.tenant, id)
		if err != nil {
			return nil, err
		}
		return client.SyncReply{ChangeReply: client.ChangeReply{Session: id, Position: sess.Position, Root: sess.Tree.Hash().String()}}, nil
	}
	if err != nil {
		return nil, err
	}
	return client.SyncReply{ChangeReply: changeReply(res), Changed: true, Written: written, Removed: removed}, nil
}

// folderModes are the chmods that give the folders the archive has
// entries of its own for, and which stay folders, the archive's mode:
// DiffOps leaves an existing folder's mode as it was, and a folder only
// implied by the paths below it has no mode of the archive's to take.
func folderModes(cur, want domain.Tree, in imports.Result) []domain.Op {
	var ops []domain.Op
	for _, p := range in.Dirs {
		a, b, n := cur.Lookup(p), want.Lookup(p), in.Tree.Lookup(p)
		if a == nil || b == nil || n == nil || a.Kind != domain.KindDir || b.Kind != domain.KindDir || a.Mode == n.Mode {
			continue
		}
		ops = append(ops, domain.Op{Kind: domain.OpChmod, Path: p, Mode: n.Mode})
	}
	return ops
}

// expectAt refuses, as Execute would, a request whose expected position is
// not the head: here before the decision finds there is nothing to write.
func expectAt(s *domain.Session, expected uint64) error {
	if expected != 0 && s.Position != expected {
		return domain.Errorf(domain.CodeConflict, "session is at position %d, not the expected %d", s.Position, expected)
	}
	return nil
}

// overlay returns base with every entry of top put over it: what extracting
// an archive over a tree gives, where a kind that differs replaces what was
// there (with everything below it).
func overlay(base, top domain.Tree) (domain.Tree, error) {
	out := base
	var err error
	top.Walk("", "", func(e domain.Entry) bool {
		cur := out.Lookup(e.Path)
		n := e.Node
		if n.Kind == domain.KindDir {
			if cur != nil && cur.Kind == domain.KindDir {
				return true
			}
			n = domain.NewDir(n.Mode, n.Xattrs)
		}
		if cur != nil && (cur.Kind == domain.KindDir) != (n.Kind == domain.KindDir) {
			out = out.Delete(e.Path)
		}
		if cur != nil && cur.Kind == domain.KindFile && n.Kind == domain.KindFile {
			// The archive carries no xattrs: keep the file's.
			n = domain.NewFile(n.Content, n.Size, n.Mode, cur.Xattrs)
		}
		out, err = out.Put(e.Path, n)
		return err == nil
	})
	return out, err
}
