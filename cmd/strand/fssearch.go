package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/strand-dev/strand/client"
)

// searchFlags are the flags fs grep and fs find share.
type searchFlags struct {
	at, cursor, glob string
	include, exclude multiFlag
	ignoreCase       bool
	limit            int
}

func (f *searchFlags) declare(fs *flag.FlagSet) {
	fs.StringVar(&f.at, "at", "", "a position or checkpoint name")
	fs.StringVar(&f.cursor, "cursor", "", "continue from the next_cursor of a --json page")
	fs.Var(&f.include, "include", "search only paths matching this glob (repeatable)")
	fs.Var(&f.exclude, "exclude", "skip paths matching this glob (repeatable)")
	fs.BoolVar(&f.ignoreCase, "i", false, "fold case")
	fs.IntVar(&f.limit, "limit", 0, "matches per page (default 100, at most 1000)")
}

func (f *searchFlags) request(session string, pos []string, at client.At) client.SearchRequest {
	if f.at != "" {
		at = client.At(f.at)
	}
	req := client.SearchRequest{Session: session, At: at, Glob: f.glob, Include: f.include, Exclude: f.exclude,
		IgnoreCase: f.ignoreCase, Limit: f.limit, Cursor: f.cursor}
	if len(pos) > 0 {
		req.Prefix = pos[0]
	}
	return req
}

func (m *Main) fsGrep(ctx context.Context, args []string) error {
	var sf searchFlags
	var literal bool
	var context int
	g, pos, err := m.parseArgs("fs grep", args, func(fs *flag.FlagSet) {
		sf.declare(fs)
		fs.StringVar(&sf.glob, "glob", "", "search only paths matching this glob")
		fs.BoolVar(&literal, "F", false, "take PATTERN as a plain string")
		fs.IntVar(&context, "C", 0, "lines of context around each match (at most 10)")
	})
	if err != nil {
		return err
	}
	if len(pos) < 2 || len(pos) > 3 {
		return usagef("usage: strand fs grep SESSION PATTERN [PREFIX] [--at AT]")
	}
	id, at := splitAt(pos[0])
	req := sf.request(id, pos[2:], at)
	req.Pattern, req.Literal, req.Context = pos[1], literal, context
	return m.search(ctx, g, req, m.printMatches)
}

func (m *Main) fsFind(ctx context.Context, args []string) error {
	var sf searchFlags
	g, pos, err := m.parseArgs("fs find", args, sf.declare)
	if err != nil {
		return err
	}
	if len(pos) < 2 || len(pos) > 3 {
		return usagef("usage: strand fs find SESSION GLOB [PREFIX] [--at AT]")
	}
	id, at := splitAt(pos[0])
	sf.glob = pos[1]
	return m.search(ctx, g, sf.request(id, pos[2:], at), m.printPaths)
}

// search runs a search: with --json one page (its next_cursor gives the
// next), otherwise every page, printed as it comes.
func (m *Main) search(ctx context.Context, g *globals, req client.SearchRequest, print func(client.SearchReply)) error {
	if err := g.dial(); err != nil {
		return err
	}
	defer g.close()
	for {
		r, err := g.client.Search(ctx, req)
		if err != nil {
			return err
		}
		if g.json {
			return m.printJSON(r)
		}
		print(r)
		if r.NextCursor == "" {
			return nil
		}
		req.Cursor = r.NextCursor
	}
}

// printMatches prints matches as grep -n does: PATH:LINE:TEXT, and
// context lines as PATH-LINE-TEXT, with "--" between groups.
func (m *Main) printMatches(r client.SearchReply) {
	for _, f := range r.Files {
		shown := 0 // the last line printed in this file
		for j, mt := range f.Matches {
			next := int(^uint(0) >> 1) // a later match prints its own line
			if j+1 < len(f.Matches) {
				next = f.Matches[j+1].Line
			}
			first := mt.Line - len(mt.Before)
			if shown > 0 && first > shown+1 && (len(mt.Before) > 0 || len(mt.After) > 0) {
				fmt.Fprintln(m.Stdout, "--")
			}
			for i, l := range mt.Before {
				if n := first + i; n > shown {
					fmt.Fprintf(m.Stdout, "%s-%d-%s\n", f.Path, n, l)
				}
			}
			if mt.Line > shown {
				fmt.Fprintf(m.Stdout, "%s:%d:%s\n", f.Path, mt.Line, mt.Text)
			}
			shown = max(shown, mt.Line)
			for i, l := range mt.After {
				if n := mt.Line + 1 + i; n > shown && n < next {
					fmt.Fprintf(m.Stdout, "%s-%d-%s\n", f.Path, n, l)
					shown = n
				}
			}
		}
	}
}

func (m *Main) printPaths(r client.SearchReply) {
	for _, f := range r.Files {
		p := f.Path
		if f.Kind == "dir" {
			p += "/"
		}
		fmt.Fprintln(m.Stdout, strings.TrimSpace(p))
	}
}
