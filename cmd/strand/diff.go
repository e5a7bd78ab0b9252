package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/workcopy"
)

const diffUsage = "diff [FROM_SESSION[@AT]] SESSION[@AT] [--path P] [--context N] [--limit N]"

// cmdDiff compares two sessions (each at its head or at a position or
// checkpoint), or one session with its base: the parent at the fork point
// for a fork, its first state otherwise.
func (m *Main) cmdDiff(ctx context.Context, args []string) error {
	var path string
	var lines, limit int
	g, pos, err := m.parseArgs("diff", args, func(fs *flag.FlagSet) {
		fs.StringVar(&path, "path", "", "print the unified diff of this path")
		fs.IntVar(&lines, "context", client.DefaultDiffContext, "lines of context around each change of --path")
		fs.IntVar(&limit, "limit", 0, "list at most this many changes (default 1000)")
		var cf cacheFlags
		m.declareCache(fs, &cf) // used by strand diff [DIR]
	})
	if err != nil {
		return err
	}
	if len(pos) == 0 || len(pos) == 1 && workcopy.IsWorkingCopy(pos[0]) {
		return m.wcDiff(ctx, args)
	}
	if len(pos) > 2 {
		return usagef("usage: strand %s", diffUsage)
	}
	if lines < 0 {
		return usagef("--context must not be negative")
	}
	req := client.DiffRequest{Path: path, Context: &lines, Limit: limit}
	if len(pos) == 2 {
		id, at := splitAt(pos[0])
		req.From = &client.DiffSide{Session: id, At: at}
	}
	id, at := splitAt(pos[len(pos)-1])
	req.To = client.DiffSide{Session: id, At: at}
	if err := g.dial(); err != nil {
		return err
	}
	defer g.close()
	r, err := g.client.Diff(ctx, req)
	if err != nil {
		return err
	}
	if g.json {
		return m.printJSON(r)
	}
	if path != "" {
		if _, err := io.WriteString(m.Stdout, r.Unified); err != nil {
			return err
		}
		if r.UnifiedTruncated {
			fmt.Fprintln(m.Stderr, "strand: the diff was cut to fit in one reply")
		}
		return nil
	}
	m.printDiff(r)
	return nil
}

// printDiff prints the changes as one table in tree order: a status
// letter (A, M, D, R), the kind, the path and what changed.
func (m *Main) printDiff(r client.DiffReply) {
	type row struct {
		key  string
		cols []string
	}
	var rows []row
	for _, v := range r.Added {
		rows = append(rows, row{v.Path, []string{"A", v.Kind, v.Path, nodeDetail(v.New)}})
	}
	for _, v := range r.Modified {
		rows = append(rows, row{v.Path, []string{"M", v.Kind, v.Path, modifiedDetail(v.Old, v.New)}})
	}
	for _, v := range r.Deleted {
		rows = append(rows, row{v.Path, []string{"D", v.Kind, v.Path, nodeDetail(v.Old)}})
	}
	for _, v := range r.Renamed {
		detail := ""
		if v.Old.Mode != v.New.Mode {
			detail = fmt.Sprintf("mode %04o -> %04o", v.Old.Mode, v.New.Mode)
		}
		rows = append(rows, row{v.To, []string{"R", v.Kind, v.From + " -> " + v.To, detail}})
	}
	slices.SortStableFunc(rows, func(a, b row) int { return domain.ComparePaths(a.key, b.key) })
	table := make([][]string, len(rows))
	for i, r := range rows {
		table[i] = r.cols
	}
	if len(table) > 0 {
		m.table([]string{"STATUS", "KIND", "PATH", "DETAIL"}, table)
	}
	c := r.Counts
	m.printf("%s@%d -> %s@%d: %d added, %d modified, %d deleted, %d renamed\n",
		r.From.Session, r.From.Position, r.To.Session, r.To.Position, c.Added, c.Modified, c.Deleted, c.Renamed)
	if r.Truncated {
		m.printf("only the first %d changes are listed (see --limit)\n", len(rows))
	}
}

func nodeDetail(n *client.DiffNodeView) string {
	switch {
	case n == nil:
		return ""
	case n.Kind == "file":
		return strconv.FormatInt(n.Size, 10) + " bytes"
	case n.Kind == "symlink":
		return "-> " + n.Target
	}
	return ""
}

// modifiedDetail says what differs between two versions of a path.
func modifiedDetail(o, n *client.DiffNodeView) string {
	if o == nil || n == nil {
		return ""
	}
	var parts []string
	if o.Kind != n.Kind {
		parts = append(parts, o.Kind+" -> "+n.Kind)
	}
	if o.Mode != n.Mode {
		parts = append(parts, fmt.Sprintf("mode %04o -> %04o", o.Mode, n.Mode))
	}
	if o.Kind == n.Kind {
		switch {
		case n.Kind == "symlink" && o.Target != n.Target:
			parts = append(parts, "-> "+o.Target+" => -> "+n.Target)
		case n.Kind == "file" && o.Size != n.Size:
			parts = append(parts, fmt.Sprintf("%d -> %d bytes", o.Size, n.Size))
		case n.Kind == "file" && o.Hash != n.Hash:
			parts = append(parts, "content")
		}
	}
	if len(parts) == 0 {
		parts = append(parts, "xattrs") // the only other thing a hash covers
	}
	return strings.Join(parts, ", ")
}
