package imports

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/strand-dev/strand/domain"
)

// Fuzz targets for archives and repositories from outside: whatever they
// hold, an import never panics, fails with invalid_argument or too_large,
// and what it accepts is a tree of clean paths whose symlinks stay inside.
// .ci/fuzz runs each briefly.

// fuzzBlobs keeps content in memory.
type fuzzBlobs struct{}

func (fuzzBlobs) PutStream(_ context.Context, r io.Reader, limit int64) (domain.Hash, int64, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return domain.Hash{}, 0, err
	}
	if int64(len(b)) > limit {
		return domain.Hash{}, 0, domain.Errorf(domain.CodeTooLarge, "too large")
	}
	return domain.Sum(b), int64(len(b)), nil
}

var fuzzLimits = Limits{MaxEntries: 512, MaxBytes: 1 << 20, MaxFileBytes: 256 << 10}

// checkImport checks the outcome of an import of hostile input.
func checkImport(t *testing.T, what string, res Result, err error) {
	t.Helper()
	if err != nil {
		switch domain.ErrorCode(err) {
		case domain.CodeInvalidArgument, domain.CodeTooLarge:
		default:
			t.Fatalf("%s: %v (code %s), want invalid_argument or too_large", what, err, domain.ErrorCode(err))
		}
		return
	}
	if res.Files > int64(fuzzLimits.MaxEntries) || res.Bytes > fuzzLimits.MaxBytes {
		t.Fatalf("%s: %d files, %d bytes beyond the limits", what, res.Files, res.Bytes)
	}
	n := 0
	res.Tree.Walk("", "", func(e domain.Entry) bool {
		n++
		if clean, err := domain.CleanNonRoot(e.Path); err != nil || clean != e.Path {
			t.Fatalf("%s: entry %q is not a clean path (%q, %v)", what, e.Path, clean, err)
		}
		if e.Node.Kind == domain.KindSymlink {
			if escapes(e.Path, e.Node.Target) {
				t.Fatalf("%s: symlink %q -> %q leaves the tree", what, e.Path, e.Node.Target)
			}
			if _, err := res.Tree.Resolve(e.Path, true); err != nil {
				t.Fatalf("%s: symlink %q -> %q does not resolve: %v", what, e.Path, e.Node.Target, err)
			}
		}
		return true
	})
	if n > fuzzLimits.MaxEntries {
		t.Fatalf("%s: %d entries beyond the limit", what, n)
	}
}

type tarEntrySpec struct {
	name, link string
	typ        byte
	body       string
	size       int64 // -1: len(body)
}

func tarBytes(f *testing.F, gz bool, entries ...tarEntrySpec) []byte {
	var buf bytes.Buffer
	var w io.Writer = &buf
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(&buf)
		w = zw
	}
	tw := tar.NewWriter(w)
	for _, e := range entries {
		size := e.size
		if size < 0 {
			size = int64(len(e.body))
		}
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Size: size, Mode: 0o755}); err != nil {
			f.Fatalf("tar header %q: %v", e.name, err)
		}
		if size > 0 {
			_, _ = tw.Write([]byte(e.body))
		}
	}
	// Close may complain of a short last entry; the bytes are what count.
	_ = tw.Close()
	if zw != nil {
		_ = zw.Close()
	}
	return buf.Bytes()
}

func FuzzTar(f *testing.F) {
	file := func(name, body string) tarEntrySpec {
		return tarEntrySpec{name: name, typ: tar.TypeReg, body: body, size: -1}
	}
	dir := func(name string) tarEntrySpec { return tarEntrySpec{name: name, typ: tar.TypeDir} }
	link := func(name, target string) tarEntrySpec {
		return tarEntrySpec{name: name, typ: tar.TypeSymlink, link: target}
	}
	for _, gz := range []bool{false, true} {
		f.Add(tarBytes(f, gz, dir("src/"), file("src/a.go", "package a\n"), link("l", "src/a.go")))
		f.Add(tarBytes(f, gz, file("../evil", "x")))
		f.Add(tarBytes(f, gz, file("/etc/passwd", "x")))
		f.Add(tarBytes(f, gz, link("a/b", "../../etc"), file("a/c", "x")))
		f.Add(tarBytes(f, gz, file("a", "x"), file("a/b", "y")))
		f.Add(tarBytes(f, gz, link("loop", "loop")))
		f.Add(tarBytes(f, gz, tarEntrySpec{name: "h", typ: tar.TypeLink, link: "a"}))
		f.Add(tarBytes(f, gz, tarEntrySpec{name: "dev", typ: tar.TypeChar}))
		f.Add(tarBytes(f, gz, tarEntrySpec{name: "short", typ: tar.TypeReg, body: "ab", size: 10}))
		f.Add(tarBytes(f, gz, file(strings.Repeat("d/", 80)+"f", "deep")))
		f.Add(tarBytes(f, gz, file("a\\b", "x"), file("c\x01", "y")))
	}
	f.Add([]byte{})
	f.Add([]byte{0x1f, 0x8b})
	f.Add(bytes.Repeat([]byte{0}, 1024))
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		res, err := Tar(ctx, bytes.NewReader(data), fuzzBlobs{}, fuzzLimits, nil)
		if ctx.Err() != nil {
			t.Fatalf("Tar of %d bytes took more than 20s", len(data))
		}
		checkImport(t, "Tar", res, err)
	})
}

// gitRepo writes a bare repository whose HEAD commit has a root tree built
// from spec: one entry a line, "MODE NAME" (octal git mode; content is the
// line's index into contents, cycling), "MODE NAME -> TARGET" for a
// symlink, and "sub NAME" for a subtree holding every earlier entry. Names
// are written as they are, "..", "/" and all: go-git's own checks are what
// an attacker's repository would not have.
func gitRepo(t testing.TB, dir, spec string, contents []byte) error {
	repo, err := git.PlainInit(dir, true)
	if err != nil {
		return err
	}
	st := repo.Storer
	blob := func(b []byte) (plumbing.Hash, error) {
		obj := st.NewEncodedObject()
		obj.SetType(plumbing.BlobObject)
		w, err := obj.Writer()
		if err != nil {
			return plumbing.ZeroHash, err
		}
		_, _ = w.Write(b)
		_ = w.Close()
		return st.SetEncodedObject(obj)
	}
	// Trees are written by hand: go-git's encoder refuses unsorted
	// entries, a hostile repository need not.
	tree := func(entries []object.TreeEntry) (plumbing.Hash, error) {
		obj := st.NewEncodedObject()
		obj.SetType(plumbing.TreeObject)
		w, err := obj.Writer()
		if err != nil {
			return plumbing.ZeroHash, err
		}
		for _, e := range entries {
			_, _ = w.Write([]byte(strconv.FormatUint(uint64(e.Mode), 8) + " " + e.Name + "\x00"))
			_, _ = w.Write(e.Hash[:])
		}
		_ = w.Close()
		return st.SetEncodedObject(obj)
	}
	var entries []object.TreeEntry
	for i, line := range strings.Split(spec, "\n") {
		if len(entries) > 64 {
			break
		}
		kind, rest, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if kind == "sub" {
			h, err := tree(append([]object.TreeEntry(nil), entries...))
			if err != nil {
				return err
			}
			entries = append(entries, object.TreeEntry{Name: rest, Mode: filemode.Dir, Hash: h})
			continue
		}
		mode, err := strconv.ParseUint(kind, 8, 32)
		if err != nil {
			continue
		}
		name, target, isLink := strings.Cut(rest, " -> ")
		body := target
		if !isLink {
			var b []byte
			if len(contents) > 0 {
				start := i % len(contents)
				b = contents[start:min(len(contents), start+64)]
			}
			body = string(b)
		}
		h, err := blob([]byte(body))
		if err != nil {
			return err
		}
		entries = append(entries, object.TreeEntry{Name: name, Mode: filemode.FileMode(mode), Hash: h})
	}
	root, err := tree(entries)
	if err != nil {
		return err
	}
	sig := object.Signature{Name: "f", Email: "f@example.com", When: time.Unix(1_700_000_000, 0)}
	obj := st.NewEncodedObject()
	if err := (&object.Commit{Author: sig, Committer: sig, Message: "fuzz", TreeHash: root}).Encode(obj); err != nil {
		return err
	}
	commit, err := st.SetEncodedObject(obj)
	if err != nil {
		return err
	}
	return st.SetReference(plumbing.NewHashReference(plumbing.Master, commit))
}

func FuzzGit(f *testing.F) {
	for _, s := range []string{
		"100644 a.txt\n100755 run.sh\n120000 l -> a.txt\nsub src",
		"100644 ../evil",
		"100644 a/b",
		"100644 .\n100644 ..\n100644 \n",
		"120000 l -> ../../etc/passwd",
		"120000 l -> /etc/passwd",
		"100644 a\nsub a",
		"160000 module",
		"100664 old\n0 zero\n777777 bad",
		"120000 a -> b\n120000 b -> a",
		"100644 x\x00y\n100644 \xff",
		"100644 f\nsub d\nsub d\nsub e",
	} {
		f.Add(s, []byte("hello, world\n"))
	}
	f.Fuzz(func(t *testing.T, spec string, contents []byte) {
		dir := t.TempDir()
		if err := gitRepo(t, dir, spec, contents); err != nil {
			return // go-git would not even write it
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		res, err := Git(ctx, dir, "", fuzzBlobs{}, fuzzLimits, nil)
		if ctx.Err() != nil {
			t.Fatalf("Git took more than 20s on %q", spec)
		}
		checkImport(t, "Git", res, err)
	})
}
