package streams

import (
	"context"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/strand-dev/strand/domain"
)

// TestSnapshotBytes sums the tenant's snapshot documents from the sizes
// their references carry, and looks up the document of a reference
// written before references carried one.
func TestSnapshotBytes(t *testing.T) {
	st := startEnv(t).open(t)
	ctx := context.Background()
	meta := domain.Meta{EventID: "01J00000000000000000000001", Actor: "t", Time: time.Unix(1700000000, 0).UTC()}
	res, err := st.Create(ctx, meta, domain.CreateSession{ID: "01J0000000000000000000000S", Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	s := res.Session
	if err := st.WriteSnapshot(ctx, s); err != nil {
		t.Fatal(err)
	}
	body, _ := encodeSnapshot(s)
	// An older reference to another document, without its size.
	other := []byte("an older snapshot document")
	h, err := st.Blobs.Put(ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := msgpack.Marshal(snapshotRef{Format: snapshotFormat, Blob: h[:], Position: 9, Version: 9})
	if _, err := st.snaps.Put(ctx, snapshotKey("acme", s.ID, 9), ref); err != nil {
		t.Fatal(err)
	}
	bytes, n, err := st.SnapshotBytes(ctx, "acme")
	if want := uint64(len(body) + len(other)); err != nil || bytes != want || n != 2 {
		t.Fatalf("snapshot bytes of acme: %d in %d, %v; want %d in 2", bytes, n, err, want)
	}
	if bytes, n, err := st.SnapshotBytes(ctx, "other"); err != nil || bytes != 0 || n != 0 {
		t.Fatalf("snapshot bytes of another tenant: %d in %d, %v; want none", bytes, n, err)
	}
}
