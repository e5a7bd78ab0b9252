package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/contentcache"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/workcopy"
)

// The working-copy commands: strand checkout, status, push, pull (and
// strand diff [DIR], see cmdDiff). They are thin: the work is in package
// workcopy.

// cacheFlags are the content cache's flags, shared by every command that
// reads content into a working copy.
type cacheFlags struct {
	dir string
	max int64
}

func (m *Main) declareCache(fs *flag.FlagSet, cf *cacheFlags) {
	fs.StringVar(&cf.dir, "cache", m.env(contentcache.EnvDir, ""), "content cache folder shared by working copies (default ~/.cache/strand/content)")
	fs.Int64Var(&cf.max, "cache-max", contentcache.DefaultMaxBytes, "bytes the content cache may hold")
}

func (cf cacheFlags) open() (*contentcache.Cache, error) {
	dir := cf.dir
	if dir == "" {
		d, err := contentcache.DefaultDir()
		if err != nil {
			return nil, err
		}
		dir = d
	}
	return contentcache.Open(dir, cf.max)
}

// progressOut is stderr when it is a terminal, nil otherwise (quiet).
func (m *Main) progressOut() io.Writer {
	if f, ok := m.Stderr.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			return f
		}
	}
	return nil
}

// dirArg is the working copy a command works on: DIR, or the one that
// holds the current directory.
func dirArg(pos []string, usage string) (string, error) {
	switch len(pos) {
	case 0:
		return workcopy.Find(".")
	case 1:
		return pos[0], nil
	}
	return "", usagef("usage: strand %s", usage)
}

func (m *Main) cmdCheckout(ctx context.Context, args []string) error {
	var cf cacheFlags
	g, pos, err := m.parseArgs("checkout", args, func(fs *flag.FlagSet) { m.declareCache(fs, &cf) })
	if err != nil {
		return err
	}
	if err := need(pos, 2, "checkout SESSION[@AT] DIR"); err != nil {
		return err
	}
	cache, err := cf.open()
	if err != nil {
		return err
	}
	if err := g.dial(); err != nil {
		return err
	}
	defer g.close()
	id, at := splitAt(pos[0])
	w, err := workcopy.Checkout(ctx, g.client, cache, id, at, pos[1], workcopy.CheckoutOptions{Progress: m.progressOut()})
	if err != nil {
		return err
	}
	if g.json {
		return m.printJSON(map[string]any{"session": w.Head.Session, "position": w.Head.Position, "root": w.Head.Root, "dir": w.Dir, "entries": w.Entries()})
	}
	m.table([]string{"SESSION", "POSITION", "ENTRIES", "DIR"}, [][]string{{w.Head.Session, strconv.FormatUint(w.Head.Position, 10), strconv.Itoa(w.Entries()), w.Dir}})
	return nil
}

func (m *Main) cmdStatus(ctx context.Context, args []string) error {
	g, pos, err := m.parseArgs("status", args, nil)
	if err != nil {
		return err
	}
	dir, err := dirArg(pos, "status [DIR]")
	if err != nil {
		return err
	}
	// Status is local: no server needed.
	w, err := workcopy.Open(dir, nil, nil)
	if err != nil {
		return err
	}
	st, err := w.Status()
	if err != nil {
		return err
	}
	if g.json {
		return m.printJSON(st)
	}
	fmt.Fprintf(m.Stdout, "session %s at %d\n", st.Session, st.Position)
	for _, c := range st.Conflicts {
		fmt.Fprintf(m.Stdout, "  conflict  %s (%s)\n", c.Path, c.Why)
	}
	if st.Clean() {
		fmt.Fprintln(m.Stdout, "nothing to push")
		return nil
	}
	for _, c := range st.Changes {
		p := c.Path
		if c.Kind == workcopy.Renamed {
			p = c.From + " -> " + c.Path
		}
		if c.New != nil && c.New.Kind == workcopy.KindDir || c.New == nil && c.Old.Kind == workcopy.KindDir {
			p += "/"
		}
		fmt.Fprintf(m.Stdout, "  %-9s %s\n", c.Kind, p)
	}
	return nil
}

// wcDiff is strand diff [DIR]: the local changes as a unified diff.
func (m *Main) wcDiff(ctx context.Context, args []string) error {
	var cf cacheFlags
	g, pos, err := m.parseArgs("diff", args, func(fs *flag.FlagSet) { m.declareCache(fs, &cf) })
	if err != nil {
		return err
	}
	dir, err := dirArg(pos, "diff [DIR]")
	if err != nil {
		return err
	}
	cache, err := cf.open()
	if err != nil {
		return err
	}
	// The server is needed only for HEAD content the cache lacks.
	var c *client.Client
	if g.dial() == nil {
		defer g.close()
		c = g.client
	}
	w, err := workcopy.Open(dir, c, cache)
	if err != nil {
		return err
	}
	return w.Diff(ctx, m.Stdout)
}

func (m *Main) openCopy(g *globals, cf cacheFlags, dir string) (*workcopy.Copy, error) {
	cache, err := cf.open()
	if err != nil {
		return nil, err
	}
	if err := g.dial(); err != nil {
		return nil, err
	}
	w, err := workcopy.Open(dir, g.client, cache)
	if err != nil {
		g.close()
		return nil, err
	}
	w.Progress = m.progressOut()
	return w, nil
}

func (m *Main) cmdPush(ctx context.Context, args []string) error {
	var cf cacheFlags
	var o workcopy.PushOptions
	g, pos, err := m.parseArgs("push", args, func(fs *flag.FlagSet) {
		m.declareCache(fs, &cf)
		fs.StringVar(&o.Checkpoint, "checkpoint", "", "name the pushed position")
		fs.StringVar(&o.Message, "message", "", "note of the checkpoint (alone: checkpoint push-<position>)")
		fs.StringVar(&o.Token, "token", "", "lease token for locked paths")
		fs.BoolVar(&o.Force, "force", false, "push even with conflicts from the last pull left as they were")
		fs.BoolVar(&o.Atomic, "atomic", false, "refuse (too_large) a change that does not fit one event, instead of pushing it in parts")
	})
	if err != nil {
		return err
	}
	dir, err := dirArg(pos, "push [DIR] [--checkpoint NAME] [--message TEXT]")
	if err != nil {
		return err
	}
	w, err := m.openCopy(g, cf, dir)
	if err != nil {
		return err
	}
	defer g.close()
	r, err := w.Push(ctx, o)
	if err != nil {
		return err
	}
	if g.json {
		return m.printJSON(r)
	}
	if r.Changes == 0 && r.Checkpoint == "" {
		fmt.Fprintf(m.Stdout, "nothing to push: %s at %d\n", r.Session, r.Position)
		return nil
	}
	rows := [][]string{{"session", r.Session}, {"position", strconv.FormatUint(r.Position, 10)}, {"changes", strconv.Itoa(r.Changes)},
		{"uploaded", strconv.Itoa(r.Uploaded) + " chunks"}, {"skipped", strconv.Itoa(r.Skipped) + " chunks already held"}}
	if r.Parts > 1 {
		rows = append(rows, []string{"events", strconv.Itoa(r.Parts) + " (a change larger than one event holds, pushed in parts)"})
	}
	if r.Replayed {
		rows = append(rows, []string{"replayed", "true (this push was stored before)"})
	}
	if r.Checkpoint != "" {
		rows = append(rows, []string{"checkpoint", r.Checkpoint})
	}
	m.table([]string{"FIELD", "VALUE"}, rows)
	return nil
}

func (m *Main) cmdPull(ctx context.Context, args []string) error {
	var cf cacheFlags
	g, pos, err := m.parseArgs("pull", args, func(fs *flag.FlagSet) { m.declareCache(fs, &cf) })
	if err != nil {
		return err
	}
	dir, err := dirArg(pos, "pull [DIR]")
	if err != nil {
		return err
	}
	w, err := m.openCopy(g, cf, dir)
	if err != nil {
		return err
	}
	defer g.close()
	r, err := w.Pull(ctx)
	if err != nil {
		return err
	}
	if g.json {
		if err := m.printJSON(r); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(m.Stdout, "%s: %d -> %d, %d updated, %d merged\n", r.Session, r.From, r.To, r.Updated, r.Merged)
		fmt.Fprint(m.Stdout, workcopy.ConflictSummary(r.Conflicts))
	}
	if len(r.Conflicts) > 0 {
		return &client.Error{Code: domain.CodeConflict, Message: fmt.Sprintf("%d conflicts: edit them, then push", len(r.Conflicts))}
	}
	return nil
}
