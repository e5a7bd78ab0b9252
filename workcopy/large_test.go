package workcopy_test

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/streams/streamstest"
	"github.com/strand-dev/strand/workcopy"
)

// TestPush_LargeFiles: a large file is pushed without being held in
// memory whole (the live heap grows by less than the file: by 25 MiB for
// 48 MiB here, by 74 MiB when a push read every file whole), each chunk
// the service lacks uploaded once and a copy of it not at all; a file over
// the largest size is refused as too_large, naming it, before anything is
// sent.
func TestPush_LargeFiles(t *testing.T) {
	e := start(t)
	id := e.session(t)
	dir := t.TempDir()
	w := e.checkout(t, id, dir)
	ctx := ctxOf(t)

	big := make([]byte, 48<<20)
	_, _ = rand.NewChaCha8([32]byte{7}).Read(big)
	if err := os.WriteFile(filepath.Join(dir, "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	var res workcopy.PushResult
	var err error
	before, peak := streamstest.LiveHeapDuring(func() { res, err = w.Push(ctx, workcopy.PushOptions{}) })
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("live heap %d MiB before the push of a %d MiB file, at most %d MiB during it; %d chunks uploaded", before>>20, len(big)>>20, peak>>20, res.Uploaded)
	if peak > before+uint64(len(big)) {
		t.Errorf("the push of a %d MiB file took the live heap from %d to %d MiB", len(big)>>20, before>>20, peak>>20)
	}
	if want := len(big) / domain.DefaultChunkSize; res.Uploaded != want {
		t.Errorf("%d chunks uploaded, want %d", res.Uploaded, want)
	}
	got, err := e.c.Read(ctxOf(t), client.ReadRequest{Session: id, Path: "big.bin", Length: 1})
	if err != nil {
		t.Fatal(err)
	}
	if want := domain.Sum(big).String(); got.Hash != want || got.Size != int64(len(big)) {
		t.Fatalf("big.bin on the service: %d bytes, hash %s; want %d, %s", got.Size, got.Hash, len(big), want)
	}

	// The same content again: nothing to upload.
	if err := os.WriteFile(filepath.Join(dir, "copy.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	if res, err = w.Push(ctxOf(t), workcopy.PushOptions{}); err != nil || res.Uploaded != 0 {
		t.Errorf("push of a copy: %d chunks uploaded, %v; want none", res.Uploaded, err)
	}

	// Past the largest size (a sparse file): refused, nothing pushed.
	huge := filepath.Join(dir, "huge.img")
	if err := os.Truncate(huge, 0); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	f, err := os.Create(huge)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(domain.MaxBlobSize + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.WriteFile(filepath.Join(dir, "small.txt"), []byte("s"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx = ctxOf(t)
	s0, err := e.c.GetSession(ctx, id, "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.Push(ctx, workcopy.PushOptions{})
	if domain.ErrorCode(err) != domain.CodeTooLarge || !strings.Contains(err.Error(), "huge.img") {
		t.Errorf("push of a file over %d bytes: %v; want too_large naming it", domain.MaxBlobSize, err)
	}
	s1, err := e.c.GetSession(ctx, id, "")
	if err != nil {
		t.Fatal(err)
	}
	if s1.Session.Position != s0.Session.Position {
		t.Errorf("the refused push moved the session from %d to %d", s0.Session.Position, s1.Session.Position)
	}
	if _, err := e.c.Read(ctx, client.ReadRequest{Session: id, Path: "small.txt"}); client.ErrorCode(err) != domain.CodeNotFound {
		t.Errorf("small.txt after the refused push: %v, want not_found", err)
	}
}
