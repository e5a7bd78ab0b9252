package audit

import (
	"testing"

	"github.com/strand-dev/strand/domain"
)

func TestPastRing(t *testing.T) {
	r := newPastRing(2)
	s1, s2, s3 := &domain.Session{Position: 1}, &domain.Session{Position: 2}, &domain.Session{Position: 3}
	r.add(stateKey{"a", 1}, pastState{s: s1})
	r.add(stateKey{"b", 2}, pastState{s: s2})
	r.add(stateKey{"a", 3}, pastState{s: s3}) // evicts position 1, the oldest
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
		if got.s != tc.want || ok != (tc.want != nil) {
			t.Errorf("get(%v) = %v, %v; want %v", tc.key, got, ok, tc.want)
		}
	}

	t.Run("Wrapped", func(t *testing.T) {
		r := newPastRing(5)
		for p := uint64(10); p <= 100; p += 10 { // 60..100 stay, wrapped around
			r.add(stateKey{"a", p}, pastState{s: &domain.Session{Position: p}})
		}
		for p := uint64(0); p <= 110; p += 5 {
			got, ok := r.get(stateKey{"a", p})
			want := p >= 60 && p <= 100 && p%10 == 0
			if ok != want || (ok && got.s.Position != p) {
				t.Errorf("get(a, %d) = %v, %v; want found %v", p, got, ok, want)
			}
		}
	})

	t.Run("OutOfOrder", func(t *testing.T) {
		// A nested replay adds older states: kept aside, found, bounded.
		r := newPastRing(4)
		r.add(stateKey{"a", 100}, pastState{s: &domain.Session{Position: 100}})
		old := pastState{s: &domain.Session{Position: 7}, root: domain.Sum([]byte("7"))}
		r.add(stateKey{"b", 7}, old)
		r.add(stateKey{"a", 100}, pastState{s: &domain.Session{Position: 100}}) // again: kept once
		if got, ok := r.get(stateKey{"b", 7}); !ok || got != old {
			t.Errorf("get(b, 7) = %v, %v; want the state added out of order", got, ok)
		}
		if len(r.side) != 1 {
			t.Errorf("%d states aside, want 1", len(r.side))
		}
		for p := range uint64(maxSideStates + 10) {
			r.add(stateKey{"c", p}, old)
		}
		if len(r.side) > maxSideStates {
			t.Errorf("%d states aside, want at most %d", len(r.side), maxSideStates)
		}
	})
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
