package handlers_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

// searchTree builds a session for search tests and returns its id.
func searchTree(t *testing.T, h *harness) string {
	t.Helper()
	id := h.session(t)
	if _, err := h.c.Batch(t.Context(), client.BatchRequest{Session: id, Ops: []client.BatchOp{
		{Op: "write", Path: "README.md", Content: []byte("# Demo\nSee main.go.\n")},
		{Op: "write", Path: "cmd/app/main.go", Content: []byte("package main\n\nfunc main() {\n\tprintln(\"hi\")\n}\n")},
		{Op: "write", Path: "cmd/app/main_test.go", Content: []byte("package main\n\nfunc TestMain(t *testing.T) {}\n")},
		{Op: "write", Path: "lib/Util.GO", Content: []byte("package lib\n// FUNC upper\n")},
		{Op: "write", Path: "bin/tool", Content: []byte("ELF\x00func main")},
		{Op: "write", Path: "docs/long.txt", Content: []byte(strings.Repeat("x", 600) + " func\n")},
		{Op: "symlink", Path: "link", Target: "cmd/app/main.go"},
	}}); err != nil {
		t.Fatalf("build tree: %v", err)
	}
	return id
}

func searchPaths(r client.SearchReply) []string {
	var out []string
	for _, f := range r.Files {
		for _, m := range f.Matches {
			out = append(out, fmt.Sprintf("%s:%d", f.Path, m.Line))
		}
		if len(f.Matches) == 0 {
			out = append(out, f.Path)
		}
	}
	return out
}

func TestFS_Search(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx := t.Context()
	id := searchTree(t, h)
	search := func(t *testing.T, req client.SearchRequest) client.SearchReply {
		t.Helper()
		req.Session = id
		r, err := h.c.Search(ctx, req)
		if err != nil {
			t.Fatalf("search %+v: %v", req, err)
		}
		return r
	}

	cases := []struct {
		name string
		req  client.SearchRequest
		want []string
	}{
		{"Regexp", client.SearchRequest{Pattern: `func \w+\(`}, []string{"cmd/app/main.go:3", "cmd/app/main_test.go:3"}},
		{"Anchors", client.SearchRequest{Pattern: `^package`}, []string{"cmd/app/main.go:1", "cmd/app/main_test.go:1", "lib/Util.GO:1"}},
		{"Literal", client.SearchRequest{Pattern: "main.go.", Literal: true}, []string{"README.md:2"}},
		{"IgnoreCase", client.SearchRequest{Pattern: "func", IgnoreCase: true, Include: []string{"*.go"}}, []string{"cmd/app/main.go:3", "cmd/app/main_test.go:3", "lib/Util.GO:2"}},
		{"CaseSensitiveGlob", client.SearchRequest{Pattern: "package", Glob: "*.go"}, []string{"cmd/app/main.go:1", "cmd/app/main_test.go:1"}},
		{"Exclude", client.SearchRequest{Pattern: "func", Exclude: []string{"**/*_test.go", "docs/**"}}, []string{"cmd/app/main.go:3"}},
		{"Prefix", client.SearchRequest{Pattern: "package", Prefix: "lib"}, []string{"lib/Util.GO:1"}},
		{"PrefixName", client.SearchRequest{Pattern: "package", Prefix: "cmd/app/main_"}, []string{"cmd/app/main_test.go:1"}},
		{"FindGlob", client.SearchRequest{Glob: "**/main*.go"}, []string{"cmd/app/main.go", "cmd/app/main_test.go"}},
		{"FindAllKinds", client.SearchRequest{Glob: "*", Prefix: "cmd"}, []string{"cmd/app", "cmd/app/main.go", "cmd/app/main_test.go"}},
		{"FindIgnoreCase", client.SearchRequest{Glob: "*.go", IgnoreCase: true, Prefix: "lib/"}, []string{"lib/Util.GO"}},
		{"NoMatch", client.SearchRequest{Pattern: "nothing here"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := search(t, tc.req)
			if got := searchPaths(r); !slices.Equal(got, tc.want) {
				t.Fatalf("search %+v: got %v, want %v", tc.req, got, tc.want)
			}
			if r.NextCursor != "" || r.Stopped != "" {
				t.Errorf("got next_cursor %q stopped %q on the only page", r.NextCursor, r.Stopped)
			}
		})
	}

	t.Run("MatchDetails", func(t *testing.T) {
		r := search(t, client.SearchRequest{Pattern: `println`, Context: 2})
		if len(r.Files) != 1 || len(r.Files[0].Matches) != 1 {
			t.Fatalf("got %+v, want one match", r.Files)
		}
		m := r.Files[0].Matches[0]
		want := client.SearchMatch{Line: 4, Column: 2, Text: "\tprintln(\"hi\")", Before: []string{"", "func main() {"}, After: []string{"}"}}
		if fmt.Sprint(m) != fmt.Sprint(want) {
			t.Errorf("got %+v, want %+v", m, want)
		}
		if r.Files[0].Hash != sha("package main\n\nfunc main() {\n\tprintln(\"hi\")\n}\n") {
			t.Errorf("got hash %s, want the content's", r.Files[0].Hash)
		}
	})
	t.Run("BinarySkipped", func(t *testing.T) {
		r := search(t, client.SearchRequest{Pattern: "func main"})
		if got := searchPaths(r); !slices.Equal(got, []string{"cmd/app/main.go:3"}) {
			t.Errorf("got %v, want only the text file", got)
		}
		if r.SkippedBinary != 1 {
			t.Errorf("got skipped_binary %d, want 1", r.SkippedBinary)
		}
	})
	t.Run("LongLineCut", func(t *testing.T) {
		r := search(t, client.SearchRequest{Pattern: "func$"})
		if len(r.Files) != 1 || r.Files[0].Path != "docs/long.txt" {
			t.Fatalf("got %v, want docs/long.txt", searchPaths(r))
		}
		m := r.Files[0].Matches[0]
		if !m.Cut || len(m.Text) != client.MaxSearchLineBytes || m.Column != 602 {
			t.Errorf("got cut %v, %d bytes, column %d; want cut, %d bytes, column 602", m.Cut, len(m.Text), m.Column, client.MaxSearchLineBytes)
		}
	})
	t.Run("AtPosition", func(t *testing.T) {
		before := h.write(t, id, "new.txt", "func later\n")
		r := search(t, client.SearchRequest{Pattern: "later", At: client.At(fmt.Sprint(before.Position - 1))})
		if len(r.Files) != 0 || r.Position != before.Position-1 {
			t.Errorf("got %v at %d, want nothing at %d", searchPaths(r), r.Position, before.Position-1)
		}
		r = search(t, client.SearchRequest{Pattern: "later"})
		if got := searchPaths(r); !slices.Equal(got, []string{"new.txt:1"}) {
			t.Errorf("got %v at the head, want new.txt:1", got)
		}
		if _, err := h.c.Remove(ctx, client.RemoveRequest{Session: id, Path: "new.txt"}); err != nil {
			t.Fatal(err)
		}
	})
}

// TestFS_SearchPaging pages through many matches, in files and inside
// one file, and checks that the pages join to the whole answer.
func TestFS_SearchPaging(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx := t.Context()
	id := h.session(t)
	var ops []client.BatchOp
	var want []string
	for i := range 12 {
		p := fmt.Sprintf("f%02d.txt", i)
		var body strings.Builder
		for l := 1; l <= i%4; l++ {
			fmt.Fprintf(&body, "hit %d\nmiss\n", l)
			want = append(want, fmt.Sprintf("%s:%d", p, 2*l-1))
		}
		ops = append(ops, client.BatchOp{Op: "write", Path: p, Content: []byte(body.String())})
	}
	if _, err := h.c.Batch(ctx, client.BatchRequest{Session: id, Ops: ops}); err != nil {
		t.Fatal(err)
	}
	for _, limit := range []int{1, 2, 3, 5, 100} {
		t.Run(fmt.Sprintf("Limit%d", limit), func(t *testing.T) {
			var got []string
			cursor := ""
			for page := 0; ; page++ {
				if page > len(want)+1 {
					t.Fatalf("more than %d pages", page)
				}
				r, err := h.c.Search(ctx, client.SearchRequest{Session: id, Pattern: "hit", Limit: limit, Cursor: cursor})
				if err != nil {
					t.Fatalf("page %d: %v", page, err)
				}
				if r.Matches > limit {
					t.Fatalf("page %d: %d matches, limit %d", page, r.Matches, limit)
				}
				got = append(got, searchPaths(r)...)
				if r.NextCursor == "" {
					break
				}
				if r.Stopped != "limit" {
					t.Errorf("page %d: stopped %q, want limit", page, r.Stopped)
				}
				cursor = r.NextCursor
			}
			if !slices.Equal(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
	t.Run("Find", func(t *testing.T) {
		var got []string
		cursor := ""
		for {
			r, err := h.c.Search(ctx, client.SearchRequest{Session: id, Glob: "*.txt", Limit: 5, Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, searchPaths(r)...)
			if cursor = r.NextCursor; cursor == "" {
				break
			}
		}
		if len(got) != 12 || got[0] != "f00.txt" || got[11] != "f11.txt" {
			t.Errorf("got %v, want the 12 files", got)
		}
	})
}

func TestFS_SearchBadInput(t *testing.T) {
	t.Parallel()
	h := start(t)
	id := searchTree(t, h)
	cases := []struct {
		name string
		req  client.SearchRequest
		want domain.Code
	}{
		{"NoSession", client.SearchRequest{Pattern: "x"}, domain.CodeInvalidArgument},
		{"UnknownSession", client.SearchRequest{Session: "01M8639GP38ZZVG1GPASRX3QZR", Pattern: "x"}, domain.CodeNotFound},
		{"BadRegexp", client.SearchRequest{Session: id, Pattern: "a(b"}, domain.CodeInvalidArgument},
		{"HugePattern", client.SearchRequest{Session: id, Pattern: strings.Repeat("a", 1001)}, domain.CodeInvalidArgument},
		{"LiteralAlone", client.SearchRequest{Session: id, Literal: true}, domain.CodeInvalidArgument},
		{"BadGlob", client.SearchRequest{Session: id, Glob: "[a-"}, domain.CodeInvalidArgument},
		{"BadInclude", client.SearchRequest{Session: id, Pattern: "x", Include: []string{"{a"}}, domain.CodeInvalidArgument},
		{"Context", client.SearchRequest{Session: id, Pattern: "x", Context: 11}, domain.CodeInvalidArgument},
		{"NegativeLimit", client.SearchRequest{Session: id, Pattern: "x", Limit: -1}, domain.CodeInvalidArgument},
		{"HugeLimit", client.SearchRequest{Session: id, Pattern: "x", Limit: 1001}, domain.CodeInvalidArgument},
		{"BadCursor", client.SearchRequest{Session: id, Pattern: "x", Cursor: "src/main.go"}, domain.CodeInvalidArgument},
		{"TraversalPrefix", client.SearchRequest{Session: id, Pattern: "x", Prefix: "../etc"}, domain.CodeInvalidArgument},
		{"NULPrefix", client.SearchRequest{Session: id, Pattern: "x", Prefix: "a\x00b"}, domain.CodeInvalidArgument},
		{"UnknownAt", client.SearchRequest{Session: id, Pattern: "x", At: "nope"}, domain.CodeNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.c.Search(t.Context(), tc.req)
			wantCode(t, tc.name, err, tc.want)
		})
	}
	t.Run("UnknownField", func(t *testing.T) {
		err := h.c.RequestRaw(t.Context(), "fs", "search", []byte(`{"session":"`+id+`","patern":"x"}`), nil)
		wantCode(t, "unknown field", err, domain.CodeInvalidArgument)
	})
}

// TestFS_SearchStoredBlobs searches files too large to travel inside their
// events, so that content comes from the blob store (in batched gets, then
// from the cache), and checks both searches find every line.
func TestFS_SearchStoredBlobs(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx := t.Context()
	id := h.session(t)
	var ops []client.BatchOp
	var want []string
	for i := range 300 {
		p := fmt.Sprintf("d%d/f%03d.txt", i%7, i)
		body := strings.Repeat(fmt.Sprintf("line of file %d\n", i), 100) // over domain.MaxInlineBytes
		if i%13 == 0 {
			body += "needle\n"
		}
		ops = append(ops, client.BatchOp{Op: "write", Path: p, Content: []byte(body)})
	}
	for d := range 7 {
		for i := range 300 {
			if i%7 == d && i%13 == 0 {
				want = append(want, fmt.Sprintf("d%d/f%03d.txt:101", d, i))
			}
		}
	}
	if _, err := h.c.Batch(ctx, client.BatchRequest{Session: id, Ops: ops}); err != nil {
		t.Fatal(err)
	}
	for _, run := range []string{"cold", "cached"} {
		r, err := h.c.Search(ctx, client.SearchRequest{Session: id, Pattern: "^needle$", Limit: client.MaxSearchLimit})
		if err != nil {
			t.Fatalf("%s search: %v", run, err)
		}
		if got := searchPaths(r); !slices.Equal(got, want) {
			t.Errorf("%s search: got %v, want %v", run, got, want)
		}
		if r.FilesScanned != 300 {
			t.Errorf("%s search scanned %d files, want 300", run, r.FilesScanned)
		}
	}
}
