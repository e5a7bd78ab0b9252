package bench

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/contentcache"
	"github.com/strand-dev/strand/mount"
	"github.com/strand-dev/strand/workcopy"
)

// runMount is row 12: a mounted session (FUSE) against the same tree on
// the native disk, in the same run. A generated tree (Sizes.MountFiles
// files of mixed sizes, committed into git, .git included; with
// Options.Tree a real tree as well) is pushed into a session and kept on
// local disk; each figure is the median of repetitions of:
//
//   - walk: `find DIR -printf '%s %T@\n'` (every entry stat'ed);
//   - read all: `tar cf - DIR` into a pipe (every file read);
//     each with a cold cache (a fresh mount on an empty content cache: the
//     kernel knows no entry of the mount, and every content is fetched from
//     the service) and a warm one (the kernel's and the content cache
//     filled by the run before). The native disk is measured the same way
//     after the mount: cold (the native tree's file data dropped from the
//     page cache, dropPageCache, and as root the kernel's dentries and
//     inodes, dropEntries, so that the native walk too starts knowing no
//     entry), then warm. The cold targets compare the
//     cold mount with the cold native disk; the cold mount against the
//     warm native disk is reported too, without a target. The service's
//     store (the embedded JetStream's files) stays in the page cache
//     throughout: a cold mount is cold on this machine's side, as a mount
//     of a remote service would be;
//   - extract: `tar xf` of a 1,000-file archive into an empty folder, the
//     mount's figure including the flush that stores it; also against
//     go-fuse's loopback file system over the native disk (no target):
//     what the same calls cost through FUSE alone;
//   - git status (`git status --porcelain`) in the tree (its .git, packed,
//     copied in through the mount), warm.
func runMount(ctx context.Context, r *Runner) ([]Result, error) {
	if err := mount.FuseAvailable(); err != nil {
		return nil, fmt.Errorf("row 12 needs FUSE: %w", err)
	}
	for _, tool := range []string{"git", "tar", "find"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("row 12 needs %s: %w", tool, err)
		}
	}
	root, err := os.MkdirTemp(r.dir, "mount-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(root)
	gen := func(dir string) (int, error) { return generateTree(dir, r.Sizes.MountFiles) }
	out, err := r.mountCase(ctx, filepath.Join(root, "generated"), "generated tree of "+count(r.Sizes.MountFiles)+" files", gen)
	if err != nil || r.Opts.Tree == "" {
		return out, err
	}
	copyFrom := func(dir string) (int, error) { return copyTree(r.Opts.Tree, dir) }
	res, err := r.mountCase(ctx, filepath.Join(root, "tree"), "tree "+r.Opts.Tree, copyFrom)
	return append(out, res...), err
}

type mountCase struct {
	r       *Runner
	e       *Env
	root    string
	native  string
	session string
}

func (r *Runner) mountCase(ctx context.Context, root, what string, fill func(dir string) (int, error)) ([]Result, error) {
	c := &mountCase{r: r, e: r.Durable, root: root, native: filepath.Join(root, "native")}
	files, err := c.setup(ctx, fill)
	if err != nil {
		return nil, err
	}
	r.progressf("  %s: %d files in the session and on disk", what, files)
	var out []Result
	add := func(name string, s, n []time.Duration, want float64, rawWhat, note string) {
		sf, nf := latencyFigure(s), latencyFigure(n)
		res := Result{Case: name + ", " + what, Server: c.e.Name, Strand: sf, Raw: &nf, RawWhat: rawWhat, Ratio: ratio(sf.Value, nf.Value), Note: note}
		if want > 0 {
			res.Target = atMost(res.Ratio, want, "mount/native", "x")
		}
		out = append(out, res)
		r.progressf("  %s: mount %.1f ms, raw %.1f ms (%.2fx)", name, sf.Value, nf.Value, res.Ratio)
	}
	for _, step := range []func(context.Context, func(string, []time.Duration, []time.Duration, float64, string, string)) error{
		c.walkRead, c.extract, c.gitStatus,
	} {
		if err := step(ctx, add); err != nil {
			return out, err
		}
	}
	return out, nil
}

// setup makes the tree on disk (a git repository), and the same tree,
// .git included, in a new session.
func (c *mountCase) setup(ctx context.Context, fill func(dir string) (int, error)) (int, error) {
	files, err := fill(c.native)
	if err != nil {
		return 0, err
	}
	// No automatic gc: git runs it detached after a commit, and a tree
	// that changes while tar reads it fails the native read.
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"config", "gc.auto", "0"}, {"add", "-A"},
		{"-c", "user.name=bench", "-c", "user.email=bench@strand", "commit", "-q", "-m", "tree"}} {
		if err := git(c.native, args...); err != nil {
			return 0, err
		}
	}
	cl := c.e.Client
	s, err := cl.CreateSession(ctx, client.CreateSessionRequest{Tags: map[string]string{"bench": "mount"}})
	if err != nil {
		return 0, err
	}
	c.session = s.Session.ID
	cache, err := contentcache.Open(filepath.Join(c.root, "load-cache"), 0)
	if err != nil {
		return 0, err
	}
	load := filepath.Join(c.root, "load")
	w, err := workcopy.Checkout(ctx, cl, cache, c.session, "", load, workcopy.CheckoutOptions{})
	if err != nil {
		return 0, err
	}
	if _, _, err := pushTree(ctx, w, c.native, load, true); err != nil {
		return 0, err
	}
	return files, os.RemoveAll(load)
}

// mounted mounts the session on a fresh folder with a fresh content cache
// (so the first reads are cold), and returns it with a function that
// unmounts it.
func (c *mountCase) mounted(ctx context.Context, name string) (*mount.Mount, string, error) {
	dir := filepath.Join(c.root, name)
	for _, d := range []string{dir, dir + "-cache", dir + "-state"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, "", err
		}
	}
	cache, err := contentcache.Open(dir+"-cache", 0)
	if err != nil {
		return nil, "", err
	}
	m, err := mount.New(ctx, mount.Options{Client: c.e.Client, Session: c.session, Dir: dir, Cache: cache,
		StateDir: dir + "-state", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	return m, dir, err
}

func (c *mountCase) walkRead(ctx context.Context, add addFunc) error {
	reps := c.r.Sizes.MountReps
	walk := func(dir string) func() error {
		return func() error { return run(io.Discard, "find", dir, "-printf", "%s %T@\n") }
	}
	readAll := func(dir string) func() error {
		return func() error { return run(io.Discard, "tar", "-C", dir, "-cf", "-", ".") }
	}
	var coldWalk, coldRead, warmWalk, warmRead, nColdWalk, nColdRead, nWalk, nRead []time.Duration
	var before, after, total, dentBefore, dentAfter int64
	entriesDropped := 0
	for k := 0; k < reps; k++ {
		m, dir, err := c.mounted(ctx, fmt.Sprintf("m%d", k))
		if err != nil {
			return err
		}
		steps := []struct {
			f   func() error
			out *[]time.Duration
		}{
			{walk(dir), &coldWalk}, {readAll(dir), &coldRead}, {walk(dir), &warmWalk}, {readAll(dir), &warmRead},
		}
		for _, s := range steps {
			d, err := clock(s.f)
			if err != nil {
				_ = m.Close()
				return err
			}
			*s.out = append(*s.out, d)
		}
		if err := m.Close(); err != nil {
			return err
		}
		// The native disk the same way: its files' data out of the page
		// cache first (dropPageCache), then walk and read twice.
		b, a, t, err := dropPageCache(c.native)
		if err != nil {
			return fmt.Errorf("drop the native tree from the page cache: %w", err)
		}
		before, after, total = before+b, after+a, total+t
		// And its entries (the walk above made them again): the fresh
		// mount's kernel knows none of its own.
		if !c.r.Opts.KeepEntries {
			ok, db, da, err := dropEntries()
			if err != nil {
				return fmt.Errorf("drop the kernel's entries: %w", err)
			}
			if ok {
				entriesDropped++
				dentBefore, dentAfter = dentBefore+db, dentAfter+da
			}
		}
		for _, s := range []struct {
			f   func() error
			out *[]time.Duration
		}{
			{walk(c.native), &nColdWalk}, {readAll(c.native), &nColdRead}, {walk(c.native), &nWalk}, {readAll(c.native), &nRead},
		} {
			d, err := clock(s.f)
			if err != nil {
				return err
			}
			*s.out = append(*s.out, d)
		}
	}
	evicted := fmt.Sprintf("native cold: the tree's file data dropped from the page cache before each repetition (fdatasync, "+
		"posix_fadvise DONTNEED), %s of %s pages resident before, %s after (mincore); ",
		count(int(before/int64(reps))), count(int(total/int64(reps))), count(int(after/int64(reps))))
	cold := "cold (file data out of the page cache, entries forgotten)"
	switch {
	case entriesDropped == reps:
		evicted += fmt.Sprintf("then the kernel's unused dentries and inodes (drop_caches 2, after a sync; "+
			"the inode blocks stay in the buffer cache, as the service's store stays in the page cache for the mount): "+
			"%s dentries before, %s after",
			count(int(dentBefore/int64(reps))), count(int(dentAfter/int64(reps))))
	default:
		cold = "cold (file data out of the page cache; entries stay cached)"
		why := "drop_caches needs root"
		if c.r.Opts.KeepEntries {
			why = "left alone, as asked"
		}
		evicted += fmt.Sprintf("the kernel's dentries and inodes dropped in %d of %d repetitions (%s), "+
			"so the native cold walk is mostly a warm one", entriesDropped, reps, why)
	}
	add("walk, cold", coldWalk, nColdWalk, 3, "find -printf (stat of every entry) on the native disk, "+cold,
		"a fresh mount (the kernel knows no entry of it; the manifest is read at mount time, before the clock starts); "+evicted)
	add("walk, cold, native warm", coldWalk, nWalk, 0, "find -printf on the native disk, warm", "the same cold mount walk against the warm native one")
	add("walk, warm", warmWalk, nWalk, 1.5, "find -printf on the native disk, warm", "")
	add("read all, cold", coldRead, nColdRead, 3, "tar cf - into a pipe on the native disk, "+cold,
		"every content fetched from the service into an empty cache; "+evicted)
	add("read all, cold, native warm", coldRead, nRead, 0, "tar cf - into a pipe on the native disk, warm", "the same cold mount read against the warm native one")
	add("read all, warm", warmRead, nRead, 1.5, "tar cf - into a pipe on the native disk, warm", "")
	return nil
}

func (c *mountCase) extract(ctx context.Context, add addFunc) error {
	archive := filepath.Join(c.root, "extract.tar")
	files := min(1000, c.r.Sizes.MountFiles) // 1,000 but for the tests' tiny sizes
	if err := writeArchive(archive, files); err != nil {
		return err
	}
	m, dir, err := c.mounted(ctx, "x")
	if err != nil {
		return err
	}
	defer m.Close() //nolint:errcheck // measured already
	loop, unmount, err := c.loopback("loop")
	if err != nil {
		return err
	}
	defer unmount()
	tarX := func(into string) error {
		if err := os.Mkdir(into, 0o755); err != nil {
			return err
		}
		return run(io.Discard, "tar", "-C", into, "-xf", archive)
	}
	// The same extract into memory (tmpfs, where there is one): the
	// native disk's figure moves with what was removed on it before (ext4
	// without a journal scans past recently freed inodes on every create,
	// docs/benchmarks.md, fifteenth session); this one does not.
	shm := ""
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if shm, err = os.MkdirTemp("/dev/shm", "strand-bench-"); err != nil {
			shm = ""
		} else {
			defer os.RemoveAll(shm) //nolint:errcheck // a temporary folder
		}
	}
	var md, nd, ld, sd []time.Duration
	for k := 0; k < c.r.Sizes.MountReps; k++ {
		d, err := clock(func() error {
			if err := tarX(filepath.Join(dir, fmt.Sprintf("x%d", k))); err != nil {
				return err
			}
			return m.Flush(ctx)
		})
		if err != nil {
			return err
		}
		md = append(md, d)
		if d, err = clock(func() error { return tarX(filepath.Join(c.root, fmt.Sprintf("native-x%d", k))) }); err != nil {
			return err
		}
		nd = append(nd, d)
		if d, err = clock(func() error { return tarX(filepath.Join(loop, fmt.Sprintf("x%d", k))) }); err != nil {
			return err
		}
		ld = append(ld, d)
		if shm != "" {
			if d, err = clock(func() error { return tarX(filepath.Join(shm, fmt.Sprintf("x%d", k))) }); err != nil {
				return err
			}
			sd = append(sd, d)
		}
	}
	name := "extract " + count(files) + " files"
	add(name, md, nd, 3, "tar xf on the native disk (no fsync)", "the mount's figure includes the flush that stores every file as events")
	add(name+", against go-fuse's loopback", md, ld, 0, "tar xf into go-fuse's loopback file system over the native disk, mounted as the session is",
		"the same FUSE round trips a file (create, write, chown, chmod, utimes and the kernel's own checks), each passed on to the native disk: what FUSE costs a tool here, not a lower bound")
	if len(sd) > 0 {
		add(name+", against tmpfs", md, sd, 0, "tar xf into /dev/shm (tmpfs)",
			"file creation with no disk behind it: unlike the native disk's, this figure does not move with the inodes freed on the disk before the run")
	}
	return nil
}

// loopback mounts go-fuse's own loopback file system (every call passed to
// a folder on the native disk, nothing else done) with the kernel cache
// times and mount options of a session's mount: the same round trips
// through the kernel as the mount's, measured in the same run.
func (c *mountCase) loopback(name string) (dir string, unmount func(), err error) {
	dir, under := filepath.Join(c.root, name), filepath.Join(c.root, name+"-under")
	for _, d := range []string{dir, under} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", nil, err
		}
	}
	root, err := fusefs.NewLoopbackRoot(under)
	if err != nil {
		return "", nil, err
	}
	ttl := mount.DefaultTTL
	srv, err := fusefs.Mount(dir, root, &fusefs.Options{
		EntryTimeout: &ttl, AttrTimeout: &ttl, NegativeTimeout: &ttl,
		MountOptions: fuse.MountOptions{FsName: "loopback", Name: "loopback", DirectMount: os.Geteuid() == 0, MaxWrite: 1 << 20},
	})
	if err != nil {
		return "", nil, fmt.Errorf("loopback mount on %s: %w", dir, err)
	}
	return dir, func() { _ = srv.Unmount() }, nil
}

func (c *mountCase) gitStatus(ctx context.Context, add addFunc) error {
	m, dir, err := c.mounted(ctx, "g")
	if err != nil {
		return err
	}
	defer m.Close() //nolint:errcheck // measured already
	// A working copy's push leaves .git out: pack the repository and copy
	// it into the mount (written by this process, stored as events).
	if err := git(c.native, "gc", "-q"); err != nil {
		return err
	}
	if err := copyAll(filepath.Join(c.native, ".git"), filepath.Join(dir, ".git")); err != nil {
		return err
	}
	if err := m.Flush(ctx); err != nil {
		return err
	}
	// Settle: the first status in the mount refreshes the index (other
	// inode numbers and times than where it was written) and fetches what
	// it reads.
	status := func(d string) error { return run(io.Discard, "git", "-C", d, "status", "--porcelain") }
	for _, d := range []string{dir, c.native} {
		if err := status(d); err != nil {
			return err
		}
	}
	var md, nd []time.Duration
	for k := 0; k < c.r.Sizes.MountReps*3; k++ {
		d, err := clock(func() error { return status(dir) })
		if err != nil {
			return err
		}
		md = append(md, d)
		d, err = clock(func() error { return status(c.native) })
		if err != nil {
			return err
		}
		nd = append(nd, d)
	}
	add("git status", md, nd, 2, "git status --porcelain on the native disk", "warm: after one status that refreshed the index")
	return nil
}

// run runs a command with its output to w. Its working directory is never
// the mount: the mount is served by this process, and a child that touches
// it between fork and exec can wait forever on a parent stopped for its
// garbage collector; commands are told where to work (-C, arguments).
func run(w io.Writer, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Stdout = w
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, stderr.String())
	}
	return nil
}

// writeArchive writes a tar of n small files in nested folders.
func writeArchive(name string, n int) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	dirs := map[string]bool{}
	for i := 0; i < n; i++ {
		d := fmt.Sprintf("a/d%02d", i%40)
		for _, dd := range []string{"a", d} {
			if !dirs[dd] {
				dirs[dd] = true
				if err := tw.WriteHeader(&tar.Header{Name: dd + "/", Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
					return err
				}
			}
		}
		content := bytes.Repeat([]byte(fmt.Sprintf("file %d\n", i)), 1+i%200)
		if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("%s/f%04d.txt", d, i), Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := tw.Write(content); err != nil {
			return err
		}
	}
	return tw.Close()
}

// copyAll copies a folder, everything in it.
func copyAll(from, to string) error {
	return filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		return copyEntry(p, filepath.Join(to, rel))
	})
}
