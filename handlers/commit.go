package handlers

import (
	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

func commitView(session string, c domain.Commit) client.CommitView {
	return client.CommitView{
		ID: c.ID, Session: session, Position: c.Position, Root: c.Root.String(), Message: c.Message,
		Author: c.Author, Summary: c.Summary, Approvals: append([]string{}, c.Approvals...), Gate: c.Gate, CreatedAt: c.CreatedAt,
		EventPosition: c.At,
	}
}

// baseTree returns the tree a session started from: its parent at the fork
// point, or the empty tree.
func (c *call) baseTree(s *domain.Session) (domain.Tree, error) {
	if o := s.Origin; o.Parent != "" {
		p, err := c.svc.store.At(c.ctx, c.tenant, o.Parent, o.Position)
		if err != nil {
			return domain.Tree{}, err
		}
		return p.Tree, nil
	}
	if o := s.Origin; o.Source != "" {
		return c.svc.store.SourceTree(c.ctx, c.tenant, o.Source, o.Revision)
	}
	return domain.Tree{}, nil
}

// summarize computes the summary of a session's tree against its base.
func (c *call) summarize(s *domain.Session) (*domain.Summary, domain.Tree, error) {
	base, err := c.baseTree(s)
	if err != nil {
		return nil, base, err
	}
	sum, err := domain.Summarize(domain.Diff(base, s.Tree), func(h domain.Hash) ([]byte, error) {
		info, err := c.svc.blobs.Stat(c.ctx, h)
		if err != nil {
			return nil, err
		}
		if info.Size > domain.MaxUnifiedBytes {
			return nil, nil // counted as not text
		}
		return c.svc.blobs.Get(c.ctx, h)
	})
	return sum, base, err
}

func (s *Service) commitCreate(c *call) (any, error) {
	var req client.CommitRequest
	id, err := c.decodeSession(&req, &req.Session)
	if err != nil {
		return nil, err
	}
	tp, err := c.tenantPolicy()
	if err != nil {
		return nil, err
	}
	commitID := s.opts.NewID()
	res, err := c.change(id, req.Mutation, func(sess *domain.Session) (domain.Command, error) {
		// Check what can be refused cheaply before computing the summary.
		if _, err := sess.Authorize(domain.ActionCommit, tp); err != nil {
			return nil, err
		}
		sum, _, err := c.summarize(sess)
		if err != nil {
			return nil, err
		}
		capped := sum.Capped(domain.MaxSummaryFiles)
		sum = &capped
		return domain.CreateCommit{ID: commitID, Message: req.Message, Author: req.Author, Summary: sum, Tenant: tp}, nil
	})
	if err != nil {
		return nil, err
	}
	for _, cm := range res.Session.Commits {
		if cm.ID == res.Event.Commit.ID {
			return client.CommitReply{Commit: commitView(id, cm), Position: res.Position, Replayed: res.Replayed}, nil
		}
	}
	return nil, domain.Wrap(errNoCommit, "commit.create")
}

var errNoCommit = domain.Errorf(domain.CodeInternal, "commit missing after its event")

func (s *Service) commitList(c *call) (any, error) {
	var req client.CommitListRequest
	id, err := c.decodeSession(&req, &req.Session)
	if err != nil {
		return nil, err
	}
	sess, err := c.resolveAt(id, req.At)
	if err != nil {
		return nil, err
	}
	reply := client.CommitListReply{Commits: []client.CommitView{}}
	for _, cm := range sess.Commits {
		reply.Commits = append(reply.Commits, commitView(id, cm))
	}
	return reply, nil
}

func (s *Service) commitGet(c *call) (any, error) {
	var req client.CommitGetRequest
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	if req.Commit == "" {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "commit is required")
	}
	if req.Session == "" {
		if s.opts.Lister == nil {
			return nil, domain.Errorf(domain.CodeInvalidArgument, "session is required")
		}
		sid, err := s.opts.Lister.CommitSession(c.ctx, c.tenant, req.Commit)
		if err != nil {
			return nil, err
		}
		req.Session = sid
	}
	id, err := sessionID(req.Session)
	if err != nil {
		return nil, err
	}
	sess, err := s.store.Head(c.ctx, c.tenant, id)
	if err != nil {
		return nil, err
	}
	for _, cm := range sess.Commits {
		if cm.ID == req.Commit {
			return client.CommitReply{Commit: commitView(id, cm), Position: cm.At}, nil
		}
	}
	return nil, domain.Errorf(domain.CodeNotFound, "commit %q not found", truncate(req.Commit, 64))
}

func (s *Service) commitSummary(c *call) (any, error) {
	var req client.SummaryRequest
	id, err := c.decodeSession(&req, &req.Session)
	if err != nil {
		return nil, err
	}
	sess, err := c.resolveAt(id, req.At)
	if err != nil {
		return nil, err
	}
	if req.Offset < 0 || req.Limit < 0 || req.Limit > domain.MaxSummaryFiles {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "offset must be >= 0 and limit 0 to %d", domain.MaxSummaryFiles)
	}
	sum, base, err := c.summarize(sess)
	if err != nil {
		return nil, err
	}
	limit := req.Limit
	if limit == 0 {
		limit = domain.MaxSummaryFiles
	}
	next := 0
	files := sum.Files[min(req.Offset, len(sum.Files)):]
	if len(files) > limit {
		files, next = files[:limit], req.Offset+limit
	}
	sum.Files = files
	if sum.Files == nil {
		sum.Files = []domain.FileChange{}
	}
	reply := client.SummaryReply{NextOffset: next, Summary: *sum, BaseRoot: base.Hash().String(), Root: sess.Tree.Hash().String(), Position: sess.Position}
	if o := sess.Origin; o != (domain.Origin{}) {
		reply.Base = &client.OriginView{Source: o.Source, Revision: o.Revision, Parent: o.Parent, Position: o.Position}
	}
	if reply.Summary.TopDirs == nil {
		reply.Summary.TopDirs = []domain.DirTouch{}
	}
	return reply, nil
}
