package workcopy

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

// Diff writes the unified text diff of the local changes against HEAD to
// out: a/ is HEAD, b/ the working copy. The HEAD side comes from the
// machine's cache, or from the service when the cache lacks it.
func (w *Copy) Diff(ctx context.Context, out io.Writer) error {
	st, err := w.Status()
	if err != nil {
		return err
	}
	var refs []client.FileRef
	for _, c := range st.Changes {
		if c.Old != nil && c.Old.Kind == KindFile && c.Old.Size > 0 {
			refs = append(refs, client.FileRef{Path: pathOf(c), Hash: c.Old.Hash, Size: c.Old.Size})
		}
	}
	old := map[string][]byte{}
	var mu sync.Mutex
	if err := w.fetch(ctx, w.Head.Position, refs, func(hash string, data []byte) (string, error) {
		mu.Lock()
		old[hash] = data
		mu.Unlock()
		return "", nil
	}); err != nil {
		return err
	}
	for _, c := range st.Changes {
		a, b := side(c.Old, old), []byte(nil)
		if c.New != nil {
			switch c.New.Kind {
			case KindFile:
				if b, err = os.ReadFile(w.abs(c.Path)); err != nil {
					return err
				}
			case KindSymlink:
				b = []byte(c.New.Target + "\n")
			}
		}
		pa, pb := pathOf(c), c.Path
		if c.Old == nil {
			pa = ""
		}
		if c.New == nil {
			pb = ""
		}
		text := domain.UnifiedDiff(pa, pb, a, b, 3)
		if text == "" && c.Kind != Deleted && c.Kind != Added {
			text = "--- a/" + pathOf(c) + "\n+++ b/" + c.Path + "\n"
		}
		if c.Kind == ModeChanged || c.Kind == Renamed {
			text = modeLine(c) + text
		}
		if _, err := io.WriteString(out, text); err != nil {
			return err
		}
	}
	return nil
}

// pathOf is a change's path at HEAD.
func pathOf(c Change) string {
	if c.From != "" {
		return c.From
	}
	return c.Path
}

func side(e *Entry, content map[string][]byte) []byte {
	switch {
	case e == nil:
		return nil
	case e.Kind == KindSymlink:
		return []byte(e.Target + "\n")
	case e.Kind == KindFile:
		return content[e.Hash]
	}
	return nil
}

func modeLine(c Change) string {
	s := ""
	if c.Kind == Renamed {
		s += "rename from " + c.From + "\nrename to " + c.Path + "\n"
	}
	if c.Old != nil && c.New != nil && c.Old.Mode != c.New.Mode {
		s += "old mode " + octal(0o100000|c.Old.Mode) + "\nnew mode " + octal(c.New.Mode) + "\n"
	}
	return s
}

func octal(m uint32) string { return fmt.Sprintf("%06o", m) }
