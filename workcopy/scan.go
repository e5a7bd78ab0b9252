package workcopy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
)

// racyWindow: a file modified this close before the index was written may
// have changed again within the same mtime tick, so its mtime proves
// nothing and it is hashed again (git's "racily clean" entries).
const racyWindow = int64(100e6) // 100 ms in nanoseconds

// scan walks the working copy and returns every path that a push would
// consider (tracked paths, and untracked ones no .strandignore ignores),
// with content hashes. A file whose size, mtime and mode match its index
// entry keeps the entry's hash without being read.
func (w *Copy) scan() (map[string]Entry, error) {
	ig := newIgnorer()
	if err := ig.load(w.Dir, ""); err != nil {
		return nil, err
	}
	cur := make(map[string]Entry, len(w.index))
	var toHash []string
	err := filepath.WalkDir(w.Dir, func(full string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if full == w.Dir {
			return nil
		}
		rel, err := filepath.Rel(w.Dir, full)
		if err != nil {
			return err
		}
		p := filepath.ToSlash(rel)
		old, tracked := w.index[p]
		if !tracked && ig.ignored(p, d.IsDir()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if p == MetaDir {
			return filepath.SkipDir
		}
		info, err := d.Info()
		if err != nil {
			if os.IsNotExist(err) {
				return nil // removed while we walk
			}
			return err
		}
		switch {
		case info.IsDir():
			cur[p] = Entry{Path: p, Kind: KindDir, Mode: uint32(info.Mode().Perm())}
			return ig.load(w.Dir, p)
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(full)
			if err != nil {
				return err
			}
			cur[p] = Entry{Path: p, Kind: KindSymlink, Target: target}
		case info.Mode().IsRegular():
			e := Entry{Path: p, Kind: KindFile, Size: info.Size(), Mode: uint32(info.Mode().Perm()), Mtime: info.ModTime().UnixNano()}
			if tracked && old.Kind == KindFile && old.Size == e.Size && old.Mtime == e.Mtime && old.Mtime != 0 &&
				old.Mtime < w.indexWritten-racyWindow {
				e.Hash = old.Hash
			} else {
				toHash = append(toHash, p)
			}
			cur[p] = e
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", w.Dir, err)
	}
	if err := w.hashAll(cur, toHash); err != nil {
		return nil, err
	}
	return cur, nil
}

// hashAll hashes the files of paths, a few at a time.
func (w *Copy) hashAll(cur map[string]Entry, paths []string) error {
	if len(paths) == 0 {
		return nil
	}
	sums := make([]string, len(paths))
	errs := make([]error, len(paths))
	var next sync.Mutex
	i := 0
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0)*2, len(paths)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				next.Lock()
				k := i
				i++
				next.Unlock()
				if k >= len(paths) {
					return
				}
				sums[k], errs[k] = hashFile(w.abs(paths[k]))
			}
		}()
	}
	wg.Wait()
	for k, p := range paths {
		if errs[k] != nil {
			if os.IsNotExist(errs[k]) {
				delete(cur, p)
				continue
			}
			return fmt.Errorf("hash %s: %w", p, errs[k])
		}
		e := cur[p]
		e.Hash = sums[k]
		cur[p] = e
	}
	return nil
}

func hashFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func hashBytes(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
