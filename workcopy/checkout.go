package workcopy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"syscall"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/contentcache"
	"github.com/strand-dev/strand/domain"
)

// umask is the process's file creation mask, read once: files are created
// with their mode and changed with chmod only when the mask took bits away.
var umask = func() uint32 {
	m := syscall.Umask(0)
	syscall.Umask(m)
	return uint32(m)
}()

// CheckoutOptions tune a checkout.
type CheckoutOptions struct {
	// Progress, when not nil, hears a progress line (a terminal's stderr).
	Progress io.Writer
}

// Checkout writes session@at into dir (which must not exist or be empty)
// and records it as a working copy.
func Checkout(ctx context.Context, c *client.Client, cache *contentcache.Cache, session string, at client.At, dir string, opts CheckoutOptions) (*Copy, error) {
	w, err := checkout(ctx, c, cache, session, at, dir, opts)
	if err != nil {
		counters.failures[opCheckout].Add(1)
		return nil, err
	}
	counters.checkouts.Add(1)
	for _, e := range w.index {
		if e.Kind == KindFile {
			counters.checkoutFiles.Add(1)
			counters.checkoutBytes.Add(e.Size)
		}
	}
	return w, nil
}

func checkout(ctx context.Context, c *client.Client, cache *contentcache.Cache, session string, at client.At, dir string, opts CheckoutOptions) (*Copy, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := emptyDir(abs); err != nil {
		return nil, err
	}
	sess, err := c.GetSession(ctx, session, at)
	if err != nil {
		return nil, err
	}
	w := &Copy{Dir: abs, client: c, cache: cache, Progress: opts.Progress, index: map[string]Entry{},
		Head: Head{Session: sess.Session.ID, Tenant: c.Tenant, Position: sess.Session.Position}}
	entries, root, err := w.manifest(ctx, sess.Session.Position)
	if err != nil {
		return nil, err
	}
	w.Head.Root = root
	if err := os.MkdirAll(filepath.Join(abs, MetaDir), 0o755); err != nil {
		return nil, err
	}
	if err := w.materialize(ctx, sess.Session.Position, entries, nil); err != nil {
		return nil, err
	}
	if err := w.save(); err != nil {
		return nil, err
	}
	return w, nil
}

func emptyDir(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return os.MkdirAll(dir, 0o755)
	}
	if err != nil {
		return err
	}
	if len(ents) > 0 {
		return domain.Errorf(domain.CodeAlreadyExists, "%s is not empty", dir)
	}
	return nil
}

// manifest lists the whole tree at a position, checking every path.
func (w *Copy) manifest(ctx context.Context, position uint64) ([]Entry, string, error) {
	var out []Entry
	var root string
	after := ""
	for {
		page, err := w.client.Manifest(ctx, client.ManifestRequest{Session: w.Head.Session, At: client.AtPosition(position), After: after, Limit: client.MaxManifestLimit})
		if err != nil {
			return nil, "", err
		}
		root = page.Root
		for _, e := range page.Entries {
			if p, err := domain.CleanNonRoot(e.Path); err != nil || p != e.Path || e.Path == MetaDir || hasPrefixDir(e.Path, MetaDir) {
				return nil, "", fmt.Errorf("the service listed a path a working copy cannot hold: %q", e.Path)
			}
			out = append(out, Entry{Path: e.Path, Kind: e.Kind, Size: e.Size, Mode: e.Mode, Hash: e.Hash, Target: e.Target})
		}
		if page.NextCursor == "" {
			return out, root, nil
		}
		after = page.NextCursor
	}
}

func hasPrefixDir(p, dir string) bool {
	return len(p) > len(dir) && p[:len(dir)] == dir && p[len(dir)] == '/'
}

// materialize writes entries into the working copy and records them in
// the index. Directories come first (parents before children), then
// symlinks, then files with their content (fetched in bulk, written as it
// arrives). A path in skip is left alone.
func (w *Copy) materialize(ctx context.Context, position uint64, entries []Entry, skip map[string]bool) error {
	sort.Slice(entries, func(i, j int) bool { return entries[i].Path < entries[j].Path })
	byHash := map[string][]int{}
	var refs []client.FileRef
	var dirs []Entry
	for i, e := range entries {
		if skip[e.Path] {
			continue
		}
		switch e.Kind {
		case KindDir:
			if err := os.MkdirAll(w.abs(e.Path), 0o755); err != nil {
				return err
			}
			dirs = append(dirs, e)
			w.index[e.Path] = e
		case KindSymlink:
			if err := os.MkdirAll(filepath.Dir(w.abs(e.Path)), 0o755); err != nil {
				return err
			}
			_ = os.Remove(w.abs(e.Path))
			if err := os.Symlink(e.Target, w.abs(e.Path)); err != nil {
				return err
			}
			w.index[e.Path] = e
		case KindFile:
			if _, ok := byHash[e.Hash]; !ok {
				refs = append(refs, client.FileRef{Path: e.Path, Hash: e.Hash, Size: e.Size})
			}
			byHash[e.Hash] = append(byHash[e.Hash], i)
		}
	}
	prog := startProgress(w.Progress, "files", len(entries))
	defer prog.finish()
	var mu lockedIndex
	mu.idx = w.index
	err := w.fetch(ctx, position, refs, func(hash string, data []byte) (string, error) {
		for _, i := range byHash[hash] {
			e := entries[i]
			mtime, err := writeFile(w.abs(e.Path), data, e.Mode)
			if err != nil {
				return "", fmt.Errorf("write %s: %w", e.Path, err)
			}
			e.Mtime = mtime
			mu.put(e)
			prog.add(1)
		}
		return w.abs(entries[byHash[hash][0]].Path), nil
	})
	if err != nil {
		return err
	}
	// Directory modes last: a read-only directory is filled first.
	for _, d := range dirs {
		if d.Mode != 0 && d.Mode != 0o755 {
			if err := os.Chmod(w.abs(d.Path), os.FileMode(d.Mode)); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeFile replaces a file with data and mode and returns its mtime. The
// file is written in place of whatever was there (a file of another mode,
// a symlink), and its directory is made when missing.
func writeFile(path string, data []byte, mode uint32) (int64, error) {
	if mode == 0 {
		mode = 0o644
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, os.FileMode(mode))
	switch {
	case errors.Is(err, fs.ErrExist):
		// Replace rather than truncate: the old file may be linked from
		// the content cache, which must not see it change.
		if err := os.RemoveAll(path); err != nil {
			return 0, err
		}
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, os.FileMode(mode))
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return 0, err
		}
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, os.FileMode(mode))
	}
	if err != nil {
		return 0, err
	}
	_, werr := f.Write(data)
	if werr == nil && mode&umask != 0 {
		werr = f.Chmod(os.FileMode(mode))
	}
	var mtime int64
	if werr == nil {
		var fi os.FileInfo
		if fi, werr = f.Stat(); werr == nil {
			mtime = fi.ModTime().UnixNano()
		}
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	return mtime, werr
}
