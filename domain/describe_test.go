package domain_test

import (
	"strings"
	"testing"

	"github.com/strand-dev/strand/domain"
)

// TestEvent_SummaryEveryType fails for an event type whose payload does not
// reach its one-line summary (Event.Summary, what the API's event view,
// `strand events` and `strand audit log --timeline` show): every type needs
// a case here, and each case names what its summary must say.
func TestEvent_SummaryEveryType(t *testing.T) {
	ops := []domain.Op{{Kind: domain.OpWrite, Path: "src/a.txt", Size: 12, Mode: 0o644}}
	lock := &domain.LockData{Path: "src", Subtree: true, Owner: "ann", Expires: 1_700_000_000_000_000_000}
	cases := map[domain.EventType]struct {
		e    domain.Event
		want string
	}{
		domain.SessionCreated: {domain.Event{Created: &domain.CreatedData{Origin: domain.Origin{Source: "base", Revision: 3}, Owner: "ann", Tags: map[string]string{"b": "2", "a": "1"}}},
			"from source base@3; owner ann; tags a=1,b=2"},
		domain.SessionForked:     {domain.Event{Created: &domain.CreatedData{Origin: domain.Origin{Parent: "P", Position: 7}, Owner: "bob"}}, "fork of P@7; owner bob"},
		domain.FileWritten:       {domain.Event{Ops: ops}, "write src/a.txt (12 B, 0644)"},
		domain.DirectoryMade:     {domain.Event{Ops: []domain.Op{{Kind: domain.OpMkdir, Path: "d", Mode: 0o755}}}, "mkdir d"},
		domain.PathRemoved:       {domain.Event{Ops: []domain.Op{{Kind: domain.OpRemove, Path: "d", Recursive: true}}}, "remove d (recursive)"},
		domain.PathRenamed:       {domain.Event{Ops: []domain.Op{{Kind: domain.OpRename, Path: "a", To: "b"}}}, "rename a -> b"},
		domain.SymlinkCreated:    {domain.Event{Ops: []domain.Op{{Kind: domain.OpSymlink, Path: "l", Target: "../t"}}}, "symlink l -> ../t"},
		domain.BatchApplied:      {domain.Event{Ops: append(ops, domain.Op{Kind: domain.OpMkdir, Path: "d"})}, "write src/a.txt (12 B, 0644); mkdir d"},
		domain.XattrSet:          {domain.Event{Ops: []domain.Op{{Kind: domain.OpSetXattr, Path: "a", Name: "user.k"}}}, "setxattr a user.k"},
		domain.ModeChanged:       {domain.Event{Ops: []domain.Op{{Kind: domain.OpChmod, Path: "a", Mode: 0o750}}}, "chmod a (0750)"},
		domain.XattrRemoved:      {domain.Event{Ops: []domain.Op{{Kind: domain.OpRemoveXattr, Path: "a", Name: "user.k"}}}, "rmxattr a user.k"},
		domain.TagsSet:           {domain.Event{Tags: map[string]string{"k": "v"}, Untag: []string{"old"}}, "tags k=v; untag old"},
		domain.SessionArchived:   {domain.Event{}, "archived"},
		domain.SessionDeleted:    {domain.Event{Uses: []string{"r1"}}, "deleted; using approval r1"},
		domain.CheckpointCreated: {domain.Event{Checkpoint: &domain.CheckpointData{Name: "first", Position: 4, Note: "ok"}}, "checkpoint first -> 4: ok"},
		domain.CheckpointDeleted: {domain.Event{Checkpoint: &domain.CheckpointData{Name: "first"}}, "checkpoint first removed"},
		domain.SessionRestored:   {domain.Event{Restore: &domain.RestoreData{To: 7}}, "restored to 7"},
		domain.NoteAdded: {domain.Event{Note: &domain.NoteData{ID: "n1", Path: "a.go", LineStart: 3, LineEnd: 5, Body: "why?\nsecond line"}},
			"note n1 on a.go:3-5: why? ..."},
		domain.NoteResolved:      {domain.Event{Note: &domain.NoteData{ID: "n1"}}, "note n1 resolved"},
		domain.NoteReopened:      {domain.Event{Note: &domain.NoteData{ID: "n1"}}, "note n1 reopened"},
		domain.ApprovalRequested: {domain.Event{Approval: &domain.ApprovalData{ID: "r1", Reason: "commit", Group: "leads", Required: 2}}, "approval r1 requested for commit from group leads (2 grant(s))"},
		domain.ApprovalGranted:   {domain.Event{Approval: &domain.ApprovalData{ID: "r1", Comment: "fine"}}, "approval r1 granted: fine"},
		domain.ApprovalDenied:    {domain.Event{Approval: &domain.ApprovalData{ID: "r1"}}, "approval r1 denied"},
		domain.CommitCreated: {domain.Event{Commit: &domain.CommitData{ID: "c1", Position: 9, Author: "ann", Message: "fix the build"}, Uses: []string{"r1", "r2"}},
			"commit c1 of 9 by ann: fix the build; using approval r1, r2"},
		domain.PolicyChanged:  {domain.Event{Policy: domain.Policy{"merge": 2, "commit": 1}}, "policy commit=1,merge=2"},
		domain.CacheUpdated:   {domain.Event{Cache: []domain.CacheOp{{Op: "put", Key: "k1"}, {Op: "delete", Key: "k2"}}}, "cache put k1, delete k2"},
		domain.LockAcquired:   {domain.Event{Lock: lock}, "lock src (subtree) by ann until 2023-11-14T22:13:20Z"},
		domain.LockRenewed:    {domain.Event{Lock: &domain.LockData{Path: "src", Expires: lock.Expires}}, "lock src renewed until 2023-11-14T22:13:20Z"},
		domain.LockReleased:   {domain.Event{Lock: &domain.LockData{Path: "", Forced: true}}, "lock / released (forced)"},
		domain.HealthReported: {domain.Event{Health: &domain.HealthData{Passing: true, Passed: 2, Skipped: 1, Summary: "ok"}}, "health passing: 2 passed, 0 failed, 1 skipped: ok"},
		domain.SessionMerged: {domain.Event{Merge: &domain.MergeData{From: "F", FromPosition: 5, Strategy: "ours"}, Ops: ops},
			"merge of F@5 (ours); write src/a.txt (12 B, 0644)"},
	}
	for _, typ := range domain.EventTypes {
		c, ok := cases[typ]
		if !ok {
			t.Errorf("event type %s: no summary case; give it a describe function in its row of the event table (domain/event.go) and a case here", typ)
			continue
		}
		e := c.e
		e.Type = typ
		if got := e.Summary(); got != c.want {
			t.Errorf("event type %s: Summary() = %q, want %q", typ, got, c.want)
		}
	}
	if len(cases) != len(domain.EventTypes) {
		t.Errorf("%d cases for %d event types: a case for a type that no longer exists", len(cases), len(domain.EventTypes))
	}
	if s := (&domain.Event{Type: "Bogus"}).Summary(); s != "" {
		t.Errorf("Summary of an unknown type = %q, want empty", s)
	}
}

// TestEvent_SummaryOneLine: whatever free text an event carries, its
// summary is one short line.
func TestEvent_SummaryOneLine(t *testing.T) {
	long := strings.Repeat("é", 500)
	var ops []domain.Op
	for i := range 40 {
		ops = append(ops, domain.Op{Kind: domain.OpMkdir, Path: "d" + strings.Repeat("x", i)})
	}
	for _, e := range []domain.Event{
		{Type: domain.CommitCreated, Commit: &domain.CommitData{ID: "c", Message: "a\tb\x00c\r\nmore"}},
		{Type: domain.NoteAdded, Note: &domain.NoteData{ID: "n", Body: long}},
		{Type: domain.BatchApplied, Ops: ops},
		{Type: domain.TagsSet, Tags: map[string]string{"k": "line\nbreak"}},
	} {
		s := e.Summary()
		if strings.ContainsAny(s, "\r\n\t\x00") || len([]rune(s)) > 400 {
			t.Errorf("%s: Summary() = %q: not one short line", e.Type, s)
		}
	}
	batch := (&domain.Event{Type: domain.BatchApplied, Ops: ops}).Summary()
	if !strings.HasSuffix(batch, "; and 35 more") {
		t.Errorf("batch of 40 summarised as %q, want five operations and 'and 35 more'", batch)
	}
	if got := (&domain.Event{Type: domain.CommitCreated, Commit: &domain.CommitData{ID: "c", Message: "a\tb\x00c\r\nmore"}}).Summary(); got != "commit c of 0: a b c ..." {
		t.Errorf("commit summary = %q", got)
	}
}
