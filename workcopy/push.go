package workcopy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

// Content of up to inlineMax bytes rides inside the batch (one stored
// message less per file); larger content is uploaded in chunks first.
const inlineMax = 64 << 10

// uploadsInFlight is how many chunks a push uploads at once.
const uploadsInFlight = 8

// PushOptions tune a push.
type PushOptions struct {
	// Checkpoint, when set, names the pushed position.
	Checkpoint string
	// Message is the checkpoint's note; alone, it names a checkpoint
	// push-<position>.
	Message string
	// Token is a lease token for paths under a lock (lock.acquire).
	Token string
	// Force pushes even while a conflict a pull left is unresolved.
	Force bool
	// Atomic refuses, with too_large, a push that does not fit one event
	// (more than domain.MaxBatchOps operations, or more than partBytes of
	// content inside the request), instead of pushing it in parts.
	Atomic bool
}

// PushResult is what a push did.
type PushResult struct {
	Session  string `json:"session"`
	Position uint64 `json:"position"`
	Root     string `json:"root,omitempty"`
	// Changes is how many local changes the event holds (0: nothing to
	// push, no event).
	Changes int `json:"changes"`
	// Replayed is true when the service had stored this push before (an
	// interrupted push run again).
	Replayed bool `json:"replayed,omitempty"`
	// Uploaded and Skipped count the chunks sent and those the service
	// already held.
	Uploaded int `json:"uploaded"`
	Skipped  int `json:"skipped"`
	// Bytes is the content of the files the event wrote.
	Bytes      int64  `json:"bytes"`
	Checkpoint string `json:"checkpoint,omitempty"`
	// RequestID is the request id of the push's event (of its last part).
	RequestID string `json:"request_id,omitempty"`
	// Parts is how many events the push stored its changes in: 1, or more
	// for a change larger than one event holds (see Push).
	Parts int `json:"parts,omitempty"`
}

// partBytes bounds the content carried inside one part's request: the
// service takes bodies of up to 8 MiB (docs/api.md, request_bytes).
const partBytes = 4 << 20

// step is one operation of a push and what it changes in the index once
// the service has stored it.
type step struct {
	op      client.BatchOp
	drop    string // index entry removed ("": none)
	dropDir string // directory removed with everything under it ("": none)
	put     *Entry // index entry set
}

// Push sends every local change as one event that expects HEAD's position,
// then moves HEAD and the index to the new position. A session that moved
// since HEAD is refused with conflict, and nothing is written: pull first.
//
// A change larger than one event holds (more than domain.MaxBatchOps
// operations, or more than partBytes of content inside the request: a
// project copied in, a dependency folder) is pushed in parts, one event
// each, in the order of the whole change, so that every part leaves a
// consistent tree: removals first, then new directories (parents first),
// then renames, writes and mode changes. Each part expects the position
// the one before it made, and HEAD and the index move after each, so a
// push that stops between parts (a conflict, a lock, a lost connection)
// leaves the working copy at the last part stored, and running it again
// sends the rest. Readers may see the positions between parts; with
// Atomic such a push is refused instead.
func (w *Copy) Push(ctx context.Context, opts PushOptions) (PushResult, error) {
	res, err := w.push(ctx, opts)
	if err != nil {
		counters.failures[opPush].Add(1)
		return res, err
	}
	counters.pushes.Add(1)
	counters.pushChanges.Add(int64(res.Changes))
	counters.pushBytes.Add(res.Bytes)
	counters.chunksUploaded.Add(int64(res.Uploaded))
	counters.chunksSkipped.Add(int64(res.Skipped))
	return res, nil
}

func (w *Copy) push(ctx context.Context, opts PushOptions) (PushResult, error) {
	if err := w.remote(); err != nil {
		return PushResult{}, err
	}
	st, err := w.Status()
	if err != nil {
		return PushResult{}, err
	}
	res := PushResult{Session: w.Head.Session, Position: w.Head.Position, Root: w.Head.Root}
	if len(st.Conflicts) > 0 && !opts.Force {
		paths := make([]string, len(st.Conflicts))
		for i, c := range st.Conflicts {
			paths[i] = c.Path
		}
		return res, domain.Errorf(domain.CodeConflict, "unresolved conflicts from the last pull (edit them first, or push with force): %s", strings.Join(paths, ", "))
	}
	if !st.Clean() {
		steps, err := w.plan(ctx, st, &res)
		if err != nil {
			return res, err
		}
		parts := split(steps)
		if len(parts) > 1 && opts.Atomic {
			return res, domain.Errorf(domain.CodeTooLarge, "%d changes to push (%d operations) do not fit one event (at most %d operations and %d MiB of content inside it): push without atomic to store them in %d parts, or keep build outputs out with %s",
				len(st.Changes), len(steps), domain.MaxBatchOps, partBytes>>20, len(parts), IgnoreFile)
		}
		for i, part := range parts {
			ops := make([]client.BatchOp, len(part))
			for k, s := range part {
				ops[k] = s.op
			}
			res.RequestID = w.requestID(ops)
			reply, err := w.client.Batch(ctx, client.BatchRequest{
				Mutation: client.Mutation{RequestID: res.RequestID, ExpectedPosition: w.Head.Position, Token: opts.Token},
				Session:  w.Head.Session, Ops: ops,
			})
			if err != nil {
				if i > 0 {
					err = fmt.Errorf("%w (%d of %d parts of this push are stored, up to position %d: push again to send the rest)", err, i, len(parts), w.Head.Position)
				}
				if client.ErrorCode(err) == domain.CodeConflict {
					return res, fmt.Errorf("push to %s at %d: %w (pull first)", w.Head.Session, w.Head.Position, err)
				}
				return res, fmt.Errorf("push to %s: %w", w.Head.Session, err)
			}
			w.apply(part)
			for _, s := range part {
				if s.put != nil && s.put.Kind == KindFile && s.op.Op == "write" {
					res.Bytes += s.put.Size
				}
			}
			w.conflicts = nil
			w.Head.Position, w.Head.Root = reply.Position, reply.Root
			if err := w.save(); err != nil {
				return res, err
			}
			res.Position, res.Root, res.Parts = reply.Position, reply.Root, i+1
			res.Replayed = res.Replayed || reply.Replayed
		}
		res.Changes = len(st.Changes)
	}
	name := opts.Checkpoint
	if name == "" && opts.Message != "" {
		name = "push-" + strconv.FormatUint(res.Position, 10)
	}
	if name != "" {
		req := client.CheckpointRequest{
			Mutation: client.Mutation{RequestID: "ckpt-" + w.Head.Session + "-" + strconv.FormatUint(res.Position, 10) + "-" + name},
			Session:  w.Head.Session, Name: name, At: client.AtPosition(res.Position), Note: opts.Message,
		}
		if err := w.followed(ctx, func(m client.Mutation) (uint64, error) {
			req.Mutation.ExpectedPosition = m.ExpectedPosition
			r, err := w.client.CreateCheckpoint(ctx, req)
			return r.Position, err
		}); err != nil {
			return res, fmt.Errorf("checkpoint %s: %w", name, err)
		}
		res.Checkpoint = name
	}
	return res, nil
}

// followed appends an event that leaves the tree as it is (a checkpoint, a
// health report) right after HEAD, and moves HEAD past it, so that the
// working copy's next push does not have to pull first. When the session
// moved in between, the event goes in all the same and HEAD stays.
func (w *Copy) followed(ctx context.Context, send func(m client.Mutation) (uint64, error)) error {
	pos, err := send(client.Mutation{ExpectedPosition: w.Head.Position})
	if client.ErrorCode(err) == domain.CodeConflict {
		_, err = send(client.Mutation{})
		return err
	}
	if err != nil {
		return err
	}
	w.Head.Position = pos
	return w.save()
}

// requestID is derived from the session, HEAD's position and the batch, so
// a push run again after an interruption is the same request.
func (w *Copy) requestID(ops []client.BatchOp) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%d\x00", w.Head.Session, w.Head.Position)
	for _, o := range ops {
		content := o.Hash
		if content == "" && o.Op == "write" {
			content = hashBytes(o.Content)
		}
		fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00%s\x00%o\x00%t\x00", o.Op, o.Path, o.To, o.Target, content, o.Mode, o.Recursive)
	}
	return "push-" + hex.EncodeToString(h.Sum(nil))[:32]
}

// plan turns the changes into batch operations: removals of paths that
// changed kind, new directories (parents first), renames, removals
// (a removed directory once, recursively), then symlinks and writes, and
// mode changes; each with what it changes in the index.
func (w *Copy) plan(ctx context.Context, st *Status, res *PushResult) ([]step, error) {
	removedDirs := map[string]bool{}
	for _, c := range st.Changes {
		if (c.Kind == Deleted || c.Kind == Modified) && c.Old.Kind == KindDir && (c.New == nil || c.New.Kind != KindDir) {
			removedDirs[c.Path] = true
		}
	}
	under := func(path string) bool {
		for d := path; ; {
			i := strings.LastIndexByte(d, '/')
			if i < 0 {
				return false
			}
			d = d[:i]
			if removedDirs[d] {
				return true
			}
		}
	}
	dirOf := func(e *Entry, path string) string {
		if e.Kind == KindDir {
			return path
		}
		return ""
	}
	// A path under a removed directory leaves the index with it (the
	// directory's dropDir), so it needs no step of its own.
	var kindRemovals, mkdirs, renames, removals, chmods []step
	var writes []Entry
	for _, c := range st.Changes {
		switch c.Kind {
		case Deleted:
			if under(c.Path) {
				continue
			}
			removals = append(removals, step{op: client.BatchOp{Op: "remove", Path: c.Path, Recursive: c.Old.Kind == KindDir},
				drop: c.Path, dropDir: dirOf(c.Old, c.Path)})
		case Renamed:
			if under(c.From) || c.Old.Mode != c.New.Mode {
				// The source goes with its directory, or the mode changes
				// too: write it anew (the content is skipped if held).
				if !under(c.From) {
					removals = append(removals, step{op: client.BatchOp{Op: "remove", Path: c.From}, drop: c.From})
				}
				writes = append(writes, *c.New)
				continue
			}
			renames = append(renames, step{op: client.BatchOp{Op: "rename", Path: c.From, To: c.Path}, drop: c.From, put: c.New})
		case ModeChanged:
			// The content is the same: only the mode goes, not the file.
			chmods = append(chmods, step{op: client.BatchOp{Op: "chmod", Path: c.Path, Mode: c.New.Mode}, put: c.New})
		case Added, Modified:
			if c.Old != nil && c.Old.Kind != c.New.Kind {
				kindRemovals = append(kindRemovals, step{op: client.BatchOp{Op: "remove", Path: c.Path, Recursive: c.Old.Kind == KindDir},
					dropDir: dirOf(c.Old, c.Path)})
			}
			switch c.New.Kind {
			case KindDir:
				mkdirs = append(mkdirs, step{op: client.BatchOp{Op: "mkdir", Path: c.Path, Mode: c.New.Mode}, put: c.New})
			case KindSymlink:
				if c.Old != nil && c.Old.Kind == KindSymlink {
					kindRemovals = append(kindRemovals, step{op: client.BatchOp{Op: "remove", Path: c.Path}})
				}
				writes = append(writes, *c.New)
			case KindFile:
				writes = append(writes, *c.New)
			}
		}
	}
	sort.Slice(mkdirs, func(i, j int) bool { return mkdirs[i].op.Path < mkdirs[j].op.Path })
	steps := append(append(append(kindRemovals, mkdirs...), renames...), removals...)
	wops, entries, err := w.writeOps(ctx, writes, res)
	if err != nil {
		return nil, err
	}
	for i := range wops {
		steps = append(steps, step{op: wops[i], put: &entries[i]})
	}
	return append(steps, chmods...), nil
}

// split cuts a push's steps into parts that each fit one event: at most
// domain.MaxBatchOps operations and partBytes of content inside the
// request (a single larger write goes alone).
func split(steps []step) [][]step {
	var parts [][]step
	start, bytes := 0, 0
	for i, s := range steps {
		n := len(s.op.Content)
		if i > start && (i-start == domain.MaxBatchOps || bytes+n > partBytes) {
			parts = append(parts, steps[start:i])
			start, bytes = i, 0
		}
		bytes += n
	}
	if start < len(steps) {
		parts = append(parts, steps[start:])
	}
	return parts
}

// writeOps reads the files to write (as they are now: the entries are
// updated with what was read), inlines small content and uploads the rest
// in chunks, skipping chunks the tenant already uploaded. A large file is
// read twice, never held whole: once to hash it and its chunks, and once,
// a chunk at a time, for the chunks the service lacks (each checked
// against its hash: a file changed in between fails the push, which may
// be run again).
func (w *Copy) writeOps(ctx context.Context, writes []Entry, res *PushResult) ([]client.BatchOp, []Entry, error) {
	ops := make([]client.BatchOp, len(writes))
	chunked := map[int][]chunkRef{}
	for i, e := range writes {
		if e.Kind == KindSymlink {
			ops[i] = client.BatchOp{Op: "symlink", Path: e.Path, Target: e.Target}
			continue
		}
		ops[i] = client.BatchOp{Op: "write", Path: e.Path, Mode: e.Mode}
		data, refs, sum, size, mtime, err := readForPush(w.abs(e.Path), w.client.ChunkSize)
		if err != nil {
			if domain.ErrorCode(err) == domain.CodeTooLarge {
				return nil, nil, domain.Errorf(domain.CodeTooLarge, "%s: %s", e.Path, domain.ErrorMessage(err))
			}
			return nil, nil, fmt.Errorf("read %s: %w", e.Path, err)
		}
		e.Hash, e.Size, e.Mtime = sum, size, mtime
		writes[i] = e
		if refs == nil {
			ops[i].Content = data
			continue
		}
		chunked[i] = refs
		ops[i].Hash = e.Hash
	}
	if len(chunked) == 0 {
		return ops, writes, nil
	}
	// Every chunk by hash, once.
	byHash := map[string]chunkRef{}
	var hashes []string
	for i, refs := range chunked {
		for _, c := range refs {
			ops[i].Chunks = append(ops[i].Chunks, c.hash)
			if _, ok := byHash[c.hash]; !ok {
				byHash[c.hash] = c
				hashes = append(hashes, c.hash)
			}
		}
	}
	held := map[string]bool{}
	for off := 0; off < len(hashes); off += client.MaxHasHashes {
		r, err := w.client.Has(ctx, hashes[off:min(off+client.MaxHasHashes, len(hashes))])
		if err != nil {
			return nil, nil, err
		}
		for _, h := range r.Have {
			held[h] = true
		}
	}
	var missing []string
	for _, h := range hashes {
		if held[h] {
			res.Skipped++
		} else {
			missing = append(missing, h)
		}
	}
	if err := w.upload(ctx, missing, byHash); err != nil {
		return nil, nil, err
	}
	res.Uploaded += len(missing)
	return ops, writes, nil
}

// chunkRef is where a chunk of a file being pushed is: read again when
// it is uploaded.
type chunkRef struct {
	hash string
	path string
	off  int64
	size int
}

// read reads the chunk and checks it still hashes as it did.
func (c chunkRef) read() ([]byte, error) {
	f, err := os.Open(c.path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data := make([]byte, c.size)
	if _, err := f.ReadAt(data, c.off); err != nil {
		return nil, fmt.Errorf("%s changed while it was pushed (push again): %w", c.path, err)
	}
	if hashBytes(data) != c.hash {
		return nil, fmt.Errorf("%s changed while it was pushed: push again", c.path)
	}
	return data, nil
}

// upload sends chunks, uploadsInFlight at a time.
func (w *Copy) upload(ctx context.Context, hashes []string, refs map[string]chunkRef) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, uploadsInFlight)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for _, h := range hashes {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			data, err := refs[h].read()
			if err == nil {
				var up client.UploadReply
				up, err = w.client.Upload(ctx, w.Head.Session, data)
				if err == nil && up.Hash != h {
					err = fmt.Errorf("upload: the service stored %s for chunk %s", up.Hash, h)
				}
			}
			if err != nil {
				mu.Lock()
				if first == nil {
					first = err
					cancel()
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return first
}

// readForPush reads a file to push: its content when it is at most
// inlineMax bytes, else the hashes and places of its chunks (chunkSize
// each), with the whole content's hash, its size and the mtime it had
// before the read. A file over domain.MaxBlobSize is too_large, found
// before it is read.
func readForPush(path string, chunkSize int) (data []byte, refs []chunkRef, sum string, size, mtime int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, "", 0, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, "", 0, 0, err
	}
	mtime = fi.ModTime().UnixNano()
	if fi.Size() > domain.MaxBlobSize {
		return nil, nil, "", 0, 0, domain.Errorf(domain.CodeTooLarge, "%d bytes; a file holds at most %d", fi.Size(), domain.MaxBlobSize)
	}
	if fi.Size() <= inlineMax {
		data, err = io.ReadAll(io.LimitReader(f, inlineMax+1))
		if err != nil {
			return nil, nil, "", 0, 0, err
		}
		if len(data) <= inlineMax {
			return data, nil, hashBytes(data), int64(len(data)), mtime, nil
		}
		// It grew since the stat: read it by chunks from the start.
	}
	whole := sha256.New()
	buf := make([]byte, chunkSize)
	for off := int64(0); ; {
		n, err := io.ReadFull(io.NewSectionReader(f, off, int64(chunkSize)), buf)
		if n > 0 {
			whole.Write(buf[:n])
			refs = append(refs, chunkRef{hash: hashBytes(buf[:n]), path: path, off: off, size: n})
			off += int64(n)
			if off > domain.MaxBlobSize {
				return nil, nil, "", 0, 0, domain.Errorf(domain.CodeTooLarge, "more than %d bytes; a file holds at most %d", domain.MaxBlobSize, domain.MaxBlobSize)
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			size = off
			break
		}
		if err != nil {
			return nil, nil, "", 0, 0, err
		}
	}
	if size <= inlineMax {
		// Shrunk since the stat: small after all.
		data = make([]byte, 0, size)
		for _, r := range refs {
			d, err := r.read()
			if err != nil {
				return nil, nil, "", 0, 0, err
			}
			data = append(data, d...)
		}
		return data, nil, hex.EncodeToString(whole.Sum(nil)), size, mtime, nil
	}
	return nil, refs, hex.EncodeToString(whole.Sum(nil)), size, mtime, nil
}

// apply moves the index past pushed steps, in their order.
func (w *Copy) apply(steps []step) {
	for _, s := range steps {
		if d := s.dropDir; d != "" {
			for k := range w.index {
				if hasPrefixDir(k, d) {
					delete(w.index, k)
				}
			}
			delete(w.index, d)
		}
		if s.drop != "" {
			delete(w.index, s.drop)
		}
		if s.put != nil {
			w.index[s.put.Path] = *s.put
		}
	}
}
