package domain

import (
	"encoding/json"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Actions that a policy can gate.
const (
	ActionCommit  = "commit"
	ActionMerge   = "merge"
	ActionPromote = "promote"
	ActionDelete  = "delete"
	// ActionPolicy gates changing a session's policy: it always needs at
	// least one grant.
	ActionPolicy = "policy"
)

// Limits on review input.
const (
	MaxNoteBody     = 64 * 1024
	MaxDetailsBytes = 16 * 1024
	MaxCommentBytes = 16 * 1024
	MaxMessageBytes = 64 * 1024
	MaxGrants       = 100
)

var (
	reasonRe = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)
	groupRe  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)
	reviewID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$`)
)

// Policy says how many grants each action needs. A session's policy
// overrides its tenant's default action by action. A key "action:group"
// adds a requirement: the action also needs that many grants on a request
// addressed to that reviewer group, so a policy can require grants from
// more than one group ({"commit:leads": 1, "commit:security": 1}).
type Policy map[string]int

// Validate checks a policy's actions and counts.
func (p Policy) Validate() error {
	if len(p) > 32 {
		return Errorf(CodeInvalidArgument, "a policy names at most 32 actions")
	}
	for a, n := range p {
		action, group, grouped := strings.Cut(a, ":")
		if !reasonRe.MatchString(action) {
			return Errorf(CodeInvalidArgument, "policy action %q must match [a-z][a-z0-9_]* (or action:group)", truncateRunes(a, 80))
		}
		if grouped && !groupRe.MatchString(group) {
			return Errorf(CodeInvalidArgument, "policy group in %q must match [A-Za-z0-9][A-Za-z0-9_-]*", truncateRunes(a, 80))
		}
		if n < 0 || n > 10 {
			return Errorf(CodeInvalidArgument, "policy for %q must need 0 to 10 grants", truncateRunes(a, 80))
		}
	}
	return nil
}

func truncateRunes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// GroupRequirements returns the reviewer groups an action needs grants
// from, with how many each, sorted by group.
func (p Policy) GroupRequirements(action string) []GroupRequirement {
	var out []GroupRequirement
	for k, n := range p {
		a, g, ok := strings.Cut(k, ":")
		if ok && a == action && n > 0 {
			out = append(out, GroupRequirement{Group: g, Grants: n})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Group < out[j].Group })
	return out
}

// GroupRequirement is one group's part of a policy for an action.
type GroupRequirement struct {
	Group  string `json:"group"`
	Grants int    `json:"grants"`
}

// Merge returns the policy with overrides applied on top of p.
func (p Policy) Merge(overrides Policy) Policy {
	out := maps.Clone(p)
	if out == nil {
		out = Policy{}
	}
	maps.Copy(out, overrides)
	return out
}

// Annotation is a review note on a session, a path or a line range.
type Annotation struct {
	ID        string
	Actor     string
	Body      string
	Path      string
	LineStart int
	LineEnd   int
	// Content is the hash the path held when the note was written (the
	// content hash of a file, the Merkle hash of a directory).
	Content    Hash
	ReplyTo    string
	Resolved   bool
	ResolvedBy string
	CreatedAt  time.Time
	UpdatedAt  time.Time
	// Position is where the note was added.
	Position uint64
}

// Decision is a grant or a denial.
type Decision struct {
	Actor   string
	Comment string
	At      time.Time
}

// ApprovalRequest asks reviewers to allow an action on exactly the content
// the session holds when asked.
type ApprovalRequest struct {
	ID        string
	Reason    string
	Group     string
	Details   json.RawMessage
	Requester string
	// Root is the Merkle root the request is pinned to.
	Root      Hash
	Required  int
	CreatedAt time.Time
	Position  uint64
	Grants    []Decision
	Denial    *Decision
	// Stale is set for good once the content changes after the request.
	Stale bool
	// UsedBy is the position of the event the request authorised.
	UsedBy uint64
}

// State of an approval request.
const (
	ApprovalPending      = "pending"
	ApprovalGrantedState = "granted"
	ApprovalDeniedState  = "denied"
	ApprovalStaleState   = "stale"
	ApprovalUsedState    = "used"
)

// State returns pending, granted, denied, stale or used.
func (r *ApprovalRequest) State() string {
	switch {
	case r.UsedBy != 0:
		return ApprovalUsedState
	case r.Denial != nil:
		return ApprovalDeniedState
	case r.Stale:
		return ApprovalStaleState
	case len(r.Grants) >= r.Required:
		return ApprovalGrantedState
	}
	return ApprovalPending
}

// Commit is a durable outcome of a session.
type Commit struct {
	ID        string
	Position  uint64 // the position whose content is committed
	Root      Hash
	Message   string
	Author    string
	Summary   *Summary
	Approvals []string
	// Gate is what the policy required of the commit (CommitData.Gate).
	Gate      Policy
	CreatedAt time.Time
	// At is the position of the CommitCreated event.
	At uint64
}

// ReviewState is a session's review state: its notes, approval requests,
// commits and policy. A snapshot stores it under these keys, so a field
// added here is kept by snapshots without an edit of the store.
type ReviewState struct {
	Notes     map[string]Annotation       `msgpack:"notes,omitempty"`
	Approvals map[string]*ApprovalRequest `msgpack:"approvals,omitempty"`
	Commits   []Commit                    `msgpack:"commits,omitempty"`
	Policy    Policy                      `msgpack:"policy,omitempty"`
}

// ToUTC gives every time of the state in UTC, as events give them: what
// MessagePack decodes keeps the instant, not the zone.
func (r *ReviewState) ToUTC() {
	for id, n := range r.Notes {
		n.CreatedAt, n.UpdatedAt = n.CreatedAt.UTC(), n.UpdatedAt.UTC()
		r.Notes[id] = n
	}
	for _, a := range r.Approvals {
		a.CreatedAt = a.CreatedAt.UTC()
		for i := range a.Grants {
			a.Grants[i].At = a.Grants[i].At.UTC()
		}
		if a.Denial != nil {
			a.Denial.At = a.Denial.At.UTC()
		}
	}
	for i := range r.Commits {
		r.Commits[i].CreatedAt = r.Commits[i].CreatedAt.UTC()
	}
}

// Review commands.
type (
	// Annotate adds a note.
	Annotate struct {
		ID        string
		Body      string
		Path      string
		LineStart int
		LineEnd   int
		ReplyTo   string
	}
	// ResolveNote marks a note resolved.
	ResolveNote struct{ ID string }
	// ReopenNote marks a resolved note open again.
	ReopenNote struct{ ID string }
	// RequestApproval asks for an action to be allowed on the current
	// content.
	RequestApproval struct {
		ID      string
		Reason  string
		Group   string
		Details json.RawMessage
		Tenant  Policy
	}
	// GrantApproval allows a request.
	GrantApproval struct{ ID, Comment string }
	// DenyApproval refuses a request.
	DenyApproval struct{ ID, Comment string }
	// CreateCommit records the current content as a durable outcome.
	CreateCommit struct {
		ID      string
		Message string
		Author  string
		Summary *Summary
		Tenant  Policy
	}
	// SetPolicy changes a session's policy; it needs an approval.
	SetPolicy struct {
		Policy Policy
		Tenant Policy
	}
)

func (Annotate) command()        {}
func (ResolveNote) command()     {}
func (ReopenNote) command()      {}
func (RequestApproval) command() {}
func (GrantApproval) command()   {}
func (DenyApproval) command()    {}
func (CreateCommit) command()    {}
func (SetPolicy) command()       {}

// EffectivePolicy is the tenant's default overridden by the session's own.
func (s *Session) EffectivePolicy(tenant Policy) Policy { return tenant.Merge(s.Policy) }

// Required returns how many grants an action needs on this session.
func (s *Session) Required(action string, tenant Policy) int {
	n := s.EffectivePolicy(tenant)[action]
	if action == ActionPolicy && n < 1 {
		n = 1
	}
	return n
}

// ApprovalList returns the session's approval requests in the order they
// were made.
func (s *Session) ApprovalList() []*ApprovalRequest {
	out := make([]*ApprovalRequest, 0, len(s.Approvals))
	for _, r := range s.Approvals {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Position < out[j].Position || (out[i].Position == out[j].Position && out[i].ID < out[j].ID)
	})
	return out
}

// NoteList returns the session's notes in the order they were written.
func (s *Session) NoteList() []Annotation {
	out := make([]Annotation, 0, len(s.Notes))
	for _, n := range s.Notes {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Position < out[j].Position || (out[i].Position == out[j].Position && out[i].ID < out[j].ID)
	})
	return out
}

// NoteOutdated reports whether the content a path note was written against
// has changed since.
func (s *Session) NoteOutdated(n Annotation) bool {
	if n.Path == "" {
		return false
	}
	cur := s.Tree.Lookup(n.Path)
	if cur == nil {
		return true
	}
	h := cur.Hash()
	if cur.Kind == KindFile {
		h = cur.Content
	}
	return h != n.Content
}

// Gate returns what the effective policy requires of an action: its
// overall grants and those of each reviewer group; nil when nothing.
func (s *Session) Gate(action string, tenant Policy) Policy {
	var g Policy
	if n := s.Required(action, tenant); n > 0 {
		g = Policy{action: n}
	}
	for _, r := range s.EffectivePolicy(tenant).GroupRequirements(action) {
		if g == nil {
			g = Policy{}
		}
		g[action+":"+r.Group] = r.Grants
	}
	return g
}

// Authorize finds the approvals that allow an action on the current content.
// It fails with approval_required when there are none, or approval_stale
// when the only ones were given for other content. When the policy names
// groups for the action ("action:group"), each of them needs its own
// granted request addressed to it.
func (s *Session) Authorize(action string, tenant Policy) ([]string, error) {
	need := s.Required(action, tenant)
	groups := s.EffectivePolicy(tenant).GroupRequirements(action)
	if need == 0 && len(groups) == 0 {
		return nil, nil
	}
	root := s.Tree.Hash()
	stale := false
	// usable returns the first request that allows the action with n
	// grants, addressed to group (any group when "").
	usable := func(group string, n int) string {
		for _, r := range s.ApprovalList() {
			if r.Reason != action || r.Denial != nil || r.UsedBy != 0 || (group != "" && r.Group != group) {
				continue
			}
			if r.Stale || r.Root != root {
				stale = true
				continue
			}
			if len(r.Grants) >= n {
				return r.ID
			}
		}
		return ""
	}
	var uses []string
	for _, g := range groups {
		id := usable(g.Group, g.Grants)
		if id == "" {
			if stale {
				return nil, Errorf(CodeApprovalStale, "the approval of group %s for %s was given for other content; request it again", g.Group, action)
			}
			return nil, Errorf(CodeApprovalRequired, "%s needs %d grant(s) from group %s on the current content", action, g.Grants, g.Group)
		}
		uses = append(uses, id)
	}
	if need > 0 {
		satisfied := false
		for _, id := range uses {
			if len(s.Approvals[id].Grants) >= need {
				satisfied = true
			}
		}
		if !satisfied {
			id := usable("", need)
			if id == "" {
				if stale {
					return nil, Errorf(CodeApprovalStale, "the approval for %s was given for other content; request it again", action)
				}
				return nil, Errorf(CodeApprovalRequired, "%s needs %d grant(s) on the current content", action, need)
			}
			uses = append(uses, id)
		}
	}
	slices.Sort(uses)
	return slices.Compact(uses), nil
}

func decideResolveNote(s *Session, c ResolveNote, m Meta, _ Past) (*Event, error) {
	return decideNoteState(s, c.ID, true, m)
}

func decideReopenNote(s *Session, c ReopenNote, m Meta, _ Past) (*Event, error) {
	return decideNoteState(s, c.ID, false, m)
}

func decideNoteState(s *Session, id string, resolve bool, m Meta) (*Event, error) {
	n, ok := s.Notes[id]
	if !ok {
		return nil, Errorf(CodeNotFound, "note %q not found", id)
	}
	if n.Resolved == resolve {
		state := "open"
		if resolve {
			state = "resolved"
		}
		return nil, Errorf(CodeConflict, "note %q is already %s", id, state)
	}
	typ := NoteReopened
	if resolve {
		typ = NoteResolved
	}
	e := newEvent(s, typ, m)
	e.Note = &NoteData{ID: id}
	return e, nil
}

func decideGrant(s *Session, c GrantApproval, m Meta, _ Past) (*Event, error) {
	return decideDecision(s, c.ID, c.Comment, m, true)
}

func decideDeny(s *Session, c DenyApproval, m Meta, _ Past) (*Event, error) {
	return decideDecision(s, c.ID, c.Comment, m, false)
}

func decideCommit(s *Session, c CreateCommit, m Meta, _ Past) (*Event, error) {
	if !reviewID.MatchString(c.ID) {
		return nil, Errorf(CodeInvalidArgument, "bad commit id")
	}
	if c.Message == "" || len(c.Message) > MaxMessageBytes {
		return nil, Errorf(CodeInvalidArgument, "message is required and at most %d bytes", MaxMessageBytes)
	}
	if len(c.Author) > MaxActorBytes {
		return nil, Errorf(CodeInvalidArgument, "author is longer than %d bytes", MaxActorBytes)
	}
	if err := s.Writable(); err != nil {
		return nil, err
	}
	uses, err := s.Authorize(ActionCommit, c.Tenant)
	if err != nil {
		return nil, err
	}
	author := c.Author
	if author == "" {
		author = m.Actor
	}
	e := newEvent(s, CommitCreated, m)
	e.Commit = &CommitData{ID: c.ID, Position: s.Position, Message: c.Message, Author: author, Summary: c.Summary, Gate: s.Gate(ActionCommit, c.Tenant)}
	e.Uses = uses
	return e, nil
}

func decidePolicy(s *Session, c SetPolicy, m Meta, _ Past) (*Event, error) {
	if err := c.Policy.Validate(); err != nil {
		return nil, err
	}
	uses, err := s.Authorize(ActionPolicy, c.Tenant)
	if err != nil {
		return nil, err
	}
	e := newEvent(s, PolicyChanged, m)
	e.Policy = maps.Clone(c.Policy)
	if e.Policy == nil {
		e.Policy = Policy{}
	}
	e.Uses = uses
	return e, nil
}

func decideAnnotate(s *Session, c Annotate, m Meta, _ Past) (*Event, error) {
	if !reviewID.MatchString(c.ID) {
		return nil, Errorf(CodeInvalidArgument, "bad note id")
	}
	if _, ok := s.Notes[c.ID]; ok {
		return nil, Errorf(CodeAlreadyExists, "note %q already exists", c.ID)
	}
	if c.Body == "" || len(c.Body) > MaxNoteBody {
		return nil, Errorf(CodeInvalidArgument, "body is required and at most %d bytes", MaxNoteBody)
	}
	d := &NoteData{ID: c.ID, Body: c.Body, ReplyTo: c.ReplyTo}
	if c.ReplyTo != "" {
		parent, ok := s.Notes[c.ReplyTo]
		if !ok {
			return nil, Errorf(CodeNotFound, "note %q to reply to not found", c.ReplyTo)
		}
		if c.Path == "" && c.LineStart == 0 {
			// a reply belongs to its thread's place
			c.Path, c.LineStart, c.LineEnd = parent.Path, parent.LineStart, parent.LineEnd
		}
	}
	if c.LineStart != 0 || c.LineEnd != 0 {
		if c.Path == "" {
			return nil, Errorf(CodeInvalidArgument, "a line range needs a path")
		}
		if c.LineStart < 1 || c.LineEnd < c.LineStart {
			return nil, Errorf(CodeInvalidArgument, "lines must be a range A-B with 1 <= A <= B")
		}
	}
	if c.Path != "" {
		p, err := CleanNonRoot(c.Path)
		if err != nil {
			return nil, err
		}
		n := s.Tree.Lookup(p)
		if n == nil {
			return nil, Errorf(CodeNotFound, "%q not found", p)
		}
		if c.LineStart != 0 && n.Kind != KindFile {
			return nil, Errorf(CodeInvalidArgument, "a line range needs a file")
		}
		h := n.Hash()
		if n.Kind == KindFile {
			h = n.Content
		}
		d.Path, d.LineStart, d.LineEnd, d.Content = p, c.LineStart, c.LineEnd, h.Bytes()
		if d.Content == nil {
			d.Content = make([]byte, len(Hash{}))
		}
	}
	e := newEvent(s, NoteAdded, m)
	e.Note = d
	return e, nil
}

func decideRequest(s *Session, c RequestApproval, m Meta, _ Past) (*Event, error) {
	if !reviewID.MatchString(c.ID) {
		return nil, Errorf(CodeInvalidArgument, "bad request id")
	}
	if _, ok := s.Approvals[c.ID]; ok {
		return nil, Errorf(CodeAlreadyExists, "approval request %q already exists", c.ID)
	}
	if !reasonRe.MatchString(c.Reason) {
		return nil, Errorf(CodeInvalidArgument, "reason must be commit, merge, promote, delete or a code matching [a-z][a-z0-9_]*")
	}
	group := c.Group
	if group == "" {
		group = "default"
	}
	if !groupRe.MatchString(group) {
		return nil, Errorf(CodeInvalidArgument, "group must match [A-Za-z0-9][A-Za-z0-9_-]*")
	}
	if len(c.Details) > MaxDetailsBytes {
		return nil, Errorf(CodeInvalidArgument, "details are larger than %d bytes", MaxDetailsBytes)
	}
	if len(c.Details) > 0 && !json.Valid(c.Details) {
		return nil, Errorf(CodeInvalidArgument, "details must be JSON")
	}
	if err := s.Writable(); err != nil {
		return nil, err
	}
	e := newEvent(s, ApprovalRequested, m)
	e.Approval = &ApprovalData{
		ID: c.ID, Reason: c.Reason, Group: group, Details: c.Details,
		Root: s.Tree.Hash().Bytes(), Required: max(s.Required(c.Reason, c.Tenant), s.EffectivePolicy(c.Tenant)[c.Reason+":"+group], 1),
	}
	if e.Approval.Root == nil {
		e.Approval.Root = make([]byte, len(Hash{}))
	}
	return e, nil
}

func decideDecision(s *Session, id, comment string, m Meta, grant bool) (*Event, error) {
	r, ok := s.Approvals[id]
	if !ok {
		return nil, Errorf(CodeNotFound, "approval request %q not found", id)
	}
	if len(comment) > MaxCommentBytes {
		return nil, Errorf(CodeInvalidArgument, "comment is longer than %d bytes", MaxCommentBytes)
	}
	if m.Actor == r.Requester {
		return nil, Errorf(CodeForbidden, "the requester cannot decide their own request")
	}
	switch r.State() {
	case ApprovalStaleState:
		return nil, Errorf(CodeApprovalStale, "the content changed after request %q; it can no longer be decided", id)
	case ApprovalDeniedState, ApprovalUsedState:
		return nil, Errorf(CodeConflict, "request %q is already %s", id, r.State())
	}
	if r.Root != s.Tree.Hash() {
		return nil, Errorf(CodeApprovalStale, "the content changed after request %q", id)
	}
	for _, g := range r.Grants {
		if g.Actor == m.Actor {
			return nil, Errorf(CodeAlreadyExists, "%s already granted request %q", m.Actor, id)
		}
	}
	if grant && len(r.Grants) >= MaxGrants {
		return nil, Errorf(CodeConflict, "request %q has the most grants it can hold", id)
	}
	typ := ApprovalDenied
	if grant {
		typ = ApprovalGranted
	}
	e := newEvent(s, typ, m)
	e.Approval = &ApprovalData{ID: id, Comment: comment}
	return e, nil
}

func applyNoteAdded(n *Session, e *Event, _ applying) error {
	d := e.Note
	if d == nil {
		return Errorf(CodeInternal, "%s without payload", e.Type)
	}
	notes := maps.Clone(n.Notes)
	if notes == nil {
		notes = map[string]Annotation{}
	}
	h, _ := HashFromBytes(d.Content)
	notes[d.ID] = Annotation{
		ID: d.ID, Actor: e.Actor, Body: d.Body, Path: d.Path, LineStart: d.LineStart, LineEnd: d.LineEnd,
		Content: h, ReplyTo: d.ReplyTo, CreatedAt: e.At(), UpdatedAt: e.At(),
	}
	n.Notes = notes
	n.onStored(func(s *Session, position uint64) {
		a := s.Notes[d.ID]
		a.Position = position
		s.Notes[d.ID] = a
	})
	return nil
}

// applyNoteState folds NoteResolved and NoteReopened.
func applyNoteState(n *Session, e *Event, _ applying) error {
	d := e.Note
	if d == nil {
		return Errorf(CodeInternal, "%s without payload", e.Type)
	}
	a, ok := n.Notes[d.ID]
	if !ok {
		return Errorf(CodeInternal, "%s of unknown note %q", e.Type, d.ID)
	}
	notes := maps.Clone(n.Notes)
	a.Resolved = e.Type == NoteResolved
	a.ResolvedBy = ""
	if a.Resolved {
		a.ResolvedBy = e.Actor
	}
	a.UpdatedAt = e.At()
	notes[d.ID] = a
	n.Notes = notes
	return nil
}

func applyApprovalRequested(n *Session, e *Event, _ applying) error {
	d := e.Approval
	if d == nil {
		return Errorf(CodeInternal, "%s without payload", e.Type)
	}
	reqs := maps.Clone(n.Approvals)
	if reqs == nil {
		reqs = map[string]*ApprovalRequest{}
	}
	root, _ := HashFromBytes(d.Root)
	r := &ApprovalRequest{
		ID: d.ID, Reason: d.Reason, Group: d.Group, Details: json.RawMessage(d.Details), Requester: e.Actor,
		Root: root, Required: d.Required, CreatedAt: e.At(),
	}
	reqs[d.ID] = r
	n.Approvals = reqs
	n.onStored(func(_ *Session, position uint64) { r.Position = position })
	return nil
}

// applyDecision folds ApprovalGranted and ApprovalDenied.
func applyDecision(n *Session, e *Event, _ applying) error {
	d := e.Approval
	if d == nil {
		return Errorf(CodeInternal, "%s without payload", e.Type)
	}
	old, ok := n.Approvals[d.ID]
	if !ok {
		return Errorf(CodeInternal, "%s of unknown request %q", e.Type, d.ID)
	}
	reqs := maps.Clone(n.Approvals)
	r := *old
	dec := Decision{Actor: e.Actor, Comment: d.Comment, At: e.At()}
	if e.Type == ApprovalGranted {
		r.Grants = append(slices.Clone(r.Grants), dec)
	} else {
		r.Denial = &dec
	}
	reqs[d.ID] = &r
	n.Approvals = reqs
	return nil
}

func applyCommitCreated(n *Session, e *Event, _ applying) error {
	c := e.Commit
	if c == nil {
		return Errorf(CodeInternal, "%s without payload", e.Type)
	}
	n.Commits = append(slices.Clip(n.Commits), Commit{
		ID: c.ID, Position: c.Position, Root: n.Tree.Hash(), Message: c.Message, Author: c.Author,
		Summary: c.Summary, Approvals: e.Uses, Gate: maps.Clone(c.Gate), CreatedAt: e.At(),
	})
	n.onStored(func(s *Session, position uint64) { s.Commits[len(s.Commits)-1].At = position })
	return nil
}

func applyPolicyChanged(n *Session, e *Event, _ applying) error {
	n.Policy = maps.Clone(e.Policy)
	return nil
}

// settleApprovals runs after every event, once it is stored: it marks the
// approvals the event used (its Uses), marks requests stale when the
// content moved away from what they were pinned to, and derives the
// pending_approval status.
func settleApprovals(n *Session, e *Event, position uint64) {
	// The root is computed only when an open approval needs it: a tree's
	// hash is computed when first asked for, and a replay (Fold) asks only
	// for the roots it checks.
	var root *Hash
	var changed map[string]*ApprovalRequest
	touch := func(id string) *ApprovalRequest {
		if changed == nil {
			changed = maps.Clone(n.Approvals)
		}
		r := *changed[id]
		changed[id] = &r
		return &r
	}
	for _, id := range e.Uses {
		if r, ok := n.Approvals[id]; ok && r.UsedBy == 0 {
			touch(id).UsedBy = position
		}
	}
	for id, r := range n.Approvals {
		if r.Stale || r.UsedBy != 0 || r.Denial != nil {
			continue
		}
		if root == nil {
			h := n.Tree.Hash()
			root = &h
		}
		if r.Root != *root {
			touch(id).Stale = true
		}
	}
	if changed != nil {
		n.Approvals = changed
	}
	if n.Status == StatusActive || n.Status == StatusPendingApproval {
		n.Status = StatusActive
		for _, r := range n.Approvals {
			if r.State() == ApprovalPending {
				n.Status = StatusPendingApproval
				break
			}
		}
	}
}

func describeNoteAdded(e *Event) string {
	d := e.Note
	if d == nil {
		return ""
	}
	s := "note " + text(d.ID)
	switch {
	case d.Path != "" && d.LineStart > 0:
		s += " on " + describedPath(d.Path) + ":" + strconv.Itoa(d.LineStart) + "-" + strconv.Itoa(d.LineEnd)
	case d.Path != "":
		s += " on " + describedPath(d.Path)
	}
	if d.ReplyTo != "" {
		s += " (reply to " + text(d.ReplyTo) + ")"
	}
	return s + ": " + text(d.Body)
}

// describeNoteState shows NoteResolved and NoteReopened.
func describeNoteState(e *Event) string {
	if e.Note == nil {
		return ""
	}
	state := "reopened"
	if e.Type == NoteResolved {
		state = "resolved"
	}
	return "note " + text(e.Note.ID) + " " + state
}

func describeApprovalRequested(e *Event) string {
	d := e.Approval
	if d == nil {
		return ""
	}
	return "approval " + text(d.ID) + " requested for " + text(d.Reason) + " from group " + text(d.Group) +
		" (" + strconv.Itoa(d.Required) + " grant(s))"
}

// describeDecision shows ApprovalGranted and ApprovalDenied.
func describeDecision(e *Event) string {
	d := e.Approval
	if d == nil {
		return ""
	}
	s := "approval " + text(d.ID) + " denied"
	if e.Type == ApprovalGranted {
		s = "approval " + text(d.ID) + " granted"
	}
	if d.Comment != "" {
		s += ": " + text(d.Comment)
	}
	return s
}

func describeCommitCreated(e *Event) string {
	c := e.Commit
	if c == nil {
		return ""
	}
	s := "commit " + text(c.ID) + " of " + strconv.FormatUint(c.Position, 10)
	if c.Author != "" {
		s += " by " + text(c.Author)
	}
	return s + ": " + text(c.Message)
}

func describePolicyChanged(e *Event) string {
	if len(e.Policy) == 0 {
		return "policy cleared"
	}
	actions := slices.Sorted(maps.Keys(e.Policy))
	return "policy " + strings.Join(itemsOf(actions, func(a string) string { return text(a) + "=" + strconv.Itoa(e.Policy[a]) }), ",")
}
