package main

import (
	"context"
	"strings"
	"testing"

	"github.com/strand-dev/strand/client"
)

func TestCLI_FSGrepFind(t *testing.T) {
	t.Parallel()
	s := startServe(t, t.TempDir())
	c := newCLI(t, s.URL)
	cl := s.Client(t)
	ctx := context.Background()
	created, err := cl.CreateSession(ctx, client.CreateSessionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	id := created.Session.ID
	if _, err := cl.Batch(ctx, client.BatchRequest{Session: id, Ops: []client.BatchOp{
		{Op: "write", Path: "a.go", Content: []byte("one\nTODO two\nthree\nfour TODO\nfive\n")},
		{Op: "write", Path: "sub/b.go", Content: []byte("todo here\n")},
		{Op: "write", Path: "sub/c.txt", Content: []byte("TODO text\n")},
	}}); err != nil {
		t.Fatal(err)
	}

	t.Run("Grep", func(t *testing.T) {
		got := c.ok("fs", "grep", id, "TODO", "--limit", "1")
		want := "a.go:2:TODO two\na.go:4:four TODO\nsub/c.txt:1:TODO text\n"
		if got != want {
			t.Errorf("fs grep (pages of 1) printed\n%s\nwant\n%s", got, want)
		}
	})
	t.Run("GrepContextCaseInclude", func(t *testing.T) {
		got := c.ok("fs", "grep", id, "todo", "-i", "-C", "1", "--include", "*.go")
		want := "a.go-1-one\na.go:2:TODO two\na.go-3-three\na.go:4:four TODO\na.go-5-five\nsub/b.go:1:todo here\n"
		if got != want {
			t.Errorf("fs grep -i -C 1 printed\n%s\nwant\n%s", got, want)
		}
	})
	t.Run("GrepJSONPrefix", func(t *testing.T) {
		var r client.SearchReply
		c.okJSON(&r, "fs", "grep", id, "TODO", "sub", "-F")
		if len(r.Files) != 1 || r.Files[0].Path != "sub/c.txt" || r.Matches != 1 {
			t.Errorf("fs grep --json = %+v, want one match in sub/c.txt", r)
		}
	})
	t.Run("Find", func(t *testing.T) {
		got := c.ok("fs", "find", id, "**/*.go")
		if got != "a.go\nsub/b.go\n" {
			t.Errorf("fs find printed %q, want a.go and sub/b.go", got)
		}
		if got := c.ok("fs", "find", id, "su*"); got != "sub/\n" {
			t.Errorf("fs find su* printed %q, want sub/", got)
		}
	})
	t.Run("Errors", func(t *testing.T) {
		c.fail("invalid_argument", "fs", "grep", id, "a(")
		c.fail("invalid_argument", "fs", "find", id, "[x")
		if r := c.run("", "fs", "grep", id); r.Code != 2 || !strings.Contains(r.Stderr, "usage") {
			t.Errorf("%v\nwant exit 2 with the usage", r)
		}
	})
}
