package domain_test

import (
	"bytes"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/strand-dev/strand/domain"
)

// reflectiveOp is domain.Op without its methods: the struct as the
// reflective encoder writes it.
type reflectiveOp domain.Op

// TestOpEncoding: Op's hand-written MessagePack is the reflective
// encoder's, byte for byte, for ops with every field set or empty, nil or
// empty slices, and lengths on both sides of each format's bounds; alone
// and inside an event, so that events and their hashes are unchanged.
func TestOpEncoding(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	str := func() string {
		n := []int{0, 1, 31, 32, 255, 256, 70000}[r.IntN(7)]
		return string(bytes.Repeat([]byte{byte('a' + r.IntN(26))}, n))
	}
	bin := func() []byte {
		switch n := []int{-1, 0, 1, 255, 256, 65535, 65536}[r.IntN(7)]; n {
		case -1:
			return nil
		default:
			return bytes.Repeat([]byte{byte(r.Uint32())}, n)
		}
	}
	for i := range 3000 {
		op := domain.Op{Kind: str(), Path: str(), To: str(), Target: str(), Content: bin(),
			Size:      []int64{0, 1, -1, 127, 1 << 40, math.MinInt64}[r.IntN(6)],
			Mode:      []uint32{0, 0o644, 0o7777, math.MaxUint32}[r.IntN(4)],
			Recursive: r.IntN(2) == 0, Name: str(), Value: bin(), Data: bin()}
		if i%3 == 0 { // the common shapes: a write, a remove
			op = domain.Op{Kind: domain.OpWrite, Path: str(), Content: bin(), Size: int64(r.IntN(5000)), Mode: 0o644, Data: bin()}
		}
		got, err := msgpack.Marshal(op)
		if err != nil {
			t.Fatal(err)
		}
		want, err := msgpack.Marshal(reflectiveOp(op))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("op %d %+v: encoded\n%x\nreflective\n%x", i, op, got[:min(len(got), 200)], want[:min(len(want), 200)])
		}
	}

	// Inside an event, through the canonical encoder.
	ops := []domain.Op{
		{Kind: domain.OpWrite, Path: "a/b.go", Content: domain.Sum([]byte("x")).Bytes(), Size: 1, Mode: 0o644, Data: []byte("x")},
		{Kind: domain.OpRemove, Path: "c", Recursive: true},
		{Kind: domain.OpRename, Path: "d", To: "e"},
		{Kind: domain.OpSetXattr, Path: "e", Name: "user.k", Value: []byte{0}},
	}
	e := &domain.Event{Type: domain.BatchApplied, Session: "s", Tenant: "t", Actor: "a", Ops: ops}
	got, err := e.Encode()
	if err != nil {
		t.Fatal(err)
	}
	plain := make([]reflectiveOp, len(ops))
	for i, op := range ops {
		plain[i] = reflectiveOp(op)
	}
	want, err := msgpack.Marshal(plain)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(got, want) {
		t.Fatalf("event %x does not hold the reflective ops %x", got, want)
	}
}
