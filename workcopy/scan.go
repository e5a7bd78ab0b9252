package workcopy

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"
)

// racyWindow: a file modified this close before the index was written may
// have changed again within the same mtime tick, so its mtime proves
// nothing and it is hashed again (git's "racily clean" entries).
const racyWindow = int64(100e6) // 100 ms in nanoseconds

// scanWorkers bounds the directories read at once. Reading them in
// parallel is what git's preloaded index does for its lstat calls.
const scanWorkers = 8

// scan walks the working copy and returns every path that a push would
// consider (tracked paths, and untracked ones no .strandignore ignores),
// with content hashes. A file whose size and mtime match its index entry
// keeps the entry's hash without being read, unless the entry is racy.
// Directories are read in parallel.
func (w *Copy) scan() (map[string]Entry, error) {
	ig := newIgnorer()
	if err := ig.load(w.Dir, ""); err != nil {
		return nil, err
	}
	s := &scanner{w: w, cur: make(map[string]Entry, len(w.index)), sem: make(chan struct{}, scanWorkers)}
	s.dir("", ig)
	s.wg.Wait()
	if s.err != nil {
		return nil, fmt.Errorf("scan %s: %w", w.Dir, s.err)
	}
	if err := w.hashAll(s.cur, s.toHash); err != nil {
		return nil, err
	}
	return s.cur, nil
}

type scanner struct {
	w   *Copy
	sem chan struct{}
	wg  sync.WaitGroup

	mu     sync.Mutex
	cur    map[string]Entry
	toHash []string
	err    error
}

func (s *scanner) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
}

// dir reads one directory (a slash path, "" for the root) and everything
// below it, handing subdirectories to other goroutines while there are
// workers free.
func (s *scanner) dir(rel string, ig *ignorer) {
	full := s.w.abs(rel)
	f, err := os.Open(full)
	if err != nil {
		if !os.IsNotExist(err) {
			s.fail(err)
		}
		return
	}
	defer f.Close()
	ents, err := f.ReadDir(-1)
	if err != nil {
		s.fail(err)
		return
	}
	dirfd := int(f.Fd())
	if rel != "" {
		for _, d := range ents {
			if d.Name() == IgnoreFile {
				if ig, err = ig.with(s.w.Dir, rel); err != nil {
					s.fail(err)
					return
				}
				break
			}
		}
	}
	var found []Entry
	var hash []string
	for _, d := range ents {
		p := d.Name()
		if rel != "" {
			p = rel + "/" + p
		}
		old, tracked := s.w.index[p]
		if p == MetaDir || !tracked && ig.ignored(p, d.IsDir()) {
			continue
		}
		// Relative to the open directory: the kernel resolves one name,
		// not the whole path.
		var st unix.Stat_t
		if err := unix.Fstatat(dirfd, d.Name(), &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue // removed while we walk
			}
			s.fail(fmt.Errorf("lstat %s: %w", p, err))
			return
		}
		perm := st.Mode & 0o777
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			found = append(found, Entry{Path: p, Kind: KindDir, Mode: perm})
			select {
			case s.sem <- struct{}{}:
				s.wg.Add(1)
				go func() {
					defer func() { <-s.sem; s.wg.Done() }()
					s.dir(p, ig)
				}()
			default:
				s.dir(p, ig)
			}
		case unix.S_IFLNK:
			target, err := os.Readlink(filepath.Join(full, d.Name()))
			if err != nil {
				s.fail(err)
				return
			}
			found = append(found, Entry{Path: p, Kind: KindSymlink, Target: target})
		case unix.S_IFREG:
			e := Entry{Path: p, Kind: KindFile, Size: st.Size, Mode: perm, Mtime: st.Mtim.Nano()}
			if tracked && old.Kind == KindFile && old.Size == e.Size && old.Mtime == e.Mtime && old.Mtime != 0 &&
				old.Mtime < s.w.indexWritten-racyWindow {
				e.Hash = old.Hash
			} else {
				hash = append(hash, p)
			}
			found = append(found, e)
		}
	}
	s.mu.Lock()
	for _, e := range found {
		s.cur[e.Path] = e
	}
	s.toHash = append(s.toHash, hash...)
	s.mu.Unlock()
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
