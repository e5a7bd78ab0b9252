package web

import (
	"context"
	"html/template"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

// Limits of what one session page reads.
const (
	maxTreeEntries = 5000
	maxTimeline    = 200
	maxFileView    = 1 << 20
	maxForks       = 20
)

// milestones are the event types the timeline shows by default: what a
// reviewer looks for in a history (file writes are summed by the diff).
var milestones = []string{
	string(domain.SessionCreated), string(domain.SessionForked), string(domain.CheckpointCreated),
	string(domain.SessionRestored), string(domain.CommitCreated), string(domain.SessionMerged),
	string(domain.ApprovalRequested), string(domain.ApprovalGranted), string(domain.ApprovalDenied),
	string(domain.HealthReported), string(domain.NoteAdded), string(domain.NoteResolved),
	string(domain.SessionArchived), string(domain.PolicyChanged),
}

// sessionData is the session page.
type sessionData struct {
	S         client.SessionView
	At        string // the point the tree shows ("" for the head)
	AtView    client.SessionView
	Tree      treeView
	File      *fileView
	Approvals []client.ApprovalView
	Notes     []client.NoteView
	OpenNotes int
	Health    *client.HealthView
	Commits   []client.CommitView
	Timeline  []client.EventView
	AllEvents bool
	NextFrom  uint64
	// TimelineCut is true when older history was not read for milestones.
	TimelineCut bool
	Policy      client.PolicyReply
	CanCommit   gate
	CanMerge    gate
	Summary     *client.SummaryReply
	Forks       []client.SessionView
}

// gate says whether an action is allowed now and, when not, why.
type gate struct {
	OK     bool
	Reason string
}

type treeView struct {
	Dir       string
	Crumbs    []crumb
	Entries   []treeEntry
	Truncated bool
}

type crumb struct{ Name, Link string }

type treeEntry struct {
	Name, Link, Kind, Target string
	Size                     int64
}

type fileView struct {
	Path   string
	Size   int64
	Hash   string
	Kind   string
	Target string
	Lines  []template.HTML
	Binary bool
	Large  bool
}

// sessionPage shows one session: what it is, what is asked of the
// reviewer (approvals, open notes, commit), its tree at any point and its
// history.
func (a *App) sessionPage(w http.ResponseWriter, r *http.Request) {
	c, ok := a.client(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	id := r.PathValue("id")
	q := r.URL.Query()
	head, err := c.GetSession(ctx, id, "")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	d := &sessionData{S: head.Session, At: q.Get("at"), AllEvents: q.Get("events") == "all"}
	d.AtView = head.Session
	if d.At != "" {
		at, err := c.GetSession(ctx, id, client.At(d.At))
		if err != nil {
			a.fail(w, r, err)
			return
		}
		d.AtView = at.Session
	}
	if err := a.loadReview(ctx, c, id, d); err != nil {
		a.fail(w, r, err)
		return
	}
	if err := a.loadTree(ctx, c, id, q.Get("path"), d); err != nil {
		a.fail(w, r, err)
		return
	}
	from, _ := strconv.ParseUint(q.Get("from"), 10, 64)
	if err := a.loadTimeline(ctx, c, id, from, d); err != nil {
		a.fail(w, r, err)
		return
	}
	a.render(w, r, c, "session", "Session "+shortID(id), d)
}

// loadReview reads what the decision panel needs: approvals, notes,
// health, commits, the policy and the summary of the change.
func (a *App) loadReview(ctx context.Context, c *client.Client, id string, d *sessionData) error {
	// Every read that takes a point reads the head the page shows, so the
	// panel is one state; they run at once (the page waits for the slowest,
	// not the sum). A request that moved on since is caught by the live
	// stream, which starts from this position.
	at := client.AtPosition(d.S.Position)
	var (
		pending client.PendingReply
		notes   client.NotesReply
		health  client.HealthReply
		commits client.CommitListReply
		sum     client.SummaryReply
		forks   client.ListSessionsReply
	)
	err := all(
		func() (err error) {
			pending, err = c.Pending(ctx, client.PendingRequest{Session: id, All: true})
			return err
		},
		func() (err error) { notes, err = c.Notes(ctx, client.NotesRequest{Session: id, At: at}); return err },
		func() (err error) {
			health, err = c.Health(ctx, client.HealthRequest{Session: id, At: at})
			if client.ErrorCode(err) == domain.CodeNotFound {
				return nil
			}
			return err
		},
		func() (err error) {
			commits, err = c.ListCommits(ctx, client.CommitListRequest{Session: id, At: at})
			return err
		},
		func() (err error) { d.Policy, err = c.GetPolicy(ctx, client.PolicyRequest{Session: id}); return err },
		func() (err error) {
			sum, err = c.Summary(ctx, client.SummaryRequest{Session: id, At: at})
			return err
		},
		func() (err error) {
			forks, err = c.ListSessions(ctx, client.ListSessionsRequest{Parent: id, Limit: maxForks, Sort: "updated", Order: "desc"})
			return err
		},
	)
	if err != nil {
		return err
	}
	d.Approvals = pending.Requests
	slices.Reverse(d.Approvals) // newest first
	d.Notes = notes.Notes
	for _, n := range d.Notes {
		if n.Status == "open" && n.ReplyTo == "" {
			d.OpenNotes++
		}
	}
	d.Health = health.Health
	d.Commits = commits.Commits
	slices.Reverse(d.Commits)
	d.Summary = &sum
	d.Forks = forks.Sessions
	d.CanCommit = policyGate(d.Policy.Effective, "commit", d.Approvals, d.S)
	d.CanMerge = policyGate(d.Policy.Effective, "merge", d.Approvals, d.S)
	return nil
}

// all runs the reads at once and returns their errors.
func all(reads ...func() error) error { return bounded(len(reads), reads...) }

// policyGate tells whether the policy lets an action happen on the
// session's current content, as domain.Session.Authorize decides it: the
// action's grants on one usable request, and for each "action:group" of
// the policy the grants of a usable request addressed to that group. A
// usable request is granted (not denied, used or stale) for the current
// root. The service decides again when the action is asked for.
func policyGate(p domain.Policy, action string, approvals []client.ApprovalView, s client.SessionView) gate {
	switch s.Status {
	case "archived", "deleted":
		return gate{Reason: "the session is " + s.Status}
	}
	usable := func(group string, n int) bool {
		for _, ap := range approvals {
			if ap.Reason == action && ap.State == domain.ApprovalGrantedState && ap.Root == s.Root &&
				(group == "" || ap.Group == group) && len(ap.Grants) >= n {
				return true
			}
		}
		return false
	}
	var missing []string
	if need := p[action]; need > 0 && !usable("", need) {
		missing = append(missing, plural(need, "grant", "grants")+" of a "+action+" request")
	}
	for _, g := range p.GroupRequirements(action) {
		if !usable(g.Group, g.Grants) {
			missing = append(missing, plural(g.Grants, "grant", "grants")+" from group "+g.Group)
		}
	}
	if len(missing) == 0 {
		return gate{OK: true}
	}
	return gate{Reason: "the policy asks for " + strings.Join(missing, " and ") + " on the current content"}
}

func plural(n int, one, many string) string {
	return funcs["plural"].(func(int, string, string) string)(n, one, many)
}

// loadTree lists the directory (or shows the file) at p, at the page's
// point of history.
func (a *App) loadTree(ctx context.Context, c *client.Client, id, p string, d *sessionData) error {
	p = strings.Trim(p, "/")
	at := client.At(d.At)
	if p != "" {
		rd, err := c.Read(ctx, client.ReadRequest{Session: id, Path: p, At: at, Length: 1})
		switch {
		case err != nil && client.ErrorCode(err) != domain.CodeInvalidArgument:
			return err
		case err == nil && rd.Kind != "dir":
			fv, err := a.loadFile(ctx, c, id, p, at, rd)
			if err != nil {
				return err
			}
			d.File = fv
			p = path.Dir(p)
			if p == "." {
				p = ""
			}
		}
	}
	d.Tree.Dir = p
	d.Tree.Crumbs = crumbs(id, d.At, p)
	return a.listDir(ctx, c, id, p, at, d)
}

func (a *App) listDir(ctx context.Context, c *client.Client, id, dir string, at client.At, d *sessionData) error {
	m, err := c.Manifest(ctx, client.ManifestRequest{Session: id, At: at, Prefix: dirPrefix(dir), Limit: maxTreeEntries})
	if err != nil {
		return err
	}
	d.Tree.Truncated = m.NextCursor != ""
	seen := map[string]bool{}
	for _, e := range m.Entries {
		rel := strings.TrimPrefix(strings.TrimPrefix(e.Path, "/"), dirPrefix(dir))
		if rel == "" {
			continue
		}
		name, rest, sub := strings.Cut(rel, "/")
		if seen[name] {
			continue
		}
		seen[name] = true
		te := treeEntry{Name: name, Kind: e.Kind, Size: e.Size, Target: e.Target}
		if sub && rest != "" {
			te.Kind, te.Size, te.Target = "dir", 0, ""
		}
		te.Link = sessionURL(id, atQuery(d.At, path.Join(dir, name)))
		d.Tree.Entries = append(d.Tree.Entries, te)
	}
	slices.SortStableFunc(d.Tree.Entries, func(x, y treeEntry) int {
		if (x.Kind == "dir") != (y.Kind == "dir") {
			if x.Kind == "dir" {
				return -1
			}
			return 1
		}
		return strings.Compare(x.Name, y.Name)
	})
	return nil
}

func dirPrefix(dir string) string {
	if dir == "" {
		return ""
	}
	return dir + "/"
}

func atQuery(at, p string) url.Values {
	q := url.Values{}
	if at != "" {
		q.Set("at", at)
	}
	if p != "" {
		q.Set("path", p)
	}
	return q
}

func crumbs(id, at, dir string) []crumb {
	out := []crumb{{Name: "/", Link: sessionURL(id, atQuery(at, ""))}}
	if dir == "" {
		return out
	}
	acc := ""
	for _, part := range strings.Split(dir, "/") {
		acc = path.Join(acc, part)
		out = append(out, crumb{Name: part, Link: sessionURL(id, atQuery(at, acc))})
	}
	return out
}

func (a *App) loadFile(ctx context.Context, c *client.Client, id, p string, at client.At, head client.ReadReply) (*fileView, error) {
	fv := &fileView{Path: p, Size: head.Size, Hash: head.Hash, Kind: head.Kind, Target: head.Target}
	if head.Kind != "file" {
		return fv, nil
	}
	if head.Size > maxFileView {
		fv.Large = true
		return fv, nil
	}
	data, _, err := c.ReadAll(ctx, id, p, client.AtPosition(head.Position))
	if err != nil {
		return nil, err
	}
	if isBinary(data) {
		fv.Binary = true
		return fv, nil
	}
	fv.Lines = highlightLines(p, string(data))
	return fv, nil
}

// Bounds of the milestone timeline: it reads the newest events of the
// history in windows of positions, each one request of at most
// MaxEventsLimit events, so a page costs the same whatever the length of
// the history; what lies beyond the budget is one link away (events=all).
const (
	timelineRequests = 12
	timelineSpan     = 2048
)

// loadTimeline reads the session's history: by default its milestones,
// newest first, from its latest events; with events=all every event, a
// page of maxTimeline at a time from the position in from.
func (a *App) loadTimeline(ctx context.Context, c *client.Client, id string, from uint64, d *sessionData) error {
	if d.AllEvents {
		page, err := c.Events(ctx, client.EventsRequest{Session: id, From: from, Limit: maxTimeline})
		if err != nil {
			return err
		}
		d.Timeline, d.NextFrom = page.Events, page.NextFrom
		return nil
	}
	keep := map[string]bool{}
	for _, t := range milestones {
		keep[t] = true
	}
	start, hi, span := d.S.Start, d.S.Position+1, uint64(timelineSpan)
	for n := 0; n < timelineRequests && len(d.Timeline) < maxTimeline && hi > start; n++ {
		lo := start
		if hi > start+span {
			lo = hi - span
		}
		page, err := c.Events(ctx, client.EventsRequest{Session: id, From: lo, At: client.AtPosition(d.S.Position), Limit: client.MaxEventsLimit})
		if err != nil {
			return err
		}
		if page.NextFrom != 0 && page.NextFrom < hi && span > 1 {
			span = max(span/4, 1) // more than a page in the window: a smaller one
			continue
		}
		for i := len(page.Events) - 1; i >= 0; i-- {
			if e := page.Events[i]; e.Position < hi && keep[e.Type] && len(d.Timeline) < maxTimeline {
				d.Timeline = append(d.Timeline, e)
			}
		}
		hi, span = lo, span*2
	}
	d.TimelineCut = hi > start
	return nil
}
