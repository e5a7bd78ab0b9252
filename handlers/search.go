package handlers

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

// Bounds of fs.search. A search stops, with a cursor to continue, when it
// has run SearchTimeout, read MaxSearchBytes of content, or filled a reply;
// files larger than MaxSearchFileBytes are skipped (counted), so a search
// holds at most searchWorkers such files in memory besides the blob cache.
const (
	MaxSearchFileBytes = 8 << 20
	MaxSearchBytes     = 1 << 30
	MaxSearchPattern   = 1000
	MaxSearchGlobs     = 32
	SearchTimeout      = 10 * time.Second
	searchWorkers      = 8
	searchWindow       = 256
	// binaryProbe is how much of a file is looked at for a NUL byte, the
	// test grep and git use to call a file binary.
	binaryProbe = 8000
)

// searchQuery is a checked fs.search request.
type searchQuery struct {
	re         *regexp.Regexp
	literal    []byte // set when the pattern is a plain case-sensitive string
	glob       string
	include    []string
	exclude    []string
	ignoreCase bool
	context    int
	limit      int
	prefix     string
	base       string
	// after and afterLine come from the cursor: resume at path after with
	// the lines past afterLine, or past it when afterLine is -1.
	after     string
	afterLine int
}

func (s *Service) fsSearch(c *call) (any, error) {
	var req client.SearchRequest
	id, err := c.decodeSession(&req, &req.Session)
	if err != nil {
		return nil, err
	}
	q, err := parseSearch(req)
	if err != nil {
		return nil, err
	}
	sess, err := c.resolveAt(id, req.At)
	if err != nil {
		return nil, err
	}
	q.base = searchBase(sess.Tree, q.prefix, strings.HasSuffix(req.Prefix, "/"))
	// Leave a tenth of the request's own time to build and send the reply.
	limit := SearchTimeout
	if dl, ok := c.ctx.Deadline(); ok {
		limit = min(limit, time.Until(dl)*9/10)
	}
	ctx, cancel := context.WithTimeout(c.ctx, limit)
	defer cancel()
	reply := client.SearchReply{Files: []client.SearchFile{}, Position: sess.Position, Root: sess.Tree.Hash().String()}
	sr := &searcher{svc: s, q: q, tree: sess.Tree, reply: &reply, budget: int(s.maxContent()) / 2}
	if err := sr.run(ctx); err != nil {
		return nil, err
	}
	return reply, nil
}

func parseSearch(req client.SearchRequest) (*searchQuery, error) {
	q := &searchQuery{ignoreCase: req.IgnoreCase, context: req.Context, limit: req.Limit}
	if req.Context < 0 || req.Context > client.MaxSearchContext {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "context must be between 0 and %d lines", client.MaxSearchContext)
	}
	if req.Limit < 0 || req.Limit > client.MaxSearchLimit {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "limit must be between 0 and %d", client.MaxSearchLimit)
	}
	if q.limit == 0 {
		q.limit = client.DefaultSearchLimit
	}
	if err := q.compile(req); err != nil {
		return nil, err
	}
	globs, err := checkGlobs(req.IgnoreCase, append([]string{req.Glob}, append(req.Include, req.Exclude...)...))
	if err != nil {
		return nil, err
	}
	q.glob, q.include, q.exclude = globs[0], globs[1:1+len(req.Include)], globs[1+len(req.Include):]
	if q.prefix, err = domain.CleanPath(req.Prefix); err != nil {
		return nil, err
	}
	if req.Cursor != "" {
		if q.after, q.afterLine, err = parseSearchCursor(req.Cursor); err != nil {
			return nil, err
		}
	}
	return q, nil
}

func (q *searchQuery) compile(req client.SearchRequest) error {
	if req.Pattern == "" {
		if req.Literal {
			return domain.Errorf(domain.CodeInvalidArgument, "literal needs a pattern")
		}
		return nil
	}
	if len(req.Pattern) > MaxSearchPattern {
		return domain.Errorf(domain.CodeInvalidArgument, "pattern is longer than %d bytes", MaxSearchPattern)
	}
	if !utf8.ValidString(req.Pattern) {
		return domain.Errorf(domain.CodeInvalidArgument, "pattern is not valid UTF-8")
	}
	expr := req.Pattern
	if req.Literal {
		if !req.IgnoreCase && !strings.Contains(expr, "\n") {
			q.literal = []byte(expr)
		}
		expr = regexp.QuoteMeta(expr)
	}
	flags := "(?m)"
	if req.IgnoreCase {
		flags = "(?mi)"
	}
	re, err := regexp.Compile(flags + expr)
	if err != nil {
		return domain.Errorf(domain.CodeInvalidArgument, "pattern is not a valid regular expression: %s", strings.TrimPrefix(err.Error(), "error parsing regexp: "))
	}
	q.re = re
	return nil
}

// checkGlobs validates globs (an empty one matches everything), folding
// case when asked.
func checkGlobs(fold bool, globs []string) ([]string, error) {
	if len(globs) > MaxSearchGlobs+1 {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "at most %d include and exclude globs", MaxSearchGlobs)
	}
	out := make([]string, len(globs))
	for i, g := range globs {
		if len(g) > domain.MaxPathBytes {
			return nil, domain.Errorf(domain.CodeInvalidArgument, "glob is longer than %d bytes", domain.MaxPathBytes)
		}
		g = strings.TrimPrefix(g, "/")
		if fold {
			g = strings.ToLower(g)
		}
		if !doublestar.ValidatePattern(g) || strings.IndexByte(g, 0) >= 0 {
			return nil, domain.Errorf(domain.CodeInvalidArgument, "glob %q is not valid", truncate(g, 64))
		}
		out[i] = g
	}
	return out, nil
}

// globMatch matches a clean path against a checked glob; a glob without
// a "/" matches the base name.
func globMatch(g, p string) bool {
	if g == "" {
		return true
	}
	if !strings.Contains(g, "/") {
		p = path.Base(p)
	}
	ok, _ := doublestar.Match(g, p)
	return ok
}

// selects says whether a path passes the glob and the include and exclude
// lists.
func (q *searchQuery) selects(p string) bool {
	if q.prefix != "" && q.base != q.prefix && !strings.HasPrefix(p, q.prefix) {
		return false
	}
	if q.ignoreCase {
		p = strings.ToLower(p)
	}
	if !globMatch(q.glob, p) {
		return false
	}
	if len(q.include) > 0 {
		in := false
		for _, g := range q.include {
			if globMatch(g, p) {
				in = true
				break
			}
		}
		if !in {
			return false
		}
	}
	for _, g := range q.exclude {
		if globMatch(g, p) {
			return false
		}
	}
	return true
}

// searchBase is the directory a prefix walks: the prefix itself when it
// names a directory (or ends in "/"), otherwise its parent, so that "src/ma"
// keeps src/main.go (as fs.manifest does).
func searchBase(t domain.Tree, prefix string, dir bool) string {
	if prefix == "" || dir {
		return prefix
	}
	if n := t.Lookup(prefix); n != nil && n.Kind == domain.KindDir {
		return prefix
	}
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		return prefix[:i]
	}
	return ""
}

// A cursor is "LINE:PATH", base64url encoded so that callers treat it as
// opaque: continue at PATH with the lines after LINE (0: all of them), or
// after PATH when LINE is -1.
func searchCursor(p string, line int) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(line) + ":" + p))
}

func parseSearchCursor(cur string) (string, int, error) {
	bad := domain.Errorf(domain.CodeInvalidArgument, "cursor is not one fs.search gave")
	raw, err := base64.RawURLEncoding.DecodeString(cur)
	if err != nil {
		return "", 0, bad
	}
	n, p, ok := strings.Cut(string(raw), ":")
	line, err := strconv.Atoi(n)
	if !ok || err != nil || line < -1 {
		return "", 0, bad
	}
	clean, err := domain.CleanNonRoot(p)
	if err != nil || clean != p {
		return "", 0, bad
	}
	return p, line, nil
}

// searcher runs one fs.search: it walks the tree in windows of candidate
// paths, scans each window's files in parallel and appends the results in
// tree order until a bound is reached.
type searcher struct {
	svc    *Service
	q      *searchQuery
	tree   domain.Tree
	reply  *client.SearchReply
	budget int // bytes of match text a reply may still carry
	bytes  int64
}

// candidate is a path of the window and, after the scan, what it found.
type candidate struct {
	path      string
	node      *domain.Node
	fromLine  int // skip matches at or before this line (a cursor inside the file)
	file      client.SearchFile
	scanned   bool
	binary    bool
	large     bool
	err       error
	truncated bool // more matches than the page could take
}

func (sr *searcher) run(ctx context.Context) error {
	after := sr.q.after
	var first []*candidate
	if after != "" && sr.q.afterLine >= 0 {
		n := sr.tree.Lookup(after)
		if n != nil && (sr.q.re == nil || n.Kind == domain.KindFile) && sr.q.selects(after) {
			first = append(first, &candidate{path: after, node: n, fromLine: sr.q.afterLine})
		}
	}
	for {
		window, last := sr.window(after, first)
		first = nil
		if len(window) == 0 {
			return nil
		}
		done, err := sr.scan(ctx, window)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		after = last
	}
}

// window gathers up to searchWindow selected paths after a path.
func (sr *searcher) window(after string, window []*candidate) ([]*candidate, string) {
	last := after
	sr.tree.Walk(sr.q.base, after, func(e domain.Entry) bool {
		last = e.Path
		if sr.q.re != nil && e.Node.Kind != domain.KindFile {
			return true
		}
		if sr.q.selects(e.Path) {
			window = append(window, &candidate{path: e.Path, node: e.Node})
		}
		return len(window) < searchWindow
	})
	return window, last
}

// scan searches the files of a window and adds them to the reply; it
// reports whether the search is over (a bound was reached).
func (sr *searcher) scan(ctx context.Context, window []*candidate) (bool, error) {
	if sr.q.re != nil {
		sr.read(ctx, window)
	}
	r := sr.reply
	for _, cd := range window {
		if sr.q.re != nil && !cd.scanned {
			if cd.err != nil && ctx.Err() == nil {
				return false, cd.err
			}
			// Out of time or bytes: resume at this file.
			r.Stopped = "time"
			if sr.bytes >= MaxSearchBytes {
				r.Stopped = "bytes"
			}
			r.NextCursor = sr.resumeBefore(cd)
			return true, nil
		}
		if done := sr.add(cd); done {
			return true, nil
		}
	}
	return false, nil
}

// resumeBefore is the cursor that starts a next page at candidate cd.
func (sr *searcher) resumeBefore(cd *candidate) string {
	return searchCursor(cd.path, cd.fromLine)
}

// add appends a scanned candidate to the reply, cutting it at the limit
// or the reply's size budget; it reports whether the page is full.
func (sr *searcher) add(cd *candidate) bool {
	r := sr.reply
	if sr.q.re == nil {
		if r.Matches == sr.q.limit {
			r.Stopped, r.NextCursor = "limit", searchCursor(r.Files[len(r.Files)-1].Path, -1)
			return true
		}
		r.Files = append(r.Files, fileView(cd.path, cd.node))
		r.Matches++
		return false
	}
	r.FilesScanned++
	r.BytesScanned += cd.node.Size
	switch {
	case cd.binary:
		r.SkippedBinary++
		return false
	case cd.large:
		r.SkippedLarge++
		r.BytesScanned -= cd.node.Size
		return false
	case len(cd.file.Matches) == 0:
		return false
	}
	f := cd.file
	f.Matches = nil
	for i, m := range cd.file.Matches {
		size := matchSize(m)
		if r.Matches == sr.q.limit || (size > sr.budget && r.Matches > 0) {
			if i > 0 {
				r.Files = append(r.Files, f)
			}
			r.Stopped = "limit"
			if r.Matches != sr.q.limit {
				r.Stopped = "size"
			}
			r.NextCursor = searchCursor(cd.path, lastLine(cd, i))
			return true
		}
		sr.budget -= size
		f.Matches = append(f.Matches, m)
		r.Matches++
	}
	r.Files = append(r.Files, f)
	switch {
	case cd.truncated:
		// The file holds more matches than this page took.
		r.Stopped, r.NextCursor = "limit", searchCursor(cd.path, f.Matches[len(f.Matches)-1].Line)
		return true
	case r.Matches == sr.q.limit:
		r.Stopped, r.NextCursor = "limit", searchCursor(cd.path, -1)
		return true
	}
	return false
}

// lastLine is the line a cursor resumes after when a file is cut at match
// i: that of the match before, or the line the file was resumed from.
func lastLine(cd *candidate, i int) int {
	if i > 0 {
		return cd.file.Matches[i-1].Line
	}
	return cd.fromLine
}

func matchSize(m client.SearchMatch) int {
	n := len(m.Text) + 64
	for _, l := range m.Before {
		n += len(l) + 8
	}
	for _, l := range m.After {
		n += len(l) + 8
	}
	return n
}

func fileView(p string, n *domain.Node) client.SearchFile {
	f := client.SearchFile{Path: p, Kind: n.Kind.String(), Size: n.Size}
	if n.Kind == domain.KindFile {
		f.Hash = n.Content.String()
	}
	return f
}

// read scans the files of a window on searchWorkers goroutines.
func (sr *searcher) read(ctx context.Context, window []*candidate) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	next := 0
	for range min(searchWorkers, len(window)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				if next == len(window) || ctx.Err() != nil || sr.bytes >= MaxSearchBytes {
					mu.Unlock()
					return
				}
				cd := window[next]
				next++
				if cd.node.Size <= MaxSearchFileBytes {
					sr.bytes += cd.node.Size
				}
				mu.Unlock()
				sr.scanFile(ctx, cd)
			}
		}()
	}
	wg.Wait()
}

func (sr *searcher) scanFile(ctx context.Context, cd *candidate) {
	cd.file = fileView(cd.path, cd.node)
	if cd.node.Size > MaxSearchFileBytes {
		cd.large, cd.scanned = true, true
		return
	}
	data := cd.node.Data // small content lives in the state (design record 0009)
	if cd.node.Size > 0 && !cd.node.Inline() {
		var err error
		data, err = sr.svc.searchCache.get(ctx, cd.node.Content, sr.svc.blobs.Get)
		if err != nil {
			if ctx.Err() == nil {
				cd.err = fmt.Errorf("search %s: %w", cd.path, err)
			}
			return
		}
	}
	if bytes.IndexByte(data[:min(len(data), binaryProbe)], 0) >= 0 {
		cd.binary, cd.scanned = true, true
		return
	}
	cd.file.Matches, cd.truncated = sr.q.grep(data, cd.fromLine)
	cd.scanned = true
}

// grep finds the lines of data that match, at most one match per line,
// skipping lines up to fromLine; it reports whether it stopped at the limit.
func (q *searchQuery) grep(data []byte, fromLine int) ([]client.SearchMatch, bool) {
	var out []client.SearchMatch
	pos, line, counted := 0, 1, 0
	for pos <= len(data) {
		start, ok := q.find(data, pos)
		if !ok {
			break
		}
		ls := bytes.LastIndexByte(data[:start], '\n') + 1
		le := len(data)
		if i := bytes.IndexByte(data[start:], '\n'); i >= 0 {
			le = start + i
		}
		line += bytes.Count(data[counted:ls], []byte{'\n'})
		counted = ls
		if line > fromLine {
			if len(out) == q.limit {
				return out, true
			}
			m := client.SearchMatch{Line: line, Column: start - ls + 1}
			m.Text, m.Cut = lineText(data[ls:le])
			if q.context > 0 {
				m.Before, m.After = contextLines(data, ls, le, q.context)
			}
			out = append(out, m)
		}
		pos = le + 1
	}
	return out, false
}

// find returns the offset of the next match at or after pos, which is the
// start of a line.
func (q *searchQuery) find(data []byte, pos int) (int, bool) {
	if q.literal != nil {
		i := bytes.Index(data[pos:], q.literal)
		return pos + i, i >= 0
	}
	loc := q.re.FindIndex(data[pos:])
	if loc == nil {
		return 0, false
	}
	return pos + loc[0], true
}

// lineText returns a line as valid UTF-8, cut at client.MaxSearchLineBytes.
func lineText(b []byte) (string, bool) {
	b = bytes.TrimSuffix(b, []byte{'\r'})
	cut := false
	if len(b) > client.MaxSearchLineBytes {
		b, cut = b[:client.MaxSearchLineBytes], true
		for len(b) > 0 && !utf8.Valid(b[len(b)-min(len(b), 3):]) && !utf8.RuneStart(b[len(b)-1]) {
			b = b[:len(b)-1]
		}
	}
	return strings.ToValidUTF8(string(b), "\uFFFD"), cut
}

// contextLines returns up to n lines before the line [ls, le) and after it.
func contextLines(data []byte, ls, le, n int) (before, after []string) {
	end := ls
	for range n {
		if end == 0 {
			break
		}
		s := bytes.LastIndexByte(data[:end-1], '\n') + 1
		t, _ := lineText(data[s : end-1])
		before = append([]string{t}, before...)
		end = s
	}
	start := le + 1
	for range n {
		if start > len(data) || (start == len(data)) {
			break
		}
		e := len(data)
		if i := bytes.IndexByte(data[start:], '\n'); i >= 0 {
			e = start + i
		}
		t, _ := lineText(data[start:e])
		after = append(after, t)
		start = e + 1
	}
	return before, after
}
