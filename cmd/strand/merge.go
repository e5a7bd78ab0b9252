package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

// cmdMerge merges FROM into INTO. --strategy alone resolves every conflict;
// --path P=ours|theirs resolves the conflicts at P and below; a bare
// --path P takes the --strategy value, which then applies to the named
// paths only.
func (m *Main) cmdMerge(ctx context.Context, args []string) error {
	var strategy string
	var paths multiFlag
	var mf mutationFlags
	g, pos, err := m.parseArgs("merge", args, func(fs *flag.FlagSet) {
		fs.StringVar(&strategy, "strategy", "", "ours or theirs: resolve conflicts by taking one side (all, or the bare --path ones)")
		fs.Var(&paths, "path", "P=ours|theirs, or P with --strategy (repeatable)")
		mf.declare(fs)
	})
	if err != nil {
		return err
	}
	if err := need(pos, 2, "merge FROM_SESSION[@AT] INTO_SESSION [--strategy ours|theirs] [--path P[=ours|theirs]]..."); err != nil {
		return err
	}
	req := client.MergeRequest{Mutation: mf.mutation(), From: pos[0], Into: pos[1], Paths: map[string]string{}}
	bare := 0
	for _, p := range paths {
		path, st, ok := strings.Cut(p, "=")
		if !ok {
			if strategy == "" {
				return usagef("--path %s needs =ours|theirs or --strategy", p)
			}
			st = strategy
			bare++
		}
		if st != domain.StrategyOurs && st != domain.StrategyTheirs {
			return usagef("--path %s: strategy must be ours or theirs", p)
		}
		req.Paths[path] = st
	}
	if bare == 0 {
		req.Strategy = strategy
	}
	if strategy != "" && strategy != domain.StrategyOurs && strategy != domain.StrategyTheirs {
		return usagef("--strategy must be ours or theirs")
	}
	if err := g.dial(); err != nil {
		return err
	}
	defer g.close()
	r, err := g.client.Merge(ctx, req)
	if err != nil {
		return err
	}
	if g.json {
		if err := m.printJSON(r); err != nil {
			return err
		}
	} else {
		m.printMerge(r)
	}
	if !r.Applied && !r.UpToDate {
		return &client.Error{Code: domain.CodeConflict, Message: fmt.Sprintf("%d conflict(s); nothing was merged (resolve with --strategy or --path P=ours|theirs)", len(r.Conflicts))}
	}
	return nil
}

func (m *Main) printMerge(r client.MergeReply) {
	base := r.Base.Session + "@" + strconv.FormatUint(r.Base.Position, 10)
	if r.Base.Source != "" {
		base = "source " + r.Base.Source + "@" + strconv.FormatUint(r.Base.Revision, 10)
	}
	state := "merged"
	switch {
	case r.UpToDate:
		state = "up to date"
	case !r.Applied:
		state = "not merged: conflicts"
	}
	m.table([]string{"MERGE", ""}, [][]string{
		{"result", state}, {"from", r.From + "@" + strconv.FormatUint(r.FromPosition, 10)},
		{"into", r.Session}, {"base", base}, {"position", strconv.FormatUint(r.Position, 10)},
	})
	if len(r.Paths) > 0 {
		var rows [][]string
		for _, p := range r.Paths {
			rows = append(rows, []string{p.Result, p.Path})
		}
		m.table([]string{"RESULT", "PATH"}, rows)
	}
	var rows [][]string
	for _, c := range append(append([]client.ConflictView{}, r.Conflicts...), r.Resolved...) {
		res := c.Resolution
		if res == "" {
			res = "unresolved"
		}
		rows = append(rows, []string{c.Kind, c.Path, c.Ours, c.Theirs, res})
	}
	if len(rows) > 0 {
		m.table([]string{"CONFLICT", "PATH", "OURS", "THEIRS", "RESOLUTION"}, rows)
	}
}
