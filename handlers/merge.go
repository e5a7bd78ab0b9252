package handlers

import (
	"errors"
	"strings"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

// errMergeStops ends a merge's decision without an event: conflicts, or
// nothing to merge. The reply is in the handler's hands.
var errMergeStops = errors.New("merge writes nothing")

// maxLineage bounds how many forks deep a merge looks for a common base.
const maxLineage = 1000

// lineage lists where a session state comes from, nearest first.
func (c *call) lineage(s *domain.Session) (domain.Lineage, error) {
	l := domain.Lineage{{Session: s.ID, Position: s.Position}}
	o := s.Origin
	for o.Parent != "" && len(l) < maxLineage {
		l = append(l, domain.LineageStep{Session: o.Parent, Position: o.Position})
		p, err := c.svc.store.At(c.ctx, c.tenant, o.Parent, o.Position)
		if err != nil {
			return nil, err
		}
		o = p.Origin
	}
	if o.Source != "" {
		l = append(l, domain.LineageStep{Source: o.Source, Revision: o.Revision})
	}
	return l, nil
}

func conflictViews(cs []domain.Conflict) []client.ConflictView {
	out := make([]client.ConflictView, 0, len(cs))
	for _, c := range cs {
		out = append(out, client.ConflictView{Path: c.Path, Kind: c.Kind, Ours: c.Ours, Theirs: c.Theirs,
			OursKind: c.OursKind, TheirsKind: c.TheirsKind, Resolution: c.Resolution})
	}
	return out
}

func checkStrategy(st string, allowEmpty bool) error {
	if st == domain.StrategyOurs || st == domain.StrategyTheirs || (allowEmpty && st == "") {
		return nil
	}
	return domain.Errorf(domain.CodeInvalidArgument, "strategy must be ours or theirs")
}

func (s *Service) merge(c *call) (any, error) {
	var req client.MergeRequest
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	fromID, fromAt, _ := strings.Cut(req.From, "@")
	from, err := sessionID(fromID)
	if err != nil {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "from: %s", domain.ErrorMessage(err))
	}
	into, err := sessionID(req.Into)
	if err != nil {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "into: %s", domain.ErrorMessage(err))
	}
	if from == into {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "a session cannot be merged into itself")
	}
	if err := checkStrategy(req.Strategy, true); err != nil {
		return nil, err
	}
	if len(req.Paths) > domain.MaxBatchOps {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "at most %d paths", domain.MaxBatchOps)
	}
	paths := map[string]string{}
	for p, st := range req.Paths {
		cp, err := domain.CleanPath(p)
		if err != nil {
			return nil, err
		}
		if err := checkStrategy(st, false); err != nil {
			return nil, domain.Errorf(domain.CodeInvalidArgument, "paths[%q]: strategy must be ours or theirs", p)
		}
		paths[cp] = st
	}
	theirs, err := c.resolveAt(from, client.At(fromAt))
	if err != nil {
		return nil, err
	}
	if fromAt == "" {
		if err := readable(theirs); err != nil {
			return nil, err
		}
	}
	fromLineage, err := c.lineage(theirs)
	if err != nil {
		return nil, err
	}
	tp, err := c.tenantPolicy()
	if err != nil {
		return nil, err
	}
	reply := client.MergeReply{Session: into, From: from, FromPosition: theirs.Position, Paths: []client.MergePathView{}, Conflicts: []client.ConflictView{}}
	res, err := c.change(into, req.Mutation, func(ours *domain.Session) (domain.Command, error) {
		if err := expectAt(ours, req.ExpectedPosition); err != nil {
			return nil, err
		}
		intoLineage, err := c.lineage(ours)
		if err != nil {
			return nil, err
		}
		base, ok := domain.CommonBase(fromLineage, intoLineage)
		if !ok {
			return nil, domain.Errorf(domain.CodeInvalidArgument, "sessions %s and %s have no common history to merge from", from, into)
		}
		reply.Base = client.MergeBaseView{Session: base.Session, Position: base.Position, Source: base.Source, Revision: base.Revision}
		var baseTree domain.Tree
		if base.Session != "" {
			b, err := c.svc.store.At(c.ctx, c.tenant, base.Session, base.Position)
			if err != nil {
				return nil, err
			}
			baseTree = b.Tree
		} else if baseTree, err = c.svc.store.SourceTree(c.ctx, c.tenant, base.Source, base.Revision); err != nil {
			return nil, err
		}
		// Check what can be refused cheaply before reading content.
		if err := ours.Writable(); err != nil {
			return nil, err
		}
		if _, err := ours.Authorize(domain.ActionMerge, tp); err != nil {
			return nil, err
		}
		out, err := domain.Merge(domain.MergeInput{
			Base: baseTree, Ours: ours.Tree, Theirs: theirs.Tree, Strategy: req.Strategy, Paths: paths,
			Content: c.mergeContent,
		})
		if err != nil {
			return nil, err
		}
		reply.Paths = reply.Paths[:0]
		for _, p := range out.Paths {
			reply.Paths = append(reply.Paths, client.MergePathView{Path: p.Path, Result: p.Result})
		}
		reply.Conflicts, reply.Resolved = conflictViews(out.Conflicts), conflictViews(out.Resolved)
		reply.Position, reply.Root = ours.Position, ours.Tree.Hash().String()
		if len(out.Conflicts) > 0 {
			return nil, errMergeStops
		}
		if len(out.Ops) == 0 {
			reply.UpToDate = true
			return nil, errMergeStops
		}
		for _, b := range out.Content {
			if _, err := c.svc.blobs.Put(c.ctx, b); err != nil {
				return nil, err
			}
		}
		resolved := map[string]string{}
		for _, r := range out.Resolved {
			resolved[r.Path] = r.Resolution
		}
		return domain.MergeSession{
			Data: domain.MergeData{
				From: from, FromPosition: theirs.Position, BaseSession: base.Session, BasePosition: base.Position,
				BaseSource: base.Source, BaseRevision: base.Revision, Strategy: req.Strategy, Resolved: resolved,
			},
			Ops: out.Ops, Tenant: tp, Token: req.Token,
		}, nil
	})
	if errors.Is(err, errMergeStops) {
		return reply, nil
	}
	if err != nil {
		return nil, err
	}
	reply.Applied, reply.Replayed = true, res.Replayed
	reply.Position, reply.Root = res.Position, res.Session.Tree.Hash().String()
	reply.Approvals = append([]string{}, res.Event.Uses...)
	if m := res.Event.Merge; m != nil {
		reply.Gate = m.Gate
	}
	if m := res.Event.Merge; m != nil && res.Replayed {
		reply.FromPosition = m.FromPosition
		reply.Base = client.MergeBaseView{Session: m.BaseSession, Position: m.BasePosition, Source: m.BaseSource, Revision: m.BaseRevision}
	}
	return reply, nil
}

// mergeContent reads a file for a line merge; files larger than a text
// diff takes are not merged line by line.
func (c *call) mergeContent(h domain.Hash) ([]byte, error) {
	info, err := c.svc.blobs.Stat(c.ctx, h)
	if err != nil {
		return nil, err
	}
	if info.Size > domain.MaxUnifiedBytes {
		return nil, nil
	}
	return c.svc.blobs.Get(c.ctx, h)
}
