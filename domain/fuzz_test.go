package domain_test

import (
	"bytes"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/strand-dev/strand/domain"
)

// Fuzz targets for the two places where the domain reads bytes it did not
// write itself: paths from requests and archives, and event bodies from the
// stream. Run one with `go test ./domain -run '^$' -fuzz FuzzCleanPath`;
// .ci/fuzz runs each briefly.

func FuzzCleanPath(f *testing.F) {
	for _, s := range []string{
		"", "/", "a", "/a/b/", "a//b", "./a/./b", "..", "a/../b", "a/..", "...", ". /x",
		"a\x00b", "a\\b", "\xff", "\u00e9t\u00e9/\u65e5\u672c", "a/\x1fb", "a/\x7f",
		strings.Repeat("a/", 70), strings.Repeat("x", 300), "/./../", "a/b/c/../../..",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		out, err := domain.CleanPath(p)
		if err != nil {
			if domain.ErrorCode(err) != domain.CodeInvalidArgument {
				t.Fatalf("CleanPath(%q): code %s, want invalid_argument", p, domain.ErrorCode(err))
			}
			return
		}
		again, err := domain.CleanPath(out)
		if err != nil || again != out {
			t.Fatalf("CleanPath(%q) = %q, and CleanPath of that = %q, %v: want the same", p, out, again, err)
		}
		if strings.HasPrefix(out, "/") || strings.HasSuffix(out, "/") || strings.Contains(out, "//") {
			t.Fatalf("CleanPath(%q) = %q: stray slash", p, out)
		}
		for _, c := range strings.Split(out, "/") {
			if out != "" && (c == "" || c == "." || c == "..") {
				t.Fatalf("CleanPath(%q) = %q: component %q", p, out, c)
			}
		}
		if !utf8.ValidString(out) || strings.ContainsAny(out, "\x00\\") || len(out) > domain.MaxPathBytes {
			t.Fatalf("CleanPath(%q) = %q: invalid result", p, out)
		}
	})
}

// seedHistory runs a small history through Execute and returns the encoded
// bodies of its events, in order, and a fresh replay function.
func seedHistory(f *testing.F) [][]byte {
	l := newLog(f)
	const id = "01HZZZZZZZZZZZZZZZZZZZZZZZ"
	l.create(id)
	h, n := content("hello\n")
	l.must(id, domain.ChangeFiles{Ops: []domain.FileOp{
		{Kind: domain.OpMkdir, Path: "src"},
		{Kind: domain.OpWrite, Path: "src/a.txt", Content: h, Size: n},
	}, Batch: true})
	l.must(id, one(symlink("link", "src/a.txt")))
	l.must(id, one(rename("src/a.txt", "src/b.txt")))
	l.must(id, domain.CreateCheckpoint{Name: "cp1"})
	l.must(id, domain.SetTags{Set: map[string]string{"k": "v"}})
	l.must(id, domain.AcquireLock{Path: "src", Token: "0123456789abcdef0123", TTL: time.Minute})
	l.must(id, domain.Annotate{ID: "n1", Body: "look", Path: "src/b.txt"})
	l.must(id, domain.RequestApproval{ID: "r1", Reason: "commit"})
	l.as(id, "reviewer", domain.GrantApproval{ID: "r1"})
	l.must(id, domain.CreateCommit{ID: "c1", Message: "m"})
	l.must(id, domain.ReleaseLock{Path: "src", Token: "0123456789abcdef0123"})
	l.must(id, one(remove("src", true)))
	l.must(id, domain.RestoreSession{To: l.positions(id)[2]})
	var out [][]byte
	for _, ev := range l.sessions[id].events {
		out = append(out, ev.body)
	}
	return out
}

// replayBodies folds encoded events with Evolve from nothing.
func replayBodies(t testing.TB, bodies [][]byte) *domain.Session {
	var s *domain.Session
	states := map[uint64]*domain.Session{}
	past := func(p uint64) (*domain.Session, error) {
		if st, ok := states[p]; ok {
			return st, nil
		}
		return nil, domain.ErrPositionUnknown
	}
	for i, b := range bodies {
		e, err := domain.DecodeEvent(b)
		if err != nil {
			t.Fatalf("seed event %d: %v", i, err)
		}
		if s, err = domain.Evolve(s, e, uint64(i+1), domain.Sum(b), past); err != nil {
			t.Fatalf("seed event %d: %v", i, err)
		}
		states[uint64(i+1)] = s
	}
	return s
}

// FuzzDecodeEvent feeds arbitrary bytes to DecodeEvent, and whatever it
// accepts to Evolve on no state and on a small one: nothing may panic, and
// a refusal is an error, never a half-changed state.
func FuzzDecodeEvent(f *testing.F) {
	bodies := seedHistory(f)
	for _, b := range bodies {
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0xc0})
	f.Add([]byte{0x81, 0xa1, 't', 0xa1, 'x'})
	f.Add(bytes.Repeat([]byte{0xdd, 0xff, 0xff, 0xff, 0xff}, 4))
	small := bodies[:4]
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := domain.DecodeEvent(b)
		if err != nil {
			if e != nil {
				t.Fatalf("DecodeEvent: event and error %v", err)
			}
			return
		}
		if _, err := e.Encode(); err != nil {
			t.Fatalf("a decoded event does not encode: %v", err)
		}
		_ = e.Paths()
		_ = e.Blobs()
		none := func(uint64) (*domain.Session, error) { return nil, domain.ErrPositionUnknown }
		_, _ = domain.Evolve(nil, e, 1, domain.Sum(b), none)

		s := replayBodies(t, small)
		root, version, position := s.Tree.Hash(), s.Version, s.Position
		past := func(p uint64) (*domain.Session, error) {
			if p <= s.Position {
				return s, nil
			}
			return nil, domain.ErrPositionUnknown
		}
		n, err := domain.Evolve(s, e, s.Position+1, domain.Sum(b), past)
		if err != nil && n != nil {
			t.Fatalf("Evolve returned a state with error %v", err)
		}
		if s.Tree.Hash() != root || s.Version != version || s.Position != position {
			t.Fatalf("Evolve changed the state it was given")
		}
	})
}

func FuzzValidNames(f *testing.F) {
	for _, s := range []string{"", "acme", "a.b", "A", "_x", "a-b_c", "x y", "cp-1", strings.Repeat("t", 100), "*", ">"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if domain.ValidTenant(s) == nil && strings.ContainsAny(s, ".*> \t\r\n\x00") {
			t.Fatalf("ValidTenant(%q) accepted a name that breaks NATS subjects", s)
		}
		if domain.ValidSourceName(s) == nil && strings.ContainsAny(s, ".*> \t\r\n\x00") {
			t.Fatalf("ValidSourceName(%q) accepted a name that breaks NATS subjects", s)
		}
		_ = domain.ValidCheckpointName(s)
		_, _ = domain.ParseHash(s)
	})
}
