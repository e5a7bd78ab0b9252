package handlers

import (
	"bytes"
	"encoding/json"
	"slices"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

func changeReply(r domain.Result) client.ChangeReply {
	return client.ChangeReply{Session: r.Session.ID, Position: r.Position, Root: r.Session.Tree.Hash().String(), Replayed: r.Replayed}
}

// maxContent is the most content one reply can carry as base64 JSON.
func (s *Service) maxContent() int64 {
	limit := int64(domain.DefaultMaxPayload)
	if s.nc != nil {
		limit = s.nc.MaxPayload()
	}
	n := (limit - 8192) * 3 / 4
	return min(max(n, 4096), 4<<20)
}

func (s *Service) fsRead(c *call) (any, error) {
	var req client.ReadRequest
	id, err := c.decodeSession(&req, &req.Session)
	if err != nil {
		return nil, err
	}
	p, err := domain.CleanNonRoot(req.Path)
	if err != nil {
		return nil, err
	}
	if req.Offset < 0 || req.Length < 0 {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "offset and length must not be negative")
	}
	sess, err := c.resolveAt(id, req.At)
	if err != nil {
		return nil, err
	}
	if req.At == "" {
		if err := readable(sess); err != nil {
			return nil, err
		}
	}
	resolved, err := sess.Tree.Resolve(p, true)
	if err != nil {
		return nil, err
	}
	n := sess.Tree.Lookup(resolved)
	if n == nil {
		return nil, domain.Errorf(domain.CodeNotFound, "%q not found", p)
	}
	if n.Kind == domain.KindDir {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "%q is a directory", p)
	}
	reply := client.ReadReply{Path: resolved, Kind: n.Kind.String(), Size: n.Size, Mode: n.Mode, Hash: n.Content.String(), Offset: req.Offset, Position: sess.Position, Content: []byte{}}
	length := req.Length
	if length == 0 || length > s.maxContent() {
		length = s.maxContent()
	}
	if n.Inline() && req.Offset < n.Size {
		reply.Content = n.Data[req.Offset:min(n.Size, req.Offset+length)]
	} else if n.Size > 0 && req.Offset < n.Size {
		data, err := s.blobs.ReadAt(c.ctx, n.Content, req.Offset, length)
		if err != nil {
			return nil, err
		}
		reply.Content = data
	}
	reply.EOF = req.Offset+int64(len(reply.Content)) >= n.Size
	return reply, nil
}

// precheck refuses early, before any content is stored, a write to a
// session that does not exist or does not take writes. The decision itself
// is made again on the session's head. A retry of a request the session
// already applied passes, so that Change answers it as the first time even
// when the session stopped taking writes since.
func (c *call) precheck(id, requestID string) error {
	sess, err := c.svc.store.Peek(c.ctx, c.tenant, id)
	if err != nil {
		return err
	}
	if _, ok := sess.RequestPosition(requestID); ok {
		return nil
	}
	return sess.Writable()
}

// storeContent stores a write's content, given in the request or as
// uploaded chunks (see storeChunks for which), and returns its hash and
// size. Content of 1 to
// domain.MaxInlineBytes bytes that fits in what the event may still carry
// (*inline, reduced by it) is not stored: it is returned as data, to
// travel inside the event (design record 0009).
func (c *call) storeContent(content []byte, chunks []string, hash, expect string, inline *int) (h domain.Hash, size int64, data []byte, err error) {
	h, size, data, put, err := c.prepareContent(content, chunks, hash, expect, inline)
	if err != nil || !put {
		return h, size, data, err
	}
	if _, err := c.svc.blobs.Put(c.ctx, content); err != nil {
		return domain.Hash{}, 0, nil, err
	}
	return h, size, nil, nil
}

// prepareContent is storeContent but for the blob put of content given in
// the request: put says that content must still be stored as a blob
// before the event (fsBatch stores a batch's blobs together).
func (c *call) prepareContent(content []byte, chunks []string, hash, expect string, inline *int) (h domain.Hash, size int64, data []byte, put bool, err error) {
	var want domain.Hash
	if hash != "" {
		if want, err = domain.ParseHash(hash); err != nil {
			return domain.Hash{}, 0, nil, false, err
		}
	}
	if len(chunks) > 0 {
		h, size, err = c.storeChunks(content, chunks, want, expect)
		return h, size, nil, false, err
	}
	if n := len(content); n > 0 && n <= domain.MaxInlineBytes && n <= *inline && want.IsZero() {
		// Inline content is hashed once, by domain.Execute, which fills
		// in the zero hash (a second SHA-256 of every file was 4-9% of
		// a bulk change).
		*inline -= n
		return domain.Hash{}, int64(n), content, false, nil
	}
	h = domain.Sum(content)
	if !want.IsZero() && want != h {
		return domain.Hash{}, 0, nil, false, domain.Errorf(domain.CodeInvalidArgument, "content does not match hash %s", want)
	}
	if n := len(content); n > 0 && n <= domain.MaxInlineBytes && n <= *inline {
		*inline -= n
		return h, int64(n), content, false, nil
	}
	return h, int64(len(content)), nil, true, nil
}

// putBlobs stores contents as blobs (streams.Blobs.PutMany: atomic
// batches where the stream takes them, each distinct content once); it
// returns when all are stored or one failed.
func (c *call) putBlobs(contents [][]byte) error {
	return c.svc.blobs.PutMany(c.ctx, contents)
}

// storeChunks assembles uploaded chunks into one content and returns its
// hash and size. Chunks must have been uploaded by the tenant, or be the
// content expect names (the path's current content, which the write will
// check) or one of its chunks: so a client that changes a little of a
// large file uploads only the chunks that changed.
func (c *call) storeChunks(content []byte, chunks []string, want domain.Hash, expect string) (domain.Hash, int64, error) {
	blobs := c.svc.blobs
	if len(content) > 0 {
		return domain.Hash{}, 0, domain.Errorf(domain.CodeInvalidArgument, "give content or chunks, not both")
	}
	if len(chunks) > domain.MaxBlobSize/domain.DefaultChunkSize*4 {
		return domain.Hash{}, 0, domain.Errorf(domain.CodeTooLarge, "too many chunks")
	}
	hs := make([]domain.Hash, len(chunks))
	for i, ch := range chunks {
		h, err := domain.ParseHash(ch)
		if err != nil {
			return domain.Hash{}, 0, err
		}
		hs[i] = h
	}
	if err := c.svc.store.Claimed(c.ctx, c.tenant, c.unclaimed(hs, expect)); err != nil {
		return domain.Hash{}, 0, err
	}
	// The content the write replaces is where a changed large file's
	// first chunks come from: they are not read back again.
	base, _ := domain.ParseHash(expect)
	return blobs.PutChunks(c.ctx, hs, want, base)
}

// unclaimed returns the chunks that are neither the content expect names
// nor one of its chunks. Naming content in expect grants nothing by itself:
// the write is refused unless the path holds that content, which the
// tenant can read anyway.
func (c *call) unclaimed(chunks []domain.Hash, expect string) []domain.Hash {
	known := map[domain.Hash]bool{}
	if h, err := domain.ParseHash(expect); err == nil {
		known[h] = true
		if info, err := c.svc.blobs.Stat(c.ctx, h); err == nil {
			for _, ch := range info.Chunks {
				known[ch] = true
			}
		}
	}
	out := make([]domain.Hash, 0, len(chunks))
	for _, ch := range chunks {
		if !known[ch] {
			out = append(out, ch)
		}
	}
	return out
}

func (s *Service) fsUpload(c *call) (any, error) {
	var req client.UploadRequest
	id, err := c.decodeSession(&req, &req.Session)
	if err != nil {
		return nil, err
	}
	if len(req.Data) > s.blobs.ChunkSize() {
		return nil, domain.Errorf(domain.CodeTooLarge, "a chunk holds at most %d bytes", s.blobs.ChunkSize())
	}
	if err := c.precheck(id, ""); err != nil {
		return nil, err
	}
	h, err := s.blobs.Put(c.ctx, req.Data)
	if err != nil {
		return nil, err
	}
	if err := s.store.Claim(c.ctx, c.tenant, h); err != nil {
		return nil, err
	}
	return client.UploadReply{Hash: h.String(), Size: int64(len(req.Data))}, nil
}

func (s *Service) fsWrite(c *call) (any, error) {
	var req client.WriteRequest
	id, err := c.decodeSession(&req, &req.Session)
	if err != nil {
		return nil, err
	}
	if _, err := domain.CleanNonRoot(req.Path); err != nil {
		return nil, err
	}
	if err := c.precheck(id, req.RequestID); err != nil {
		return nil, err
	}
	inline := domain.MaxInlineEventBytes
	h, size, data, err := c.storeContent(req.Content, req.Chunks, req.Hash, req.ExpectedHash, &inline)
	if err != nil {
		return nil, err
	}
	res, err := c.change(id, req.Mutation, func(*domain.Session) (domain.Command, error) {
		return domain.ChangeFiles{Ops: []domain.FileOp{{
			Kind: domain.OpWrite, Path: req.Path, Content: h, Size: size, Data: data, Mode: req.Mode, Expect: req.ExpectedHash,
		}}}, nil
	})
	if err != nil {
		return nil, err
	}
	r := changeReply(res)
	if len(res.Event.Ops) == 1 {
		op := res.Event.Ops[0]
		r.Path, r.Size = op.Path, op.Size
		if oh, ok := domain.HashFromBytes(op.Content); ok {
			r.Hash = oh.String()
		}
	}
	return r, nil
}

func (s *Service) fsSingle(c *call, id string, m client.Mutation, op domain.FileOp) (any, error) {
	res, err := c.change(id, m, func(*domain.Session) (domain.Command, error) {
		return domain.ChangeFiles{Ops: []domain.FileOp{op}}, nil
	})
	if err != nil {
		return nil, err
	}
	return changeReply(res), nil
}

func (s *Service) fsMkdir(c *call) (any, error) {
	var req client.MkdirRequest
	id, err := c.decodeSession(&req, &req.Session)
	if err != nil {
		return nil, err
	}
	return s.fsSingle(c, id, req.Mutation, domain.FileOp{Kind: domain.OpMkdir, Path: req.Path, Mode: req.Mode})
}

func (s *Service) fsRemove(c *call) (any, error) {
	var req client.RemoveRequest
	id, err := c.decodeSession(&req, &req.Session)
	if err != nil {
		return nil, err
	}
	return s.fsSingle(c, id, req.Mutation, domain.FileOp{Kind: domain.OpRemove, Path: req.Path, Recursive: req.Recursive, Expect: req.ExpectedHash})
}

func (s *Service) fsRename(c *call) (any, error) {
	var req client.RenameRequest
	id, err := c.decodeSession(&req, &req.Session)
	if err != nil {
		return nil, err
	}
	return s.fsSingle(c, id, req.Mutation, domain.FileOp{Kind: domain.OpRename, Path: req.From, To: req.To, Expect: req.ExpectedHash})
}

func (s *Service) fsSymlink(c *call) (any, error) {
	var req client.SymlinkRequest
	id, err := c.decodeSession(&req, &req.Session)
	if err != nil {
		return nil, err
	}
	return s.fsSingle(c, id, req.Mutation, domain.FileOp{Kind: domain.OpSymlink, Path: req.Path, Target: req.Target})
}

func (s *Service) fsChmod(c *call) (any, error) {
	var req client.ChmodRequest
	id, err := c.decodeSession(&req, &req.Session)
	if err != nil {
		return nil, err
	}
	if req.Mode == nil {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "mode is required (0 to 07777)")
	}
	return s.fsSingle(c, id, req.Mutation, domain.FileOp{Kind: domain.OpChmod, Path: req.Path, Mode: *req.Mode, Expect: req.ExpectedHash})
}

// chmodModes refuses a batch with a chmod that names no mode: its mode
// would read as 0, no permissions at all. The body is read again for the
// keys alone, only when it holds a chmod.
func (c *call) chmodModes(ops []client.BatchOp) error {
	if !slices.ContainsFunc(ops, func(o client.BatchOp) bool { return o.Op == domain.OpChmod }) {
		return nil
	}
	var keys struct {
		Ops []struct {
			Op   string  `json:"op"`
			Mode *uint32 `json:"mode"`
		} `json:"ops"`
	}
	var err error
	if c.req.Headers().Get("Content-Type") == client.MsgpackContentType {
		dec := msgpack.NewDecoder(bytes.NewReader(c.req.Data()))
		dec.SetCustomStructTag("json")
		err = dec.Decode(&keys)
	} else {
		err = json.Unmarshal(c.req.Data(), &keys)
	}
	if err != nil || len(keys.Ops) != len(ops) {
		return domain.Errorf(domain.CodeInvalidArgument, "malformed request: ops")
	}
	for i, o := range keys.Ops {
		if o.Op == domain.OpChmod && o.Mode == nil {
			return domain.Errorf(domain.CodeInvalidArgument, "operation %d: chmod takes a mode (0 to 07777)", i)
		}
	}
	return nil
}

func (s *Service) fsBatch(c *call) (any, error) {
	var req client.BatchRequest
	id, err := c.decodeSession(&req, &req.Session)
	if err != nil {
		return nil, err
	}
	if len(req.Ops) == 0 {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "ops must hold at least one operation")
	}
	if len(req.Ops) > domain.MaxBatchOps {
		return nil, domain.Errorf(domain.CodeTooLarge, "at most %d operations in one batch", domain.MaxBatchOps)
	}
	ops := make([]domain.FileOp, len(req.Ops))
	for i, o := range req.Ops {
		switch o.Op {
		case domain.OpWrite, domain.OpMkdir, domain.OpRemove, domain.OpRename, domain.OpSymlink, domain.OpChmod:
			if o.Name != "" || o.Value != nil {
				return nil, domain.Errorf(domain.CodeInvalidArgument, "operation %d: only setxattr and rmxattr take name and value", i)
			}
		case domain.OpSetXattr, domain.OpRemoveXattr:
			if o.Op == domain.OpRemoveXattr && o.Value != nil {
				return nil, domain.Errorf(domain.CodeInvalidArgument, "operation %d: rmxattr takes no value", i)
			}
		default:
			return nil, domain.Errorf(domain.CodeInvalidArgument, "operation %d: op must be write, mkdir, remove, rename, symlink, chmod, setxattr or rmxattr", i)
		}
		if _, err := domain.CleanNonRoot(o.Path); err != nil {
			return nil, domain.Errorf(domain.CodeInvalidArgument, "operation %d: %s", i, domain.ErrorMessage(err))
		}
		if o.Op != domain.OpWrite && (len(o.Content) > 0 || len(o.Chunks) > 0) {
			return nil, domain.Errorf(domain.CodeInvalidArgument, "operation %d: only write takes content", i)
		}
		ops[i] = domain.FileOp{Kind: o.Op, Path: o.Path, To: o.To, Target: o.Target, Mode: o.Mode, Recursive: o.Recursive, Expect: o.ExpectedHash, Name: o.Name, Value: o.Value}
	}
	if err := c.chmodModes(req.Ops); err != nil {
		return nil, err
	}
	if err := c.precheck(id, req.RequestID); err != nil {
		return nil, err
	}
	inline := domain.MaxInlineEventBytes
	var puts [][]byte
	for i, o := range req.Ops {
		if o.Op != domain.OpWrite {
			continue
		}
		h, size, data, put, err := c.prepareContent(o.Content, o.Chunks, o.Hash, o.ExpectedHash, &inline)
		if err != nil {
			return nil, err
		}
		if put {
			puts = append(puts, o.Content)
		}
		ops[i].Content, ops[i].Size, ops[i].Data = h, size, data
	}
	// Every blob is stored before the event that names it.
	if err := c.putBlobs(puts); err != nil {
		return nil, err
	}
	res, err := c.change(id, req.Mutation, func(*domain.Session) (domain.Command, error) {
		return domain.ChangeFiles{Ops: ops, Batch: true}, nil
	})
	if err != nil {
		return nil, err
	}
	return changeReply(res), nil
}
