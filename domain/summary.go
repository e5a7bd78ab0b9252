package domain

import (
	"slices"
	"strings"
)

// Summary describes what a session changed against its base: computed
// deterministically from the diff, so the same two trees always give the
// same summary.
type Summary struct {
	Added        int        `msgpack:"a" json:"added"`
	Modified     int        `msgpack:"m" json:"modified"`
	Deleted      int        `msgpack:"d" json:"deleted"`
	Renamed      int        `msgpack:"r" json:"renamed"`
	LinesAdded   int        `msgpack:"la" json:"lines_added"`
	LinesRemoved int        `msgpack:"lr" json:"lines_removed"`
	SizeDelta    int64      `msgpack:"sd" json:"size_delta"`
	TopDirs      []DirTouch `msgpack:"dirs,omitempty" json:"top_dirs"`
	// BinaryFiles counts changed files whose lines were not counted.
	BinaryFiles int `msgpack:"bin,omitempty" json:"binary_files"`
	// Files lists the changed paths in path order, at most MaxSummaryFiles
	// of them in a commit (FilesTotal counts them all).
	Files      []FileChange `msgpack:"files,omitempty" json:"files"`
	FilesTotal int          `msgpack:"ft,omitempty" json:"files_total"`
}

// FileChange is one changed path of a summary.
type FileChange struct {
	Path string `msgpack:"p" json:"path"`
	// Change is added, modified, deleted or renamed.
	Change string `msgpack:"c" json:"change"`
	// From is where a renamed path came from.
	From         string `msgpack:"from,omitempty" json:"from,omitempty"`
	LinesAdded   int    `msgpack:"la,omitempty" json:"lines_added"`
	LinesRemoved int    `msgpack:"lr,omitempty" json:"lines_removed"`
	// Binary is set for a file whose lines were not counted (binary or
	// too large).
	Binary bool `msgpack:"bin,omitempty" json:"binary,omitempty"`
}

// MaxSummaryFiles bounds the paths a commit's stored summary lists.
const MaxSummaryFiles = 1000

// Capped returns the summary with at most n files listed.
func (s Summary) Capped(n int) Summary {
	if len(s.Files) > n {
		s.Files = slices.Clip(s.Files[:n])
	}
	return s
}

// DirTouch counts the changed paths under a top-level directory ("" for
// files at the root).
type DirTouch struct {
	Dir     string `msgpack:"dir" json:"dir"`
	Changes int    `msgpack:"n" json:"changes"`
}

// topDirs bounds the directories a summary lists.
const topDirs = 10

// CountLines returns how many lines the shortest line edit from a to b adds
// and removes. text is false for binary or oversized content, which is not
// counted.
func CountLines(a, b []byte) (added, removed int, text bool) {
	if isBinary(a) || isBinary(b) || len(a) > MaxUnifiedBytes || len(b) > MaxUnifiedBytes {
		return 0, 0, false
	}
	la, lb := splitLines(a), splitLines(b)
	if len(la) > MaxUnifiedLines || len(lb) > MaxUnifiedLines {
		return 0, 0, false
	}
	ia, ib := internLines(la, lb)
	delA, insB := lineEdits(ia, ib, unifiedWork)
	for _, d := range delA {
		if d {
			removed++
		}
	}
	for _, d := range insB {
		if d {
			added++
		}
	}
	return added, removed, true
}

// Summarize computes the summary of the changes from a base tree to a head
// tree. content returns a file's bytes by content hash; it is asked only for
// files that were added, deleted or modified.
func Summarize(c Changes, content func(Hash) ([]byte, error)) (*Summary, error) {
	s := &Summary{}
	dirs := map[string]int{}
	touch := func(p string) {
		d, _, ok := cut(p)
		if !ok {
			d = ""
		}
		dirs[d]++
	}
	read := func(n *Node) ([]byte, error) {
		if n == nil || n.Kind != KindFile || n.Size == 0 {
			return nil, nil
		}
		if n.Inline() {
			return n.Data, nil
		}
		return content(n.Content)
	}
	lines := func(old, new *Node, fc *FileChange) error {
		a, err := read(old)
		if err != nil {
			return err
		}
		b, err := read(new)
		if err != nil {
			return err
		}
		add, rem, text := CountLines(a, b)
		if !text {
			s.BinaryFiles++
			fc.Binary = true
		}
		fc.LinesAdded, fc.LinesRemoved = add, rem
		s.LinesAdded += add
		s.LinesRemoved += rem
		return nil
	}
	size := func(n *Node) int64 {
		if n != nil && n.Kind == KindFile {
			return n.Size
		}
		return 0
	}
	for _, ch := range c.Added {
		if ch.New.Kind == KindDir {
			continue
		}
		s.Added++
		s.SizeDelta += size(ch.New)
		touch(ch.Path)
		fc := FileChange{Path: ch.Path, Change: "added"}
		if err := lines(nil, ch.New, &fc); err != nil {
			return nil, err
		}
		s.Files = append(s.Files, fc)
	}
	for _, ch := range c.Deleted {
		if ch.Old.Kind == KindDir {
			continue
		}
		s.Deleted++
		s.SizeDelta -= size(ch.Old)
		touch(ch.Path)
		fc := FileChange{Path: ch.Path, Change: "deleted"}
		if err := lines(ch.Old, nil, &fc); err != nil {
			return nil, err
		}
		s.Files = append(s.Files, fc)
	}
	for _, ch := range c.Modified {
		if ch.Old.Kind == KindDir && ch.New.Kind == KindDir {
			continue
		}
		s.Modified++
		s.SizeDelta += size(ch.New) - size(ch.Old)
		touch(ch.Path)
		fc := FileChange{Path: ch.Path, Change: "modified"}
		if ch.Old.Kind == KindFile && ch.New.Kind == KindFile && ch.Old.Content == ch.New.Content {
			s.Files = append(s.Files, fc)
			continue // mode or xattrs only
		}
		if err := lines(ch.Old, ch.New, &fc); err != nil {
			return nil, err
		}
		s.Files = append(s.Files, fc)
	}
	for _, r := range c.Renamed {
		s.Renamed++
		s.SizeDelta += size(r.New) - size(r.Old)
		touch(r.From)
		touch(r.To)
		s.Files = append(s.Files, FileChange{Path: r.To, Change: "renamed", From: r.From})
	}
	slices.SortFunc(s.Files, func(a, b FileChange) int { return strings.Compare(a.Path, b.Path) })
	s.FilesTotal = len(s.Files)
	for d, n := range dirs {
		s.TopDirs = append(s.TopDirs, DirTouch{Dir: d, Changes: n})
	}
	slices.SortFunc(s.TopDirs, func(a, b DirTouch) int {
		if a.Changes != b.Changes {
			return b.Changes - a.Changes
		}
		return strings.Compare(a.Dir, b.Dir)
	})
	if len(s.TopDirs) > topDirs {
		s.TopDirs = s.TopDirs[:topDirs]
	}
	return s, nil
}

func cut(p string) (string, string, bool) { return strings.Cut(p, "/") }
