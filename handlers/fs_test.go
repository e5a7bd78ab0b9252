package handlers_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// tree builds a session with a small tree:
//
//	README, a.txt, link -> src/main.go, src/, src/main.go,
//	src/main_test.go, src/util/, src/util/x.go, src2.txt
func tree(t *testing.T, h *harness) string {
	t.Helper()
	id := h.session(t)
	if _, err := h.c.Batch(t.Context(), client.BatchRequest{Session: id, Ops: []client.BatchOp{
		{Op: "write", Path: "README", Content: []byte("readme")},
		{Op: "write", Path: "a.txt", Content: []byte("0123456789")},
		{Op: "mkdir", Path: "src/util"},
		{Op: "write", Path: "src/main.go", Content: []byte("package main")},
		{Op: "write", Path: "src/main_test.go", Content: []byte("package main_test")},
		{Op: "write", Path: "src/util/x.go", Content: []byte("package util")},
		{Op: "write", Path: "src2.txt", Content: []byte("two")},
		{Op: "symlink", Path: "link", Target: "src/main.go"},
	}}); err != nil {
		t.Fatalf("build tree: %v", err)
	}
	return id
}

var treeOrder = []string{"README", "a.txt", "link", "src", "src/main.go", "src/main_test.go", "src/util", "src/util/x.go", "src2.txt"}

func TestFS_Manifest(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx := t.Context()
	id := tree(t, h)

	t.Run("Entries", func(t *testing.T) {
		r, err := h.c.Manifest(ctx, client.ManifestRequest{Session: id})
		if err != nil {
			t.Fatalf("manifest: %v", err)
		}
		if got := paths(r.Entries); !slices.Equal(got, treeOrder) {
			t.Fatalf("got %v, want %v", got, treeOrder)
		}
		if r.NextCursor != "" {
			t.Errorf("got next_cursor %q on the only page, want none", r.NextCursor)
		}
		head, _ := h.c.GetSession(ctx, id, "")
		if r.Position != head.Position || r.Root != head.Session.Root {
			t.Errorf("got position %d root %s, want %d %s", r.Position, r.Root, head.Position, head.Session.Root)
		}
		byPath := map[string]client.EntryView{}
		for _, e := range r.Entries {
			byPath[e.Path] = e
		}
		checks := []struct {
			path, kind, hash, target string
			size                     int64
			mode                     uint32
		}{
			{"a.txt", "file", sha("0123456789"), "", 10, 0o644},
			{"src", "dir", "", "", 0, 0o755},
			{"link", "symlink", "", "src/main.go", 0, 0o777},
		}
		for _, c := range checks {
			e := byPath[c.path]
			if e.Kind != c.kind || e.Size != c.size || e.Mode != c.mode || e.Target != c.target || (c.hash != "" && e.Hash != c.hash) || e.Hash == "" {
				t.Errorf("entry %s: got %s, want kind %s size %d mode %o target %q hash %q", c.path, asJSON(e), c.kind, c.size, c.mode, c.target, c.hash)
			}
		}
	})

	tests := []struct {
		prefix string
		want   []string
	}{
		{"", treeOrder},
		{"/", treeOrder},
		{"src/", []string{"src/main.go", "src/main_test.go", "src/util", "src/util/x.go"}},
		{"/src/", []string{"src/main.go", "src/main_test.go", "src/util", "src/util/x.go"}},
		{"src/ma", []string{"src/main.go", "src/main_test.go"}},
		{"src/main_", []string{"src/main_test.go"}},
		{"src/util/", []string{"src/util/x.go"}},
		{"src/u", []string{"src/util", "src/util/x.go"}},
		{"a", []string{"a.txt"}},
		{"nope/", []string{}},
		{"nope", []string{}},
	}
	for _, tt := range tests {
		for _, limit := range []int{0, 1, 2, 3} {
			// Every page size visits every entry once, in order.
			var got []string
			req := client.ManifestRequest{Session: id, Prefix: tt.prefix, Limit: limit}
			pages := 0
			for {
				r, err := h.c.Manifest(ctx, req)
				if err != nil {
					t.Fatalf("manifest prefix %q limit %d after %q: %v", tt.prefix, limit, req.After, err)
				}
				if limit > 0 && len(r.Entries) > limit {
					t.Errorf("prefix %q limit %d: got a page of %d entries", tt.prefix, limit, len(r.Entries))
				}
				got = append(got, paths(r.Entries)...)
				if pages++; pages > 20 {
					t.Fatalf("prefix %q limit %d: no end after 20 pages, got %v", tt.prefix, limit, got)
				}
				if r.NextCursor == "" {
					break
				}
				req.After = r.NextCursor
			}
			if got == nil {
				got = []string{}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("prefix %q limit %d: got %v, want %v", tt.prefix, limit, got, tt.want)
			}
		}
	}

	t.Run("ManyEntries", func(t *testing.T) {
		// A bigger flat tree paged with the default and a small limit.
		id := h.session(t)
		var ops []client.BatchOp
		var want []string
		for i := range 250 {
			p := fmt.Sprintf("d/%c/f%03d", 'a'+i%26, i)
			ops = append(ops, client.BatchOp{Op: "write", Path: p, Content: []byte(p)})
		}
		if _, err := h.c.Batch(ctx, client.BatchRequest{Session: id, Ops: ops}); err != nil {
			t.Fatalf("batch: %v", err)
		}
		want = h.manifest(t, id, "")
		seen := map[string]int{}
		req := client.ManifestRequest{Session: id, Limit: 7}
		var got []string
		for {
			r, err := h.c.Manifest(ctx, req)
			if err != nil {
				t.Fatalf("manifest after %q: %v", req.After, err)
			}
			for _, e := range r.Entries {
				seen[e.Path]++
				got = append(got, e.Path)
			}
			if r.NextCursor == "" {
				break
			}
			req.After = r.NextCursor
		}
		if len(want) != 250+1+26 {
			t.Errorf("got %d entries in one page, want %d", len(want), 250+1+26)
		}
		if !slices.Equal(got, want) {
			t.Errorf("pages of 7 gave %d entries, one page %d; they differ", len(got), len(want))
		}
		if !slices.IsSortedFunc(got, domain.ComparePaths) {
			t.Errorf("pages of 7 are not in tree order: %v", got)
		}
		for p, n := range seen {
			if n != 1 {
				t.Errorf("%s seen %d times, want once", p, n)
			}
		}
	})
}

func TestFS_Read(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx := t.Context()
	id := tree(t, h)

	tests := []struct {
		offset, length int64
		want           string
		eof            bool
	}{
		{0, 0, "0123456789", true},
		{0, 10, "0123456789", true},
		{0, 100, "0123456789", true},
		{2, 3, "234", false},
		{0, 9, "012345678", false},
		{8, 5, "89", true},
		{9, 1, "9", true},
		{10, 0, "", true},
		{20, 4, "", true},
	}
	for _, tt := range tests {
		r, err := h.c.Read(ctx, client.ReadRequest{Session: id, Path: "a.txt", Offset: tt.offset, Length: tt.length})
		if err != nil {
			t.Fatalf("read offset %d length %d: %v", tt.offset, tt.length, err)
		}
		if string(r.Content) != tt.want || r.EOF != tt.eof || r.Offset != tt.offset || r.Size != 10 || r.Hash != sha("0123456789") {
			t.Errorf("read offset %d length %d: got %q eof %v offset %d size %d, want %q eof %v", tt.offset, tt.length, r.Content, r.EOF, r.Offset, r.Size, tt.want, tt.eof)
		}
	}

	t.Run("Empty", func(t *testing.T) {
		h.write(t, id, "empty", "")
		r, err := h.c.Read(ctx, client.ReadRequest{Session: id, Path: "empty"})
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if len(r.Content) != 0 || !r.EOF || r.Size != 0 || r.Hash != sha("") {
			t.Errorf("read empty file: got %s, want no content, eof, size 0", asJSON(r))
		}
	})

	t.Run("Symlinks", func(t *testing.T) {
		if _, err := h.c.Batch(ctx, client.BatchRequest{Session: id, Ops: []client.BatchOp{
			{Op: "symlink", Path: "src/util/up", Target: "../main.go"},
			{Op: "symlink", Path: "abs", Target: "/src/util/x.go"},
			{Op: "symlink", Path: "chain", Target: "link"},
			{Op: "symlink", Path: "srclink", Target: "src"},
			{Op: "symlink", Path: "escape", Target: "../../etc/passwd"},
			{Op: "symlink", Path: "dangling", Target: "nothing/here"},
			{Op: "symlink", Path: "loop1", Target: "loop2"},
			{Op: "symlink", Path: "loop2", Target: "loop1"},
		}}); err != nil {
			t.Fatalf("symlinks: %v", err)
		}
		follow := []struct{ path, resolved, want string }{
			{"link", "src/main.go", "package main"},
			{"src/util/up", "src/main.go", "package main"},
			{"abs", "src/util/x.go", "package util"},
			{"chain", "src/main.go", "package main"},
			{"srclink/util/x.go", "src/util/x.go", "package util"},
		}
		for _, f := range follow {
			r, err := h.c.Read(ctx, client.ReadRequest{Session: id, Path: f.path})
			if err != nil {
				t.Errorf("read %s: %v", f.path, err)
				continue
			}
			if string(r.Content) != f.want || r.Path != f.resolved || r.Kind != "file" {
				t.Errorf("read %s: got path %q kind %s content %q, want %q file %q", f.path, r.Path, r.Kind, r.Content, f.resolved, f.want)
			}
		}
		refused := []struct {
			path string
			code domain.Code
		}{
			{"escape", domain.CodeInvalidArgument},
			{"dangling", domain.CodeNotFound},
			{"loop1", domain.CodeInvalidArgument},
			{"srclink", domain.CodeInvalidArgument}, // a directory
		}
		for _, r := range refused {
			_, err := h.c.Read(ctx, client.ReadRequest{Session: id, Path: r.path})
			wantCode(t, "read "+r.path, err, r.code)
		}
	})

	t.Run("Refused", func(t *testing.T) {
		refused := []struct {
			req  client.ReadRequest
			code domain.Code
		}{
			{client.ReadRequest{Path: "missing"}, domain.CodeNotFound},
			{client.ReadRequest{Path: "src/missing/deeper"}, domain.CodeNotFound},
			{client.ReadRequest{Path: "src"}, domain.CodeInvalidArgument},
			{client.ReadRequest{Path: ""}, domain.CodeInvalidArgument},
			{client.ReadRequest{Path: "/"}, domain.CodeInvalidArgument},
			{client.ReadRequest{Path: "a.txt", Offset: -1}, domain.CodeInvalidArgument},
			{client.ReadRequest{Path: "a.txt", Length: -1}, domain.CodeInvalidArgument},
			{client.ReadRequest{Path: "a.txt/x"}, domain.CodeNotFound},
			{client.ReadRequest{Path: "a.txt", At: "0"}, domain.CodeInvalidArgument},
			{client.ReadRequest{Path: "a.txt", At: "999999"}, domain.CodeNotFound},
			{client.ReadRequest{Path: "a.txt", At: "no-such-checkpoint"}, domain.CodeNotFound},
			{client.ReadRequest{Path: "a.txt", At: "bad name!"}, domain.CodeInvalidArgument},
		}
		for _, r := range refused {
			r.req.Session = id
			_, err := h.c.Read(ctx, r.req)
			wantCode(t, "read "+asJSON(r.req), err, r.code)
		}
	})
}

func TestFS_Write(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx := t.Context()
	id := h.session(t)

	r, err := h.c.Write(ctx, client.WriteRequest{Session: id, Path: "/dir/new.txt", Content: []byte("hello"), Mode: 0o600})
	if err != nil {
		t.Fatalf("write: %v", err)
	}
	h.wantHead(t, "write", r.Position)
	if r.Session != id || r.Path != "dir/new.txt" || r.Hash != sha("hello") || r.Size != 5 || r.Root == "" || r.Replayed {
		t.Errorf("got %s, want session %s path dir/new.txt hash %s size 5", asJSON(r), id, sha("hello"))
	}
	got, err := h.c.Read(ctx, client.ReadRequest{Session: id, Path: "dir/new.txt"})
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if string(got.Content) != "hello" || got.Mode != 0o600 || got.Position != r.Position {
		t.Errorf("read back: got %q mode %o position %d, want hello 600 %d", got.Content, got.Mode, got.Position, r.Position)
	}
	if m := h.manifest(t, id, ""); !slices.Equal(m, []string{"dir", "dir/new.txt"}) {
		t.Errorf("manifest: got %v, want the parent made too", m)
	}

	t.Run("OverwriteKeepsMode", func(t *testing.T) {
		h.write(t, id, "dir/new.txt", "again")
		got, _ := h.c.Read(ctx, client.ReadRequest{Session: id, Path: "dir/new.txt"})
		if string(got.Content) != "again" || got.Mode != 0o600 {
			t.Errorf("got %q mode %o, want again 600", got.Content, got.Mode)
		}
	})

	t.Run("ExpectedHash", func(t *testing.T) {
		r, err := h.c.Write(ctx, client.WriteRequest{Session: id, Path: "dir/new.txt", Content: []byte("third"), ExpectedHash: sha("again")})
		if err != nil {
			t.Fatalf("write with the current hash: %v", err)
		}
		h.wantHead(t, "write expected_hash", r.Position)
		r, err = h.c.Write(ctx, client.WriteRequest{Session: id, Path: "fresh.txt", Content: []byte("x"), ExpectedHash: domain.ExpectAbsent})
		if err != nil {
			t.Fatalf("write with expected absent: %v", err)
		}
		h.wantHead(t, "write expected absent", r.Position)
	})

	t.Run("ThroughSymlink", func(t *testing.T) {
		if _, err := h.c.Symlink(ctx, client.SymlinkRequest{Session: id, Path: "l", Target: "dir/new.txt"}); err != nil {
			t.Fatalf("symlink: %v", err)
		}
		r := h.write(t, id, "l", "via link")
		if r.Path != "dir/new.txt" {
			t.Errorf("write through a link: got path %q, want dir/new.txt", r.Path)
		}
		if got := h.read(t, id, "dir/new.txt", ""); got != "via link" {
			t.Errorf("target: got %q, want %q", got, "via link")
		}
	})

	t.Run("Chunks", func(t *testing.T) {
		a, err := h.c.Upload(ctx, id, []byte("part one, "))
		if err != nil {
			t.Fatalf("upload: %v", err)
		}
		b, err := h.c.Upload(ctx, id, []byte("part two"))
		if err != nil {
			t.Fatalf("upload: %v", err)
		}
		whole := "part one, part two"
		var w client.ChangeReply
		if err := h.c.Request(ctx, "fs", "write", client.WriteRequest{Session: id, Path: "chunked", Chunks: []string{a.Hash, b.Hash}, Hash: sha(whole)}, &w); err != nil {
			t.Fatalf("write chunks: %v", err)
		}
		h.wantHead(t, "write chunks", w.Position)
		if w.Hash != sha(whole) || w.Size != int64(len(whole)) {
			t.Errorf("write chunks: got hash %s size %d, want %s %d", w.Hash, w.Size, sha(whole), len(whole))
		}
		if got := h.read(t, id, "chunked", ""); got != whole {
			t.Errorf("got %q, want %q", got, whole)
		}
		h.unchanged(t, "bad chunk writes", func() {
			err := h.c.Request(ctx, "fs", "write", client.WriteRequest{Session: id, Path: "chunked", Chunks: []string{a.Hash, b.Hash}, Hash: sha("other")}, nil)
			wantCode(t, "chunks with a wrong hash", err, domain.CodeInvalidArgument)
			err = h.c.Request(ctx, "fs", "write", client.WriteRequest{Session: id, Path: "chunked", Chunks: []string{sha("never uploaded"), b.Hash}}, nil)
			wantCode(t, "unknown chunk", err, domain.CodeNotFound)
			err = h.c.Request(ctx, "fs", "write", client.WriteRequest{Session: id, Path: "chunked", Chunks: []string{"xyz"}}, nil)
			wantCode(t, "malformed chunk hash", err, domain.CodeInvalidArgument)
			err = h.c.Request(ctx, "fs", "write", client.WriteRequest{Session: id, Path: "chunked", Content: []byte("x"), Chunks: []string{a.Hash}}, nil)
			wantCode(t, "content and chunks", err, domain.CodeInvalidArgument)
			err = h.c.Request(ctx, "fs", "write", client.WriteRequest{Session: id, Path: "chunked", Content: []byte("x"), Hash: sha("y")}, nil)
			wantCode(t, "content with a wrong hash", err, domain.CodeInvalidArgument)
		})
	})
}

func TestFS_Mkdir(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx := t.Context()
	id := h.session(t)
	r, err := h.c.Mkdir(ctx, client.MkdirRequest{Session: id, Path: "a/b/c", Mode: 0o700})
	if err != nil {
		t.Fatalf("mkdir: %v", err)
	}
	h.wantHead(t, "mkdir", r.Position)
	m, err := h.c.Manifest(ctx, client.ManifestRequest{Session: id})
	if err != nil {
		t.Fatalf("manifest: %v", err)
	}
	if got := paths(m.Entries); !slices.Equal(got, []string{"a", "a/b", "a/b/c"}) {
		t.Fatalf("got %v, want a a/b a/b/c", got)
	}
	for _, e := range m.Entries {
		wantMode := uint32(0o755)
		if e.Path == "a/b/c" {
			wantMode = 0o700
		}
		if e.Kind != "dir" || e.Mode != wantMode {
			t.Errorf("%s: got kind %s mode %o, want dir %o", e.Path, e.Kind, e.Mode, wantMode)
		}
	}
	h.unchanged(t, "refused mkdirs", func() {
		for _, p := range []string{"a", "a/b/c", "/a/b/"} {
			_, err := h.c.Mkdir(ctx, client.MkdirRequest{Session: id, Path: p})
			wantCode(t, "mkdir existing "+p, err, domain.CodeAlreadyExists)
		}
	})
	h.write(t, id, "f", "file")
	h.unchanged(t, "mkdir below a file", func() {
		_, err := h.c.Mkdir(ctx, client.MkdirRequest{Session: id, Path: "f/sub"})
		wantCode(t, "mkdir f/sub", err, domain.CodeInvalidArgument)
	})
}

func TestFS_Remove(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx := t.Context()
	id := tree(t, h)

	r, err := h.c.Remove(ctx, client.RemoveRequest{Session: id, Path: "a.txt", ExpectedHash: sha("0123456789")})
	if err != nil {
		t.Fatalf("remove a.txt: %v", err)
	}
	h.wantHead(t, "remove", r.Position)
	h.unchanged(t, "refused removes", func() {
		_, err := h.c.Remove(ctx, client.RemoveRequest{Session: id, Path: "src"})
		wantCode(t, "remove non-empty dir", err, domain.CodeInvalidArgument)
		_, err = h.c.Remove(ctx, client.RemoveRequest{Session: id, Path: "a.txt"})
		wantCode(t, "remove again", err, domain.CodeNotFound)
		_, err = h.c.Remove(ctx, client.RemoveRequest{Session: id, Path: "README", ExpectedHash: sha("stale")})
		wantCode(t, "remove with stale hash", err, domain.CodeConflict)
	})
	r, err = h.c.Remove(ctx, client.RemoveRequest{Session: id, Path: "src", Recursive: true})
	if err != nil {
		t.Fatalf("remove -r src: %v", err)
	}
	h.wantHead(t, "remove -r", r.Position)
	// The link is removed, not what it points to.
	if _, err := h.c.Remove(ctx, client.RemoveRequest{Session: id, Path: "link"}); err != nil {
		t.Fatalf("remove link: %v", err)
	}
	if got, want := h.manifest(t, id, ""), []string{"README", "src2.txt"}; !slices.Equal(got, want) {
		t.Errorf("after removes: got %v, want %v", got, want)
	}
	if _, err := h.c.Mkdir(ctx, client.MkdirRequest{Session: id, Path: "empty"}); err != nil {
		t.Fatalf("mkdir: %v", err)
	}
	if _, err := h.c.Remove(ctx, client.RemoveRequest{Session: id, Path: "empty"}); err != nil {
		t.Errorf("remove empty dir without recursive: %v", err)
	}
}

func TestFS_Rename(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx := t.Context()
	id := tree(t, h)

	r, err := h.c.Rename(ctx, client.RenameRequest{Session: id, From: "a.txt", To: "docs/a.md", ExpectedHash: sha("0123456789")})
	if err != nil {
		t.Fatalf("rename file: %v", err)
	}
	h.wantHead(t, "rename", r.Position)
	if got := h.read(t, id, "docs/a.md", ""); got != "0123456789" {
		t.Errorf("renamed file: got %q", got)
	}
	r, err = h.c.Rename(ctx, client.RenameRequest{Session: id, From: "src", To: "lib"})
	if err != nil {
		t.Fatalf("rename dir: %v", err)
	}
	h.wantHead(t, "rename dir", r.Position)
	want := []string{"README", "docs", "docs/a.md", "lib", "lib/main.go", "lib/main_test.go", "lib/util", "lib/util/x.go", "link", "src2.txt"}
	if got := h.manifest(t, id, ""); !slices.Equal(got, want) {
		t.Errorf("after renames: got %v, want %v", got, want)
	}
	h.unchanged(t, "refused renames", func() {
		refused := []struct {
			req  client.RenameRequest
			code domain.Code
		}{
			{client.RenameRequest{From: "README", To: "src2.txt"}, domain.CodeAlreadyExists},
			{client.RenameRequest{From: "missing", To: "x"}, domain.CodeNotFound},
			{client.RenameRequest{From: "lib", To: "lib/inner"}, domain.CodeInvalidArgument},
			{client.RenameRequest{From: "README", To: "README"}, domain.CodeInvalidArgument},
			{client.RenameRequest{From: "README", To: "../x"}, domain.CodeInvalidArgument},
			{client.RenameRequest{From: "README", To: ""}, domain.CodeInvalidArgument},
			{client.RenameRequest{From: "README", To: "x", ExpectedHash: sha("stale")}, domain.CodeConflict},
		}
		for _, r := range refused {
			r.req.Session = id
			_, err := h.c.Rename(ctx, r.req)
			wantCode(t, "rename "+asJSON(r.req), err, r.code)
		}
	})
}

func TestFS_Symlink(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx := t.Context()
	id := h.session(t)
	r, err := h.c.Symlink(ctx, client.SymlinkRequest{Session: id, Path: "bin/tool", Target: "../opt/tool"})
	if err != nil {
		t.Fatalf("symlink: %v", err)
	}
	h.wantHead(t, "symlink", r.Position)
	m, err := h.c.Manifest(ctx, client.ManifestRequest{Session: id, Prefix: "bin/"})
	if err != nil {
		t.Fatalf("manifest: %v", err)
	}
	if len(m.Entries) != 1 || m.Entries[0].Kind != "symlink" || m.Entries[0].Target != "../opt/tool" {
		t.Errorf("got %s, want one symlink to ../opt/tool", asJSON(m.Entries))
	}
	_, err = h.c.Read(ctx, client.ReadRequest{Session: id, Path: "bin/tool"})
	wantCode(t, "read a dangling link", err, domain.CodeNotFound)
	h.write(t, id, "opt/tool", "#!/bin/sh")
	if got := h.read(t, id, "bin/tool", ""); got != "#!/bin/sh" {
		t.Errorf("read through link: got %q", got)
	}
	h.unchanged(t, "refused symlinks", func() {
		for _, req := range []client.SymlinkRequest{
			{Path: "bin/tool", Target: "x"},
			{Path: "opt/tool", Target: "x"},
		} {
			req.Session = id
			_, err := h.c.Symlink(ctx, req)
			wantCode(t, "symlink "+asJSON(req), err, domain.CodeAlreadyExists)
		}
		for _, req := range []client.SymlinkRequest{
			{Path: "empty", Target: ""},
			{Path: "nul", Target: "a\x00b"},
			{Path: "long", Target: string(bytes.Repeat([]byte("a"), 5000))},
			{Path: "../out", Target: "x"},
		} {
			req.Session = id
			_, err := h.c.Symlink(ctx, req)
			wantCode(t, "symlink "+req.Path, err, domain.CodeInvalidArgument)
		}
	})
}

func TestFS_Chmod(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx := t.Context()
	id := tree(t, h)
	mode := func(m uint32) *uint32 { return &m }
	modes := func() map[string]uint32 {
		m, err := h.c.Manifest(ctx, client.ManifestRequest{Session: id})
		if err != nil {
			t.Fatalf("manifest: %v", err)
		}
		out := map[string]uint32{}
		for _, e := range m.Entries {
			out[e.Path] = e.Mode
		}
		return out
	}
	before := h.manifest(t, id, "")
	for _, c := range []struct {
		path string
		mode uint32
		want string // the path whose mode changes
	}{
		{"README", 0, "README"},         // no permissions: not "keep the mode"
		{"src", 0o700, "src"},           // a folder keeps what it holds
		{"link", 0o4755, "src/main.go"}, // a link's target, as chmod(2)
	} {
		r, err := h.c.Chmod(ctx, client.ChmodRequest{Session: id, Path: c.path, Mode: &c.mode})
		if err != nil {
			t.Fatalf("chmod %s %o: %v", c.path, c.mode, err)
		}
		h.wantHead(t, "chmod", r.Position)
		if got := modes()[c.want]; got != c.mode {
			t.Errorf("chmod %s %o: %s has mode %o", c.path, c.mode, c.want, got)
		}
		evs, err := h.c.Events(ctx, client.EventsRequest{Session: id, From: r.Position})
		if err != nil || len(evs.Events) != 1 || evs.Events[0].Type != string(domain.ModeChanged) {
			t.Errorf("chmod %s: events %s, %v; want one ModeChanged", c.path, asJSON(evs.Events), err)
		}
	}
	if got := h.manifest(t, id, ""); !slices.Equal(got, before) {
		t.Errorf("chmod changed the paths: %v, want %v", got, before)
	}
	if got := h.read(t, id, "README", ""); got == "" {
		t.Errorf("README lost its content after chmod 0")
	}
	// Only the bits and the content it expects.
	readme := h.read(t, id, "README", "")
	if _, err := h.c.Chmod(ctx, client.ChmodRequest{Session: id, Path: "README", Mode: mode(0o640), ExpectedHash: sha(readme)}); err != nil {
		t.Errorf("chmod with the right expected hash: %v", err)
	}
	h.unchanged(t, "refused chmods", func() {
		for _, c := range []struct {
			req  client.ChmodRequest
			code domain.Code
		}{
			{client.ChmodRequest{Path: "README"}, domain.CodeInvalidArgument},
			{client.ChmodRequest{Path: "README", Mode: mode(0o10000)}, domain.CodeInvalidArgument},
			{client.ChmodRequest{Path: "README", Mode: mode(0o100644)}, domain.CodeInvalidArgument},
			{client.ChmodRequest{Path: "", Mode: mode(0o755)}, domain.CodeInvalidArgument},
			{client.ChmodRequest{Path: "../etc/passwd", Mode: mode(0o755)}, domain.CodeInvalidArgument},
			{client.ChmodRequest{Path: "a\x00b", Mode: mode(0o755)}, domain.CodeInvalidArgument},
			{client.ChmodRequest{Path: "missing", Mode: mode(0o755)}, domain.CodeNotFound},
			{client.ChmodRequest{Path: "README", Mode: mode(0o644), ExpectedHash: sha("stale")}, domain.CodeConflict},
		} {
			c.req.Session = id
			_, err := h.c.Chmod(ctx, c.req)
			wantCode(t, "chmod "+asJSON(c.req), err, c.code)
		}
		for _, body := range []string{
			`{"session":"` + id + `","path":"README","mode":"755"}`,
			`{"session":"` + id + `","path":"README","mode":-1}`,
			`{"session":"` + id + `","path":"README","mode":1.5}`,
			`{"session":"` + id + `","path":"README","mode":null}`,
			`{"session":"` + id + `","ops":[{"op":"mkdir","path":"n"},{"op":"chmod","path":"README"}]}`,
		} {
			verb := "chmod"
			if strings.Contains(body, "ops") {
				verb = "batch"
			}
			err := h.c.RequestRaw(ctx, "fs", verb, []byte(body), nil)
			wantCode(t, body, err, domain.CodeInvalidArgument)
		}
	})
	// In a batch, with the other operations: one event, in MessagePack
	// (the Go client's) and in JSON, a chmod to 0 included.
	for _, jsonOnly := range []bool{false, true} {
		dir := fmt.Sprintf("bin%v", jsonOnly)
		cl := h.client("acme")
		cl.JSONRequests = jsonOnly
		r, err := cl.Batch(ctx, client.BatchRequest{Session: id, Ops: []client.BatchOp{
			{Op: "mkdir", Path: dir},
			{Op: "write", Path: dir + "/run", Content: []byte("#!/bin/sh\n")},
			{Op: "chmod", Path: dir + "/run", Mode: 0o755},
			{Op: "chmod", Path: dir, Mode: 0o750},
			{Op: "write", Path: dir + "/secret", Content: []byte("s")},
			{Op: "chmod", Path: dir + "/secret", Mode: 0},
		}})
		if err != nil {
			t.Fatalf("batch with chmod (JSON %v): %v", jsonOnly, err)
		}
		h.wantHead(t, "batch", r.Position)
		if m := modes(); m[dir] != 0o750 || m[dir+"/run"] != 0o755 || m[dir+"/secret"] != 0 {
			t.Errorf("after the batch (JSON %v): %s %o, run %o, secret %o; want 750, 755 and 0", jsonOnly, dir, m[dir], m[dir+"/run"], m[dir+"/secret"])
		}
	}
}

func TestFS_Batch(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx := t.Context()
	id := tree(t, h)

	before := h.env.LastSeq(t)
	r, err := h.c.Batch(ctx, client.BatchRequest{Session: id, Ops: []client.BatchOp{
		{Op: "write", Path: "new/file.txt", Content: []byte("new")},
		{Op: "mkdir", Path: "new/dir"},
		{Op: "rename", Path: "a.txt", To: "new/a.txt"},
		{Op: "symlink", Path: "new/link", Target: "file.txt"},
		{Op: "remove", Path: "src", Recursive: true},
		{Op: "write", Path: "new/link", Content: []byte("through the link")},
	}})
	if err != nil {
		t.Fatalf("batch: %v", err)
	}
	h.wantHead(t, "batch", r.Position)
	if r.Position != before+1 {
		t.Errorf("batch appended %d events, want one", r.Position-before)
	}
	want := []string{"README", "link", "new", "new/a.txt", "new/dir", "new/file.txt", "new/link", "src2.txt"}
	if got := h.manifest(t, id, ""); !slices.Equal(got, want) {
		t.Errorf("after batch: got %v, want %v", got, want)
	}
	if got := h.read(t, id, "new/file.txt", ""); got != "through the link" {
		t.Errorf("new/file.txt: got %q, want the later write through the link", got)
	}
	evs, err := h.c.Events(ctx, client.EventsRequest{Session: id, From: r.Position})
	if err != nil {
		t.Fatalf("events: %v", err)
	}
	if len(evs.Events) != 1 || evs.Events[0].Type != string(domain.BatchApplied) || len(evs.Events[0].Ops) != 6 || evs.Events[0].Root != r.Root {
		t.Errorf("got events %s, want one BatchApplied with 6 ops and root %s", asJSON(evs.Events), r.Root)
	}
}

// TestFS_LargeFile writes 64 MiB through the client's chunked upload and
// reads it back in as many replies as it takes.
func TestFS_LargeFile(t *testing.T) {
	if testing.Short() {
		t.Skip("64 MiB round trip; skipped with -short")
	}
	t.Parallel()
	h := start(t)
	ctx := t.Context()
	id := h.session(t)

	const size = 64 << 20
	content := make([]byte, size)
	_, _ = rand.NewChaCha8([32]byte{'s', 't', 'r', 'a', 'n', 'd'}).Read(content) // never fails
	sum := sha256.Sum256(content)
	want := hex.EncodeToString(sum[:])

	started := time.Now()
	w, err := h.c.Write(ctx, client.WriteRequest{Session: id, Path: "big.bin", Content: content})
	if err != nil {
		t.Fatalf("write 64 MiB: %v", err)
	}
	t.Logf("wrote 64 MiB in %v", time.Since(started))
	h.wantHead(t, "write 64 MiB", w.Position)
	if w.Hash != want || w.Size != size {
		t.Errorf("write reply: got hash %s size %d, want %s %d", w.Hash, w.Size, want, size)
	}

	started = time.Now()
	got, r, err := h.c.ReadAll(ctx, id, "big.bin", "")
	if err != nil {
		t.Fatalf("read 64 MiB: %v", err)
	}
	t.Logf("read 64 MiB in %v", time.Since(started))
	if !bytes.Equal(got, content) {
		i := 0
		for i < min(len(got), len(content)) && got[i] == content[i] {
			i++
		}
		t.Fatalf("read back %d bytes, want %d; first difference at %d", len(got), len(content), i)
	}
	gotSum := sha256.Sum256(got)
	if r.Hash != want || hex.EncodeToString(gotSum[:]) != want || r.Size != size {
		t.Errorf("read: got hash %s (content %x) size %d, want %s %d", r.Hash, gotSum, r.Size, want, size)
	}

	// A slice across chunk boundaries.
	off, n := int64(512<<10)-10, int64(1<<20)
	part, err := h.c.Read(ctx, client.ReadRequest{Session: id, Path: "big.bin", Offset: off, Length: n})
	if err != nil {
		t.Fatalf("read a slice: %v", err)
	}
	// A reply holds at most min(4 MiB, (max_payload - 8 KiB) * 3/4) bytes
	// of content (docs/api.md): all of the slice on one server (8 MiB
	// max_payload), about 760 KiB on a cluster's default 1 MiB.
	bound := min(n, min(4<<20, (h.env.NC.MaxPayload()-8192)*3/4))
	if int64(len(part.Content)) != bound || !bytes.Equal(part.Content, content[off:off+bound]) || part.EOF {
		t.Errorf("slice at %d of %d: got %d bytes (eof %v), want the same %d bytes", off, n, len(part.Content), part.EOF, bound)
	}
}
