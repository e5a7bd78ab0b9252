package bench

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/names"
)

// runStorage is row 7: a tree of 10,000 files of distinct content, then 100
// forks of it (through the service), each changing one file to a new
// version of the same size. The forks add their two events and the changed
// files' new content; nothing of the tree is copied. The row compares the
// bytes they add (stream state Bytes of the event stream, the blob store
// and the snapshot bucket) with the bytes of one copy of the tree (what
// building it added). The overhead held to the target is what the forks add
// beyond the new content itself: 100 new versions of files of average size
// are, by construction, 1% of 10,000 such files, which no storage scheme
// that keeps whole versions can avoid.
//
// Embedded, the row runs on a server of its own, so that nothing else
// writes while it measures; on a cluster, other writers add noise.
func runStorage(ctx context.Context, r *Runner) ([]Result, error) {
	e := r.Fast
	if r.Opts.NATS == "" {
		var err error
		if e, err = r.freshEmbedded(ctx, "storage"); err != nil {
			return nil, err
		}
		e.Name = "no-fsync, own"
	}
	sz := r.Sizes
	size := func(i int) int {
		// A fixed spread of sizes in [min, max), like a source tree's.
		span := uint64(max(sz.StorageMaxSize-sz.StorageMinSize, 1))
		return sz.StorageMinSize + int((uint64(i)*2654435761)%span)
	}
	b0, err := storedBytes(ctx, e)
	if err != nil {
		return nil, err
	}
	du0 := diskUsage(e.Dir)
	tree, err := r.build(ctx, e, historySpec{Files: sz.StorageFiles, Events: minEvents(sz.StorageFiles),
		Content: func(i int) []byte { return sourceLike(uint64(i), size(i)) }})
	if err != nil {
		return nil, err
	}
	b1, err := storedBytes(ctx, e)
	if err != nil {
		return nil, err
	}
	du1 := diskUsage(e.Dir)
	var content int64
	for i := 0; i < sz.StorageForks; i++ {
		f, err := e.Client.Fork(ctx, client.ForkRequest{Session: tree.Head.ID})
		if err != nil {
			return nil, err
		}
		k := (i * 97) % sz.StorageFiles
		data := sourceLike(uint64(1_000_000+i), size(k))
		if _, err := e.Client.Write(ctx, client.WriteRequest{Session: f.Session.ID, Path: filePath(k), Content: data}); err != nil {
			return nil, err
		}
		content += int64(len(data))
	}
	b2, err := storedBytes(ctx, e)
	if err != nil {
		return nil, err
	}
	du2 := diskUsage(e.Dir)
	one, added := float64(b1-b0), float64(b2-b1)
	overhead := added - float64(content)
	note := fmt.Sprintf("files %d-%d bytes; %.0f bytes per fork in all, %.0f of them new content",
		sz.StorageMinSize, sz.StorageMaxSize-1, added/float64(sz.StorageForks), float64(content)/float64(sz.StorageForks))
	if e.Dir != "" {
		note += fmt.Sprintf("; du: tree %.1f MiB, forks %.1f MiB", float64(du1-du0)/(1<<20), float64(du2-du1)/(1<<20))
	}
	oneFig := Figure{Value: one, Unit: "bytes", Samples: 1}
	rawWhat := fmt.Sprintf("one copy of the %s-file tree (its blobs and events)", count(sz.StorageFiles))
	res := []Result{
		{Case: fmt.Sprintf("%d forks: overhead beyond the new content", sz.StorageForks), Server: e.Name,
			Strand: Figure{Value: overhead, Unit: "bytes", Samples: 1}, Raw: &oneFig, RawWhat: rawWhat,
			Ratio: ratio(overhead, one), Target: atMost(100*ratio(overhead, one), 1, "overhead", "% of one copy"), Note: note},
		{Case: fmt.Sprintf("%d forks: all bytes added", sz.StorageForks), Server: e.Name,
			Strand: Figure{Value: added, Unit: "bytes", Samples: 1}, Raw: &oneFig, RawWhat: rawWhat,
			Ratio: ratio(added, one), Note: fmt.Sprintf("includes the %d changed files' new content", sz.StorageForks)},
	}
	r.progressf("  one copy %.1f MiB; %d forks added %.0f KiB (%.0f KiB new content): overhead %.3f%%",
		one/(1<<20), sz.StorageForks, added/1024, float64(content)/1024, 100*ratio(overhead, one))
	return res, nil
}

// storedBytes is what the store's streams hold, in bytes.
func storedBytes(ctx context.Context, e *Env) (uint64, error) {
	var total uint64
	for _, name := range []string{names.EventStream, names.BlobStream, "KV_" + names.SnapshotBucket} {
		s, err := e.JS.Stream(ctx, name)
		if err != nil {
			return 0, fmt.Errorf("stream %s: %w", name, err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			return 0, fmt.Errorf("stream %s: %w", name, err)
		}
		total += info.State.Bytes
	}
	return total, nil
}

// diskUsage sums the sizes of the files under dir (0 without a dir).
func diskUsage(dir string) int64 {
	if dir == "" {
		return 0
	}
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}
