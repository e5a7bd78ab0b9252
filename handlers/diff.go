package handlers

import (
	"encoding/json"
	"strings"
	"unicode/utf8"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

func (s *Service) diff(c *call) (any, error) {
	var req client.DiffRequest
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	if req.Limit < 0 || req.Limit > client.MaxDiffLimit {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "limit must be between 0 and %d", client.MaxDiffLimit)
	}
	limit := req.Limit
	if limit == 0 {
		limit = client.DefaultDiffLimit
	}
	lines := client.DefaultDiffContext
	if req.Context != nil {
		if lines = *req.Context; lines < 0 {
			return nil, domain.Errorf(domain.CodeInvalidArgument, "context must not be negative")
		}
	}
	var path string
	if req.Path != "" {
		p, err := domain.CleanNonRoot(req.Path)
		if err != nil {
			return nil, err
		}
		path = p
	}
	toID, err := sessionID(req.To.Session)
	if err != nil {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "to: %s", domain.ErrorMessage(err))
	}
	to, err := c.diffSide(toID, req.To.At)
	if err != nil {
		return nil, err
	}
	var from domain.Tree
	var fromView client.DiffSideView
	if req.From == nil || req.From.Session == "" {
		if req.From != nil && req.From.At != "" {
			return nil, domain.Errorf(domain.CodeInvalidArgument, "from.at needs from.session (omit from to diff against the base)")
		}
		if from, fromView, err = c.base(to); err != nil {
			return nil, err
		}
	} else {
		fromID, err := sessionID(req.From.Session)
		if err != nil {
			return nil, domain.Errorf(domain.CodeInvalidArgument, "from: %s", domain.ErrorMessage(err))
		}
		f, err := c.diffSide(fromID, req.From.At)
		if err != nil {
			return nil, err
		}
		from, fromView = f.Tree, sideView(f.ID, f.Position, f.Tree)
	}

	changes := domain.Diff(from, to.Tree)
	reply := client.DiffReply{
		From: fromView, To: sideView(to.ID, to.Position, to.Tree),
		Added: []client.DiffEntryView{}, Modified: []client.DiffEntryView{}, Deleted: []client.DiffEntryView{}, Renamed: []client.DiffRenameView{},
		Counts: client.DiffCounts{Added: len(changes.Added), Modified: len(changes.Modified), Deleted: len(changes.Deleted), Renamed: len(changes.Renamed)},
	}
	budget := s.maxReply()
	if path != "" {
		// The lists may take half a reply; the text diff has the rest.
		used := fillDiff(&reply, changes, limit, budget/2)
		unified, err := c.unified(path, from, to.Tree, lines)
		if err != nil {
			return nil, err
		}
		reply.Unified, reply.UnifiedTruncated = fitJSON(unified, budget-used)
		return reply, nil
	}
	fillDiff(&reply, changes, limit, budget)
	return reply, nil
}

// diffSide loads a side of a diff: a session at a point, or at its head
// unless it is deleted.
func (c *call) diffSide(id string, at client.At) (*domain.Session, error) {
	sess, err := c.resolveAt(id, at)
	if err != nil {
		return nil, err
	}
	if at == "" {
		if err := readable(sess); err != nil {
			return nil, err
		}
	}
	return sess, nil
}

// base returns the tree a session started from: its parent's at the fork
// point for a fork, else its own at its first event (empty for a blank
// session, the source revision for one created from a source).
func (c *call) base(s *domain.Session) (domain.Tree, client.DiffSideView, error) {
	st := c.svc.store
	if o := s.Origin; o.Parent != "" {
		p, err := st.At(c.ctx, c.tenant, o.Parent, o.Position)
		if err != nil {
			return domain.Tree{}, client.DiffSideView{}, err
		}
		return p.Tree, sideView(o.Parent, o.Position, p.Tree), nil
	}
	first, err := st.At(c.ctx, c.tenant, s.ID, s.Start)
	if err != nil {
		return domain.Tree{}, client.DiffSideView{}, err
	}
	return first.Tree, sideView(s.ID, s.Start, first.Tree), nil
}

func sideView(id string, position uint64, t domain.Tree) client.DiffSideView {
	return client.DiffSideView{Session: id, Position: position, Root: t.Hash().String()}
}

// unified returns the unified diff of path between two trees. Content is
// read only up to what UnifiedDiff compares.
func (c *call) unified(path string, a, b domain.Tree, lines int) (string, error) {
	x, y := a.Lookup(path), b.Lookup(path)
	if x != nil && x.Kind == domain.KindDir {
		x = nil
	}
	if y != nil && y.Kind == domain.KindDir {
		y = nil
	}
	if x == nil && y == nil {
		return "", domain.Errorf(domain.CodeNotFound, "%q is not a file on either side", path)
	}
	if x != nil && y != nil && x.Kind == y.Kind && x.Content == y.Content && x.Target == y.Target {
		return "", nil
	}
	pathA, pathB := path, path
	if x == nil {
		pathA = ""
	}
	if y == nil {
		pathB = ""
	}
	da, err := c.diffContent(x)
	if err != nil {
		return "", err
	}
	db, err := c.diffContent(y)
	if err != nil {
		return "", err
	}
	return domain.UnifiedDiff(pathA, pathB, da, db, lines), nil
}

// diffContent is what a text diff compares of an entry: a file's content
// (at most one byte more than UnifiedDiff compares), a symlink's target.
func (c *call) diffContent(n *domain.Node) ([]byte, error) {
	switch {
	case n == nil:
		return nil, nil
	case n.Kind == domain.KindSymlink:
		return []byte(n.Target), nil
	case n.Size == 0:
		return []byte{}, nil
	case n.Inline():
		return n.Data, nil
	}
	return c.svc.blobs.ReadAt(c.ctx, n.Content, 0, domain.MaxUnifiedBytes+1)
}

// maxReply is the most bytes of JSON a reply may carry.
func (s *Service) maxReply() int {
	limit := int64(domain.DefaultMaxPayload)
	if s.nc != nil {
		limit = s.nc.MaxPayload()
	}
	return int(max(limit-16<<10, 4096))
}

func nodeView(n *domain.Node) client.DiffNodeView {
	v := client.DiffNodeView{Kind: n.Kind.String(), Mode: n.Mode, Hash: n.Hash().String(), Target: n.Target}
	if n.Kind == domain.KindFile {
		v.Size, v.Hash = n.Size, n.Content.String()
	}
	return v
}

func changeView(ch domain.Change) client.DiffEntryView {
	v := client.DiffEntryView{Path: ch.Path}
	if ch.Old != nil {
		o := nodeView(ch.Old)
		v.Old, v.Kind = &o, o.Kind
	}
	if ch.New != nil {
		n := nodeView(ch.New)
		v.New, v.Kind = &n, n.Kind
	}
	return v
}

// fillDiff puts the first changes in tree order into the reply's lists,
// at most limit of them and as many as fit in budget bytes of JSON, and
// returns the bytes used.
func fillDiff(r *client.DiffReply, c domain.Changes, limit, budget int) int {
	used := 1024 // the sides, counts and keys
	var ia, im, id, ir int
	for n := 0; ia < len(c.Added) || im < len(c.Modified) || id < len(c.Deleted) || ir < len(c.Renamed); n++ {
		// The next change in tree order among the heads of the four lists.
		best, list := "", -1
		consider := func(p string, l int) {
			if list < 0 || domain.ComparePaths(p, best) < 0 {
				best, list = p, l
			}
		}
		if ia < len(c.Added) {
			consider(c.Added[ia].Path, 0)
		}
		if im < len(c.Modified) {
			consider(c.Modified[im].Path, 1)
		}
		if id < len(c.Deleted) {
			consider(c.Deleted[id].Path, 2)
		}
		if ir < len(c.Renamed) {
			consider(c.Renamed[ir].To, 3)
		}
		var v any
		switch list {
		case 0:
			v = changeView(c.Added[ia])
		case 1:
			v = changeView(c.Modified[im])
		case 2:
			v = changeView(c.Deleted[id])
		default:
			rn := c.Renamed[ir]
			v = client.DiffRenameView{From: rn.From, To: rn.To, Kind: rn.New.Kind.String(), Old: nodeView(rn.Old), New: nodeView(rn.New)}
		}
		b, err := json.Marshal(v)
		if n == limit || err != nil || used+len(b)+1 > budget {
			r.Truncated = true
			break
		}
		used += len(b) + 1
		switch list {
		case 0:
			r.Added = append(r.Added, v.(client.DiffEntryView))
			ia++
		case 1:
			r.Modified = append(r.Modified, v.(client.DiffEntryView))
			im++
		case 2:
			r.Deleted = append(r.Deleted, v.(client.DiffEntryView))
			id++
		default:
			r.Renamed = append(r.Renamed, v.(client.DiffRenameView))
			ir++
		}
	}
	return used
}

// fitJSON cuts s at a line end so that it takes at most budget bytes as a
// JSON string, and reports whether it cut.
func fitJSON(s string, budget int) (string, bool) {
	size := 2
	for i, r := range s {
		switch {
		case r == '"' || r == '\\' || r == '\n' || r == '\r' || r == '\t':
			size += 2
		case r < 0x20 || r == '<' || r == '>' || r == '&' || r == '\u2028' || r == '\u2029' || r == utf8.RuneError:
			size += 6
		default:
			size += utf8.RuneLen(r)
		}
		if size > budget {
			cut := strings.LastIndexByte(s[:i], '\n')
			return s[:cut+1], true
		}
	}
	return s, false
}
