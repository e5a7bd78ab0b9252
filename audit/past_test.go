package audit

import (
	"testing"

	"github.com/strand-dev/strand/domain"
)

func TestPastRing(t *testing.T) {
	r := newPastRing(2)
	s1, s2, s3 := &domain.Session{Position: 1}, &domain.Session{Position: 2}, &domain.Session{Position: 3}
	r.add(stateKey{"a", 1}, s1)
	r.add(stateKey{"b", 2}, s2)
	r.add(stateKey{"a", 3}, s3) // evicts position 1, the oldest
	for _, tc := range []struct {
		key  stateKey
		want *domain.Session
	}{
		{stateKey{"a", 1}, nil},
		{stateKey{"b", 2}, s2},
		{stateKey{"a", 3}, s3},
		{stateKey{"b", 3}, nil}, // a position belongs to one subject
	} {
		got, ok := r.get(tc.key)
		if got != tc.want || ok != (tc.want != nil) {
			t.Errorf("get(%v) = %v, %v; want %v", tc.key, got, ok, tc.want)
		}
	}
}

func TestSubjectMatches(t *testing.T) {
	for _, tc := range []struct {
		filter, subject string
		want            bool
	}{
		{"strand.ev.>", "strand.ev.a.b", true},
		{"strand.ev.>", "strand.ev", false},
		{"strand.ev.a.*", "strand.ev.a.b", true},
		{"strand.ev.a.*", "strand.ev.a.b.c", false},
		{"strand.ev.a.b", "strand.ev.a.b", true},
		{"strand.ev.a.b", "strand.ev.a.c", false},
	} {
		if got := subjectMatches(tc.filter, tc.subject); got != tc.want {
			t.Errorf("subjectMatches(%q, %q) = %v, want %v", tc.filter, tc.subject, got, tc.want)
		}
	}
}

func TestLinkTarget(t *testing.T) {
	for _, tc := range []struct{ path, target, want string }{
		{"l", "x/y", "x/y"},
		{"l", "/src", "src"},
		{"docs/top", "/src", "../src"},
		{"a/b/l", "/", "../.."},
		{"l", "/", "."},
	} {
		if got := linkTarget(tc.path, tc.target); got != tc.want {
			t.Errorf("linkTarget(%q, %q) = %q, want %q", tc.path, tc.target, got, tc.want)
		}
	}
}
