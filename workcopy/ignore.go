package workcopy

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/format/gitignore"
)

// IgnoreFile holds ignore patterns, in gitignore syntax, in any directory
// of a working copy; a file's patterns apply below its directory.
const IgnoreFile = ".strandignore"

// ignorer matches paths against the .strandignore files found so far. The
// metadata folder is always ignored.
type ignorer struct {
	patterns []gitignore.Pattern
	matcher  gitignore.Matcher
}

func newIgnorer() *ignorer {
	ig := &ignorer{}
	ig.add(nil, []byte("/"+MetaDir+"/\n"))
	return ig
}

// with returns an ignorer that also applies dir's .strandignore; ig itself
// is left as it is (it is shared by the goroutines reading other
// directories).
func (ig *ignorer) with(root, dir string) (*ignorer, error) {
	n := &ignorer{patterns: append([]gitignore.Pattern(nil), ig.patterns...)}
	n.matcher = gitignore.NewMatcher(n.patterns)
	return n, n.load(root, dir)
}

// load reads dir's .strandignore, if any (dir is a slash path, "" for the
// root).
func (ig *ignorer) load(root, dir string) error {
	data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(dir), IgnoreFile))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	var domain []string
	if dir != "" {
		domain = strings.Split(dir, "/")
	}
	ig.add(domain, data)
	return nil
}

func (ig *ignorer) add(domain []string, data []byte) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		ig.patterns = append(ig.patterns, gitignore.ParsePattern(line, domain))
	}
	ig.matcher = gitignore.NewMatcher(ig.patterns)
}

// ignored reports whether a slash path is ignored.
func (ig *ignorer) ignored(p string, isDir bool) bool {
	return ig.matcher.Match(strings.Split(p, "/"), isDir)
}
