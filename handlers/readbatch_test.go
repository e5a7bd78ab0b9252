package handlers_test

import (
	"bytes"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

func TestFs_ReadBatch(t *testing.T) {
	h := start(t)
	ctx := t.Context()
	id := h.session(t)
	h.write(t, id, "a.txt", "same")
	h.write(t, id, "dir/b.txt", "same")
	h.write(t, id, "c.txt", "other")
	h.write(t, id, "empty", "")
	if _, err := h.c.Symlink(ctx, client.SymlinkRequest{Session: id, Path: "link", Target: "a.txt"}); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("0123456789"), 100)
	if _, err := h.c.Write(ctx, client.WriteRequest{Session: id, Path: "big", Content: big}); err != nil {
		t.Fatal(err)
	}
	before := h.write(t, id, "c.txt", "changed").Position - 1

	t.Run("ContentOncePerHash", func(t *testing.T) {
		r, err := h.c.ReadBatch(ctx, client.ReadBatchRequest{Session: id, Paths: []string{"a.txt", "/dir/b.txt", "c.txt", "empty", "link", "dir", "missing", "../up"}})
		if err != nil {
			t.Fatal(err)
		}
		want := []struct {
			path, kind, content string
			errCode             string
		}{
			{"a.txt", "file", "same", ""}, {"dir/b.txt", "file", "", ""}, {"c.txt", "file", "changed", ""},
			{"empty", "file", "", ""}, {"link", "symlink", "", ""}, {"dir", "dir", "", ""},
			{"missing", "", "", "not_found"}, {"../up", "", "", "invalid_argument"},
		}
		if len(r.Files) != len(want) {
			t.Fatalf("got %d files, want %d: %+v", len(r.Files), len(want), r.Files)
		}
		for i, w := range want {
			f := r.Files[i]
			if f.Path != w.path || f.Kind != w.kind || string(f.Content) != w.content || f.More {
				t.Errorf("file %d: got %+v, want path %q kind %q content %q", i, f, w.path, w.kind, w.content)
			}
			if (f.Error == nil) != (w.errCode == "") || (f.Error != nil && f.Error.Code != w.errCode) {
				t.Errorf("file %d (%s): error %+v, want %q", i, w.path, f.Error, w.errCode)
			}
		}
		if r.Files[1].Hash != r.Files[0].Hash {
			t.Errorf("same content, hashes %s and %s", r.Files[0].Hash, r.Files[1].Hash)
		}
		if r.Files[4].Target != "a.txt" {
			t.Errorf("symlink target %q, want a.txt", r.Files[4].Target)
		}
	})
	t.Run("MaxBytes", func(t *testing.T) {
		r, err := h.c.ReadBatch(ctx, client.ReadBatchRequest{Session: id, Paths: []string{"c.txt", "big", "a.txt"}, MaxBytes: 500})
		if err != nil {
			t.Fatal(err)
		}
		if string(r.Files[0].Content) != "changed" || !r.Files[1].More || r.Files[1].Content != nil || string(r.Files[2].Content) != "same" {
			t.Fatalf("with max_bytes 500: %+v", r.Files)
		}
	})
	t.Run("AtPosition", func(t *testing.T) {
		r, err := h.c.ReadBatch(ctx, client.ReadBatchRequest{Session: id, At: client.AtPosition(before), Paths: []string{"c.txt"}})
		if err != nil {
			t.Fatal(err)
		}
		if string(r.Files[0].Content) != "other" || r.Position != before {
			t.Fatalf("at %d: got %q at %d, want \"other\"", before, r.Files[0].Content, r.Position)
		}
	})
	t.Run("Encodings", func(t *testing.T) {
		paths := []string{"a.txt", "dir/b.txt", "big", "link", "dir", "missing"}
		j, err := h.c.ReadBatch(ctx, client.ReadBatchRequest{Session: id, Paths: paths, Encoding: client.ManifestJSON})
		if err != nil {
			t.Fatal(err)
		}
		m, err := h.c.ReadBatch(ctx, client.ReadBatchRequest{Session: id, Paths: paths, Encoding: client.ManifestMsgpack})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(j, m) {
			t.Fatalf("the encodings differ:\njson    %+v\nmsgpack %+v", j, m)
		}
		if !bytes.Equal(m.Files[2].Content, big) {
			t.Fatalf("big came back as %d bytes, want %d", len(m.Files[2].Content), len(big))
		}
	})
	t.Run("BadInput", func(t *testing.T) {
		_, err := h.c.ReadBatch(ctx, client.ReadBatchRequest{Session: id, Paths: []string{"a"}, Encoding: "xml"})
		wantCode(t, "unknown encoding", err, domain.CodeInvalidArgument)
		_, err = h.c.ReadBatch(ctx, client.ReadBatchRequest{Session: id})
		wantCode(t, "no paths", err, domain.CodeInvalidArgument)
		_, err = h.c.ReadBatch(ctx, client.ReadBatchRequest{Session: id, Paths: make([]string, client.MaxReadBatchPaths+1)})
		wantCode(t, "too many paths", err, domain.CodeTooLarge)
		_, err = h.c.ReadBatch(ctx, client.ReadBatchRequest{Session: id, Paths: []string{"a"}, MaxBytes: -1})
		wantCode(t, "negative max_bytes", err, domain.CodeInvalidArgument)
		err = h.c.Request(ctx, "fs", "read_batch", map[string]any{"session": id, "paths": []string{"a"}, "bogus": 1}, nil)
		wantCode(t, "unknown field", err, domain.CodeInvalidArgument)
		err = h.c.Request(ctx, "fs", "read_batch", map[string]any{"session": id, "paths": "a"}, nil)
		wantCode(t, "paths not an array", err, domain.CodeInvalidArgument)
		_, err = h.c.ReadBatch(ctx, client.ReadBatchRequest{Session: "01M8639GP38ZZVG1GPASRX3QZR", Paths: []string{"a"}})
		wantCode(t, "unknown session", err, domain.CodeNotFound)
		_, err = h.c.ReadBatch(ctx, client.ReadBatchRequest{Session: id, At: "nope", Paths: []string{"a"}})
		wantCode(t, "unknown checkpoint", err, domain.CodeNotFound)
	})
}

func TestClient_FetchContent(t *testing.T) {
	h := start(t)
	ctx := t.Context()
	id := h.session(t)
	// Larger than a chunk (read in parts), many small files, duplicates.
	huge := bytes.Repeat([]byte("abcdefghij"), 80_000)
	if _, err := h.c.Write(ctx, client.WriteRequest{Session: id, Path: "huge", Content: huge}); err != nil {
		t.Fatal(err)
	}
	var ops []client.BatchOp
	for i := range 300 {
		ops = append(ops, client.BatchOp{Op: "write", Path: "f/" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + "-" + itoa(i), Content: []byte(itoa(i % 100))})
	}
	res, err := h.c.Batch(ctx, client.BatchRequest{Session: id, Ops: ops})
	if err != nil {
		t.Fatal(err)
	}
	m, err := h.c.Manifest(ctx, client.ManifestRequest{Session: id, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var refs []client.FileRef
	for _, e := range m.Entries {
		if e.Kind == "file" {
			refs = append(refs, client.FileRef{Path: e.Path, Hash: e.Hash, Size: e.Size})
		}
	}
	var mu sync.Mutex
	got := map[string][]byte{}
	calls := 0
	err = h.c.FetchContent(ctx, id, client.AtPosition(res.Position), refs, 3, func(hash string, data []byte) error {
		mu.Lock()
		defer mu.Unlock()
		calls++
		got[hash] = data
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls != 101 || len(got) != 101 {
		t.Fatalf("fn called %d times for %d hashes, want 101 (100 small contents and one large)", calls, len(got))
	}
	if !bytes.Equal(got[domain.Sum(huge).String()], huge) {
		t.Fatal("the large file came back different")
	}
	// A hash that the session does not hold at that position fails.
	bad := []client.FileRef{{Path: "huge", Hash: domain.Sum([]byte("x")).String(), Size: 1}}
	if err := h.c.FetchContent(ctx, id, client.AtPosition(res.Position), bad, 1, func(string, []byte) error { return nil }); err == nil {
		t.Fatal("FetchContent with a wrong hash succeeded")
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestFs_Has(t *testing.T) {
	h := start(t)
	ctx := t.Context()
	id := h.session(t)
	up, err := h.c.Upload(ctx, id, []byte("uploaded by acme"))
	if err != nil {
		t.Fatal(err)
	}
	never := domain.Sum([]byte("never uploaded")).String()
	r, err := h.c.Has(ctx, []string{never, up.Hash})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Have) != 1 || r.Have[0] != up.Hash {
		t.Fatalf("acme has %v, want only %s", r.Have, up.Hash)
	}
	// Another tenant never uploaded it: a hash alone gives nothing away.
	r, err = h.client("globex").Has(ctx, []string{up.Hash})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Have) != 0 {
		t.Fatalf("globex has %v, want nothing", r.Have)
	}
	_, err = h.c.Has(ctx, nil)
	wantCode(t, "no hashes", err, domain.CodeInvalidArgument)
	_, err = h.c.Has(ctx, []string{"zz"})
	wantCode(t, "a malformed hash", err, domain.CodeInvalidArgument)
	_, err = h.c.Has(ctx, make([]string, client.MaxHasHashes+1))
	wantCode(t, "too many hashes", err, domain.CodeTooLarge)
}
