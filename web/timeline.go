package web

import (
	"fmt"
	"strings"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

// evLabel names an event in a reviewer's words: its type's label
// (domain.EventType.Label), and "Forked" for a session created as a fork.
func evLabel(e client.EventView) string {
	if e.Type == string(domain.SessionCreated) && e.Origin != nil && e.Origin.Parent != "" {
		return domain.SessionForked.Label()
	}
	return domain.EventType(e.Type).Label()
}

// evDetail is the one line under an event in the timeline.
func evDetail(e client.EventView) string {
	switch {
	case e.Commit != nil:
		return fmt.Sprintf("“%s” by %s", e.Commit.Message, e.Commit.Author)
	case e.Checkpoint != nil:
		return strings.TrimSpace(e.Checkpoint.Name + " → position " + fmt.Sprint(e.Checkpoint.Position) + " " + e.Checkpoint.Note)
	case e.RestoredTo != 0:
		return fmt.Sprintf("back to position %d", e.RestoredTo)
	case e.Origin != nil && e.Origin.Parent != "":
		return fmt.Sprintf("from %s at %d", shortID(e.Origin.Parent), e.Origin.Position)
	case e.Origin != nil && e.Origin.Source != "":
		return fmt.Sprintf("from source %s@%d", e.Origin.Source, e.Origin.Revision)
	case e.Merge != nil:
		return fmt.Sprintf("from %s at %d", shortID(e.Merge.From), e.Merge.FromPosition)
	case e.Approval != nil && e.Approval.Reason != "":
		return e.Approval.Reason + groupSuffix(e.Approval.Group)
	case e.Approval != nil && e.Approval.Comment != "":
		return "“" + e.Approval.Comment + "”"
	case e.Health != nil:
		return fmt.Sprintf("%s: %d passed, %d failed", passing(e.Health.Passing), e.Health.Passed, e.Health.Failed)
	case e.Note != nil && e.Note.Body != "":
		return noteWhere(e.Note) + e.Note.Body
	case len(e.Ops) == 1:
		return e.Ops[0].Op + " " + e.Ops[0].Path
	case len(e.Ops) > 1:
		return fmt.Sprintf("%d changes", len(e.Ops))
	}
	return ""
}

func groupSuffix(g string) string {
	if g == "" {
		return ""
	}
	return " · group " + g
}

func passing(ok bool) string {
	if ok {
		return "passing"
	}
	return "failing"
}

func noteWhere(n *client.NoteEventView) string {
	switch {
	case n.Path == "":
		return ""
	case n.LineStart == 0:
		return n.Path + ": "
	case n.LineStart == n.LineEnd:
		return fmt.Sprintf("%s:%d: ", n.Path, n.LineStart)
	}
	return fmt.Sprintf("%s:%d-%d: ", n.Path, n.LineStart, n.LineEnd)
}
