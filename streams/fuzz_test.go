package streams

import (
	"fmt"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/strand-dev/strand/domain"
)

// Fuzz targets for the bodies that streams decodes from JetStream: tree
// blobs (a source revision names one for good), snapshots (a cache, but a
// bad one must be refused, not crash a loader) and stored message headers.
// Stored data is written by Strand itself; these guard against corruption
// and against anyone else with write access to the streams.

// fuzzSession builds a small session through the domain.
func fuzzSession(f *testing.F) *domain.Session {
	clock := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var s *domain.Session
	states := map[uint64]*domain.Session{}
	pos := uint64(0)
	do := func(cmd domain.Command) {
		pos++
		m := domain.Meta{EventID: fmt.Sprint("e", pos), Actor: "fuzz", Time: clock.Add(time.Duration(pos) * time.Second), RequestID: fmt.Sprint("r", pos)}
		e, n, err := domain.Execute(s, cmd, m, func(p uint64) (*domain.Session, error) { return states[p], nil })
		if err != nil {
			f.Fatalf("%T: %v", cmd, err)
		}
		body, _ := e.Encode()
		n.Commit(e, pos, domain.Sum(body))
		s, states[pos] = n, n
	}
	do(domain.CreateSession{ID: "01HZZZZZZZZZZZZZZZZZZZZZZZ", Tenant: "acme", Owner: "o", Tags: map[string]string{"k": "v"}})
	h := domain.Sum([]byte("x"))
	do(domain.ChangeFiles{Batch: true, Ops: []domain.FileOp{
		{Kind: domain.OpMkdir, Path: "d"},
		{Kind: domain.OpWrite, Path: "d/f", Content: h, Size: 1},
		{Kind: domain.OpSymlink, Path: "l", Target: "d/f"},
	}})
	do(domain.CreateCheckpoint{Name: "cp"})
	do(domain.Annotate{ID: "n", Body: "b"})
	return s
}

func FuzzDecodeTree(f *testing.F) {
	s := fuzzSession(f)
	for _, tr := range []domain.Tree{{}, s.Tree} {
		b, err := encodeTree(tr)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0x83, 0xa1, 'f', 0x01, 0xa4, 'r', 'o', 'o', 't', 0xc0, 0xa7, 'e', 'n', 't', 'r', 'i', 'e', 's', 0x91, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, err := decodeTree(b)
		if err != nil {
			return
		}
		// What decodes is a tree that encodes to a blob decoding to the
		// same root.
		again, err := encodeTree(tr)
		if err != nil {
			t.Fatalf("a decoded tree does not encode: %v", err)
		}
		tr2, err := decodeTree(again)
		if err != nil || tr2.Hash() != tr.Hash() {
			t.Fatalf("tree %s: re-encoded and decoded: %v, %v", tr.Hash(), tr2.Hash(), err)
		}
	})
}

func FuzzDecodeSnapshot(f *testing.F) {
	s := fuzzSession(f)
	b, err := encodeSnapshot(s)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte{0x80})
	f.Add([]byte{})
	// Found by this target: recent request ids without their positions
	// made decodeSnapshot panic.
	var doc snapshotDoc
	if err := msgpack.Unmarshal(b, &doc); err != nil || len(doc.RecentIDs) == 0 {
		f.Fatalf("seed snapshot: %v, %d recent ids", err, len(doc.RecentIDs))
	}
	doc.RecentPos = doc.RecentPos[:1]
	bad, _ := msgpack.Marshal(&doc)
	if _, err := decodeSnapshot(bad); err == nil {
		f.Fatal("a snapshot with more recent ids than positions decodes")
	}
	f.Add(bad)
	f.Fuzz(func(t *testing.T, b []byte) {
		done := make(chan string, 1)
		go func() {
			got, err := decodeSnapshot(b)
			if err != nil {
				done <- ""
				return
			}
			if _, err := encodeSnapshot(got); err != nil {
				done <- fmt.Sprintf("a decoded snapshot does not encode: %v", err)
				return
			}
			done <- ""
		}()
		select {
		case msg := <-done:
			if msg != "" {
				t.Fatal(msg)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("decoding and encoding a snapshot of %d bytes takes more than 5s", len(b))
		}
	})
}

func FuzzDecodeHeaders(f *testing.F) {
	for _, s := range []string{"", "NATS/1.0\r\n\r\n", "NATS/1.0\r\nA: b\r\nA: c\r\n\r\n", "NATS/1.0 503\r\n", "NATS/1.0\r\n:\r\n\r\n", "x\r\ny:z"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = decodeHeaders(b)
	})
}
