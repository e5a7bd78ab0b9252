package domain_test

import (
	"bytes"
	"errors"
	"reflect"
	"slices"
	"testing"

	"github.com/strand-dev/strand/domain"
)

// scenario returns a log with one event of every type, a fork among them.
func scenario(t *testing.T) *eventLog {
	t.Helper()
	l := newLog(t)
	m := l.meta()
	m.RequestID = "req-create"
	if _, _, err := l.execMeta("s1", domain.CreateSession{ID: "s1", Tenant: "acme", Owner: "ann", Tags: map[string]string{"a": "1"}, Origin: domain.Origin{Source: "src", Revision: 2}}, m); err != nil {
		t.Fatal(err)
	}
	l.must("s1", one(write("a/f", "1")))
	l.must("s1", one(mkdir("d")))
	l.must("s1", one(symlink("l", "a")))
	l.must("s1", one(rename("a/f", "d/f")))
	l.must("s1", one(remove("l", false)))
	l.must("s1", batch(write("x", "x"), write("y", "y"), domain.FileOp{Kind: domain.OpWrite, Path: "z", Mode: 0o600}))
	l.must("s1", domain.SetTags{Set: map[string]string{"b": "2", "c": "3"}, Remove: []string{"a"}})
	l.must("s1", domain.CreateCheckpoint{Name: "cp", Note: "note"})
	l.must("s1", domain.DeleteCheckpoint{Name: "cp"})
	l.must("s1", domain.RestoreSession{To: l.positions("s1")[2]})
	parent := l.sessions["s1"].head
	l.must("f1", domain.ForkSession{ID: "f1", Owner: "bob", Parent: parent})
	l.must("f1", one(write("fork", "1")))
	fh, fn := content("1")
	l.must("s1", domain.MergeSession{
		Data: domain.MergeData{From: "f1", FromPosition: l.sessions["f1"].head.Position, BaseSession: "s1", BasePosition: parent.Position},
		Ops:  []domain.Op{{Kind: domain.OpWrite, Path: "fork", Content: fh[:], Size: fn, Mode: 0o644}},
	})
	l.must("s1", domain.Annotate{ID: "n1", Body: "why?", Path: "a/f", LineStart: 1, LineEnd: 1})
	l.must("s1", domain.ResolveNote{ID: "n1"})
	l.must("s1", domain.ReopenNote{ID: "n1"})
	l.must("s1", domain.RequestApproval{ID: "r1", Reason: domain.ActionCommit, Group: "g", Details: []byte(`{"k":1}`)})
	l.as("s1", "rev", domain.GrantApproval{ID: "r1", Comment: "ok"})
	l.must("s1", domain.CreateCommit{ID: "c1", Message: "m", Summary: &domain.Summary{Added: 1}, Tenant: domain.Policy{domain.ActionCommit: 1}})
	l.must("s1", domain.RequestApproval{ID: "r2", Reason: domain.ActionPolicy})
	l.as("s1", "rev", domain.GrantApproval{ID: "r2"})
	l.must("s1", domain.SetPolicy{Policy: domain.Policy{domain.ActionDelete: 0}})
	l.must("s1", domain.RequestApproval{ID: "r3", Reason: "custom"})
	l.as("s1", "rev", domain.DenyApproval{ID: "r3", Comment: "no"})
	l.must("s1", one(domain.FileOp{Kind: domain.OpSetXattr, Path: "a/f", Name: "user.k", Value: []byte("v")}))
	l.must("s1", one(domain.FileOp{Kind: domain.OpRemoveXattr, Path: "a/f", Name: "user.k"}))
	l.must("s1", one(domain.FileOp{Kind: domain.OpChmod, Path: "a/f", Mode: 0}))
	l.must("s1", batch(domain.FileOp{Kind: domain.OpChmod, Path: "a", Mode: 0o700}, domain.FileOp{Kind: domain.OpChmod, Path: "a/f", Mode: 0o4750}))
	l.must("s1", domain.UpdateCache{Ops: []domain.CacheOp{{Op: domain.CachePut, Key: "k", Value: []byte("v")}}})
	l.must("s1", domain.AcquireLock{Path: "x", Token: "0123456789abcdef"})
	l.must("s1", domain.RenewLock{Path: "x", Token: "0123456789abcdef"})
	l.must("s1", domain.ReleaseLock{Path: "x", Token: "0123456789abcdef"})
	l.must("s1", domain.ReportHealth{Data: domain.HealthData{Passing: true, Passed: 3, Summary: "ok"}})
	l.must("s1", domain.ArchiveSession{})
	l.must("s1", domain.DeleteSession{})
	return l
}

func TestEvent_EncodeDecode(t *testing.T) {
	l := scenario(t)
	seen := map[domain.EventType]bool{}
	for _, id := range l.order {
		for _, ev := range l.sessions[id].events {
			e, err := domain.DecodeEvent(ev.body)
			if err != nil {
				t.Fatalf("DecodeEvent(%s@%d): %v", id, ev.pos, err)
			}
			seen[e.Type] = true
			again, err := e.Encode()
			if err != nil {
				t.Fatalf("Encode(%s): %v", e.Type, err)
			}
			if !bytes.Equal(again, ev.body) {
				t.Errorf("%s@%d (%s): Encode(DecodeEvent(body)) differs from body:\n got %x\nwant %x", id, ev.pos, e.Type, again, ev.body)
			}
			e2, err := domain.DecodeEvent(again)
			if err != nil || !reflect.DeepEqual(e, e2) {
				t.Errorf("%s@%d: decode of re-encoded event = %+v, %v; want %+v", id, ev.pos, e2, err, e)
			}
		}
	}
	for _, typ := range domain.EventTypes {
		if !seen[typ] {
			t.Errorf("scenario has no %s event", typ)
		}
	}

	t.Run("Fields", func(t *testing.T) {
		h, _ := content("data")
		in := &domain.Event{
			ID: "01HX", Type: domain.BatchApplied, Tenant: "acme", Session: "s1", Actor: "ann", Time: 1234567890123,
			RequestID: "r", Version: 7, Prev: bytes.Repeat([]byte{1}, 32), Root: bytes.Repeat([]byte{2}, 32),
			Ops: []domain.Op{
				{Kind: domain.OpWrite, Path: "a", Content: h[:], Size: 4, Mode: 0o644},
				{Kind: domain.OpWrite, Path: "i", Content: h[:], Size: 4, Mode: 0o644, Data: []byte("data")},
				{Kind: domain.OpRename, Path: "a", To: "b"},
				{Kind: domain.OpSymlink, Path: "l", Target: "../b"},
				{Kind: domain.OpRemove, Path: "d", Recursive: true},
			},
			Created:    &domain.CreatedData{Origin: domain.Origin{Parent: "p", Position: 9}, Owner: "o", Tags: map[string]string{"k": "v"}},
			Tags:       map[string]string{"z": "1", "a": "2", "m": "3"},
			Untag:      []string{"q"},
			Checkpoint: &domain.CheckpointData{Name: "n", Position: 3, Note: "x"},
			Restore:    &domain.RestoreData{To: 2},
		}
		body, err := in.Encode()
		if err != nil {
			t.Fatal(err)
		}
		out, err := domain.DecodeEvent(body)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(in, out) {
			t.Errorf("DecodeEvent(Encode(e)) = %+v, want %+v", out, in)
		}
		if !out.At().Equal(in.At()) || out.At().UnixNano() != 1234567890123 {
			t.Errorf("At() = %v, want %d ns", out.At(), in.Time)
		}
		if got := out.Paths(); !slices.Equal(got, []string{"a", "i", "a", "b", "l", "d"}) {
			t.Errorf("Paths() = %q, want [a i a b l d]", got)
		}
		if got := out.Blobs(); len(got) != 1 || got[0] != h {
			t.Errorf("Blobs() = %v, want [%s]", got, h)
		}
		// Map keys are sorted: the same event always encodes the same.
		for range 20 {
			again, _ := in.Encode()
			if !bytes.Equal(again, body) {
				t.Fatalf("Encode is not deterministic")
			}
		}
	})

	bad := []struct {
		name string
		body []byte
	}{
		{"Empty", nil},
		{"Garbage", []byte{0xc1, 0x00}},
		{"NotAMap", []byte{0x01}},
		{"Truncated", l.sessions["s1"].events[1].body[:10]},
		{"NoType", mustEncode(t, &domain.Event{Session: "s", Version: 1})},
		{"NoSession", mustEncode(t, &domain.Event{Type: domain.TagsSet, Version: 1})},
		{"NoVersion", mustEncode(t, &domain.Event{Type: domain.TagsSet, Session: "s"})},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			e, err := domain.DecodeEvent(tc.body)
			if e != nil || domain.ErrorCode(err) != domain.CodeInternal {
				t.Errorf("DecodeEvent(%x) = %+v, %v; want nil and an internal error", tc.body, e, err)
			}
		})
	}
}

func mustEncode(t *testing.T, e *domain.Event) []byte {
	t.Helper()
	b, err := e.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestEvolve_Tampered changes one stored event at a time and checks that
// replay refuses the history.
func TestEvolve_Tampered(t *testing.T) {
	l := scenario(t)
	checkReplay(t, l)

	tamper := []struct {
		name   string
		change func(e *domain.Event)
	}{
		{"VersionUp", func(e *domain.Event) { e.Version++ }},
		{"VersionDown", func(e *domain.Event) { e.Version-- }},
		{"PrevFlipped", func(e *domain.Event) {
			if len(e.Prev) == 0 {
				e.Prev = make([]byte, 32)
			}
			e.Prev[0] ^= 1
		}},
		{"PrevShort", func(e *domain.Event) { e.Prev = []byte{1, 2, 3} }},
		{"RootFlipped", func(e *domain.Event) { e.Root[31] ^= 0x80 }},
		{"RootMissing", func(e *domain.Event) { e.Root = nil }},
	}
	for _, tc := range tamper {
		t.Run(tc.name, func(t *testing.T) {
			for _, id := range l.order {
				h := l.sessions[id]
				for i, ev := range h.events {
					e, err := domain.DecodeEvent(ev.body)
					if err != nil {
						t.Fatal(err)
					}
					tc.change(e)
					if e.Version == 0 {
						continue // DecodeEvent refuses it; tested elsewhere
					}
					body := mustEncode(t, e)
					saved := h.events[i].body
					h.events[i].body = body
					_, err = l.replay()
					h.events[i].body = saved
					if err == nil {
						t.Errorf("replay with %s@%d (%s) tampered (%s): got nil error, want one", id, ev.pos, e.Type, tc.name)
					}
				}
			}
		})
	}

	t.Run("ReorderedEvents", func(t *testing.T) {
		h := l.sessions["s1"]
		h.events[3], h.events[4] = h.events[4], h.events[3]
		defer func() { h.events[3], h.events[4] = h.events[4], h.events[3] }()
		if _, err := l.replay(); err == nil {
			t.Errorf("replay with two events swapped: got nil error, want one")
		}
	})
	t.Run("DroppedEvent", func(t *testing.T) {
		h := l.sessions["s1"]
		saved := slices.Clone(h.events)
		h.events = slices.Delete(h.events, 2, 3)
		defer func() { h.events = saved }()
		if _, err := l.replay(); err == nil {
			t.Errorf("replay with an event dropped: got nil error, want one")
		}
	})
	t.Run("ForkFromAnotherPosition", func(t *testing.T) {
		// The fork's first event must chain to the parent's event at the fork.
		h := l.sessions["f1"]
		first, _ := domain.DecodeEvent(h.events[0].body)
		wrong := l.sessions["s1"].states[l.positions("s1")[1]]
		// Same tree, so only the chain can tell.
		same := *wrong
		same.Tree = l.sessions["s1"].states[h.forkAt].Tree
		if _, err := domain.Evolve(&same, first, h.events[0].pos, domain.Sum(h.events[0].body), l.past("f1")); err == nil {
			t.Errorf("Evolve(fork event on the parent at another position): got nil error, want one")
		}
		if _, err := domain.Evolve(nil, first, h.events[0].pos, domain.Sum(h.events[0].body), l.past("f1")); err == nil {
			t.Errorf("Evolve(nil, fork event): got nil error, want one")
		}
	})
	t.Run("CreatedWithPrev", func(t *testing.T) {
		e, _ := domain.DecodeEvent(l.sessions["s1"].events[0].body)
		e.Prev = bytes.Repeat([]byte{7}, 32)
		body := mustEncode(t, e)
		if _, err := domain.Evolve(nil, e, 1, domain.Sum(body), nil); err == nil {
			t.Errorf("Evolve(SessionCreated with a prev hash): got nil error, want one")
		}
	})
	t.Run("Malformed", func(t *testing.T) {
		s := l.sessions["f1"].head
		next := func(typ domain.EventType) *domain.Event {
			return &domain.Event{Type: typ, Session: s.ID, Tenant: s.Tenant, Version: s.Version + 1, Prev: s.LastHash[:], Root: s.Tree.Hash().Bytes()}
		}
		cases := map[string]*domain.Event{
			"UnknownType":        next("SessionExploded"),
			"CheckpointNoData":   next(domain.CheckpointCreated),
			"RestoreNoData":      next(domain.SessionRestored),
			"CreatedNoData":      {Type: domain.SessionCreated, Session: "x", Version: 1},
			"CreatedVersion2":    {Type: domain.SessionCreated, Session: "x", Version: 2, Created: &domain.CreatedData{}},
			"UnknownOp":          withOps(next(domain.FileWritten), domain.Op{Kind: "chmod", Path: "x"}),
			"RenameMissing":      withOps(next(domain.PathRenamed), domain.Op{Kind: domain.OpRename, Path: "nope", To: "x"}),
			"BadContentHash":     withOps(next(domain.FileWritten), domain.Op{Kind: domain.OpWrite, Path: "x", Content: []byte{1}}),
			"WriteUnderFile":     withOps(next(domain.FileWritten), domain.Op{Kind: domain.OpWrite, Path: "fork/x"}),
			"RestoreUnknownPast": withRestore(next(domain.SessionRestored), 1<<40),
		}
		for name, e := range cases {
			var prev *domain.Session
			if e.Type != domain.SessionCreated {
				prev = s
			}
			if _, err := domain.Evolve(prev, e, 1000, domain.Hash{1}, l.past("f1")); err == nil {
				t.Errorf("Evolve(%s): got nil error, want one", name)
			}
		}
		if _, err := domain.Evolve(nil, next(domain.TagsSet), 1000, domain.Hash{1}, nil); err == nil {
			t.Errorf("Evolve(nil, TagsSet): got nil error, want one (event before creation)")
		}
		if _, err := domain.Evolve(s, withRestore(next(domain.SessionRestored), s.Position), 1000, domain.Hash{1}, nil); err == nil {
			t.Errorf("Evolve(SessionRestored, nil Past): got nil error, want one")
		}
	})
}

func withOps(e *domain.Event, ops ...domain.Op) *domain.Event {
	e.Ops = ops
	return e
}

func withRestore(e *domain.Event, to uint64) *domain.Event {
	e.Restore = &domain.RestoreData{To: to}
	return e
}

func TestError(t *testing.T) {
	err := domain.Errorf(domain.CodeNotFound, "thing %d missing", 7)
	if !errors.Is(err, domain.ErrNotFound) || errors.Is(err, domain.ErrConflict) {
		t.Errorf("errors.Is by code: got %v/%v, want true/false", errors.Is(err, domain.ErrNotFound), errors.Is(err, domain.ErrConflict))
	}
	if errors.Is(err, domain.ErrSessionNotFound) {
		t.Errorf("errors.Is(a not_found error, ErrSessionNotFound) = true, want false: specific sentinels match only themselves")
	}
	if !errors.Is(domain.ErrSessionNotFound, domain.ErrNotFound) || !errors.Is(domain.ErrPositionUnknown, domain.ErrNotFound) {
		t.Errorf("specific sentinels do not match their class")
	}
	if got := domain.ErrorMessage(err); got != "thing 7 missing" {
		t.Errorf("ErrorMessage = %q, want %q", got, "thing 7 missing")
	}
	cause := errors.New("disk on fire at /secret/path")
	w := domain.Wrap(cause, "append")
	if domain.ErrorCode(w) != domain.CodeInternal || !errors.Is(w, cause) {
		t.Errorf("Wrap: code %q, Is(cause) %v; want internal, true", domain.ErrorCode(w), errors.Is(w, cause))
	}
	if msg := domain.ErrorMessage(w); msg != "internal error" {
		t.Errorf("ErrorMessage(wrapped) = %q, want the generic %q", msg, "internal error")
	}
	if domain.Wrap(err, "x") != error(err) || domain.Wrap(nil, "x") != nil {
		t.Errorf("Wrap of a domain error or nil must return it unchanged")
	}
	if domain.ErrorCode(nil) != "" || domain.ErrorCode(cause) != domain.CodeInternal {
		t.Errorf("ErrorCode(nil) = %q, ErrorCode(plain) = %q; want \"\" and internal", domain.ErrorCode(nil), domain.ErrorCode(cause))
	}
	if domain.ErrorMessage(cause) != "internal error" || domain.ErrorMessage(domain.ErrConflict) != "conflict" {
		t.Errorf("ErrorMessage(plain) = %q, ErrorMessage(ErrConflict) = %q", domain.ErrorMessage(cause), domain.ErrorMessage(domain.ErrConflict))
	}
	if len(domain.Codes) != 11 {
		t.Errorf("len(Codes) = %d, want the 11 documented codes", len(domain.Codes))
	}
}

func TestHash(t *testing.T) {
	h := domain.Sum([]byte("x"))
	back, err := domain.ParseHash(h.String())
	if err != nil || back != h {
		t.Errorf("ParseHash(String()) = %s, %v; want %s", back, err, h)
	}
	for _, s := range []string{"", "00", h.String()[:63] + "g", h.String() + "0"} {
		if _, err := domain.ParseHash(s); domain.ErrorCode(err) != domain.CodeInvalidArgument {
			t.Errorf("ParseHash(%q): got %v, want invalid_argument", s, err)
		}
	}
	if _, ok := domain.HashFromBytes(make([]byte, 31)); ok {
		t.Errorf("HashFromBytes(31 bytes) ok, want not")
	}
	if z, ok := domain.HashFromBytes(nil); !ok || !z.IsZero() || z.Bytes() != nil {
		t.Errorf("HashFromBytes(nil) = %s, %v; want the zero hash", z, ok)
	}
}
