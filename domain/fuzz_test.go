package domain_test

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"

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
		head, err := domain.DecodeEventHead(b)
		if err != nil {
			t.Fatalf("DecodeEvent decodes it, DecodeEventHead does not: %v", err)
		}
		full := *e
		full.Ops = nil
		if !reflect.DeepEqual(*head, full) {
			t.Fatalf("DecodeEventHead:\n %+v\nDecodeEvent without its operations:\n %+v", *head, full)
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

// FuzzDecodeEventLibrary checks that DecodeEvent's direct decoder gives
// what the MessagePack library gives, field for field, or leaves the body
// to it; and that when the library refuses a body, the direct decoder does
// too. Seeds: every kind of event, and shapes the direct decoder leaves to
// the library (strings as bin, empty arrays and bins, nil values, repeated
// keys, wide length codes, unknown keys of every type).
func FuzzDecodeEventLibrary(f *testing.F) {
	for _, b := range seedHistory(f) {
		f.Add(b)
	}
	for _, b := range decodeEdgeCases() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkDecoders(t, b)
	})
}

// checkDecoders compares the two decoders on one body.
func checkDecoders(t *testing.T, b []byte) {
	t.Helper()
	want, werr := domain.DecodeEventLibrary(b)
	got, ok := domain.DecodeEventFast(b)
	switch {
	case !ok:
		return // left to the library
	case werr != nil:
		t.Fatalf("body %x: the library refuses it (%v), the direct decoder gives %+v", b, werr, got)
	case !reflect.DeepEqual(got, want):
		t.Fatalf("body %x:\n direct  %+v\n library %+v", b, got, want)
	}
}

// decodeEdgeCases are bodies in shapes the encoder does not write.
func decodeEdgeCases() [][]byte {
	enc := func(v any) []byte {
		b, err := msgpack.Marshal(v)
		if err != nil {
			panic(err)
		}
		return b
	}
	hash := bytes.Repeat([]byte{7}, 32)
	base := map[string]any{"id": "x", "type": "FileWritten", "tenant": "t", "session": "s", "actor": "a", "time": int64(-5), "n": uint64(3), "prev": hash, "root": hash}
	with := func(k string, v any) []byte {
		m := map[string]any{}
		for k, v := range base {
			m[k] = v
		}
		m[k] = v
		return enc(m)
	}
	op := map[string]any{"k": "write", "p": "a/b", "h": hash, "s": 5, "m": 0o644}
	return [][]byte{
		enc(base),
		with("type", []byte("FileWritten")),
		with("type", "SomethingNew"),
		with("id", nil),
		with("id", ""),
		with("prev", []byte{}),
		with("prev", "as a string"),
		with("prev", nil),
		with("n", -1),
		with("n", uint64(1)<<63),
		with("n", 1.5),
		with("time", uint64(1)<<63),
		with("ops", []any{}),
		with("ops", nil),
		with("ops", []any{op, map[string]any{"k": "rename", "p": "a", "to": "b", "r": true, "x": []any{1, "y", nil}}}),
		with("ops", []any{map[string]any{"k": "chmod", "p": "a", "m": uint64(1) << 40, "s": -3}}),
		with("ops", []any{map[string]any{"k": "write", "p": []byte("a"), "h": []byte{}}}),
		with("ops", []any{map[string]any{"k": "write", "r": nil, "v": nil}}),
		with("ops", []any{"not an op"}),
		with("unknown", map[string]any{"a": []any{1.5, float32(2), true, nil, map[string]any{}}}),
		with("created", map[string]any{"origin": map[string]any{"parent": "p", "pos": 3}, "owner": "o"}),
		with("created", "wrong"),
		with("tags", map[string]string{"a": "b"}),
		with("untag", []string{"a"}),
		with("uses", []string{}),
		append(enc(base)[:len(enc(base))-1], 0xc1),
		{0x82, 0xa1, 'n', 0x01, 0xa1, 'n', 0x02},                 // a repeated key
		{0x81, 0xc4, 0x01, 'n', 0x01},                            // a bin key
		{0x81, 0xc0, 0x01},                                       // a nil key
		{0xde, 0x00, 0x01, 0xa4, 't', 'y', 'p', 'e', 0xa1, 'X'},  // map16
		{0x81, 0xa4, 't', 'i', 'm', 'e', 0xd3, 0xff, 0xff, 0xff}, // truncated int64
		{0x81, 0xa1, 'z', 0xc7, 0x02, 0x05, 0x01, 0x02},          // ext8 under an unknown key
		{0x81, 0xa1, 'z', 0xd8, 0x05, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		append(enc(base), 0x01, 0x02), // trailing bytes
	}
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

// FuzzDecodeTenantEvent feeds arbitrary bytes to the tenant log decoder
// (what an audit reads from a possibly damaged stream): it never panics,
// and what it accepts folds or is refused with a code.
func FuzzDecodeTenantEvent(f *testing.F) {
	e := &domain.TenantEvent{ID: "x", Type: domain.GroupSet, Tenant: "acme", Actor: "a", Time: 1, Version: 1, Group: &domain.GroupData{Name: "g", Members: []string{"b"}}}
	b, _ := e.Encode()
	f.Add(b)
	f.Add([]byte{0xde, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := domain.DecodeTenantEvent(b)
		if err != nil {
			if domain.ErrorCode(err) != domain.CodeInternal {
				t.Fatalf("code %s, want internal", domain.ErrorCode(err))
			}
			return
		}
		s := domain.NewTenantState(e.Tenant)
		_ = s.Apply(e, domain.Sum(b))
	})
}
