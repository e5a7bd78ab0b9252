package client_test

import (
	"testing"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

// TestNewEventView_EveryType fails for an event type that the event view
// (NewEventView, the one rendering the API, the CLI and the web timeline
// show) does not render: every type needs a case here, and each case checks
// that the type's payload reaches the view.
func TestNewEventView_EveryType(t *testing.T) {
	ops := []domain.Op{{Kind: domain.OpWrite, Path: "a.txt"}}
	hasOps := func(v client.EventView) bool { return len(v.Ops) == 1 && v.Ops[0].Path == "a.txt" }
	none := func(client.EventView) bool { return true }
	cases := map[domain.EventType]struct {
		e      domain.Event
		render func(client.EventView) bool
	}{
		domain.SessionCreated: {domain.Event{Created: &domain.CreatedData{Owner: "o"}}, func(v client.EventView) bool { return v.Owner == "o" }},
		domain.SessionForked: {domain.Event{Created: &domain.CreatedData{Origin: domain.Origin{Parent: "P", Position: 3}}},
			func(v client.EventView) bool { return v.Origin != nil && v.Origin.Parent == "P" }},
		domain.FileWritten:       {domain.Event{Ops: ops}, hasOps},
		domain.DirectoryMade:     {domain.Event{Ops: ops}, hasOps},
		domain.PathRemoved:       {domain.Event{Ops: ops}, hasOps},
		domain.PathRenamed:       {domain.Event{Ops: ops}, hasOps},
		domain.SymlinkCreated:    {domain.Event{Ops: ops}, hasOps},
		domain.BatchApplied:      {domain.Event{Ops: ops}, hasOps},
		domain.XattrSet:          {domain.Event{Ops: ops}, hasOps},
		domain.XattrRemoved:      {domain.Event{Ops: ops}, hasOps},
		domain.ModeChanged:       {domain.Event{Ops: ops}, hasOps},
		domain.TagsSet:           {domain.Event{Tags: map[string]string{"k": "v"}}, func(v client.EventView) bool { return v.Tags["k"] == "v" }},
		domain.SessionArchived:   {domain.Event{}, none},
		domain.SessionDeleted:    {domain.Event{Uses: []string{"r1"}}, func(v client.EventView) bool { return len(v.Uses) == 1 }},
		domain.CheckpointCreated: {domain.Event{Checkpoint: &domain.CheckpointData{Name: "cp"}}, func(v client.EventView) bool { return v.Checkpoint != nil && v.Checkpoint.Name == "cp" }},
		domain.CheckpointDeleted: {domain.Event{Checkpoint: &domain.CheckpointData{Name: "cp"}}, func(v client.EventView) bool { return v.Checkpoint != nil && v.Checkpoint.Name == "cp" }},
		domain.SessionRestored:   {domain.Event{Restore: &domain.RestoreData{To: 7}}, func(v client.EventView) bool { return v.RestoredTo == 7 }},
		domain.NoteAdded:         {domain.Event{Note: &domain.NoteData{ID: "n"}}, func(v client.EventView) bool { return v.Note != nil && v.Note.ID == "n" }},
		domain.NoteResolved:      {domain.Event{Note: &domain.NoteData{ID: "n"}}, func(v client.EventView) bool { return v.Note != nil && v.Note.ID == "n" }},
		domain.NoteReopened:      {domain.Event{Note: &domain.NoteData{ID: "n"}}, func(v client.EventView) bool { return v.Note != nil && v.Note.ID == "n" }},
		domain.ApprovalRequested: {domain.Event{Approval: &domain.ApprovalData{ID: "r"}}, func(v client.EventView) bool { return v.Approval != nil && v.Approval.ID == "r" }},
		domain.ApprovalGranted:   {domain.Event{Approval: &domain.ApprovalData{ID: "r"}}, func(v client.EventView) bool { return v.Approval != nil && v.Approval.ID == "r" }},
		domain.ApprovalDenied:    {domain.Event{Approval: &domain.ApprovalData{ID: "r"}}, func(v client.EventView) bool { return v.Approval != nil && v.Approval.ID == "r" }},
		domain.CommitCreated:     {domain.Event{Commit: &domain.CommitData{ID: "c"}}, func(v client.EventView) bool { return v.Commit != nil && v.Commit.ID == "c" }},
		domain.PolicyChanged:     {domain.Event{Policy: domain.Policy{"commit": 1}}, func(v client.EventView) bool { return v.Policy["commit"] == 1 }},
		domain.CacheUpdated:      {domain.Event{Cache: []domain.CacheOp{{Op: "put", Key: "k"}}}, func(v client.EventView) bool { return len(v.Cache) == 1 && v.Cache[0].Key == "k" }},
		domain.LockAcquired:      {domain.Event{Lock: &domain.LockData{Path: "p"}}, func(v client.EventView) bool { return v.Lock != nil && v.Lock.Path == "p" }},
		domain.LockRenewed:       {domain.Event{Lock: &domain.LockData{Path: "p"}}, func(v client.EventView) bool { return v.Lock != nil && v.Lock.Path == "p" }},
		domain.LockReleased:      {domain.Event{Lock: &domain.LockData{Path: "p"}}, func(v client.EventView) bool { return v.Lock != nil && v.Lock.Path == "p" }},
		domain.HealthReported:    {domain.Event{Health: &domain.HealthData{Passed: 2}}, func(v client.EventView) bool { return v.Health != nil && v.Health.Passed == 2 }},
		domain.SessionMerged:     {domain.Event{Merge: &domain.MergeData{From: "F"}}, func(v client.EventView) bool { return v.Merge != nil && v.Merge.From == "F" }},
	}
	for _, typ := range domain.EventTypes {
		c, ok := cases[typ]
		if !ok {
			t.Errorf("event type %s: no rendering case; render its payload in client.NewEventView (client/events.go) and add a case here", typ)
			continue
		}
		e := c.e
		e.Type = typ
		v := client.NewEventView(1, domain.Hash{}, &e)
		if v.Type != string(typ) || !c.render(v) {
			t.Errorf("event type %s: NewEventView = %+v, its payload is not rendered", typ, v)
		}
		if v.Summary == "" || v.Summary != e.Summary() {
			t.Errorf("event type %s: view summary %q, want the event's one-line summary %q", typ, v.Summary, e.Summary())
		}
	}
	if len(cases) != len(domain.EventTypes) {
		t.Errorf("%d cases for %d event types: a case for a type that no longer exists", len(cases), len(domain.EventTypes))
	}
}
