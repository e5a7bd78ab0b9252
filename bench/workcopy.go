package bench

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/contentcache"
	"github.com/strand-dev/strand/workcopy"
)

// runWorkcopy is row 8: working copies against git on the same tree in the
// same run. A generated tree (Sizes.WorkcopyFiles files of mixed sizes,
// and with Options.Tree a real one as well) is pushed into a session and
// committed into a git repository; then each figure is the median of
// interleaved repetitions of:
//
//   - checkout of the session into an empty directory (a cold content
//     cache, and a warm one) vs `git worktree add --detach`;
//   - status with nothing changed vs `git status --porcelain`;
//   - status and push of 10 changed files (strand push, which runs the
//     status itself) vs `git add -A && git commit`;
//   - pull of 10 changes pushed by another working copy vs
//     `git merge --ff-only` of a commit of the same 10 changes.
//
// Strand runs in process through package workcopy (each figure opens the
// working copy from disk as the CLI does, but pays no process start); git
// runs as the command line tool, its process start included (about a
// millisecond).
func runWorkcopy(ctx context.Context, r *Runner) ([]Result, error) {
	if _, err := exec.LookPath("git"); err != nil {
		return nil, fmt.Errorf("git is needed to compare with: %w", err)
	}
	e := r.Durable
	root, err := os.MkdirTemp(r.dir, "workcopy-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(root)
	var out []Result
	gen := func(dir string) (int, error) { return generateTree(dir, r.Sizes.WorkcopyFiles) }
	res, err := r.workcopyCase(ctx, e, filepath.Join(root, "generated"), "generated tree of "+count(r.Sizes.WorkcopyFiles)+" files", gen)
	out = append(out, res...)
	if err != nil {
		return out, err
	}
	if r.Opts.Tree != "" {
		copyFrom := func(dir string) (int, error) { return copyTree(r.Opts.Tree, dir) }
		res, err := r.workcopyCase(ctx, e, filepath.Join(root, "tree"), "tree "+r.Opts.Tree, copyFrom)
		out = append(out, res...)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// wcCase is the state of one case: the session, git repository and the
// working copies compared.
type wcCase struct {
	r       *Runner
	e       *Env
	root    string
	session string
	gitRepo string
	cache   *contentcache.Cache
	// The setup's push of the whole tree and git's first commit of it.
	first                  workcopy.PushResult
	firstPush, firstCommit time.Duration
}

func (r *Runner) workcopyCase(ctx context.Context, e *Env, root string, what string, fill func(dir string) (int, error)) ([]Result, error) {
	c := &wcCase{r: r, e: e, root: root, gitRepo: filepath.Join(root, "git")}
	var err error
	if c.cache, err = contentcache.Open(filepath.Join(root, "cache"), 0); err != nil {
		return nil, err
	}
	files, err := c.setup(ctx, fill)
	if err != nil {
		return nil, err
	}
	r.progressf("  %s: %d files in the session and in git", what, files)
	var out []Result
	add := func(name string, s, g []time.Duration, want float64, rawWhat, note string) {
		sf, gf := latencyFigure(s), latencyFigure(g)
		res := Result{Case: name + ", " + what, Server: e.Name, Strand: sf, Raw: &gf, RawWhat: rawWhat, Ratio: ratio(sf.Value, gf.Value), Note: note}
		if want > 0 {
			res.Target = atMost(res.Ratio, want, "strand/git", "x")
		}
		out = append(out, res)
		r.progressf("  %s: strand %.1f ms, git %.1f ms (%.2fx)", name, sf.Value, gf.Value, res.Ratio)
	}
	add("first push of the whole tree", []time.Duration{c.firstPush}, []time.Duration{c.firstCommit}, 0, "git add -A && git commit of the same tree into a new repository",
		fmt.Sprintf("one sample each, the row's setup: %s changes pushed in %d events (a push in parts: at most 1,000 operations and 4 MiB inside each)", count(c.first.Changes), c.first.Parts))
	steps := []func(context.Context, func(string, []time.Duration, []time.Duration, float64, string, string)) error{
		c.checkout, c.status, c.push, c.pull,
	}
	for _, step := range steps {
		if err := step(ctx, add); err != nil {
			return out, err
		}
	}
	return out, nil
}

// setup fills a working copy of a new session and a git repository with
// the same tree.
func (c *wcCase) setup(ctx context.Context, fill func(dir string) (int, error)) (int, error) {
	cl := c.e.Client
	s, err := cl.CreateSession(ctx, client.CreateSessionRequest{Tags: map[string]string{"bench": "workcopy"}})
	if err != nil {
		return 0, err
	}
	c.session = s.Session.ID
	src := filepath.Join(c.root, "src")
	files, err := fill(src)
	if err != nil {
		return 0, err
	}
	load := filepath.Join(c.root, "load")
	w, err := workcopy.Checkout(ctx, cl, c.cache, c.session, "", load, workcopy.CheckoutOptions{})
	if err != nil {
		return 0, err
	}
	if c.first, c.firstPush, err = pushTree(ctx, w, src, load, false); err != nil {
		return 0, err
	}
	if err := git(src, "init", "-q", "-b", "main"); err != nil {
		return 0, err
	}
	if c.firstCommit, err = clock(func() error {
		if err := git(src, "add", "-A"); err != nil {
			return err
		}
		return git(src, "-c", "user.name=bench", "-c", "user.email=bench@strand", "commit", "-q", "-m", "tree")
	}); err != nil {
		return 0, err
	}
	c.gitRepo = src
	return files, os.RemoveAll(load)
}

// pushTree copies the files of src (its .git folder too, with git) into
// the working copy at dst and pushes them: one push, which goes in parts
// (workcopy.Push) for trees larger than one event holds. It returns the
// push and how long it took (the copy left out).
func pushTree(ctx context.Context, w *workcopy.Copy, src, dst string, withGit bool) (workcopy.PushResult, time.Duration, error) {
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			if d != nil && d.IsDir() && d.Name() == ".git" && !withGit {
				return filepath.SkipDir
			}
			return err
		}
		rel, _ := filepath.Rel(src, p)
		return copyEntry(p, filepath.Join(dst, rel))
	})
	if err != nil {
		return workcopy.PushResult{}, 0, err
	}
	t0 := time.Now()
	res, err := w.Push(ctx, workcopy.PushOptions{})
	return res, time.Since(t0), err
}

func copyEntry(from, to string) error {
	info, err := os.Lstat(from)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	if info.Mode()&fs.ModeSymlink != 0 {
		target, err := os.Readlink(from)
		if err != nil {
			return err
		}
		return os.Symlink(target, to)
	}
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	o, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, info.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(o, in); err != nil {
		o.Close()
		return err
	}
	return o.Close()
}

// generateTree writes n files of mixed sizes: nine in ten of 200 B to
// 8 KiB, one in ten of 8 to 64 KiB, one in two hundred of 64 to 640 KiB
// (chunked when over 512 KiB), fifty to a directory, two levels deep.
func generateTree(dir string, n int) (int, error) {
	for i := 0; i < n; i++ {
		size := 200 + (i*7919)%8000
		switch {
		case i%200 == 7:
			size = 64<<10 + (i*104729)%(576<<10)
		case i%10 == 3:
			size = 8<<10 + (i*7919)%(56<<10)
		}
		p := filepath.Join(dir, fmt.Sprintf("d%02d", i/2500), fmt.Sprintf("s%03d", (i/50)%50), fmt.Sprintf("f%05d.go", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return 0, err
		}
		if err := os.WriteFile(p, sourceLike(uint64(i), size), 0o644); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// copyTree copies the regular files and symlinks of a real tree (without
// .git folders) into dir.
func copyTree(from, dir string) (int, error) {
	n := 0
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == ".git" || d.Name() == workcopy.MetaDir {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() && d.Type()&fs.ModeSymlink == 0 {
			return nil
		}
		rel, _ := filepath.Rel(from, p)
		n++
		return copyEntry(p, filepath.Join(dir, rel))
	})
	return n, err
}

func git(dir string, args ...string) error {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

func (c *wcCase) dir(name string) string { return filepath.Join(c.root, name) }

func (c *wcCase) open(dir string) (*workcopy.Copy, error) {
	return workcopy.Open(dir, c.e.Client, c.cache)
}

type addFunc = func(string, []time.Duration, []time.Duration, float64, string, string)

func (c *wcCase) checkout(ctx context.Context, add addFunc) error {
	var cold, warm, gd []time.Duration
	reps := c.r.Sizes.WorkcopyReps
	for k := 0; k < reps; k++ {
		coldCache, err := contentcache.Open(c.dir("cold-"+strconv.Itoa(k)), 0)
		if err != nil {
			return err
		}
		d, err := clock(func() error {
			_, err := workcopy.Checkout(ctx, c.e.Client, coldCache, c.session, "", c.dir("co-cold"), workcopy.CheckoutOptions{})
			return err
		})
		if err != nil {
			return err
		}
		cold = append(cold, d)
		if err := removeAll(c.dir("co-cold"), coldCache.Dir()); err != nil {
			return err
		}
		if k == 0 {
			// Fill the shared cache once (not measured).
			if _, err := workcopy.Checkout(ctx, c.e.Client, c.cache, c.session, "", c.dir("fill"), workcopy.CheckoutOptions{}); err != nil {
				return err
			}
			if err := removeAll(c.dir("fill")); err != nil {
				return err
			}
		}
		d, err = clock(func() error {
			_, err := workcopy.Checkout(ctx, c.e.Client, c.cache, c.session, "", c.dir("co-warm"), workcopy.CheckoutOptions{})
			return err
		})
		if err != nil {
			return err
		}
		warm = append(warm, d)
		d, err = clock(func() error { return git(c.gitRepo, "worktree", "add", "-q", "--detach", c.dir("git-wt")) })
		if err != nil {
			return err
		}
		gd = append(gd, d)
		if k < reps-1 {
			if err := git(c.gitRepo, "worktree", "remove", "--force", c.dir("git-wt")); err != nil {
				return err
			}
			if err := removeAll(c.dir("co-warm")); err != nil {
				return err
			}
		}
	}
	add("checkout, cold cache", cold, gd, 0, "git worktree add --detach", "content fetched with fs.read_batch, 4 requests in flight")
	add("checkout, warm cache", warm, gd, 1.0, "git worktree add --detach", "content from the machine's content cache, manifest from the service")
	return nil
}

func (c *wcCase) status(ctx context.Context, add addFunc) error {
	wdir, gdir := c.dir("co-warm"), c.dir("git-wt")
	st := func() error {
		w, err := c.open(wdir)
		if err != nil {
			return err
		}
		s, err := w.Status()
		if err == nil && !s.Clean() {
			err = fmt.Errorf("status after checkout lists %d changes", len(s.Changes))
		}
		return err
	}
	// Settle: the first status after a checkout hashes files written
	// within the racy window and records them (git refreshes its index
	// the same way).
	if err := st(); err != nil {
		return err
	}
	if err := git(gdir, "status", "--porcelain"); err != nil {
		return err
	}
	var sd, gd []time.Duration
	for k := 0; k < c.r.Sizes.WorkcopyReps*3; k++ {
		d, err := clock(st)
		if err != nil {
			return err
		}
		sd = append(sd, d)
		d, err = clock(func() error { return git(gdir, "status", "--porcelain") })
		if err != nil {
			return err
		}
		gd = append(gd, d)
	}
	add("status, no changes", sd, gd, 1.5, "git status --porcelain", "opens the working copy (index of every path) and stats every file")
	return nil
}

// touch10 rewrites 10 files of a tree with content that depends on rep.
func touch10(dir string, rep, changes int, files []string) error {
	for i := 0; i < changes; i++ {
		p := filepath.Join(dir, files[(rep*changes+i)*97%len(files)])
		if err := os.WriteFile(p, []byte(fmt.Sprintf("changed in rep %d, file %d\n", rep, i)), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func listFiles(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == workcopy.MetaDir) {
			return filepath.SkipDir
		}
		if d.Type().IsRegular() && d.Name() != ".git" {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	return out, err
}

func (c *wcCase) push(ctx context.Context, add addFunc) error {
	wdir, gdir := c.dir("co-warm"), c.dir("git-wt")
	files, err := listFiles(wdir)
	if err != nil {
		return err
	}
	n := c.r.Sizes.DiffChanges
	var sd, gd []time.Duration
	for k := 0; k < c.r.Sizes.WorkcopyReps*3; k++ {
		if err := touch10(wdir, k, n, files); err != nil {
			return err
		}
		if err := touch10(gdir, k, n, files); err != nil {
			return err
		}
		d, err := clock(func() error {
			// strand push: its status, the uploads and the event.
			w, err := c.open(wdir)
			if err != nil {
				return err
			}
			r, err := w.Push(ctx, workcopy.PushOptions{})
			if err == nil && r.Changes != n {
				err = fmt.Errorf("push of %d changed files sent %d changes", n, r.Changes)
			}
			return err
		})
		if err != nil {
			return err
		}
		sd = append(sd, d)
		d, err = clock(func() error {
			if err := git(gdir, "add", "-A"); err != nil {
				return err
			}
			return git(gdir, "-c", "user.name=bench", "-c", "user.email=bench@strand", "commit", "-q", "-m", "rep "+strconv.Itoa(k))
		})
		if err != nil {
			return err
		}
		gd = append(gd, d)
	}
	add(fmt.Sprintf("status + push of %d files", n), sd, gd, 1.5, "git add -A && git commit", "strand push (it runs the status itself): one event expecting HEAD's position, fsync on every write")
	return nil
}

func (c *wcCase) pull(ctx context.Context, add addFunc) error {
	// The pusher is the working copy of the push step; the puller a new
	// checkout. git: the worktree's commits, merged into a second one.
	pusher, puller := c.dir("co-warm"), c.dir("co-pull")
	if _, err := workcopy.Checkout(ctx, c.e.Client, c.cache, c.session, "", puller, workcopy.CheckoutOptions{}); err != nil {
		return err
	}
	gpush, gpull := c.dir("git-wt"), c.dir("git-pull")
	if err := git(gpush, "checkout", "-q", "-b", "pusher"); err != nil {
		return err
	}
	if err := git(c.gitRepo, "worktree", "add", "-q", "-b", "puller", gpull, "pusher"); err != nil {
		return err
	}
	files, err := listFiles(pusher)
	if err != nil {
		return err
	}
	n := c.r.Sizes.DiffChanges
	var sd, gd []time.Duration
	for k := 0; k < c.r.Sizes.WorkcopyReps*3; k++ {
		rep := 1000 + k
		if err := touch10(pusher, rep, n, files); err != nil {
			return err
		}
		w, err := c.open(pusher)
		if err != nil {
			return err
		}
		if _, err := w.Push(ctx, workcopy.PushOptions{}); err != nil {
			return err
		}
		if err := touch10(gpush, rep, n, files); err != nil {
			return err
		}
		if err := git(gpush, "-c", "user.name=bench", "-c", "user.email=bench@strand", "commit", "-q", "-a", "-m", "rep"); err != nil {
			return err
		}
		d, err := clock(func() error {
			w, err := c.open(puller)
			if err != nil {
				return err
			}
			r, err := w.Pull(ctx)
			if err == nil && (r.Updated != n || len(r.Conflicts) > 0) {
				err = fmt.Errorf("pull of %d changes: %+v", n, r)
			}
			return err
		})
		if err != nil {
			return err
		}
		sd = append(sd, d)
		d, err = clock(func() error { return git(gpull, "merge", "-q", "--ff-only", "pusher") })
		if err != nil {
			return err
		}
		gd = append(gd, d)
	}
	add(fmt.Sprintf("pull of %d changes", n), sd, gd, 1.5, "git merge --ff-only", "diff HEAD..head, fs.read_batch of the changed files")
	return nil
}

func removeAll(dirs ...string) error {
	for _, d := range dirs {
		if err := os.RemoveAll(d); err != nil {
			return err
		}
	}
	return nil
}
