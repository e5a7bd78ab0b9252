package client

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
)

// Event page sizes.
const (
	DefaultEventsLimit = 100
	MaxEventsLimit     = 1000
)

// OpView is one file operation of an event.
type OpView struct {
	Op        string `json:"op"`
	Path      string `json:"path"`
	To        string `json:"to,omitempty"`
	Target    string `json:"target,omitempty"`
	Hash      string `json:"hash,omitempty"`
	Size      int64  `json:"size,omitempty"`
	Mode      uint32 `json:"mode,omitempty"`
	Recursive bool   `json:"recursive,omitempty"`
	// Name and Value: setxattr and rmxattr.
	Name  string `json:"name,omitempty"`
	Value []byte `json:"value,omitempty"`
}

// EventView is an event as shown to callers.
type EventView struct {
	Position   uint64            `json:"position"`
	ID         string            `json:"id"`
	Type       string            `json:"type"`
	Tenant     string            `json:"tenant"`
	Session    string            `json:"session"`
	Actor      string            `json:"actor,omitempty"`
	Time       time.Time         `json:"time"`
	RequestID  string            `json:"request_id,omitempty"`
	Version    uint64            `json:"version"`
	Hash       string            `json:"hash"`
	Prev       string            `json:"prev,omitempty"`
	Root       string            `json:"root"`
	Ops        []OpView          `json:"ops,omitempty"`
	Origin     *OriginView       `json:"origin,omitempty"`
	Owner      string            `json:"owner,omitempty"`
	Tags       map[string]string `json:"tags,omitempty"`
	Untag      []string          `json:"untag,omitempty"`
	Checkpoint *CheckpointView   `json:"checkpoint,omitempty"`
	RestoredTo uint64            `json:"restored_to,omitempty"`
	// The payloads of the other events. Hashes are hex, times RFC 3339,
	// details JSON, as everywhere else in the API.
	Note     *NoteEventView     `json:"note,omitempty"`
	Approval *ApprovalEventView `json:"approval,omitempty"`
	Commit   *domain.CommitData `json:"commit,omitempty"`
	Policy   domain.Policy      `json:"policy,omitempty"`
	Uses     []string           `json:"uses,omitempty"`
	Cache    []CacheOpView      `json:"cache,omitempty"`
	Lock     *LockEventView     `json:"lock,omitempty"`
	Health   *HealthEventView   `json:"health,omitempty"`
	Merge    *MergeEventView    `json:"merge,omitempty"`
	// Summary is the payload in one line of text (domain.Event.Summary):
	// what `strand events` and `strand audit log --timeline` print.
	Summary string `json:"summary,omitempty"`
}

// NoteEventView is the payload of NoteAdded, NoteResolved and NoteReopened.
type NoteEventView struct {
	ID        string `json:"id"`
	Body      string `json:"body,omitempty"`
	Path      string `json:"path,omitempty"`
	LineStart int    `json:"line_start,omitempty"`
	LineEnd   int    `json:"line_end,omitempty"`
	Hash      string `json:"hash,omitempty"`
	ReplyTo   string `json:"reply_to,omitempty"`
}

// ApprovalEventView is the payload of the approval events.
type ApprovalEventView struct {
	ID       string          `json:"id"`
	Reason   string          `json:"reason,omitempty"`
	Group    string          `json:"group,omitempty"`
	Details  json.RawMessage `json:"details,omitempty"`
	Root     string          `json:"root,omitempty"`
	Required int             `json:"required,omitempty"`
	Comment  string          `json:"comment,omitempty"`
}

// CacheOpView is one change of a CacheUpdated event.
type CacheOpView struct {
	Op        string     `json:"op"`
	Key       string     `json:"key"`
	Value     []byte     `json:"value,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// LockEventView is the payload of the lease events.
type LockEventView struct {
	Path      string     `json:"path"`
	Subtree   bool       `json:"subtree,omitempty"`
	Owner     string     `json:"owner,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	Forced    bool       `json:"forced,omitempty"`
	TokenHash string     `json:"token_hash,omitempty"`
}

// HealthEventView is the payload of HealthReported.
type HealthEventView struct {
	Passing bool            `json:"passing"`
	Passed  int             `json:"passed"`
	Failed  int             `json:"failed"`
	Skipped int             `json:"skipped"`
	Summary string          `json:"summary,omitempty"`
	Details json.RawMessage `json:"details,omitempty"`
}

// MergeEventView is the payload of SessionMerged.
type MergeEventView struct {
	From         string            `json:"from"`
	FromPosition uint64            `json:"from_position"`
	BaseSession  string            `json:"base_session,omitempty"`
	BasePosition uint64            `json:"base_position,omitempty"`
	BaseSource   string            `json:"base_source,omitempty"`
	BaseRevision uint64            `json:"base_revision,omitempty"`
	Strategy     string            `json:"strategy,omitempty"`
	Resolved     map[string]string `json:"resolved,omitempty"`
}

// Watch calls fn for each event of a session from position from on: first
// the stored history (events.list pages), then the live tail, without gaps
// or repeats. It returns when ctx ends, fn returns an error, or the
// connection is closed for good.
//
// It rides through a lost connection and a restarting service: when the
// connection comes back (nats.go resubscribes the live tail first) it lists
// what was stored meanwhile from the last position it delivered, and a
// listing refused as unavailable (no service answering yet, a timeout) is
// tried again with backoff. Live events the listing already delivered are
// recognised by their version and skipped, so a follow neither misses nor
// repeats an event.
func (c *Client) Watch(ctx context.Context, session string, from uint64, fn func(EventView) error) error {
	live := make(chan *nats.Msg, 1024)
	sub, err := c.nc.ChanSubscribe(names.WatchSubject(c.Tenant, session), live)
	if err != nil {
		return err
	}
	defer sub.Unsubscribe() //nolint:errcheck // best effort on the way out
	status := c.nc.StatusChanged(nats.CONNECTED, nats.CLOSED)
	defer c.nc.RemoveStatusListener(status)
	w := &watch{c: c, session: session, next: from, fn: fn}
	if err := w.catchUp(ctx, 0); err != nil {
		return err
	}
	// From here on the session is known to exist and a service to answer:
	// an unavailable listing is a restart or a failover to ride through.
	w.retry = true
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case s := <-status:
			if s == nats.CLOSED {
				return fmt.Errorf("watch %s: %w", session, nats.ErrConnectionClosed)
			}
			// Reconnected: what was stored while the connection was down
			// never reached the live tail.
			if err := w.catchUp(ctx, 0); err != nil {
				return err
			}
		case m := <-live:
			if err := w.live(ctx, m); err != nil {
				return err
			}
		}
	}
}

// watch is the state of one Watch: the next position to deliver and the
// version of the last event delivered (positions of one session are not
// contiguous, they are the stream's sequences; its versions are, so they
// tell what was missed).
type watch struct {
	c             *Client
	session       string
	next, version uint64
	fn            func(EventView) error
	// retry: list again while the answer is unavailable.
	retry bool
}

func (w *watch) deliver(e EventView) error {
	if e.Position < w.next || (w.version != 0 && e.Version <= w.version) {
		return nil // delivered already
	}
	w.next, w.version = e.Position+1, e.Version
	return w.fn(e)
}

// live delivers an event of the live tail, listing first what came before
// it and was not delivered (missed by a slow subscriber, or before the
// first delivery, when no version tells whether anything was missed).
func (w *watch) live(ctx context.Context, m *nats.Msg) error {
	ev, err := domain.DecodeEvent(m.Data)
	if err != nil {
		return err
	}
	seq, err := strconv.ParseUint(m.Header.Get(names.HeaderSequence), 10, 64)
	if err != nil {
		return fmt.Errorf("watch %s: bad Nats-Sequence header", w.session)
	}
	if seq < w.next || (w.version != 0 && ev.Version <= w.version) {
		return nil // delivered already
	}
	if w.version == 0 || ev.Version > w.version+1 {
		if err := w.catchUp(ctx, seq); err != nil {
			return err
		}
	}
	return w.deliver(NewEventView(seq, domain.Sum(m.Data), ev))
}

// catchUp lists and delivers the stored events from w.next on, up to (not
// including) position until, or to the head when until is 0.
func (w *watch) catchUp(ctx context.Context, until uint64) error {
	for {
		req := EventsRequest{Session: w.session, From: w.next, Limit: MaxEventsLimit}
		if until != 0 {
			req.At = AtPosition(until)
		}
		page, err := w.list(ctx, req)
		if err != nil {
			return err
		}
		for _, e := range page.Events {
			if until != 0 && e.Position >= until {
				return nil
			}
			if err := w.deliver(e); err != nil {
				return err
			}
		}
		if page.NextFrom == 0 {
			return nil
		}
	}
}

// list is Events, tried again with backoff while the answer is unavailable
// (the connection is down, no service answers yet, a stream leader is being
// elected) once w.retry is set, until ctx ends. Each such attempt is
// bounded, first by watchAttempt and then by twice the last bound (up to
// the client's Timeout): a listing sent just as a connection came back
// whose answer is lost is asked again seconds later, not after the whole
// request timeout, while the follow shows nothing.
func (w *watch) list(ctx context.Context, req EventsRequest) (EventsReply, error) {
	pause := 50 * time.Millisecond
	bound := watchAttempt
	for {
		actx, cancel := ctx, context.CancelFunc(func() {})
		if w.retry && (w.c.Timeout <= 0 || bound < w.c.Timeout) {
			actx, cancel = context.WithTimeout(ctx, bound)
			bound *= 2
		}
		page, err := w.c.Events(actx, req)
		cancel()
		if err == nil || !w.retry || ErrorCode(err) != domain.CodeUnavailable || ctx.Err() != nil {
			return page, err
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return page, ctx.Err()
		case <-t.C:
		}
		pause = min(2*pause, 2*time.Second)
	}
}

// watchAttempt is the first bound of a listing attempt once a watch is
// riding through an outage (watch.list).
const watchAttempt = 3 * time.Second

func hexOf(b []byte) string {
	if h, ok := domain.HashFromBytes(b); ok && len(b) > 0 {
		return h.String()
	}
	return ""
}

func nanosTime(n int64) *time.Time {
	if n == 0 {
		return nil
	}
	t := time.Unix(0, n).UTC()
	return &t
}

func payloadViews(v *EventView, e *domain.Event) {
	if n := e.Note; n != nil {
		v.Note = &NoteEventView{ID: n.ID, Body: n.Body, Path: n.Path, LineStart: n.LineStart, LineEnd: n.LineEnd, Hash: hexOf(n.Content), ReplyTo: n.ReplyTo}
	}
	if a := e.Approval; a != nil {
		v.Approval = &ApprovalEventView{ID: a.ID, Reason: a.Reason, Group: a.Group, Details: json.RawMessage(a.Details), Root: hexOf(a.Root), Required: a.Required, Comment: a.Comment}
	}
	for _, op := range e.Cache {
		v.Cache = append(v.Cache, CacheOpView{Op: op.Op, Key: op.Key, Value: op.Value, ExpiresAt: nanosTime(op.Expires)})
	}
	if l := e.Lock; l != nil {
		v.Lock = &LockEventView{Path: l.Path, Subtree: l.Subtree, Owner: l.Owner, ExpiresAt: nanosTime(l.Expires), Forced: l.Forced, TokenHash: hexOf(l.TokenHash)}
	}
	if h := e.Health; h != nil {
		v.Health = &HealthEventView{Passing: h.Passing, Passed: h.Passed, Failed: h.Failed, Skipped: h.Skipped, Summary: h.Summary, Details: json.RawMessage(h.Details)}
	}
	if m := e.Merge; m != nil {
		v.Merge = &MergeEventView{From: m.From, FromPosition: m.FromPosition, BaseSession: m.BaseSession, BasePosition: m.BasePosition,
			BaseSource: m.BaseSource, BaseRevision: m.BaseRevision, Strategy: m.Strategy, Resolved: m.Resolved}
	}
	v.Commit, v.Policy, v.Uses = e.Commit, e.Policy, e.Uses
}

// NewEventView is how every caller sees an event: the one rendering of
// each event type's payload, shared by the API, the CLI and the audit log.
func NewEventView(position uint64, hash domain.Hash, e *domain.Event) EventView {
	v := EventView{
		Position: position, ID: e.ID, Type: string(e.Type), Tenant: e.Tenant, Session: e.Session,
		Actor: e.Actor, Time: e.At(), RequestID: e.RequestID, Version: e.Version,
		Hash: hash.String(), Tags: e.Tags, Untag: e.Untag, Summary: e.Summary(),
	}
	if h, ok := domain.HashFromBytes(e.Prev); ok && !h.IsZero() {
		v.Prev = h.String()
	}
	if h, ok := domain.HashFromBytes(e.Root); ok {
		v.Root = h.String()
	}
	for _, op := range e.Ops {
		ov := OpView{Op: op.Kind, Path: op.Path, To: op.To, Target: op.Target, Size: op.Size, Mode: op.Mode, Recursive: op.Recursive, Name: op.Name, Value: op.Value}
		if h, ok := domain.HashFromBytes(op.Content); ok && len(op.Content) > 0 {
			ov.Hash = h.String()
		}
		v.Ops = append(v.Ops, ov)
	}
	if c := e.Created; c != nil {
		v.Owner = c.Owner
		v.Tags = c.Tags
		if o := c.Origin; o != (domain.Origin{}) {
			v.Origin = &OriginView{Source: o.Source, Revision: o.Revision, Parent: o.Parent, Position: o.Position}
		}
	}
	if cp := e.Checkpoint; cp != nil {
		v.Checkpoint = &CheckpointView{Name: cp.Name, Position: cp.Position, Note: cp.Note, Actor: e.Actor, CreatedAt: e.At()}
	}
	if r := e.Restore; r != nil {
		v.RestoredTo = r.To
	}
	payloadViews(&v, e)
	return v
}
