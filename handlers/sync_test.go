package handlers_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

func TestFS_Sync(t *testing.T) {
	t.Parallel()
	e := startSources(t)
	id := e.session(t)
	e.batch(t, id, wr("keep.txt", "keep\n"), wr("change.txt", "old\n"), wr("gone.txt", "gone\n"),
		client.BatchOp{Op: domain.OpSymlink, Path: "was-link", Target: "keep.txt"})
	archive := srcTar(t, true, []srcFile{
		{"keep.txt", "file", "keep\n", 0o644},
		{"change.txt", "file", "new\n", 0o755},
		{"was-link", "file", "now a file\n", 0o644},
		{"dir", "dir", "", 0o755},
		{"dir/added.txt", "file", "added\n", 0o644},
		{"dir/l", "symlink", "added.txt", 0},
	})

	before := e.env.LastSeq(t)
	r, err := e.c.Sync(t.Context(), id, archive, false, client.Mutation{})
	if err != nil || !r.Changed {
		t.Fatalf("sync = %+v, %v", r, err)
	}
	if after := e.env.LastSeq(t); after != before+1 || r.Position != after {
		t.Fatalf("sync appended %d events (position %d, last %d), want one", after-before, r.Position, after)
	}
	got := e.tree(t, id, "")
	checkTree(t, got, []srcFile{
		{"keep.txt", "file", "keep\n", 0o644},
		{"change.txt", "file", "new\n", 0o755},
		{"was-link", "file", "now a file\n", 0o644},
		{"gone.txt", "file", "gone\n", 0o644},
		{"dir", "dir", "", 0o755},
		{"dir/added.txt", "file", "added\n", 0o644},
		{"dir/l", "symlink", "added.txt", 0},
	})

	again, err := e.c.Sync(t.Context(), id, archive, false, client.Mutation{})
	if err != nil || again.Changed || again.Position != r.Position {
		t.Fatalf("sync of the same archive = %+v, %v; want nothing changed", again, err)
	}

	del, err := e.c.Sync(t.Context(), id, archive, true, client.Mutation{ExpectedPosition: r.Position})
	if err != nil || !del.Changed || del.Removed != 1 {
		t.Fatalf("sync with delete = %+v, %v; want gone.txt removed", del, err)
	}
	if _, ok := e.tree(t, id, "")["gone.txt"]; ok {
		t.Fatal("gone.txt survived sync with delete")
	}

	// More changes than one event holds: refused, nothing written, and the
	// error says what to do instead.
	t.Run("TooLarge", func(t *testing.T) {
		id := e.session(t)
		var files []srcFile
		for i := range domain.MaxBatchOps + 1 {
			files = append(files, srcFile{fmt.Sprintf("f%04d.txt", i), "file", fmt.Sprint(i), 0o644})
		}
		before := e.env.LastSeq(t)
		_, err := e.c.Sync(t.Context(), id, srcTar(t, false, files), false, client.Mutation{})
		if client.ErrorCode(err) != domain.CodeTooLarge || !strings.Contains(err.Error(), "strand push") {
			t.Fatalf("sync of %d new files: %v, want too_large pointing to a working copy's push", len(files), err)
		}
		if after := e.env.LastSeq(t); after != before {
			t.Fatalf("a refused sync appended %d events", after-before)
		}
	})

	// The archive's own folder entries set their folders' modes; a folder
	// only implied by the paths below it keeps the session's.
	t.Run("FolderModes", func(t *testing.T) {
		id := e.session(t)
		e.batch(t, id, client.BatchOp{Op: domain.OpMkdir, Path: "own", Mode: 0o755}, client.BatchOp{Op: domain.OpMkdir, Path: "implied", Mode: 0o750},
			client.BatchOp{Op: domain.OpWrite, Path: "own/a.txt", Content: []byte("a\n"), Mode: 0o644},
			client.BatchOp{Op: domain.OpWrite, Path: "implied/b.txt", Content: []byte("b\n"), Mode: 0o644})
		archive := srcTar(t, false, []srcFile{
			{"own", "dir", "", 0o700},
			{"own/a.txt", "file", "a\n", 0o644},
			{"implied/b.txt", "file", "b\n", 0o644},
		})
		for _, del := range []bool{false, true} {
			r, err := e.c.Sync(t.Context(), id, archive, del, client.Mutation{})
			if err != nil {
				t.Fatalf("sync (delete %v): %v", del, err)
			}
			if !del && (!r.Changed || r.Written != 1 || r.Removed != 0) {
				t.Fatalf("sync = %+v; want one change: the folder's mode", r)
			}
			if del && r.Changed {
				t.Fatalf("sync with delete after the same archive = %+v; want nothing changed", r)
			}
			got := e.tree(t, id, "")
			if got["own"].mode != 0o700 || got["implied"].mode != 0o750 {
				t.Fatalf("after sync (delete %v): own %o, implied %o; want 700 (the archive's) and 750 (kept)", del, got["own"].mode, got["implied"].mode)
			}
		}
	})

	t.Run("AllOrNothing", func(t *testing.T) {
		last := e.env.LastSeq(t)
		bad := srcTar(t, false, []srcFile{{"fine.txt", "file", "fine", 0o644}, {"../escape", "file", "x", 0o644}})
		if _, err := e.c.Sync(t.Context(), id, bad, true, client.Mutation{}); client.ErrorCode(err) != domain.CodeInvalidArgument {
			t.Fatalf("sync of a bad archive: %v, want invalid_argument", err)
		}
		if _, err := e.c.Sync(t.Context(), id, archive, true, client.Mutation{ExpectedPosition: 1}); client.ErrorCode(err) != domain.CodeConflict {
			t.Fatalf("sync with a stale expected_position: %v, want conflict", err)
		}
		if e.env.LastSeq(t) != last {
			t.Fatal("a refused sync appended an event")
		}
	})
}

// TestFS_SyncFrom: an archive read from a reader that hands out a little
// at a time (as a pipe does) is uploaded a chunk at a time and synced as
// the same archive in memory is; an archive of exactly one chunk, or of
// one chunk and a byte, cuts where UploadArchive cuts it.
func TestFS_SyncFrom(t *testing.T) {
	t.Parallel()
	e := startSources(t)
	id := e.session(t)
	big := strings.Repeat("0123456789abcdef", 3*e.c.ChunkSize/16/2) // 1.5 chunks
	files := []srcFile{{"big.txt", "file", big, 0o644}, {"small.txt", "file", "small\n", 0o644}}
	archive := srcTar(t, false, files)
	if len(archive) <= e.c.ChunkSize {
		t.Fatalf("the archive is %d bytes, want more than a chunk", len(archive))
	}
	r, err := e.c.SyncFrom(t.Context(), id, iotest.HalfReader(bytes.NewReader(archive)), false, client.Mutation{})
	if err != nil || !r.Changed || r.Written != 2 {
		t.Fatalf("sync from a reader = %+v, %v", r, err)
	}
	checkTree(t, e.tree(t, id, ""), files)
	for _, n := range []int{0, 1, e.c.ChunkSize, e.c.ChunkSize + 1} {
		data := bytes.Repeat([]byte{'x'}, n)
		want, err := e.c.UploadArchive(t.Context(), data)
		if err != nil {
			t.Fatal(err)
		}
		got, err := e.c.UploadArchiveFrom(t.Context(), iotest.HalfReader(bytes.NewReader(data)))
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) || len(got) != max(1, (n+e.c.ChunkSize-1)/e.c.ChunkSize) {
			t.Errorf("%d bytes: chunks %v from a reader, %v from memory", n, got, want)
		}
	}
}
