package audit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/strand-dev/strand/domain"
)

// WriteOptions tune WriteTree.
type WriteOptions struct {
	// Force empties a directory that is not empty before writing into it.
	// Without it such a directory is refused.
	Force bool
}

// WriteStats counts what WriteTree wrote.
type WriteStats struct {
	Files    int   `json:"files"`
	Dirs     int   `json:"dirs"`
	Symlinks int   `json:"symlinks"`
	Bytes    int64 `json:"bytes"`
}

// ErrNotEmpty is returned by WriteTree for a directory that is not empty
// when Force is not set.
var ErrNotEmpty = errors.New("directory is not empty")

// WriteTree writes a tree into a local directory: files with their content
// (read from the blob stream and checked against its hash) and permission
// bits, directories with theirs, symlinks with their targets. Nothing is
// ever written outside dir: every path is checked before anything is
// written, all writes go through an os.Root opened on dir, and a symlink
// whose target would lead out of dir is refused. A target that starts with
// "/" means the session root, so it is written relative to the link.
//
// Not restored: setuid, setgid and sticky bits (only 0777 is kept),
// extended attributes, owners and times.
func (r *Reader) WriteTree(ctx context.Context, tree domain.Tree, dir string, o WriteOptions) (WriteStats, error) {
	var st WriteStats
	var entries []domain.Entry
	var walkErr error
	tree.Walk("", "", func(e domain.Entry) bool {
		if walkErr = checkEntry(tree, e); walkErr != nil {
			return false
		}
		entries = append(entries, e)
		return true
	})
	if walkErr != nil {
		return st, walkErr
	}
	root, err := prepareDir(dir, o.Force)
	if err != nil {
		return st, err
	}
	defer root.Close()
	var dirs []domain.Entry
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		n := e.Node
		switch n.Kind {
		case domain.KindDir:
			if err := root.Mkdir(e.Path, 0o700); err != nil {
				return st, fmt.Errorf("write %s: %w", e.Path, err)
			}
			dirs = append(dirs, e)
			st.Dirs++
		case domain.KindFile:
			size, err := r.writeFile(ctx, root, e.Path, n)
			if err != nil {
				return st, err
			}
			st.Files++
			st.Bytes += size
		case domain.KindSymlink:
			if err := root.Symlink(linkTarget(e.Path, n.Target), e.Path); err != nil {
				return st, fmt.Errorf("write %s: %w", e.Path, err)
			}
			st.Symlinks++
		}
	}
	// Directory modes last, deepest first, so that a read-only directory
	// was still writable while its entries were written.
	for _, e := range slices.Backward(dirs) {
		if err := root.Chmod(e.Path, os.FileMode(e.Node.Mode&0o777)); err != nil {
			return st, fmt.Errorf("chmod %s: %w", e.Path, err)
		}
	}
	return st, nil
}

func (r *Reader) writeFile(ctx context.Context, root *os.Root, p string, n *domain.Node) (int64, error) {
	f, err := root.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, fmt.Errorf("write %s: %w", p, err)
	}
	var size int64
	switch {
	case n.Inline():
		var w int
		w, err = f.Write(n.Data)
		size = int64(w)
	case !n.Content.IsZero():
		size, err = r.CopyBlob(ctx, n.Content, f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return size, fmt.Errorf("write %s: %w", p, err)
	}
	if size != n.Size {
		return size, fmt.Errorf("write %s: the tree records %d bytes, blob %s holds %d", p, n.Size, n.Content, size)
	}
	if err := root.Chmod(p, os.FileMode(n.Mode&0o777)); err != nil {
		return size, fmt.Errorf("chmod %s: %w", p, err)
	}
	return size, nil
}

// prepareDir creates dir if needed, refuses or empties it when it has
// entries, and opens it as a root that no path can leave.
func prepareDir(dir string, force bool) (*os.Root, error) {
	if dir == "" {
		return nil, fmt.Errorf("no directory to write to")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", dir, err)
	}
	f, err := root.Open(".")
	if err != nil {
		root.Close()
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		root.Close()
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	if len(names) > 0 && !force {
		root.Close()
		return nil, fmt.Errorf("%s: %w (use --force to empty it first)", dir, ErrNotEmpty)
	}
	for _, name := range names {
		// RemoveAll on a root removes a symlink, never what it points to.
		if err := root.RemoveAll(name); err != nil {
			root.Close()
			return nil, fmt.Errorf("empty %s: %w", dir, err)
		}
	}
	return root, nil
}

// checkEntry refuses a tree entry that could not be written safely: a path
// that is not clean (a tampered history could hold "..") or a symlink that
// leads out of the tree.
func checkEntry(t domain.Tree, e domain.Entry) error {
	if c, err := domain.CleanNonRoot(e.Path); err != nil || c != e.Path {
		return fmt.Errorf("tree holds an unsafe path %q; nothing written", e.Path)
	}
	switch e.Node.Kind {
	case domain.KindDir, domain.KindFile:
		return nil
	case domain.KindSymlink:
		tg := e.Node.Target
		if tg == "" || len(tg) > domain.MaxTargetBytes || strings.IndexByte(tg, 0) >= 0 {
			return fmt.Errorf("symlink %q has an invalid target; nothing written", e.Path)
		}
		if escapes(t, e.Path) {
			return fmt.Errorf("symlink %q -> %q leads out of the tree; nothing written", e.Path, tg)
		}
		return nil
	}
	return fmt.Errorf("entry %q has unknown kind %d; nothing written", e.Path, e.Node.Kind)
}

// escapes reports whether following the symlink at p can lead above the
// tree's root. It walks the path as POSIX does, expanding the tree's
// symlinks (a target starting with "/" restarts at the root) and taking any
// other component as a directory, which can only make it stricter than the
// filesystem. A loop is no escape: the filesystem stops it with ELOOP.
func escapes(t domain.Tree, p string) bool {
	parts := strings.Split(p, "/")
	var stack []string
	for hops := 0; len(parts) > 0; {
		c := parts[0]
		parts = parts[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(stack) == 0 {
				return true
			}
			stack = stack[:len(stack)-1]
			continue
		}
		cur := strings.Join(append(stack, c), "/")
		if n := t.Lookup(cur); n != nil && n.Kind == domain.KindSymlink {
			if hops++; hops > domain.MaxSymlinkHops {
				return false
			}
			if strings.HasPrefix(n.Target, "/") {
				stack = stack[:0]
			}
			parts = append(strings.Split(n.Target, "/"), parts...)
			continue
		}
		stack = append(stack, c)
	}
	return false
}

// linkTarget is a symlink's target as written to disk: a target that
// starts with "/" names the session root, so it becomes relative to the
// link's directory.
func linkTarget(p, target string) string {
	rest, ok := strings.CutPrefix(target, "/")
	if !ok {
		return target
	}
	up := strings.Count(p, "/")
	rel := strings.Repeat("../", up) + strings.TrimLeft(rest, "/")
	if rel == "" {
		return "."
	}
	return strings.TrimSuffix(rel, "/")
}
