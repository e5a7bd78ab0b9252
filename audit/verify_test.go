package audit_test

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/strand-dev/strand/audit"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
)

// TestLayout_MatchesStreams pins the wire layout the audit reads to the one
// package streams writes.
func TestLayout_MatchesStreams(t *testing.T) {
	if audit.DefaultEventStream != names.EventStream || audit.DefaultBlobStream != names.BlobStream {
		t.Fatalf("stream names %s/%s, streams writes %s/%s", audit.DefaultEventStream, audit.DefaultBlobStream, names.EventStream, names.BlobStream)
	}
	if got, want := audit.EventSubject("acme", "s1"), names.EventSubject("acme", "s1"); got != want {
		t.Fatalf("event subject %s, streams writes %s", got, want)
	}
	if got, want := audit.TenantFilter("acme"), names.EventFilter("acme"); got != want {
		t.Fatalf("tenant filter %s, streams uses %s", got, want)
	}
	if got := audit.StreamsWithPrefix(audit.DefaultStreamPrefix); got.Events != names.EventStream || got.Blobs != names.BlobStream {
		t.Fatalf("default prefix gives %+v", got)
	}
}

func TestReader_Verify(t *testing.T) {
	f := newFixture(t)
	r := f.reader(t, audit.Streams{})
	last := f.env.LastSeq(t)

	t.Run("All", func(t *testing.T) {
		for _, workers := range []int{1, 4} {
			r.Workers = workers
			rep := verify(t, r, audit.Scope{})
			if !rep.OK() {
				t.Fatalf("workers %d: findings on an intact store: %v", workers, rep.Findings)
			}
			if rep.Histories != 5 || uint64(rep.Events) != last {
				t.Fatalf("workers %d: %d histories, %d events; want 5, %d", workers, rep.Histories, rep.Events, last)
			}
			// src/main.go x2, big (its index: chunks are read through it),
			// run.sh, util, b.txt, c.txt, after, x; E's README, lib/a.txt
			// (from its source) and lib/b.txt
			if rep.Blobs != 12 {
				t.Fatalf("workers %d: %d blobs checked, want 12", workers, rep.Blobs)
			}
			if rep.Rebuilds != 0 {
				t.Fatalf("workers %d: %d states rebuilt, want 0 with room for all", workers, rep.Rebuilds)
			}
			if len(rep.Heads) != 5 {
				t.Fatalf("workers %d: heads %v", workers, rep.Heads)
			}
		}
	})
	t.Run("Tenant", func(t *testing.T) {
		rep := verify(t, r, audit.Scope{Tenant: "acme"})
		if !rep.OK() || rep.Histories != 3 {
			t.Fatalf("got %d histories, findings %v; want 3, none", rep.Histories, rep.Findings)
		}
	})
	t.Run("ForkOfFork", func(t *testing.T) {
		rep := verify(t, r, audit.Scope{Tenant: "acme", Session: f.C})
		if !rep.OK() || rep.Histories != 3 {
			t.Fatalf("got %d histories (C and its ancestors), findings %v; want 3, none", rep.Histories, rep.Findings)
		}
	})
	t.Run("EmptyTenant", func(t *testing.T) {
		start := time.Now()
		rep := verify(t, r, audit.Scope{Tenant: "nobody"})
		if !rep.OK() || rep.Histories != 0 || time.Since(start) > 2*time.Second {
			t.Fatalf("got %+v after %v; want nothing, at once", rep, time.Since(start))
		}
	})
	t.Run("UnknownSession", func(t *testing.T) {
		_, err := r.Verify(context.Background(), audit.Scope{Tenant: "acme", Session: "nope"})
		if domain.ErrorCode(err) != domain.CodeNotFound {
			t.Fatalf("got %v, want not_found", err)
		}
	})
	t.Run("DroppedStatesAreRebuilt", func(t *testing.T) {
		// With one remembered state, the restore and both forks need
		// states that were dropped: they are rebuilt from the stream.
		r := f.reader(t, audit.Streams{})
		r.Workers, r.PastStates = 1, 1
		rep := verify(t, r, audit.Scope{})
		if !rep.OK() || rep.Rebuilds == 0 {
			t.Fatalf("findings %v, %d rebuilds; want none, some", rep.Findings, rep.Rebuilds)
		}
	})
}

// flip returns body with the byte at the first occurrence of old changed.
func flip(t *testing.T, body []byte, old string) []byte {
	t.Helper()
	i := bytes.Index(body, []byte(old))
	if i < 0 {
		t.Fatalf("%q not in body", old)
	}
	out := bytes.Clone(body)
	out[i] ^= 0x01
	return out
}

// TestReader_VerifyTampered tampers with copies of the streams and checks
// that Verify names the first bad event of every broken history, and only
// those, with one worker and with several.
func TestReader_VerifyTampered(t *testing.T) {
	f := newFixture(t)
	intact := verify(t, f.reader(t, audit.Streams{}), audit.Scope{})
	if !intact.OK() {
		t.Fatalf("findings on the original: %v", intact.Findings)
	}
	p := f.pos
	rootOf := func(pos uint64) string {
		h := f.states[pos].Tree.Hash()
		return string(h[:])
	}
	type want struct {
		session string
		pos     uint64
		kind    audit.Kind
	}
	type tamper struct {
		name string
		// events edits the copy of the event stream; blobs, when set,
		// edits a copy of the blob stream.
		events  func(t *testing.T, seq uint64, m *nats.Msg) []*nats.Msg
		after   func(t *testing.T, eventsCopy, blobsCopy string)
		blobs   func(t *testing.T, seq uint64, m *nats.Msg) []*nats.Msg
		anchors bool
		want    []want
	}
	keep := func(_ *testing.T, _ uint64, m *nats.Msg) []*nats.Msg { return []*nats.Msg{m} }
	alter := func(at uint64, fn func(t *testing.T, body []byte) []byte) func(*testing.T, uint64, *nats.Msg) []*nats.Msg {
		return func(t *testing.T, seq uint64, m *nats.Msg) []*nats.Msg {
			if seq == at {
				m.Data = fn(t, m.Data)
			}
			return []*nats.Msg{m}
		}
	}
	var held *nats.Msg
	swap := func(a, b uint64) func(*testing.T, uint64, *nats.Msg) []*nats.Msg {
		return func(_ *testing.T, seq uint64, m *nats.Msg) []*nats.Msg {
			switch seq {
			case a:
				held = m
				return nil
			case b:
				return []*nats.Msg{m, held}
			}
			return []*nats.Msg{m}
		}
	}
	mainV2 := domain.Sum([]byte("package main // v2\n"))
	bTxt := domain.Sum([]byte("from B\n"))
	bigChunk := domain.Sum([]byte(bigContent(3500, 1)[1000:2000]))
	bigHash := domain.Sum([]byte(bigContent(3500, 1)))
	cases := []tamper{
		{
			name:   "AlteredActor",
			events: alter(p["A.main2"], func(t *testing.T, b []byte) []byte { return flip(t, b, "bob") }),
			want:   []want{{f.A, p["A.rmbin"], audit.KindChain}},
		},
		{
			name:   "AlteredPath",
			events: alter(p["A.main1"], func(t *testing.T, b []byte) []byte { return flip(t, b, "src/main.go") }),
			// A breaks at once; B and C, forked after it, cannot start.
			want: []want{{f.A, p["A.main1"], audit.KindRoot}, {f.B, p["B.fork"], audit.KindFork}, {f.C, p["C.fork"], audit.KindFork}},
		},
		{
			name:   "AlteredRoot",
			events: alter(p["B.b"], func(t *testing.T, b []byte) []byte { return flip(t, b, rootOf(p["B.b"])) }),
			want:   []want{{f.B, p["B.b"], audit.KindRoot}, {f.C, p["C.fork"], audit.KindFork}},
		},
		{
			name:   "AlteredEnvelope",
			events: alter(p["D.x"], func(_ *testing.T, b []byte) []byte { return append([]byte{0xc1}, b[1:]...) }),
			want:   []want{{f.D, p["D.x"], audit.KindDecode}},
		},
		{
			name:   "AlteredForkPrev",
			events: alter(p["C.fork"], func(t *testing.T, b []byte) []byte { return flip(t, b, string(f.states[p["B.b"]].LastHash[:])) }),
			want:   []want{{f.C, p["C.fork"], audit.KindFork}},
		},
		{
			name:   "RemovedMessage",
			events: keep,
			after:  func(t *testing.T, ev, _ string) { deleteMsg(t, f.env.NC, ev, p["A.rename"]) },
			want:   []want{{f.A, p["A.main2"], audit.KindVersion}},
		},
		{
			name:   "RemovedFirst",
			events: keep,
			after:  func(t *testing.T, ev, _ string) { deleteMsg(t, f.env.NC, ev, p["D.create"]) },
			want:   []want{{f.D, p["D.x"], audit.KindVersion}},
		},
		{
			// The fork point of B and the target of A's restore: A breaks at
			// its next event, B cannot start, nor can C on B.
			name:   "RemovedForkPoint",
			events: keep,
			after:  func(t *testing.T, ev, _ string) { deleteMsg(t, f.env.NC, ev, p["A.run"]) },
			want:   []want{{f.A, p["A.cp1"], audit.KindVersion}, {f.B, p["B.fork"], audit.KindFork}, {f.C, p["C.fork"], audit.KindFork}},
		},
		{
			name:   "ReorderedPair",
			events: swap(p["A.rename"], p["A.main2"]),
			want:   []want{{f.A, p["A.rename"], audit.KindVersion}},
		},
		{
			name:   "MissingBlob",
			events: keep,
			blobs:  keep,
			after:  func(t *testing.T, _, bl string) { deleteMsg(t, f.env.NC, bl, blobSeq(t, f.env.NC, bl, mainV2)) },
			want:   []want{{f.A, p["A.main2"], audit.KindBlob}},
		},
		{
			name:   "MissingChunk",
			events: keep,
			blobs:  keep,
			after:  func(t *testing.T, _, bl string) { deleteMsg(t, f.env.NC, bl, blobSeq(t, f.env.NC, bl, bigChunk)) },
			want:   []want{{f.A, p["A.big"], audit.KindBlob}},
		},
		{
			name:   "DamagedBlob",
			events: keep,
			blobs: func(_ *testing.T, _ uint64, m *nats.Msg) []*nats.Msg {
				if m.Subject == "strand.blob."+bTxt.String() {
					m.Data = []byte("from b\n")
				}
				return []*nats.Msg{m}
			},
			want: []want{{f.B, p["B.b"], audit.KindBlob}},
		},
		{
			// An index that claims four billion chunks in ten bytes: a
			// finding, not an attempt to allocate them.
			name:   "LyingChunkIndex",
			events: keep,
			blobs: func(_ *testing.T, _ uint64, m *nats.Msg) []*nats.Msg {
				if m.Subject == "strand.blob."+bigHash.String() {
					m.Data = []byte{0x81, 0xa1, 'c', 0xdd, 0xff, 0xff, 0xff, 0xff}
				}
				return []*nats.Msg{m}
			},
			want: []want{{f.A, p["A.big"], audit.KindBlob}},
		},
		{
			// An index whose hashing state after a chunk is not the
			// content's: the service would resume from it to check a
			// content that begins as this one.
			name:   "WrongHashingState",
			events: keep,
			blobs: func(t *testing.T, _ uint64, m *nats.Msg) []*nats.Msg {
				if m.Subject == "strand.blob."+bigHash.String() {
					var idx map[string]any
					if err := msgpack.Unmarshal(m.Data, &idx); err != nil {
						t.Fatal(err)
					}
					states, _ := idx["h"].([]any)
					if len(states) < 2 {
						t.Fatalf("the big file's index records %d hashing states, want one per chunk and one more", len(states))
					}
					states[1] = bytes.Repeat([]byte{7}, 32)
					body, err := msgpack.Marshal(idx)
					if err != nil {
						t.Fatal(err)
					}
					m.Data = body
				}
				return []*nats.Msg{m}
			},
			want: []want{{f.A, p["A.big"], audit.KindBlob}},
		},
		{
			name:   "MissingSourceTree",
			events: keep,
			blobs:  keep,
			after:  func(t *testing.T, _, bl string) { deleteMsg(t, f.env.NC, bl, blobSeq(t, f.env.NC, bl, f.baseBlob)) },
			want:   []want{{f.E, p["E.create"], audit.KindSource}},
		},
		{
			name:   "MissingSourceFile",
			events: keep,
			blobs:  keep,
			after: func(t *testing.T, _, bl string) {
				deleteMsg(t, f.env.NC, bl, blobSeq(t, f.env.NC, bl, f.base.Lookup("README").Content))
			},
			want: []want{{f.E, p["E.create"], audit.KindBlob}},
		},
		{
			// The last event of a history has no successor to name its
			// hash: only an anchor (a head recorded earlier) catches this.
			name:    "AlteredLastWithAnchor",
			events:  alter(p["A.after"], func(t *testing.T, b []byte) []byte { return flip(t, b, "alice") }),
			anchors: true,
			want:    []want{{f.A, p["A.after"], audit.KindAnchor}},
		},
		{
			name:    "RemovedLastWithAnchor",
			events:  keep,
			after:   func(t *testing.T, ev, _ string) { deleteMsg(t, f.env.NC, ev, p["D.x"]) },
			anchors: true,
			want:    []want{{f.D, p["D.create"], audit.KindAnchor}},
		},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			nameList := audit.Streams{Events: fmt.Sprintf("STRAND_EVENTS_COPY%d", i), Blobs: names.BlobStream}
			copyStream(t, f.env.NC, names.EventStream, nameList.Events, func(seq uint64, m *nats.Msg) []*nats.Msg { return tc.events(t, seq, m) })
			if tc.blobs != nil {
				nameList.Blobs = fmt.Sprintf("STRAND_BLOBS_COPY%d", i)
				copyStream(t, f.env.NC, names.BlobStream, nameList.Blobs, func(seq uint64, m *nats.Msg) []*nats.Msg { return tc.blobs(t, seq, m) })
			}
			if tc.after != nil {
				tc.after(t, nameList.Events, nameList.Blobs)
			}
			var anchors []audit.Head
			if tc.anchors {
				anchors = intact.Heads
				// Without the anchors the change goes unseen: the limit
				// of a hash chain, documented in docs/audit.md.
				if rep := verify(t, f.reader(t, nameList), audit.Scope{}); !rep.OK() {
					t.Fatalf("without anchors: %v", rep.Findings)
				}
			}
			for _, workers := range []int{1, 4} {
				r := f.reader(t, nameList)
				r.Workers = workers
				rep := verify(t, r, audit.Scope{}, anchors...)
				if len(rep.Findings) != len(tc.want) {
					t.Fatalf("workers %d: findings %v, want %d", workers, rep.Findings, len(tc.want))
				}
				for _, w := range tc.want {
					found := false
					for _, got := range rep.Findings {
						if got.Session == w.session {
							found = true
							if got.Position != w.pos || got.Kind != w.kind {
								t.Errorf("workers %d: session %s: got %s at %d (%s), want %s at %d", workers, w.session, got.Kind, got.Position, got.Message, w.kind, w.pos)
							}
						}
					}
					if !found {
						t.Errorf("workers %d: no finding for %s; got %v", workers, w.session, rep.Findings)
					}
				}
			}
			// The same from one session's point of view: C depends on A
			// and B up to their fork points, and on nothing after them.
			lim := map[string]uint64{f.A: p["A.run"], f.B: p["B.b"], f.C: math.MaxUint64}
			broken := false
			for _, w := range tc.want {
				if l, ok := lim[w.session]; ok && w.pos <= l && w.kind != audit.KindAnchor {
					broken = true
				}
			}
			rep := verify(t, f.reader(t, nameList), audit.Scope{Tenant: "acme", Session: f.C}, anchors...)
			if rep.OK() == broken {
				t.Errorf("session scope of C: findings %v, want broken %v", rep.Findings, broken)
			}
		})
	}
}
