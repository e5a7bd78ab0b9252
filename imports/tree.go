package imports

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"

	"github.com/strand-dev/strand/domain"
)

// Limits bound one import.
type Limits struct {
	// MaxEntries bounds files, directories and symlinks together.
	MaxEntries int
	// MaxBytes bounds the content of all files together.
	MaxBytes int64
	// MaxFileBytes bounds one file.
	MaxFileBytes int64
}

// DefaultLimits are the limits of an import when none are given.
var DefaultLimits = Limits{MaxEntries: 200_000, MaxBytes: 8 << 30, MaxFileBytes: 1 << 30}

func (l Limits) withDefaults() Limits {
	if l.MaxEntries <= 0 {
		l.MaxEntries = DefaultLimits.MaxEntries
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultLimits.MaxBytes
	}
	if l.MaxFileBytes <= 0 {
		l.MaxFileBytes = DefaultLimits.MaxFileBytes
	}
	return l
}

// Blobs stores content: streams.Blobs does.
type Blobs interface {
	PutStream(ctx context.Context, r io.Reader, limit int64) (domain.Hash, int64, error)
}

// manyBlobs stores many contents at once (streams.Blobs.PutMany: in atomic
// batches where that shares syncs, design record 0022). An import holds
// small files back and stores them together through it, when the store
// has it.
type manyBlobs interface {
	PutMany(ctx context.Context, contents [][]byte) error
}

// Small files held back for one PutMany: at most heldFiles of them, of up
// to heldFileBytes each, heldBytes in all.
const (
	heldFiles     = 256
	heldFileBytes = 64 << 10
	heldBytes     = 2 << 20
)

// Progress is told the files and bytes read so far.
type Progress func(files, bytes int64)

// Result is an imported tree.
type Result struct {
	Tree  domain.Tree
	Files int64
	Bytes int64
	// Commit is the commit a git import read.
	Commit string
	// Dirs are the folders the archive has entries of its own for, in
	// tree order; the others are implied by the paths below them (and
	// take the default mode). fs.sync sets the mode of these only.
	Dirs []string
}

// builder collects the entries of an import and checks them.
type builder struct {
	ctx      context.Context
	blobs    Blobs
	lim      Limits
	progress Progress
	nodes    map[string]*domain.Node
	dirs     map[string]bool // folders with an entry of their own
	links    []string
	files    int64
	bytes    int64
	// held: small files read but not stored yet (manyBlobs), stored
	// together when there are enough of them and before finish returns.
	held      [][]byte
	heldBytes int
}

func newBuilder(ctx context.Context, blobs Blobs, lim Limits, progress Progress) *builder {
	return &builder{ctx: ctx, blobs: blobs, lim: lim.withDefaults(), progress: progress,
		nodes: map[string]*domain.Node{}, dirs: map[string]bool{}}
}

// invalid is the error of input that an import refuses.
func invalid(format string, args ...any) error {
	return domain.Errorf(domain.CodeInvalidArgument, format, args...)
}

// entryPath checks and cleans the name of an entry: relative, no "..".
// The root itself is "".
func entryPath(name string) (string, error) {
	if strings.HasPrefix(name, "/") {
		return "", invalid("entry %q has an absolute path", truncate(name))
	}
	for _, c := range strings.Split(name, "/") {
		if c == ".." {
			return "", invalid("entry %q leaves the tree (\"..\")", truncate(name))
		}
	}
	p, err := domain.CleanPath(name)
	if err != nil {
		return "", invalid("entry %q: %s", truncate(name), domain.ErrorMessage(err))
	}
	return p, nil
}

func truncate(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

// file stores a file's content and adds it.
func (b *builder) file(name string, mode uint32, size int64, r io.Reader) error {
	p, err := b.path(name)
	if err != nil {
		return err
	}
	if p == "" {
		return invalid("a file entry names the root")
	}
	if size > b.lim.MaxFileBytes {
		return domain.Errorf(domain.CodeTooLarge, "file %q is larger than %d bytes", p, b.lim.MaxFileBytes)
	}
	if b.bytes+max(size, 0) > b.lim.MaxBytes {
		return domain.Errorf(domain.CodeTooLarge, "the import holds more than %d bytes", b.lim.MaxBytes)
	}
	var h domain.Hash
	var n int64
	if mb, ok := b.blobs.(manyBlobs); ok && size >= 0 && size <= heldFileBytes {
		if h, n, err = b.hold(mb, r, size); err != nil {
			return err
		}
	} else if h, n, err = b.blobs.PutStream(b.ctx, r, min(b.lim.MaxFileBytes, b.lim.MaxBytes-b.bytes)); err != nil {
		return err
	}
	if size >= 0 && n != size {
		return invalid("file %q holds %d bytes, not the %d its entry says", p, n, size)
	}
	b.files++
	b.bytes += n
	if b.progress != nil {
		b.progress(b.files, b.bytes)
	}
	return b.put(p, domain.NewFile(h, n, mode&0o777, nil))
}

// hold reads a small file whole (its entry says size bytes; one byte more
// is read to tell a longer one) and keeps it to store with others.
func (b *builder) hold(mb manyBlobs, r io.Reader, size int64) (domain.Hash, int64, error) {
	data := make([]byte, size+1)
	n, err := io.ReadFull(r, data)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return domain.Hash{}, 0, err
	}
	if int64(n) != size {
		return domain.Hash{}, int64(n), nil // the caller refuses the entry
	}
	data = data[:n]
	b.held = append(b.held, data)
	b.heldBytes += n
	if len(b.held) >= heldFiles || b.heldBytes >= heldBytes {
		if err := b.store(mb); err != nil {
			return domain.Hash{}, 0, err
		}
	}
	return domain.Sum(data), int64(n), nil
}

// store stores the files held back.
func (b *builder) store(mb manyBlobs) error {
	if len(b.held) == 0 {
		return nil
	}
	err := mb.PutMany(b.ctx, b.held)
	b.held, b.heldBytes = nil, 0
	return err
}

func (b *builder) dir(name string, mode uint32) error {
	p, err := b.path(name)
	if err != nil || p == "" {
		return err
	}
	b.dirs[p] = true
	return b.put(p, domain.NewDir(mode&0o777, nil))
}

func (b *builder) symlink(name, target string) error {
	p, err := b.path(name)
	if err != nil {
		return err
	}
	if p == "" {
		return invalid("a symlink entry names the root")
	}
	if target == "" || len(target) > domain.MaxTargetBytes || strings.IndexByte(target, 0) >= 0 {
		return invalid("symlink %q has an empty, too long or NUL target", p)
	}
	if escapes(p, target) {
		return invalid("symlink %q -> %q leads out of the tree", p, truncate(target))
	}
	b.links = append(b.links, p)
	return b.put(p, domain.NewSymlink(target, nil))
}

func (b *builder) path(name string) (string, error) {
	if err := b.ctx.Err(); err != nil {
		return "", err
	}
	return entryPath(name)
}

// put adds a node; a later entry for the same path replaces an earlier one
// of the same kind, as extracting an archive would.
func (b *builder) put(p string, n *domain.Node) error {
	if old, ok := b.nodes[p]; ok {
		if (old.Kind == domain.KindDir) != (n.Kind == domain.KindDir) {
			return invalid("%q is both a directory and a %s", p, map[bool]string{true: "directory", false: "file or symlink"}[old.Kind != domain.KindDir])
		}
		b.nodes[p] = n
		return nil
	}
	if len(b.nodes) >= b.lim.MaxEntries {
		return domain.Errorf(domain.CodeTooLarge, "the import has more than %d entries", b.lim.MaxEntries)
	}
	for i := 0; i < len(p); i++ {
		if p[i] != '/' {
			continue
		}
		a := p[:i]
		if x, ok := b.nodes[a]; ok {
			if x.Kind != domain.KindDir {
				return invalid("a parent of %q is not a directory", p)
			}
			continue
		}
		if len(b.nodes) >= b.lim.MaxEntries {
			return domain.Errorf(domain.CodeTooLarge, "the import has more than %d entries", b.lim.MaxEntries)
		}
		b.nodes[a] = domain.NewDir(domain.DefaultDirMode, nil)
	}
	if len(b.nodes) >= b.lim.MaxEntries {
		return domain.Errorf(domain.CodeTooLarge, "the import has more than %d entries", b.lim.MaxEntries)
	}
	b.nodes[p] = n
	return nil
}

// finish builds the tree and checks that no entry sits below a
// non-directory and that every symlink resolves inside the tree.
func (b *builder) finish() (Result, error) {
	// Every content is stored before the tree that names it is returned.
	if mb, ok := b.blobs.(manyBlobs); ok {
		if err := b.store(mb); err != nil {
			return Result{}, err
		}
	}
	paths := make([]string, 0, len(b.nodes))
	for p := range b.nodes {
		paths = append(paths, p)
	}
	slices.SortFunc(paths, domain.ComparePaths)
	list := make([]domain.Entry, len(paths))
	for i, p := range paths {
		if i > 0 {
			if prev := paths[i-1]; b.nodes[prev].Kind != domain.KindDir && strings.HasPrefix(p, prev+"/") {
				return Result{}, invalid("a parent of %q is not a directory", p)
			}
		}
		list[i] = domain.Entry{Path: p, Node: b.nodes[p]}
	}
	t, err := domain.Build(list)
	if err != nil {
		return Result{}, err
	}
	for _, l := range b.links {
		if _, err := t.Resolve(l, true); err != nil {
			return Result{}, invalid("symlink %q: %s", l, domain.ErrorMessage(err))
		}
	}
	var dirs []string
	for _, p := range paths {
		if b.dirs[p] && b.nodes[p].Kind == domain.KindDir {
			dirs = append(dirs, p)
		}
	}
	return Result{Tree: t, Files: b.files, Bytes: b.bytes, Dirs: dirs}, nil
}

// escapes reports whether a symlink at p with target leaves the tree when
// read as a path: absolute, or more ".." than the link's depth allows.
func escapes(p, target string) bool {
	if strings.HasPrefix(target, "/") {
		return true
	}
	depth := strings.Count(p, "/")
	for _, c := range strings.Split(target, "/") {
		switch c {
		case "", ".":
		case "..":
			depth--
			if depth < 0 {
				return true
			}
		default:
			depth++
		}
	}
	return false
}
