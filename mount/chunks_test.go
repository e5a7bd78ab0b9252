package mount_test

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/mount"
	"github.com/strand-dev/strand/names"
)

// TestMount_SmallChangeOfLargeFile: an in-place overwrite or an append to
// a large file uploads only the chunks that changed. The file is 8 MiB;
// STRAND_MOUNT_BIG=1 makes it 256 MiB, the case (about a minute
// on a loaded machine, so not in CI).
func TestMount_SmallChangeOfLargeFile(t *testing.T) {
	h := start(t)
	size := 8 << 20
	if os.Getenv("STRAND_MOUNT_BIG") != "" {
		size = 256 << 20
	}
	data := make([]byte, size)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	if _, err := h.c.Write(context.Background(), client.WriteRequest{Session: h.session, Path: "big.bin", Content: data}); err != nil {
		t.Fatal(err)
	}
	// Count the distinct chunks sent (a request the client retries under
	// load sends the same chunk again, and stores it once).
	var mu sync.Mutex
	sent := map[string]bool{}
	var uploads, uploaded atomic.Int64
	sub, err := h.c.Conn().Subscribe(names.Subject("acme", "fs", "upload"), func(m *nats.Msg) {
		var req client.UploadRequest
		if err := json.Unmarshal(m.Data, &req); err != nil {
			return
		}
		h := domain.Sum(req.Data).String()
		mu.Lock()
		defer mu.Unlock()
		if !sent[h] {
			sent[h] = true
			uploads.Add(1)
			uploaded.Add(int64(len(req.Data)))
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	// Only fsync flushes: a timed flush between the kernel's writes of one
	// change would send a chunk twice, in two states.
	_, dir := h.mount("", func(o *mount.Options) { o.FlushInterval = time.Hour })

	check := func(name string, change func(f *os.File) error, maxUploads, maxBytes int64) {
		t.Helper()
		uploads.Store(0)
		uploaded.Store(0)
		mu.Lock()
		clear(sent)
		mu.Unlock()
		f, err := os.OpenFile(filepath.Join(dir, "big.bin"), os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := change(f); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		began := time.Now()
		if err := f.Sync(); err != nil {
			t.Fatalf("%s: fsync: %v", name, err)
		}
		took := time.Since(began)
		f.Close()
		if err := h.c.Conn().Flush(); err != nil {
			t.Fatal(err)
		}
		got, _, err := h.c.ReadAll(context.Background(), h.session, "big.bin", "")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("%s: the service's content differs from what was written", name)
		}
		if n := uploads.Load(); n > maxUploads || uploaded.Load() > maxBytes {
			t.Errorf("%s: %d distinct chunks uploaded (%d bytes), want at most %d (%d bytes)", name, n, uploaded.Load(), maxUploads, maxBytes)
		}
		t.Logf("%s of a %d MiB file: %d distinct chunks uploaded, %d bytes; fsync (the flush) took %s", name, size>>20, uploads.Load(), uploaded.Load(), took.Round(time.Millisecond))
	}
	check("4 KiB overwrite", func(f *os.File) error {
		patch := bytes.Repeat([]byte{'x'}, 4096)
		copy(data[3<<20+100:], patch)
		_, err := f.WriteAt(patch, 3<<20+100)
		return err
	}, 1, 512<<10)
	check("append", func(f *os.File) error {
		tail := []byte("appended\n")
		data = append(data, tail...)
		_, err := f.WriteAt(tail, int64(size))
		return err
	}, 1, 512<<10)
}
