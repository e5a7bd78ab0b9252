package workcopy

import (
	"bytes"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// MetaDir is the metadata folder inside a working copy.
const MetaDir = ".strand"

// Head says what a working copy was checked out from.
type Head struct {
	Session  string `json:"session"`
	Tenant   string `json:"tenant"`
	Position uint64 `json:"position"`
	Root     string `json:"root"`
}

// Kind of an index entry.
const (
	KindFile    = "file"
	KindDir     = "dir"
	KindSymlink = "symlink"
)

// Entry is one tracked path: what the session holds there at HEAD, and the
// size and mtime the file had on disk when it last matched.
type Entry struct {
	Path   string
	Kind   string
	Size   int64
	Mode   uint32
	Hash   string
	Target string
	// Mtime is the file's modification time in nanoseconds when it last
	// matched Hash (0: unknown, hash it again).
	Mtime int64
}

// same reports whether two entries hold the same thing (content, kind,
// mode, target), whatever their mtimes.
func (e Entry) same(o Entry) bool {
	if e.Kind != o.Kind {
		return false
	}
	switch e.Kind {
	case KindFile:
		return e.Hash == o.Hash && e.Mode == o.Mode
	case KindSymlink:
		return e.Target == o.Target
	case KindDir:
		return true
	}
	return false
}

// Conflict is a path a pull could not merge.
type Conflict struct {
	Path string `json:"path"`
	// Why says what both sides did.
	Why string `json:"why"`
	// Hash is the content the pull left on disk (with markers): while the
	// file still has it, the conflict is not resolved.
	Hash string `json:"hash,omitempty"`
}

type indexFile struct {
	Written int64
	Entries []Entry
}

func metaPath(dir, name string) string { return filepath.Join(dir, MetaDir, name) }

// writeAtomic replaces a metadata file as a whole (temp file, fsync,
// rename), so a crash leaves the old one or the new one.
func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(data)
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), path)
	}
	if werr != nil {
		_ = os.Remove(tmp.Name())
	}
	return werr
}

func (w *Copy) saveHead() error {
	b, err := json.MarshalIndent(w.Head, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(metaPath(w.Dir, "HEAD"), append(b, '\n'))
}

func (w *Copy) saveIndex() error {
	f := indexFile{Written: time.Now().UnixNano(), Entries: make([]Entry, 0, len(w.index))}
	for _, e := range w.index {
		f.Entries = append(f.Entries, e)
	}
	sort.Slice(f.Entries, func(i, j int) bool { return f.Entries[i].Path < f.Entries[j].Path })
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(f); err != nil {
		return fmt.Errorf("encode index: %w", err)
	}
	w.indexWritten = f.Written
	return writeAtomic(metaPath(w.Dir, "index"), buf.Bytes())
}

func (w *Copy) saveConflicts() error {
	if len(w.conflicts) == 0 {
		err := os.Remove(metaPath(w.Dir, "conflicts"))
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	b, err := json.MarshalIndent(w.conflicts, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(metaPath(w.Dir, "conflicts"), append(b, '\n'))
}

// save writes the index, the conflicts, then HEAD last: HEAD names the
// position the index describes.
func (w *Copy) save() error {
	if err := w.saveIndex(); err != nil {
		return fmt.Errorf("save index: %w", err)
	}
	if err := w.saveConflicts(); err != nil {
		return fmt.Errorf("save conflicts: %w", err)
	}
	if err := w.saveHead(); err != nil {
		return fmt.Errorf("save HEAD: %w", err)
	}
	return nil
}

func (w *Copy) load() error {
	b, err := os.ReadFile(metaPath(w.Dir, "HEAD"))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s is not a working copy (no %s/HEAD): %w", w.Dir, MetaDir, ErrNotWorkingCopy)
	}
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, &w.Head); err != nil {
		return fmt.Errorf("read %s/HEAD: %w", MetaDir, err)
	}
	f, err := os.Open(metaPath(w.Dir, "index"))
	if err != nil {
		return fmt.Errorf("read index: %w", err)
	}
	defer f.Close()
	var idx indexFile
	if err := gob.NewDecoder(f).Decode(&idx); err != nil {
		return fmt.Errorf("read index: %w", err)
	}
	w.indexWritten = idx.Written
	w.index = make(map[string]Entry, len(idx.Entries))
	for _, e := range idx.Entries {
		w.index[e.Path] = e
	}
	b, err = os.ReadFile(metaPath(w.Dir, "conflicts"))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return err
	default:
		if err := json.Unmarshal(b, &w.conflicts); err != nil {
			return fmt.Errorf("read conflicts: %w", err)
		}
	}
	return nil
}

// lockedIndex lets concurrent writers record entries.
type lockedIndex struct {
	mu  sync.Mutex
	idx map[string]Entry
}

func (l *lockedIndex) put(e Entry) {
	l.mu.Lock()
	l.idx[e.Path] = e
	l.mu.Unlock()
}
