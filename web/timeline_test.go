package web

import (
	"testing"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

// TestEventLabels holds the timeline's labels to domain's event types: a
// new type must get a reviewer's name (its label in domain's event table),
// and no milestone may name a type that does not exist.
func TestEventLabels(t *testing.T) {
	known := map[string]bool{}
	for _, typ := range domain.EventTypes {
		known[string(typ)] = true
		if l := evLabel(client.EventView{Type: string(typ)}); l == "" || l == string(typ) {
			t.Errorf("event type %s has no label in domain's event table (timeline shows %q)", typ, l)
		}
	}
	for _, typ := range milestones {
		if !known[typ] {
			t.Errorf("milestones names %s, which is not an event type", typ)
		}
	}
}

func TestParseUnified(t *testing.T) {
	u := "--- a/f.go\n+++ b/f.go\n@@ -2,3 +2,4 @@\n a\n-b\n+B\n+C\n c\n\\ No newline at end of file\n"
	hunks, msg := parseUnified("f.go", u)
	if msg != "" || len(hunks) != 1 {
		t.Fatalf("got %d hunks, message %q; want 1 hunk", len(hunks), msg)
	}
	type row struct {
		kind     string
		old, new int
	}
	want := []row{{"ctx", 2, 2}, {"del", 3, 0}, {"add", 0, 3}, {"add", 0, 4}, {"ctx", 4, 5}}
	if len(hunks[0].Rows) != len(want) {
		t.Fatalf("got %d rows, want %d", len(hunks[0].Rows), len(want))
	}
	for i, w := range want {
		r := hunks[0].Rows[i]
		if (row{r.Kind, r.Old, r.New}) != w {
			t.Errorf("row %d = %s %d %d, want %+v", i, r.Kind, r.Old, r.New, w)
		}
	}
	if _, msg := parseUnified("b.bin", "--- a/b.bin\n+++ b/b.bin\nBinary files differ\n"); msg != "Binary files differ" {
		t.Errorf("binary diff message = %q", msg)
	}
}
