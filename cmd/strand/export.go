package main

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"

	"github.com/strand-dev/strand/client"
)

// pinned is a session at one position: every read of an export uses it, so
// the pieces belong to one state whatever happens to the session meanwhile.
type pinned struct {
	id       string
	at       client.At
	position uint64
	time     time.Time
}

func (m *Main) pin(ctx context.Context, g *globals, spec string) (pinned, error) {
	id, at := splitAt(spec)
	r, err := g.client.GetSession(ctx, id, at)
	if err != nil {
		return pinned{}, err
	}
	return pinned{id: r.Session.ID, at: at, position: r.Session.Position, time: r.Session.UpdatedAt.UTC().Truncate(time.Second)}, nil
}

// walk calls fn for every entry of the pinned tree, in tree order (a
// directory before its entries), one manifest page at a time.
func (p pinned) walk(ctx context.Context, c *client.Client, fn func(e client.EntryView) error) error {
	after := ""
	for {
		page, err := c.Manifest(ctx, client.ManifestRequest{Session: p.id, At: client.AtPosition(p.position), After: after})
		if err != nil {
			return err
		}
		for _, e := range page.Entries {
			if err := fn(e); err != nil {
				return err
			}
		}
		if page.NextCursor == "" {
			return nil
		}
		after = page.NextCursor
	}
}

// copyFile writes a file's content to w, one read reply at a time.
func (p pinned) copyFile(ctx context.Context, c *client.Client, path string, w io.Writer) error {
	for off := int64(0); ; {
		r, err := c.Read(ctx, client.ReadRequest{Session: p.id, Path: path, At: client.AtPosition(p.position), Offset: off})
		if err != nil {
			return err
		}
		if _, err := w.Write(r.Content); err != nil {
			return err
		}
		off += int64(len(r.Content))
		if r.EOF {
			return nil
		}
		if len(r.Content) == 0 {
			return fmt.Errorf("read %s: no progress at offset %d", path, off)
		}
	}
}

func (m *Main) exportTar(ctx context.Context, args []string) error {
	var out string
	g, pos, err := m.dialArgs("export tar", args, 1, "export tar SESSION[@AT] [--out FILE]", func(fs *flag.FlagSet) {
		fs.StringVar(&out, "out", "", "write to FILE instead of standard output")
	})
	if err != nil {
		return err
	}
	defer g.close()
	w := m.Stdout
	if out != "" {
		f, err := os.Create(out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	p, err := m.pin(ctx, g, pos[0])
	if err != nil {
		return err
	}
	if err := writeTar(ctx, g.client, p, w); err != nil {
		return err
	}
	if f, ok := w.(*os.File); ok && out != "" {
		return f.Sync()
	}
	return nil
}

// writeTar streams the pinned tree as a tar: entries in tree order; modes
// and symlinks kept; owner 0 and, for every entry, the time of the event at
// the pinned position, so the same session and position always give the
// same bytes. Content comes through the bulk path (fs.read_batch, several
// requests in flight, each content once) a window of entries at a time,
// so memory stays bounded by exportWindow; a file larger than the window
// streams on its own with fs.read.
func writeTar(ctx context.Context, c *client.Client, p pinned, w io.Writer) error {
	tw := tar.NewWriter(w)
	var window []client.EntryView
	var windowBytes int64
	flush := func() error {
		err := p.writeWindow(ctx, c, tw, window)
		window, windowBytes = window[:0], 0
		return err
	}
	err := p.walk(ctx, c, func(e client.EntryView) error {
		if e.Kind == "file" && windowBytes+e.Size > exportWindow && len(window) > 0 {
			if err := flush(); err != nil {
				return err
			}
		}
		window = append(window, e)
		if e.Kind == "file" {
			windowBytes += e.Size
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return err
	}
	return tw.Close()
}

// exportWindow bounds the content an export holds in memory at once.
const exportWindow = 32 << 20

// writeWindow fetches the content of a window of entries in bulk and writes
// them to the tar in order.
func (p pinned) writeWindow(ctx context.Context, c *client.Client, tw *tar.Writer, window []client.EntryView) error {
	var refs []client.FileRef
	for _, e := range window {
		if e.Kind == "file" && e.Size > 0 && e.Size <= exportWindow {
			refs = append(refs, client.FileRef{Path: e.Path, Hash: e.Hash, Size: e.Size})
		}
	}
	var mu sync.Mutex
	content := map[string][]byte{}
	if len(refs) > 0 {
		err := c.FetchContent(ctx, p.id, client.AtPosition(p.position), refs, 0, func(hash string, data []byte) error {
			mu.Lock()
			content[hash] = data
			mu.Unlock()
			return nil
		})
		if err != nil {
			return err
		}
	}
	for _, e := range window {
		h := &tar.Header{Name: e.Path, Mode: int64(e.Mode), ModTime: p.time, Format: tar.FormatPAX}
		switch e.Kind {
		case "dir":
			h.Typeflag, h.Name = tar.TypeDir, e.Path+"/"
		case "symlink":
			h.Typeflag, h.Linkname = tar.TypeSymlink, e.Target
		default:
			h.Typeflag, h.Size = tar.TypeReg, e.Size
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if e.Kind != "file" || e.Size == 0 {
			continue
		}
		if data, ok := content[e.Hash]; ok {
			if _, err := tw.Write(data); err != nil {
				return err
			}
			continue
		}
		if err := p.copyFile(ctx, c, e.Path, tw); err != nil {
			return err
		}
	}
	return nil
}

func (m *Main) exportGit(ctx context.Context, args []string) error {
	var repoPath, branch, message, author string
	g, pos, err := m.parseArgs("export git", args, func(fs *flag.FlagSet) {
		fs.StringVar(&repoPath, "repo", "", "the git repository (created, bare, if missing)")
		fs.StringVar(&branch, "branch", "", "the branch to commit on; its tip is the commit's parent")
		fs.StringVar(&message, "message", "", "the commit message (default: the Strand commit's, or a generated one)")
		fs.StringVar(&author, "author", "", "the author, 'Name <email>' (default: the Strand commit's, or the actor)")
	})
	if err != nil {
		return err
	}
	if err := need(pos, 1, "export git SESSION[@AT] --repo PATH --branch NAME"); err != nil {
		return err
	}
	if repoPath == "" || branch == "" {
		return usagef("export git needs --repo PATH and --branch NAME")
	}
	ref := plumbing.NewBranchReferenceName(branch)
	if err := ref.Validate(); err != nil || strings.ContainsAny(branch, " ~^:?*[\\") {
		return usagef("--branch %q is not a valid branch name", branch)
	}
	if err := g.dial(); err != nil {
		return err
	}
	defer g.close()
	p, err := m.pin(ctx, g, pos[0])
	if err != nil {
		return err
	}
	who, when := g.actor, p.time
	if who == "" {
		who = "strand"
	}
	if cm, ok := strandCommit(ctx, g.client, p); ok {
		if message == "" {
			message = cm.Message
		}
		who, when = cm.Author, cm.CreatedAt.UTC().Truncate(time.Second)
	}
	if message == "" {
		message = fmt.Sprintf("Export of session %s at position %d\n", p.id, p.position)
	}
	if author != "" {
		who = author
	}
	hash, err := writeGitCommit(ctx, g.client, p, repoPath, ref, signature(who, when), message)
	if err != nil {
		return err
	}
	if g.json {
		return m.printJSON(map[string]any{"commit": hash.String(), "branch": branch, "session": p.id, "position": p.position})
	}
	m.table([]string{"FIELD", "VALUE"}, [][]string{{"commit", hash.String()}, {"branch", branch}, {"session", p.id}, {"position", strconv.FormatUint(p.position, 10)}})
	return nil
}

// strandCommit returns the Strand commit the export names, when AT is a
// commit id.
func strandCommit(ctx context.Context, c *client.Client, p pinned) (client.CommitView, bool) {
	if p.at == "" {
		return client.CommitView{}, false
	}
	if _, err := strconv.ParseUint(string(p.at), 10, 64); err == nil {
		return client.CommitView{}, false
	}
	r, err := c.GetCommit(ctx, client.CommitGetRequest{Session: p.id, Commit: string(p.at)})
	if err != nil {
		return client.CommitView{}, false
	}
	return r.Commit, true
}

var identRe = regexp.MustCompile(`^\s*([^<>]*?)\s*<([^<>]*)>\s*$`)

// signature makes a git identity of a Strand author: "Name <email>" as
// given, or the name with an empty email.
func signature(who string, when time.Time) object.Signature {
	clean := func(s string) string {
		return strings.Map(func(r rune) rune {
			if r == '<' || r == '>' || r == '\n' || r == 0 {
				return -1
			}
			return r
		}, strings.TrimSpace(s))
	}
	if m := identRe.FindStringSubmatch(who); m != nil && m[1] != "" {
		return object.Signature{Name: clean(m[1]), Email: clean(m[2]), When: when}
	}
	name := clean(who)
	if name == "" {
		name = "strand"
	}
	return object.Signature{Name: name, Email: "", When: when}
}

// gitDir is a directory being built: its entries by name.
type gitDir map[string]object.TreeEntry

// writeGitCommit writes the pinned tree as a commit on ref, whose tip (if
// any) becomes the parent. Empty directories have no place in git and are
// left out.
func writeGitCommit(ctx context.Context, c *client.Client, p pinned, path string, ref plumbing.ReferenceName, sig object.Signature, message string) (plumbing.Hash, error) {
	repo, err := git.PlainOpen(path)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		repo, err = git.PlainInit(path, true)
		if err == nil {
			err = repo.Storer.SetReference(plumbing.NewSymbolicReference(plumbing.HEAD, ref))
		}
	}
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("open repository %s: %w", path, err)
	}
	st := repo.Storer
	dirs := map[string]gitDir{"": {}}
	var buf bytes.Buffer
	err = p.walk(ctx, c, func(e client.EntryView) error {
		var content []byte
		mode := filemode.Regular
		switch e.Kind {
		case "dir":
			dirs[e.Path] = gitDir{}
			return nil
		case "symlink":
			content, mode = []byte(e.Target), filemode.Symlink
		default:
			buf.Reset()
			if err := p.copyFile(ctx, c, e.Path, &buf); err != nil {
				return err
			}
			content = buf.Bytes()
			if e.Mode&0o111 != 0 {
				mode = filemode.Executable
			}
		}
		h, err := putObject(st, plumbing.BlobObject, func(w io.Writer) error { _, err := w.Write(content); return err })
		if err != nil {
			return err
		}
		dir, name := parentDir(e.Path)
		dirs[dir][name] = object.TreeEntry{Name: name, Mode: mode, Hash: h}
		return nil
	})
	if err != nil {
		return plumbing.ZeroHash, err
	}
	// Trees bottom up: deepest directories first.
	paths := make([]string, 0, len(dirs))
	for d := range dirs {
		paths = append(paths, d)
	}
	depth := func(d string) int {
		if d == "" {
			return -1 // the root last
		}
		return strings.Count(d, "/")
	}
	sort.Slice(paths, func(i, j int) bool {
		if di, dj := depth(paths[i]), depth(paths[j]); di != dj {
			return di > dj
		}
		return paths[i] < paths[j]
	})
	var root plumbing.Hash
	for _, d := range paths {
		if d != "" && len(dirs[d]) == 0 {
			continue // empty directory
		}
		t := &object.Tree{}
		for _, e := range dirs[d] {
			t.Entries = append(t.Entries, e)
		}
		sort.Slice(t.Entries, func(i, j int) bool { return gitName(t.Entries[i]) < gitName(t.Entries[j]) })
		h, err := putObject(st, plumbing.TreeObject, func(w io.Writer) error { return encodeTree(t, w) })
		if err != nil {
			return plumbing.ZeroHash, err
		}
		if d == "" {
			root = h
			break
		}
		parent, name := parentDir(d)
		dirs[parent][name] = object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: h}
	}
	commit := &object.Commit{Author: sig, Committer: sig, Message: message, TreeHash: root}
	old, err := st.Reference(ref)
	switch {
	case errors.Is(err, plumbing.ErrReferenceNotFound):
		old = nil
	case err != nil:
		return plumbing.ZeroHash, fmt.Errorf("read %s: %w", ref, err)
	default:
		commit.ParentHashes = []plumbing.Hash{old.Hash()}
	}
	obj := st.NewEncodedObject()
	if err := commit.Encode(obj); err != nil {
		return plumbing.ZeroHash, err
	}
	h, err := st.SetEncodedObject(obj)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	// Compare and set: a concurrent export to the same branch fails rather
	// than losing a commit.
	if err := st.CheckAndSetReference(plumbing.NewHashReference(ref, h), old); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("update %s: %w", ref, err)
	}
	return h, nil
}

// gitName is the name git sorts tree entries by: a tree's name with "/".
func gitName(e object.TreeEntry) string {
	if e.Mode == filemode.Dir {
		return e.Name + "/"
	}
	return e.Name
}

func encodeTree(t *object.Tree, w io.Writer) error {
	for _, e := range t.Entries {
		if _, err := fmt.Fprintf(w, "%o %s", uint32(e.Mode), e.Name); err != nil {
			return err
		}
		if _, err := w.Write([]byte{0}); err != nil {
			return err
		}
		if _, err := w.Write(e.Hash[:]); err != nil {
			return err
		}
	}
	return nil
}

func putObject(st storer.EncodedObjectStorer, typ plumbing.ObjectType, write func(io.Writer) error) (plumbing.Hash, error) {
	obj := st.NewEncodedObject()
	obj.SetType(typ)
	w, err := obj.Writer()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if err := write(w); err != nil {
		return plumbing.ZeroHash, err
	}
	if err := w.Close(); err != nil {
		return plumbing.ZeroHash, err
	}
	return st.SetEncodedObject(obj)
}

func parentDir(p string) (string, string) {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i], p[i+1:]
	}
	return "", p
}
