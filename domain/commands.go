package domain

import (
	"reflect"
	"slices"
)

// RetryKind says how a retried request of a command is recognised and
// answered (docs/api.md, section 1.8).
type RetryKind uint8

// The retry kinds.
const (
	// RetrySession: the command changes an existing session. Its request id
	// is the session's (message id <tenant>.<session>.<request_id>); a retry
	// is answered with the session at the event the first attempt stored,
	// provided that event is of a type the command produces (Produces). The
	// session must exist, must not be deleted, and must be at the expected
	// position when one is given.
	RetrySession RetryKind = iota + 1
	// RetryNewSession: the command starts a session. Its request id is the
	// tenant's (<tenant>.new.<request_id>); a retry is answered with the
	// session the first attempt created, never a second one.
	RetryNewSession
)

// commandTable is every command, once: its decide function, the event types
// it can produce and its retry kind. Execute decides through it, Produces is
// read from it, and TestCommandTable_EveryCommand fails for a type with a
// command method that has no row here.
var commandTable = []commandRow{
	starts(decideCreate, func(c CreateSession) *Session { return &Session{Tree: c.Base} }, SessionCreated),
	starts(decideFork, func(c ForkSession) *Session { return c.Parent }, SessionForked),

	changes(decideFiles, FileWritten, DirectoryMade, PathRemoved, PathRenamed, SymlinkCreated, BatchApplied, XattrSet, XattrRemoved, ModeChanged),
	changes(decideTags, TagsSet),
	changes(decideArchive, SessionArchived),
	changes(decideDelete, SessionDeleted),
	changes(decideCreateCheckpoint, CheckpointCreated),
	changes(decideDeleteCheckpoint, CheckpointDeleted),
	changes(decideRestore, SessionRestored),

	changes(decideAnnotate, NoteAdded),
	changes(decideResolveNote, NoteResolved),
	changes(decideReopenNote, NoteReopened),
	changes(decideRequest, ApprovalRequested),
	changes(decideGrant, ApprovalGranted),
	changes(decideDeny, ApprovalDenied),
	changes(decideCommit, CommitCreated),
	changes(decidePolicy, PolicyChanged),
	changes(decideMerge, SessionMerged),

	changes(decideCache, CacheUpdated),
	changes(decideAcquireLock, LockAcquired),
	changes(decideRenewLock, LockRenewed),
	changes(decideReleaseLock, LockReleased),
	changes(decideHealth, HealthReported),
}

// commandRow is one row of the command table.
type commandRow struct {
	cmd      reflect.Type
	decide   func(s *Session, cmd Command, m Meta, past Past) (*Event, error)
	produces []EventType
	retry    RetryKind
	// base, for a command that starts a session, is the state its first
	// event applies to (nil: none).
	base func(cmd Command) *Session
}

// changes is the row of a command that changes an existing session.
func changes[C Command](decide func(*Session, C, Meta, Past) (*Event, error), produces ...EventType) commandRow {
	return commandRow{
		cmd:      reflect.TypeFor[C](),
		decide:   func(s *Session, cmd Command, m Meta, past Past) (*Event, error) { return decide(s, cmd.(C), m, past) },
		produces: produces,
		retry:    RetrySession,
	}
}

// starts is the row of a command that starts a session; base gives the
// state its first event applies to.
func starts[C Command](decide func(*Session, C, Meta, Past) (*Event, error), base func(C) *Session, produces ...EventType) commandRow {
	r := changes(decide, produces...)
	r.retry = RetryNewSession
	r.base = func(cmd Command) *Session { return base(cmd.(C)) }
	return r
}

var commandIndex = func() map[reflect.Type]*commandRow {
	m := make(map[reflect.Type]*commandRow, len(commandTable))
	for i := range commandTable {
		r := &commandTable[i]
		if _, dup := m[r.cmd]; dup {
			panic("domain: command " + r.cmd.Name() + " has two rows in the command table")
		}
		m[r.cmd] = r
	}
	return m
}()

func commandOf(cmd Command) (*commandRow, bool) {
	if cmd == nil {
		return nil, false
	}
	r, ok := commandIndex[reflect.TypeOf(cmd)]
	return r, ok
}

// Produces reports whether a command could have produced an event of type
// t: a retried request id must name the same kind of request, or its answer
// would be another request's. A command outside the table produces nothing.
func Produces(cmd Command, t EventType) bool {
	r, ok := commandOf(cmd)
	return ok && slices.Contains(r.produces, t)
}

// RetryKindOf returns how a retry of the command is recognised (0 for a
// value that is not a command of the table).
func RetryKindOf(cmd Command) RetryKind {
	if r, ok := commandOf(cmd); ok {
		return r.retry
	}
	return 0
}

// Execute decides a command against the current state and returns the event
// to append and the state after it (to be completed with Commit once the
// event is stored). A refused command returns an *Error and no event.
func Execute(s *Session, cmd Command, m Meta, past Past) (*Event, *Session, error) {
	if len(m.Actor) > MaxActorBytes {
		return nil, nil, Errorf(CodeInvalidArgument, "actor is longer than %d bytes", MaxActorBytes)
	}
	r, ok := commandOf(cmd)
	if !ok {
		return nil, nil, Errorf(CodeInvalidArgument, "unknown command %T", cmd)
	}
	base := s
	if r.retry == RetryNewSession {
		base = r.base(cmd)
	} else if err := changeable(s, m); err != nil {
		return nil, nil, err
	}
	e, err := r.decide(s, cmd, m, past)
	if err != nil {
		return nil, nil, err
	}
	n, err := applyDecided(base, e, past)
	if err != nil {
		return nil, nil, err
	}
	e.Root = n.Tree.Hash().Bytes()
	if e.Root == nil {
		e.Root = make([]byte, len(Hash{}))
	}
	return e, n, nil
}

// changeable checks what every command that changes a session needs: the
// session exists, is not deleted, and is where the caller expects it.
func changeable(s *Session, m Meta) error {
	if s == nil {
		return ErrSessionNotFound
	}
	if s.Status == StatusDeleted {
		return ErrSessionDeleted
	}
	if m.ExpectedPosition != 0 && s.Position != m.ExpectedPosition {
		return Errorf(CodeConflict, "session is at position %d, not the expected %d", s.Position, m.ExpectedPosition)
	}
	return nil
}
