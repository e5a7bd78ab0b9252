package mcp

import (
	"context"
	"fmt"
	"strings"

	"github.com/strand-dev/strand/client"
)

// SearchArgs are the arguments of search.
type SearchArgs struct {
	Session    string   `json:"session" jsonschema:"the session id"`
	Pattern    string   `json:"pattern" jsonschema:"a regular expression (RE2 syntax, like grep -E) matched line by line, e.g. func \\w+Handler"`
	Literal    bool     `json:"literal,omitempty" jsonschema:"take pattern as a plain string, not a regular expression"`
	IgnoreCase bool     `json:"ignore_case,omitempty" jsonschema:"fold case"`
	Glob       string   `json:"glob,omitempty" jsonschema:"search only paths matching this glob, e.g. **/*.go or *.md"`
	Prefix     string   `json:"prefix,omitempty" jsonschema:"search only below this directory"`
	Exclude    []string `json:"exclude,omitempty" jsonschema:"skip paths matching these globs, e.g. [\"vendor/**\"]"`
	Context    int      `json:"context,omitempty" jsonschema:"lines of context before and after each match (at most 10)"`
	Limit      int      `json:"limit,omitempty" jsonschema:"at most this many matches (default 100, at most 1000)"`
	Cursor     string   `json:"cursor,omitempty" jsonschema:"the cursor of the previous page"`
	At         string   `json:"at,omitempty" jsonschema:"search the past: a position number or a checkpoint name"`
}

// SearchResult answers search.
type SearchResult struct {
	Files      []client.SearchFile `json:"files"`
	Matches    int                 `json:"matches"`
	NextCursor string              `json:"next_cursor,omitempty"`
	Position   uint64              `json:"position"`
}

func (s *Server) addSearchTool() {
	add(s, "search", "Search file contents",
		"Search the contents of the session's files with a regular expression, like grep -rn, on the server (fast on large trees; binary files are skipped). Returns path:line: text. Use list_files to find files by name.",
		readOnly, true, s.search)
}

func (s *Server) search(ctx context.Context, _ *call, in SearchArgs) (string, SearchResult, error) {
	id, err := s.session(in.Session)
	if err != nil {
		return "", SearchResult{}, err
	}
	if in.Pattern == "" {
		return "", SearchResult{}, invalid("pattern is required (list_files lists paths by glob)")
	}
	r, err := s.c.Search(ctx, client.SearchRequest{Session: id, At: client.At(in.At), Pattern: in.Pattern, Literal: in.Literal,
		IgnoreCase: in.IgnoreCase, Glob: in.Glob, Prefix: in.Prefix, Exclude: in.Exclude, Context: in.Context, Limit: in.Limit, Cursor: in.Cursor})
	if err != nil {
		return "", SearchResult{}, err
	}
	var b strings.Builder
	for _, f := range r.Files {
		for _, m := range f.Matches {
			for i, l := range m.Before {
				fmt.Fprintf(&b, "%s-%d- %s\n", f.Path, m.Line-len(m.Before)+i, l)
			}
			fmt.Fprintf(&b, "%s:%d: %s\n", f.Path, m.Line, m.Text)
			for i, l := range m.After {
				fmt.Fprintf(&b, "%s-%d- %s\n", f.Path, m.Line+1+i, l)
			}
			if len(m.Before)+len(m.After) > 0 {
				b.WriteString("--\n")
			}
		}
	}
	if r.Matches == 0 {
		fmt.Fprintf(&b, "no matches in %d files\n", r.FilesScanned)
	} else {
		fmt.Fprintf(&b, "%d matches\n", r.Matches)
	}
	if r.NextCursor != "" {
		fmt.Fprintf(&b, "more (%s): call again with cursor=%s\n", r.Stopped, r.NextCursor)
	}
	return b.String(), SearchResult{Files: r.Files, Matches: r.Matches, NextCursor: r.NextCursor, Position: r.Position}, nil
}
