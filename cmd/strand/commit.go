package main

import (
	"context"
	"flag"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

func (m *Main) printSummary(s domain.Summary) {
	rows := [][]string{
		{"added", strconv.Itoa(s.Added)}, {"modified", strconv.Itoa(s.Modified)},
		{"deleted", strconv.Itoa(s.Deleted)}, {"renamed", strconv.Itoa(s.Renamed)},
		{"lines", "+" + strconv.Itoa(s.LinesAdded) + " -" + strconv.Itoa(s.LinesRemoved)},
		{"size delta", strconv.FormatInt(s.SizeDelta, 10)},
	}
	var dirs []string
	for _, d := range s.TopDirs {
		name := d.Dir
		if name == "" {
			name = "(root)"
		}
		dirs = append(dirs, name+" "+strconv.Itoa(d.Changes))
	}
	if len(dirs) > 0 {
		rows = append(rows, []string{"top dirs", strings.Join(dirs, ", ")})
	}
	m.table([]string{"SUMMARY", ""}, rows)
	if len(s.Files) == 0 {
		return
	}
	m.printf("\n")
	files := make([][]string, 0, len(s.Files))
	for _, f := range s.Files {
		lines := "+" + strconv.Itoa(f.LinesAdded) + " -" + strconv.Itoa(f.LinesRemoved)
		if f.Binary {
			lines = "binary"
		}
		path := f.Path
		if f.From != "" {
			path = f.From + " -> " + f.Path
		}
		files = append(files, []string{f.Change, path, lines})
	}
	m.table([]string{"CHANGE", "PATH", "LINES"}, files)
	if len(s.Files) < s.FilesTotal {
		m.printf("(%d of %d changed files listed)\n", len(s.Files), s.FilesTotal)
	}
}

// formatPolicy prints a policy as action=n pairs in order.
func formatPolicy(p domain.Policy) string {
	parts := make([]string, 0, len(p))
	for a, n := range p {
		parts = append(parts, a+"="+strconv.Itoa(n))
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}

func (m *Main) printCommits(cs []client.CommitView) {
	rows := make([][]string, 0, len(cs))
	for _, c := range cs {
		msg := strings.SplitN(c.Message, "\n", 2)[0]
		rows = append(rows, []string{c.ID, strconv.FormatUint(c.Position, 10), c.Author, c.CreatedAt.Format(time.RFC3339), msg})
	}
	m.table([]string{"COMMIT", "POSITION", "AUTHOR", "CREATED", "MESSAGE"}, rows)
}

func (m *Main) commitCreate(ctx context.Context, args []string) error {
	var req client.CommitRequest
	var mf mutationFlags
	g, pos, err := m.parseArgs("commit create", args, func(fs *flag.FlagSet) {
		fs.StringVar(&req.Message, "message", "", "the commit message")
		fs.StringVar(&req.Author, "author", "", "the author (default: the actor)")
		mf.declare(fs)
	})
	if err != nil {
		return err
	}
	defer g.close()
	if err := need(pos, 1, "commit create SESSION --message TEXT"); err != nil {
		return err
	}
	req.Session, req.Mutation = pos[0], mf.mutation()
	if err := g.dial(); err != nil {
		return err
	}
	r, err := g.client.CreateCommit(ctx, req)
	return m.show(g, r, err, func() {
		m.printCommits([]client.CommitView{r.Commit})
		if r.Commit.Summary != nil {
			m.printSummary(*r.Commit.Summary)
		}
	})
}

func (m *Main) commitList(ctx context.Context, args []string) error {
	g, pos, err := m.dialArgs("commit list", args, 1, "commit list SESSION", nil)
	if err != nil {
		return err
	}
	defer g.close()
	r, err := g.client.ListCommits(ctx, client.CommitListRequest{Session: pos[0]})
	return m.show(g, r, err, func() { m.printCommits(r.Commits) })
}

func (m *Main) commitShow(ctx context.Context, args []string) error {
	var session string
	g, pos, err := m.dialArgs("commit show", args, 1, "commit show COMMIT", func(fs *flag.FlagSet) {
		fs.StringVar(&session, "session", "", "the commit's session (found by id when not given)")
	})
	if err != nil {
		return err
	}
	defer g.close()
	r, err := g.client.GetCommit(ctx, client.CommitGetRequest{Session: session, Commit: pos[0]})
	return m.show(g, r, err, func() {
		c := r.Commit
		m.table([]string{"FIELD", "VALUE"}, [][]string{
			{"commit", c.ID}, {"session", c.Session}, {"position", strconv.FormatUint(c.Position, 10)},
			{"root", c.Root}, {"author", c.Author}, {"created", c.CreatedAt.Format(time.RFC3339)},
			{"approvals", strings.Join(c.Approvals, ",")}, {"gate", formatPolicy(c.Gate)}, {"message", c.Message},
		})
		if c.Summary != nil {
			m.printSummary(*c.Summary)
		}
	})
}

func (m *Main) commitSummary(ctx context.Context, args []string) error {
	var at string
	var offset, limit int
	g, pos, err := m.parseArgs("commit summary", args, func(fs *flag.FlagSet) {
		fs.StringVar(&at, "at", "", "as of this position, checkpoint or commit")
		fs.IntVar(&offset, "offset", 0, "list changed files from this one")
		fs.IntVar(&limit, "limit", 0, "list at most this many changed files (default and most: 1000)")
	})
	if err != nil {
		return err
	}
	defer g.close()
	if err := need(pos, 1, "commit summary SESSION[@AT]"); err != nil {
		return err
	}
	id, a := splitAt(pos[0])
	if at != "" {
		a = client.At(at)
	}
	if err := g.dial(); err != nil {
		return err
	}
	r, err := g.client.Summary(ctx, client.SummaryRequest{Session: id, At: a, Offset: offset, Limit: limit})
	return m.show(g, r, err, func() {
		m.printSummary(r.Summary)
		if r.NextOffset != 0 {
			m.printf("more: strand commit summary %s --offset %d\n", pos[0], r.NextOffset)
		}
	})
}
