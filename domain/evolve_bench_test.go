package domain

import (
	"fmt"
	"strconv"
	"testing"
	"time"
)

// benchHistory decides and encodes a history like the audit benchmark's:
// one session, writes over 100 files in 10 directories, with a directory
// made, a file renamed or removed now and then and a checkpoint every 100
// events. It returns the encoded events and their hashes.
func benchHistory(tb testing.TB, n int) ([][]byte, []Hash) {
	tb.Helper()
	var s *Session
	bodies := make([][]byte, 0, n)
	hashes := make([]Hash, 0, n)
	at := time.Unix(1_700_000_000, 0)
	for seq := uint64(1); len(bodies) < n; seq++ {
		var cmd Command = CreateSession{ID: "s0001", Tenant: "bench", Owner: "bench"}
		if s != nil {
			v := s.Version
			p := fmt.Sprintf("dir%d/file%d.go", v%10, (v*13)%100)
			switch {
			case v%100 == 0:
				cmd = CreateCheckpoint{Name: "cp" + strconv.FormatUint(v, 10)}
			case v%97 == 0:
				cmd = ChangeFiles{Ops: []FileOp{{Kind: OpMkdir, Path: fmt.Sprintf("extra/d%d", v)}}}
			case v%53 == 0 && s.Tree.Lookup(p) != nil:
				cmd = ChangeFiles{Ops: []FileOp{{Kind: OpRename, Path: p, To: p + ".old"}}}
			default:
				cmd = ChangeFiles{Ops: []FileOp{{Kind: OpWrite, Path: p, Content: Sum([]byte(strconv.FormatUint(v%1000, 10))), Size: int64(v % 1000)}}}
			}
		}
		meta := Meta{EventID: strconv.FormatUint(seq, 36), Actor: "agent-" + strconv.Itoa(int(seq%3)), Time: at.Add(time.Duration(seq) * time.Millisecond)}
		ev, next, err := Execute(s, cmd, meta, nil)
		if err != nil {
			tb.Fatalf("event %d: %v", seq, err)
		}
		body, err := ev.Encode()
		if err != nil {
			tb.Fatal(err)
		}
		h := Sum(body)
		next.Commit(ev, seq, h)
		s = next
		bodies, hashes = append(bodies, body), append(hashes, h)
	}
	return bodies, hashes
}

// BenchmarkDecodeEvent decodes one envelope per operation: in full, and
// without its operations (what the session views read).
func BenchmarkDecodeEvent(b *testing.B) {
	bodies, _ := benchHistory(b, 1000)
	for _, c := range []struct {
		name   string
		decode func([]byte) (*Event, error)
	}{{"full", DecodeEvent}, {"head", DecodeEventHead}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := c.decode(bodies[i%len(bodies)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkEvolve folds one decoded event per operation into the state
// before it, the recorded root checked: what an audit replay does after
// decoding.
func BenchmarkEvolve(b *testing.B) {
	bodies, hashes := benchHistory(b, 1000)
	events := make([]*Event, len(bodies))
	for i, body := range bodies {
		ev, err := DecodeEvent(body)
		if err != nil {
			b.Fatal(err)
		}
		events[i] = ev
	}
	b.ReportAllocs()
	var s *Session
	i := 0
	for b.Loop() {
		if i == len(events) {
			i, s = 0, nil
		}
		n, err := Evolve(s, events[i], uint64(i+1), hashes[i], nil)
		if err != nil {
			b.Fatal(err)
		}
		s = n
		i++
	}
}

// BenchmarkEncodeEvent encodes one decoded envelope per operation: what
// every append does before publishing.
func BenchmarkEncodeEvent(b *testing.B) {
	bodies, _ := benchHistory(b, 1000)
	evs := make([]*Event, len(bodies))
	for i, body := range bodies {
		ev, err := DecodeEvent(body)
		if err != nil {
			b.Fatal(err)
		}
		evs[i] = ev
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := evs[i%len(evs)].Encode(); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
