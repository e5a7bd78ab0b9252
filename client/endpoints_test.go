package client_test

import (
	"reflect"
	"testing"

	"github.com/strand-dev/strand/client"
)

// TestEndpoints_Table checks the endpoint table's shape: every row names an
// area and body types, no path twice, and the rows of one area together
// (the table is ordered by area, so the service registers, and docs and
// routes list, an area's endpoints side by side).
func TestEndpoints_Table(t *testing.T) {
	seen := map[string]bool{}
	done := map[string]bool{}
	prev := ""
	for _, ep := range client.Endpoints {
		p := ep.Path()
		if ep.Area == "" || ep.Request == nil || ep.Reply == nil {
			t.Errorf("endpoint %q: area, request and reply types are required", p)
		}
		for _, v := range []any{ep.Request, ep.Reply} {
			if v != nil && reflect.TypeOf(v).Kind() != reflect.Struct {
				t.Errorf("endpoint %s: body type %T is not a struct", p, v)
			}
		}
		if seen[p] {
			t.Errorf("endpoint %s: in the table twice", p)
		}
		seen[p] = true
		if ep.Area != prev {
			if done[ep.Area] {
				t.Errorf("endpoint %s: area %s appears again after %s; keep an area's rows together", p, ep.Area, prev)
			}
			done[prev] = true
			prev = ep.Area
		}
		if got := client.Lookup(p); got != ep {
			t.Errorf("Lookup(%q) = %v, want the row itself", p, got)
		}
	}
}

// TestEndpoints_Effects pins the limits classification: the endpoints that
// add sessions and those that write content are checked against the
// tenant's quotas, so a change here changes who is refused.
func TestEndpoints_Effects(t *testing.T) {
	want := map[client.Effect][]string{
		client.AddsSession: {"session.create", "session.fork"},
		client.WritesContent: {"fs.write", "fs.upload", "fs.batch", "fs.sync", "merge",
			"cache.put", "cache.cas", "cache.batch_put", "source.upload", "source.import"},
	}
	for effect, paths := range want {
		got := map[string]bool{}
		for _, ep := range client.Endpoints {
			if ep.Effect == effect {
				got[ep.Path()] = true
			}
		}
		for _, p := range paths {
			if !got[p] {
				t.Errorf("endpoint %s: effect is not %d", p, effect)
			}
			delete(got, p)
		}
		for p := range got {
			t.Errorf("endpoint %s: effect %d, not expected", p, effect)
		}
	}
}
