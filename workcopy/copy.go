package workcopy

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/contentcache"
	"github.com/strand-dev/strand/domain"
)

// ErrNotWorkingCopy is returned by Open for a directory without metadata.
var ErrNotWorkingCopy = errors.New("not a working copy")

// Copy is an open working copy.
type Copy struct {
	// Dir is the working copy's root (absolute).
	Dir string
	// Head is what the files came from.
	Head Head

	client *client.Client
	cache  *contentcache.Cache
	// Progress, when not nil, hears about long work (a bar on a terminal).
	Progress io.Writer

	index        map[string]Entry
	indexWritten int64
	conflicts    []Conflict
}

// Open opens the working copy in dir. The client must be for the tenant
// the copy was checked out as; cache may be nil (no shared cache).
func Open(dir string, c *client.Client, cache *contentcache.Cache) (*Copy, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	w := &Copy{Dir: abs, client: c, cache: cache}
	if err := w.load(); err != nil {
		return nil, err
	}
	if c != nil && c.Tenant != w.Head.Tenant {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "%s was checked out as tenant %s, not %s", abs, w.Head.Tenant, c.Tenant)
	}
	return w, nil
}

// Find returns the root of the working copy that holds dir: dir itself or
// the nearest directory above it with a metadata folder.
func Find(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := abs; ; d = filepath.Dir(d) {
		if IsWorkingCopy(d) {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("%s is not in a working copy (no %s above it): %w", abs, MetaDir, ErrNotWorkingCopy)
		}
	}
}

// IsWorkingCopy reports whether dir holds a working copy.
func IsWorkingCopy(dir string) bool {
	_, err := os.Stat(metaPath(dir, indexName))
	return err == nil
}

// Conflicts returns the conflicts the last pull left, not yet pushed.
func (w *Copy) Conflicts() []Conflict { return append([]Conflict(nil), w.conflicts...) }

// Entries returns the number of tracked paths.
func (w *Copy) Entries() int { return len(w.index) }

// abs returns the local path of a session path.
func (w *Copy) abs(p string) string { return filepath.Join(w.Dir, filepath.FromSlash(p)) }

func (w *Copy) remote() error {
	if w.client == nil {
		return fmt.Errorf("working copy %s opened without a client", w.Dir)
	}
	return nil
}
