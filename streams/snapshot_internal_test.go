package streams

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/strand-dev/strand/domain"
)

// TestSnapshot_RoundTrip checks that a snapshot keeps every part of a
// session's state, so that loading from it answers exactly as a replay.
func TestSnapshot_RoundTrip(t *testing.T) {
	clock := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var s *domain.Session
	pos := uint64(0)
	states := map[uint64]*domain.Session{}
	do := func(actor string, cmd domain.Command) {
		t.Helper()
		pos++
		m := domain.Meta{EventID: fmt.Sprint("e", pos), Actor: actor, Time: clock.Add(time.Duration(pos) * time.Second), RequestID: fmt.Sprint("r", pos)}
		e, n, err := domain.Execute(s, cmd, m, func(p uint64) (*domain.Session, error) { return states[p], nil })
		if err != nil {
			t.Fatalf("%T: %v", cmd, err)
		}
		body, _ := e.Encode()
		n.Commit(e, pos, domain.Sum(body))
		s, states[pos] = n, n
	}
	h := domain.Sum([]byte("x"))
	do("a", domain.CreateSession{ID: "S1", Tenant: "acme", Owner: "a", Tags: map[string]string{"k": "v"}, Policy: domain.Policy{"commit": 1}})
	do("a", domain.ChangeFiles{Ops: []domain.FileOp{{Kind: domain.OpWrite, Path: "d/f", Content: h, Size: 1}, {Kind: domain.OpSymlink, Path: "l", Target: "d/f"}}, Batch: true})
	do("a", domain.ChangeFiles{Ops: []domain.FileOp{{Kind: domain.OpSetXattr, Path: "d/f", Name: "user.a", Value: []byte("1")}}})
	do("a", domain.CreateCheckpoint{Name: "cp", Note: "n"})
	do("a", domain.Annotate{ID: "n1", Body: "b", Path: "d/f", LineStart: 1, LineEnd: 1})
	do("a", domain.RequestApproval{ID: "q1", Reason: "commit", Group: "g", Details: []byte(`{"x":1}`)})
	do("b", domain.GrantApproval{ID: "q1", Comment: "ok"})
	do("a", domain.CreateCommit{ID: "c1", Message: "m", Summary: &domain.Summary{Added: 1}})
	do("a", domain.UpdateCache{Ops: []domain.CacheOp{{Op: domain.CachePut, Key: "k1", Value: []byte("v")}, {Op: domain.CachePut, Key: "k2", Value: []byte("w"), Expires: clock.Add(time.Hour).UnixNano()}}})
	do("a", domain.AcquireLock{Path: "d", Subtree: true, Token: "0123456789abcdef", TTL: time.Hour})
	do("a", domain.ReportHealth{Data: domain.HealthData{Passing: true, Passed: 2, Summary: "ok", Details: []byte(`{}`)}})

	body, err := encodeSnapshot(s)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeSnapshot(body)
	if err != nil {
		t.Fatal(err)
	}
	if got.Tree.Hash() != s.Tree.Hash() {
		t.Fatalf("tree: %s, want %s", got.Tree.Hash(), s.Tree.Hash())
	}
	gi, gp := got.RecentRequestList()
	wi, wp := s.RecentRequestList()
	if !reflect.DeepEqual(gi, wi) || !reflect.DeepEqual(gp, wp) {
		t.Fatalf("recent requests: %v %v, want %v %v", gi, gp, wi, wp)
	}
	cacheOf := func(x *domain.Session) map[string]domain.CacheEntry {
		out := map[string]domain.CacheEntry{}
		x.Cache.All(func(k string, e domain.CacheEntry) bool { out[k] = e; return true })
		return out
	}
	for name, pair := range map[string][2]any{
		"meta":        {[]any{got.ID, got.Tenant, got.Owner, got.Status, got.Position, got.Start, got.Version, got.LastHash, got.CreatedAt, got.UpdatedAt, got.Tags, got.Origin}, []any{s.ID, s.Tenant, s.Owner, s.Status, s.Position, s.Start, s.Version, s.LastHash, s.CreatedAt, s.UpdatedAt, s.Tags, s.Origin}},
		"checkpoints": {slices.Collect(got.Checkpoints.All()), slices.Collect(s.Checkpoints.All())},
		"notes":       {got.Notes, s.Notes},
		"approvals":   {got.Approvals, s.Approvals},
		"commits":     {got.Commits, s.Commits},
		"policy":      {got.Policy, s.Policy},
		"cache":       {cacheOf(got), cacheOf(s)},
		"locks":       {got.Locks, s.Locks},
		"health":      {got.Health, s.Health},
	} {
		if !reflect.DeepEqual(pair[0], pair[1]) {
			t.Errorf("%s after a snapshot round trip:\n got %#v\nwant %#v", name, pair[0], pair[1])
		}
	}
}

// TestSnapshot_Keys holds the stored format of a snapshot: its keys are
// those of the format snapshotFormat names, whether they are spelled here or
// in domain's state types (ReviewState, CollabState), which a snapshot
// inlines. Renaming a tag there would make every stored snapshot lose that
// part of the state.
func TestSnapshot_Keys(t *testing.T) {
	s := &domain.Session{ID: "S", Tenant: "t"}
	s.Notes = map[string]domain.Annotation{"n": {ID: "n"}}
	s.Approvals = map[string]*domain.ApprovalRequest{"q": {ID: "q"}}
	s.Commits = []domain.Commit{{ID: "c"}}
	s.Policy = domain.Policy{"commit": 1}
	s.Cache = domain.NewCache([]string{"k"}, []domain.CacheEntry{{Value: []byte("v")}})
	s.Locks = map[string]domain.Lock{"p": {Path: "p"}}
	s.Health = &domain.HealthReport{}
	body, err := encodeSnapshot(s)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := domain.DecodeMsgpack(body, &doc); err != nil {
		t.Fatal(err)
	}
	var got []string
	for k := range doc {
		got = append(got, k)
	}
	slices.Sort(got)
	want := []string{"approvals", "ckeys", "commits", "cps", "created", "cvals", "entries", "health", "id", "last", "locks",
		"notes", "origin", "owner", "policy", "pos", "rids", "root", "rpos", "start", "status", "tags", "tenant", "updated", "ver"}
	if !slices.Equal(got, want) {
		t.Errorf("snapshot keys %v, want %v (format %d)", got, want, snapshotFormat)
	}
}
