package imports

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/strand-dev/strand/domain"
)

// Dir reads a directory of the host. Symlinks are read as symlinks, never
// followed, and must resolve inside the directory; files are opened
// through an os.Root, so a symlink swapped in during the walk cannot make
// the import read outside it.
func Dir(ctx context.Context, path string, blobs Blobs, lim Limits, progress Progress) (Result, error) {
	if !filepath.IsAbs(path) {
		return Result{}, invalid("directory %q must be an absolute path", truncate(path))
	}
	root, err := os.OpenRoot(path)
	if err != nil {
		return Result{}, invalid("directory %q cannot be read: %s", truncate(path), pathProblem(err))
	}
	defer root.Close()
	b := newBuilder(ctx, blobs, lim, progress)
	err = fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return invalid("reading %q: %s", truncate(p), pathProblem(err))
		}
		if p == "." {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return invalid("reading %q: %s", truncate(p), pathProblem(err))
		}
		mode := uint32(info.Mode().Perm())
		switch t := d.Type(); {
		case t.IsDir():
			return b.dir(p, mode)
		case t&fs.ModeSymlink != 0:
			target, err := os.Readlink(filepath.Join(path, filepath.FromSlash(p)))
			if err != nil {
				return invalid("reading link %q: %s", truncate(p), pathProblem(err))
			}
			return b.symlink(p, filepath.ToSlash(target))
		case t.IsRegular():
			f, err := root.Open(p)
			if err != nil {
				return invalid("opening %q: %s", truncate(p), pathProblem(err))
			}
			defer f.Close()
			return b.file(p, mode, info.Size(), f)
		}
		return invalid("%q is not a file, directory or symlink", truncate(p))
	})
	if err != nil {
		var de *domain.Error
		if domain.AsError(err, &de) || ctx.Err() != nil {
			return Result{}, err
		}
		return Result{}, domain.Wrap(err, "read directory")
	}
	return b.finish()
}
