package workcopy

import (
	"bufio"
	"bytes"
	"encoding/gob"
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

// indexFile is the one metadata file: HEAD, the index and the conflicts
// together, replaced as a whole by a rename, so that no crash can leave an
// index that belongs to another position than HEAD. Like git's index it is
// not fsynced: a power cut may bring back the previous state whole, and a
// push from it is refused with conflict (pull then sorts it out) or, when
// the same push is made again, replayed.
type indexFile struct {
	Head      Head
	Written   int64
	Entries   []Entry
	Conflicts []Conflict
}

func metaPath(dir, name string) string { return filepath.Join(dir, MetaDir, name) }

// writeAtomic replaces a metadata file as a whole (temp file, rename), so
// a crash of the process leaves the old one or the new one.
func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(data)
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

// save writes HEAD, the index and the conflicts in one file.
func (w *Copy) save() error {
	f := indexFile{Head: w.Head, Written: time.Now().UnixNano(), Entries: make([]Entry, 0, len(w.index)), Conflicts: w.conflicts}
	for _, e := range w.index {
		f.Entries = append(f.Entries, e)
	}
	sort.Slice(f.Entries, func(i, j int) bool { return f.Entries[i].Path < f.Entries[j].Path })
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(f); err != nil {
		return fmt.Errorf("encode index: %w", err)
	}
	if err := writeAtomic(metaPath(w.Dir, indexName), buf.Bytes()); err != nil {
		return fmt.Errorf("save index: %w", err)
	}
	w.indexWritten = f.Written
	return nil
}

// indexName is the metadata file in MetaDir.
const indexName = "index"

func (w *Copy) load() error {
	f, err := os.Open(metaPath(w.Dir, indexName))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s is not a working copy (no %s/%s): %w", w.Dir, MetaDir, indexName, ErrNotWorkingCopy)
	}
	if err != nil {
		return fmt.Errorf("read index: %w", err)
	}
	defer f.Close()
	var idx indexFile
	if err := gob.NewDecoder(bufio.NewReader(f)).Decode(&idx); err != nil {
		return fmt.Errorf("read index: %w", err)
	}
	w.Head, w.indexWritten, w.conflicts = idx.Head, idx.Written, idx.Conflicts
	w.index = make(map[string]Entry, len(idx.Entries))
	for _, e := range idx.Entries {
		w.index[e.Path] = e
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
