package audit

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/strand-dev/strand/domain"
)

// Filter selects the events Log returns. Zero fields select everything.
type Filter struct {
	// Session limits the log to one session's own events.
	Session string
	Actor   string
	// Types keeps events of these types.
	Types []domain.EventType
	// Path keeps events whose operations touch the path: the path itself,
	// an entry below it, or a directory above it. It is a clean path.
	Path string
	// Since and Until bound the events' own time: Since <= time < Until.
	Since, Until time.Time
}

func (f *Filter) match(ev *domain.Event) bool {
	if f.Actor != "" && ev.Actor != f.Actor {
		return false
	}
	if len(f.Types) > 0 && !slices.Contains(f.Types, ev.Type) {
		return false
	}
	if !f.Since.IsZero() && ev.Time < f.Since.UnixNano() {
		return false
	}
	if !f.Until.IsZero() && ev.Time >= f.Until.UnixNano() {
		return false
	}
	if f.Path != "" {
		touched := false
		for _, op := range ev.Ops {
			if related(op.Path, f.Path) || (op.To != "" && related(op.To, f.Path)) {
				touched = true
				break
			}
		}
		if !touched {
			return false
		}
	}
	return true
}

// narrows reports whether the filter selects on an event's content, so that
// a message that does not decode cannot be said to match.
func (f *Filter) narrows() bool {
	return f.Actor != "" || len(f.Types) > 0 || f.Path != "" || !f.Since.IsZero() || !f.Until.IsZero()
}

// Entry is one event of the log, in the form the command line prints.
type Entry struct {
	Position   uint64            `json:"position"`
	Tenant     string            `json:"tenant"`
	Session    string            `json:"session"`
	Version    uint64            `json:"version,omitempty"`
	Type       string            `json:"type,omitempty"`
	Actor      string            `json:"actor,omitempty"`
	Time       time.Time         `json:"time"`
	ID         string            `json:"id,omitempty"`
	RequestID  string            `json:"request_id,omitempty"`
	Hash       string            `json:"hash"`
	Prev       string            `json:"prev,omitempty"`
	Root       string            `json:"root,omitempty"`
	Ops        []OpView          `json:"ops,omitempty"`
	Origin     *domain.Origin    `json:"origin,omitempty"`
	Tags       map[string]string `json:"tags,omitempty"`
	Untag      []string          `json:"untag,omitempty"`
	Checkpoint *CheckpointView   `json:"checkpoint,omitempty"`
	RestoredTo uint64            `json:"restored_to,omitempty"`
	Note       *NoteView         `json:"note,omitempty"`
	Approval   *ApprovalView     `json:"approval,omitempty"`
	Commit     *CommitView       `json:"commit,omitempty"`
	Merge      *MergeView        `json:"merge,omitempty"`
	Uses       []string          `json:"uses,omitempty"`
	// Summary is the payload in one line (domain.Event.Summary), as the
	// API's event view and --timeline show it.
	Summary string `json:"summary,omitempty"`
	// Error is set, and the event fields empty, when the message does not
	// decode.
	Error string `json:"error,omitempty"`
}

// OpView is one file operation of an event.
type OpView struct {
	Op        string `json:"op"`
	Path      string `json:"path"`
	To        string `json:"to,omitempty"`
	Target    string `json:"target,omitempty"`
	Hash      string `json:"hash,omitempty"`
	Size      int64  `json:"size,omitempty"`
	Mode      string `json:"mode,omitempty"`
	Recursive bool   `json:"recursive,omitempty"`
	// Name and Value are an extended attribute's (setxattr, rmxattr).
	Name  string `json:"name,omitempty"`
	Value []byte `json:"value,omitempty"`
}

// CheckpointView is the payload of a checkpoint event.
type CheckpointView struct {
	Name     string `json:"name"`
	Position uint64 `json:"position,omitempty"`
	Note     string `json:"note,omitempty"`
}

// NoteView is the payload of a note event.
type NoteView struct {
	ID      string `json:"id"`
	Path    string `json:"path,omitempty"`
	Lines   string `json:"lines,omitempty"`
	ReplyTo string `json:"reply_to,omitempty"`
}

// ApprovalView is the payload of an approval event.
type ApprovalView struct {
	ID      string `json:"id"`
	Reason  string `json:"reason,omitempty"`
	Group   string `json:"group,omitempty"`
	Comment string `json:"comment,omitempty"`
}

// MergeView says where a merge's content came from.
type MergeView struct {
	From         string `json:"from"`
	FromPosition uint64 `json:"from_position"`
	BaseSession  string `json:"base_session,omitempty"`
	BasePosition uint64 `json:"base_position,omitempty"`
	Strategy     string `json:"strategy,omitempty"`
}

// CommitView is the payload of a commit event.
type CommitView struct {
	ID       string `json:"id"`
	Position uint64 `json:"position"`
	Message  string `json:"message,omitempty"`
	Author   string `json:"author,omitempty"`
}

func hexOf(b []byte) string {
	if h, ok := domain.HashFromBytes(b); ok && !h.IsZero() {
		return h.String()
	}
	return ""
}

// entryOf makes the log entry of a stored event.
func entryOf(rec *Record, ev *domain.Event) Entry {
	e := Entry{
		Position: rec.Position, Tenant: rec.Tenant, Session: rec.Session, Version: ev.Version,
		Type: string(ev.Type), Actor: ev.Actor, Time: ev.At(), ID: ev.ID, RequestID: ev.RequestID,
		Hash: rec.Hash().String(), Prev: hexOf(ev.Prev), Root: hexOf(ev.Root),
		Tags: ev.Tags, Untag: ev.Untag, Uses: ev.Uses, Summary: ev.Summary(),
	}
	for _, op := range ev.Ops {
		v := OpView{Op: op.Kind, Path: op.Path, To: op.To, Target: op.Target, Hash: hexOf(op.Content), Size: op.Size,
			Recursive: op.Recursive, Name: op.Name, Value: op.Value}
		if op.Mode != 0 {
			v.Mode = fmt.Sprintf("%04o", op.Mode)
		}
		e.Ops = append(e.Ops, v)
	}
	if ev.Created != nil {
		o := ev.Created.Origin
		e.Origin = &o
		if len(ev.Created.Tags) > 0 {
			e.Tags = ev.Created.Tags
		}
	}
	if cp := ev.Checkpoint; cp != nil {
		e.Checkpoint = &CheckpointView{Name: cp.Name, Position: cp.Position, Note: cp.Note}
	}
	if ev.Restore != nil {
		e.RestoredTo = ev.Restore.To
	}
	if n := ev.Note; n != nil {
		e.Note = &NoteView{ID: n.ID, Path: n.Path, ReplyTo: n.ReplyTo}
		if n.LineStart > 0 {
			e.Note.Lines = strconv.Itoa(n.LineStart) + "-" + strconv.Itoa(n.LineEnd)
		}
	}
	if a := ev.Approval; a != nil {
		e.Approval = &ApprovalView{ID: a.ID, Reason: a.Reason, Group: a.Group, Comment: a.Comment}
	}
	if c := ev.Commit; c != nil {
		e.Commit = &CommitView{ID: c.ID, Position: c.Position, Message: c.Message, Author: c.Author}
	}
	if mg := ev.Merge; mg != nil {
		e.Merge = &MergeView{From: mg.From, FromPosition: mg.FromPosition, BaseSession: mg.BaseSession, BasePosition: mg.BasePosition, Strategy: mg.Strategy}
	}
	return e
}

// Log calls fn, in stream order, for every event of a tenant (or of one of
// its sessions) that the filter keeps. It reads the stream once and does
// not replay: use Verify to know that what it shows is intact.
func (r *Reader) Log(ctx context.Context, tenant string, f Filter, fn func(Entry) error) error {
	filter := TenantFilter(tenant)
	if f.Session != "" {
		filter = EventSubject(tenant, f.Session)
	}
	return r.scan(ctx, scanOpts{filters: []string{filter}}, func(rec *Record) error {
		ev, err := domain.DecodeEvent(rec.Body)
		if err != nil {
			if f.narrows() {
				return nil
			}
			return fn(Entry{Position: rec.Position, Tenant: rec.Tenant, Session: rec.Session, Time: rec.Time,
				Hash: rec.Hash().String(), Error: "body is not an event envelope: " + errText(err)})
		}
		if !f.match(ev) {
			return nil
		}
		return fn(entryOf(rec, ev))
	})
}

// within reports whether clean path p is strictly below clean path dir.
func within(p, dir string) bool {
	if dir == "" {
		return p != ""
	}
	return strings.HasPrefix(p, dir+"/")
}

// related reports whether an operation on a changes, or may change, b: it
// is b, below b, or above b.
func related(a, b string) bool { return a == b || within(a, b) || within(b, a) }
