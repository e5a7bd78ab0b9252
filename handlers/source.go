package handlers

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

func sourceView(s *domain.Source, withRevisions bool) client.SourceView {
	v := client.SourceView{
		Name: s.Name, Tenant: s.Tenant, Description: s.Description, Owner: s.Owner, Deleted: s.Deleted,
		Latest: uint64(len(s.Revisions)), CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt,
	}
	if withRevisions {
		v.Revisions = []client.RevisionView{}
		for _, r := range s.Revisions {
			v.Revisions = append(v.Revisions, revisionView(r))
		}
	}
	return v
}

func revisionView(r domain.Revision) client.RevisionView {
	root, _ := domain.HashFromBytes(r.Root)
	tree, _ := domain.HashFromBytes(r.Tree)
	return client.RevisionView{Number: r.Number, Root: root.String(), Tree: tree.String(), Files: r.Files, Bytes: r.Bytes, Origin: r.Origin, Uses: r.Uses, Gate: r.Gate}
}

func sourceName(name string) (string, error) {
	if name == "" {
		return "", domain.Errorf(domain.CodeInvalidArgument, "name is required")
	}
	return name, domain.ValidSourceName(name)
}

// sourceEvent starts a source event with what every mutating request
// carries.
func (c *call) sourceEvent(m client.Mutation, typ string) (*domain.SourceEvent, error) {
	meta, err := c.meta(m)
	if err != nil {
		return nil, err
	}
	return &domain.SourceEvent{Type: typ, Tenant: c.tenant, Actor: meta.Actor, Time: meta.Time.UnixNano(), RequestID: meta.RequestID}, nil
}

// treeCounts counts the files of a tree and their bytes.
func treeCounts(t domain.Tree) (files, bytes int64) {
	t.Walk("", "", func(e domain.Entry) bool {
		if e.Node.Kind == domain.KindFile {
			files++
			bytes += e.Node.Size
		}
		return true
	})
	return files, bytes
}

// addRevision appends the next revision of a source, which must exist and
// not be deleted.
func (c *call) addRevision(e *domain.SourceEvent, name string, rev domain.Revision) (domain.SourceResult, error) {
	return c.svc.store.ChangeSource(c.ctx, c.tenant, name, e.RequestID, func(s *domain.Source) (*domain.SourceEvent, error) {
		if s.Deleted {
			return nil, domain.Errorf(domain.CodeNotFound, "source %q is deleted", name)
		}
		r := rev
		r.Number = uint64(len(s.Revisions)) + 1
		x := *e
		x.Type = domain.RevisionAdded
		x.Revision = &r
		return &x, nil
	})
}

func (s *Service) sourceCreate(c *call) (any, error) {
	var req client.SourceCreateRequest
	name, err := c.decodeSource(&req, &req.Name)
	if err != nil {
		return nil, err
	}
	if len(req.Description) > domain.MaxSourceDescription {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "description is longer than %d bytes", domain.MaxSourceDescription)
	}
	e, err := c.sourceEvent(req.Mutation, domain.SourceCreated)
	if err != nil {
		return nil, err
	}
	e.Source, e.Description = name, req.Description
	res, err := s.store.CreateSource(c.ctx, *e)
	if err != nil {
		return nil, err
	}
	reply := client.SourceReply{Source: sourceView(res.Source, true), Replayed: res.Replayed}
	if req.Blank {
		// A retry adds the blank revision if its first attempt stopped
		// before it, and is answered with it (its own request id) if not.
		blob, err := s.store.PutTree(c.ctx, domain.Tree{})
		if err != nil {
			return nil, err
		}
		if e.RequestID != "" {
			e.RequestID += ".blank"
		}
		res, err = c.addRevision(e, name, domain.Revision{
			Root: domain.Tree{}.Hash().Bytes(), Tree: blob.Bytes(), Origin: domain.RevisionOrigin{Kind: domain.OriginBlank},
		})
		if err != nil {
			return nil, err
		}
		reply.Source, reply.Revision = sourceView(res.Source, true), uint64(len(res.Source.Revisions))
	}
	return reply, nil
}

func (s *Service) sourceGet(c *call) (any, error) {
	var req client.SourceRequest
	name, err := c.decodeSource(&req, &req.Name)
	if err != nil {
		return nil, err
	}
	src, err := s.store.Source(c.ctx, c.tenant, name)
	if err != nil {
		return nil, err
	}
	return client.SourceReply{Source: sourceView(src, true)}, nil
}

func (s *Service) sourceList(c *call) (any, error) {
	var req struct{}
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	list, err := s.store.ListSources(c.ctx, c.tenant)
	if err != nil {
		return nil, err
	}
	reply := client.SourceListReply{Sources: []client.SourceView{}}
	for _, src := range list {
		reply.Sources = append(reply.Sources, sourceView(src, false))
	}
	return reply, nil
}

// sourceDelete marks a source deleted: new sessions cannot start from it
// and it takes no new revisions, but its revisions stay, so the sessions
// that started from one keep replaying.
func (s *Service) sourceDelete(c *call) (any, error) {
	var req client.SourceRequest
	name, err := c.decodeSource(&req, &req.Name)
	if err != nil {
		return nil, err
	}
	e, err := c.sourceEvent(req.Mutation, domain.SourceDeleted)
	if err != nil {
		return nil, err
	}
	res, err := s.store.ChangeSource(c.ctx, c.tenant, name, e.RequestID, func(src *domain.Source) (*domain.SourceEvent, error) {
		if src.Deleted {
			return nil, domain.Errorf(domain.CodeNotFound, "source %q is already deleted", name)
		}
		return e, nil
	})
	if err != nil {
		return nil, err
	}
	return client.SourceReply{Source: sourceView(res.Source, true), Replayed: res.Replayed}, nil
}

// sourceBase returns the tree a new session starts from: a revision of a
// source that is not deleted (0: the latest).
func (c *call) sourceBase(name string, rev uint64) (domain.Tree, domain.Origin, error) {
	if _, err := sourceName(name); err != nil {
		return domain.Tree{}, domain.Origin{}, err
	}
	src, err := c.svc.store.Source(c.ctx, c.tenant, name)
	if err != nil {
		return domain.Tree{}, domain.Origin{}, err
	}
	if src.Deleted {
		return domain.Tree{}, domain.Origin{}, domain.Errorf(domain.CodeNotFound, "source %q is deleted", name)
	}
	r, err := src.Revision(rev)
	if err != nil {
		return domain.Tree{}, domain.Origin{}, err
	}
	t, err := c.svc.store.RevisionTree(c.ctx, r)
	if err != nil {
		return domain.Tree{}, domain.Origin{}, err
	}
	return t, domain.Origin{Source: name, Revision: r.Number}, nil
}

func (s *Service) sourceUpload(c *call) (any, error) {
	var req client.SourceUploadRequest
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	if len(req.Data) > s.blobs.ChunkSize() {
		return nil, domain.Errorf(domain.CodeTooLarge, "a chunk holds at most %d bytes", s.blobs.ChunkSize())
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

// uploaded checks the chunk hashes of an upload, which the tenant must have
// uploaded itself: blobs are shared by all tenants, so a hash alone must not
// let one read another's archive.
func (c *call) uploaded(chunks []string) ([]domain.Hash, error) {
	hs, err := parseChunks(chunks, maxImportChunks)
	if err != nil {
		return nil, err
	}
	if err := c.svc.store.Claimed(c.ctx, c.tenant, hs); err != nil {
		return nil, err
	}
	return hs, nil
}

// parseChunks checks the syntax of chunk hashes.
func parseChunks(chunks []string, max int) ([]domain.Hash, error) {
	if len(chunks) == 0 {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "chunks are required")
	}
	if len(chunks) > max {
		return nil, domain.Errorf(domain.CodeTooLarge, "at most %d chunks", max)
	}
	out := make([]domain.Hash, len(chunks))
	for i, ch := range chunks {
		h, err := domain.ParseHash(ch)
		if err != nil {
			return nil, domain.Errorf(domain.CodeInvalidArgument, "chunk %d: %s", i, domain.ErrorMessage(err))
		}
		out[i] = h
	}
	return out, nil
}

// jobID is the id of an import: new, or derived from the request id so
// that a retry finds the job its first attempt started.
func (c *call) jobID(name, requestID string) string {
	if requestID == "" {
		return c.svc.opts.NewID()
	}
	sum := sha256.Sum256([]byte(c.tenant + "\x00" + name + "\x00" + requestID))
	return "R" + hex.EncodeToString(sum[:13])
}

func (s *Service) sourceImport(c *call) (any, error) {
	var req client.SourceImportRequest
	name, err := c.decodeSource(&req, &req.Name)
	if err != nil {
		return nil, err
	}
	meta, err := c.meta(req.Mutation)
	if err != nil {
		return nil, err
	}
	spec, err := s.importSpec(c, req)
	if err != nil {
		return nil, err
	}
	src, err := s.store.Source(c.ctx, c.tenant, name)
	if err != nil {
		return nil, err
	}
	if src.Deleted {
		return nil, domain.Errorf(domain.CodeNotFound, "source %q is deleted", name)
	}
	now := s.opts.Now()
	job := &domain.Job{
		ID: c.jobID(name, meta.RequestID), Tenant: c.tenant, Kind: spec.origin.Kind, Source: name,
		State: domain.JobQueued, Instance: s.instance(), Actor: meta.Actor,
		CreatedAt: now, UpdatedAt: now, Heartbeat: now,
	}
	if err := s.store.CreateJob(c.ctx, job); err != nil {
		if meta.RequestID != "" && domain.ErrorCode(err) == domain.CodeAlreadyExists {
			old, gerr := s.store.GetJob(c.ctx, c.tenant, job.ID)
			if gerr != nil {
				return nil, gerr
			}
			return client.JobReply{Job: *old, Replayed: true}, nil
		}
		return nil, err
	}
	ev := &domain.SourceEvent{Tenant: c.tenant, Source: name, Actor: meta.Actor, RequestID: meta.RequestID}
	reply := client.JobReply{Job: *job} // before the runner changes job
	s.jobs.start(s, job, spec, ev)
	return reply, nil
}

func (s *Service) sourceJob(c *call) (any, error) {
	var req client.JobRequest
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	if req.Job == "" || !validJobID(req.Job) {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "job must be a job id")
	}
	job, err := s.store.GetJob(c.ctx, c.tenant, req.Job)
	if err != nil {
		return nil, err
	}
	job, err = s.store.ExpireJob(c.ctx, job, s.opts.Now(), s.jobTimeout())
	if err != nil {
		return nil, err
	}
	return client.JobReply{Job: *job}, nil
}

func validJobID(id string) bool {
	if len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// sourcePromote makes a session's tree the next revision of a source.
//
// The approval policy for promote applies to the session, and the content
// acted on is the tree at At. The decision is made on the session's state
// at At, with the session's current policy: an approval counts when it was
// granted for exactly that tree by that point of the history (and not
// denied since). When the tree at At is the head's tree, the head decides,
// so approvals granted after At for the same content count too. An
// approval whose root differs from the promoted tree never counts. The
// approvals used are recorded on the revision; they are not consumed on the
// session (no session event is written), so the same approval can promote
// the same tree again, which adds nothing a first promotion did not.
func (s *Service) sourcePromote(c *call) (any, error) {
	var req client.PromoteRequest
	name, err := c.decodeSource(&req, &req.Name)
	if err != nil {
		return nil, err
	}
	id, err := sessionID(req.Session)
	if err != nil {
		return nil, err
	}
	e, err := c.sourceEvent(req.Mutation, domain.RevisionAdded)
	if err != nil {
		return nil, err
	}
	head, err := s.store.Head(c.ctx, c.tenant, id)
	if err != nil {
		return nil, err
	}
	if err := readable(head); err != nil {
		return nil, err
	}
	target := head
	if req.At != "" {
		if target, err = c.resolveAt(id, req.At); err != nil {
			return nil, err
		}
	}
	tp, err := c.tenantPolicy()
	if err != nil {
		return nil, err
	}
	decider := *target
	if target.Tree.Hash() == head.Tree.Hash() {
		decider = *head
	}
	decider.Policy = head.Policy
	uses, err := decider.Authorize(domain.ActionPromote, tp)
	if err != nil {
		return nil, err
	}
	for _, u := range uses {
		if r := head.Approvals[u]; r != nil && r.Denial != nil {
			return nil, domain.Errorf(domain.CodeApprovalRequired, "the approval %s for promote was denied since", u)
		}
	}
	blob, err := s.store.PutTree(c.ctx, target.Tree)
	if err != nil {
		return nil, err
	}
	files, size := treeCounts(target.Tree)
	res, err := c.addRevision(e, name, domain.Revision{
		Root: target.Tree.Hash().Bytes(), Tree: blob.Bytes(), Files: files, Bytes: size, Uses: uses,
		Gate:   decider.Gate(domain.ActionPromote, tp),
		Origin: domain.RevisionOrigin{Kind: domain.OriginSession, Session: id, Position: target.Position},
	})
	if err != nil {
		return nil, err
	}
	// A replayed answer is the source as the first attempt left it: its
	// latest revision is the one that attempt added.
	return client.SourceReply{Source: sourceView(res.Source, true), Revision: uint64(len(res.Source.Revisions)), Replayed: res.Replayed}, nil
}
