package imports

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/strand-dev/strand/domain"
)

// memBlobs keeps content in memory.
type memBlobs map[domain.Hash][]byte

func (m memBlobs) PutStream(_ context.Context, r io.Reader, limit int64) (domain.Hash, int64, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return domain.Hash{}, 0, err
	}
	if int64(len(b)) > limit {
		return domain.Hash{}, 0, domain.Errorf(domain.CodeTooLarge, "too large")
	}
	h := domain.Sum(b)
	m[h] = b
	return h, int64(len(b)), nil
}

func tarOf(t *testing.T, names ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := tar.NewWriter(&buf)
	for _, n := range names {
		if err := w.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeReg, Size: 4, Mode: 0o644}); err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("data"))
	}
	w.Close()
	return buf.Bytes()
}

func TestTar_Limits(t *testing.T) {
	archive := tarOf(t, "a", "b", "c/d")
	cases := []struct {
		name string
		lim  Limits
		code domain.Code
	}{
		{"Fits", Limits{MaxEntries: 4, MaxBytes: 12, MaxFileBytes: 4}, ""},
		{"Entries", Limits{MaxEntries: 3}, domain.CodeTooLarge},
		{"Bytes", Limits{MaxBytes: 11}, domain.CodeTooLarge},
		{"File", Limits{MaxFileBytes: 3}, domain.CodeTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Tar(context.Background(), bytes.NewReader(archive), memBlobs{}, tc.lim, nil)
			if got := domain.ErrorCode(err); got != tc.code {
				t.Fatalf("Tar with %+v: code %q (%v), want %q", tc.lim, got, err, tc.code)
			}
			if err == nil && (res.Files != 3 || res.Bytes != 12) {
				t.Fatalf("result = %+v, want 3 files of 12 bytes", res)
			}
		})
	}
}

func TestEscapes(t *testing.T) {
	cases := []struct {
		path, target string
		want         bool
	}{
		{"a", "b", false},
		{"a/b", "../c", false},
		{"a/b", "../../c", true},
		{"a", "/etc", true},
		{"a/b", "./../x/../../y", true},
		{"a/b/c", "../..", false},
	}
	for _, tc := range cases {
		if got := escapes(tc.path, tc.target); got != tc.want {
			t.Errorf("escapes(%q, %q) = %v, want %v", tc.path, tc.target, got, tc.want)
		}
	}
}

// manyBlobs is memBlobs with PutMany, counting its calls.
type manyMem struct {
	memBlobs
	calls int
	fail  error
}

func (m *manyMem) PutMany(_ context.Context, contents [][]byte) error {
	m.calls++
	if m.fail != nil {
		return m.fail
	}
	for _, c := range contents {
		m.memBlobs[domain.Sum(c)] = append([]byte(nil), c...)
	}
	return nil
}

// TestTar_SmallFilesTogether: with a store that takes many contents at
// once, an import holds small files back and stores them in groups; the
// tree is the one the one-by-one import gives, every content it names is
// stored when Tar returns, and a failed store fails the import.
func TestTar_SmallFilesTogether(t *testing.T) {
	var buf bytes.Buffer
	w := tar.NewWriter(&buf)
	add := func(name string, data []byte) {
		if err := w.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Size: int64(len(data)), Mode: 0o644}); err != nil {
			t.Fatal(err)
		}
		w.Write(data)
	}
	for i := range 600 {
		add(fmt.Sprintf("src/f%03d.txt", i), []byte(fmt.Sprintf("file %d\n", i%550))) // 50 repeat others
	}
	add("empty", nil)
	add("big.bin", bytes.Repeat([]byte("0123456789"), 10_000)) // 100 KB: stored on its own
	w.Close()

	one := memBlobs{}
	want, err := Tar(context.Background(), bytes.NewReader(buf.Bytes()), one, Limits{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	many := &manyMem{memBlobs: memBlobs{}}
	got, err := Tar(context.Background(), bytes.NewReader(buf.Bytes()), many, Limits{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Tree.Hash() != want.Tree.Hash() || got.Files != want.Files || got.Bytes != want.Bytes {
		t.Fatalf("import with PutMany: %s, %d files, %d bytes; one by one: %s, %d, %d",
			got.Tree.Hash(), got.Files, got.Bytes, want.Tree.Hash(), want.Files, want.Bytes)
	}
	if many.calls < 3 {
		t.Fatalf("PutMany called %d times for 601 small files, want groups of at most %d", many.calls, heldFiles)
	}
	files := 0
	got.Tree.Walk("", "", func(e domain.Entry) bool {
		if e.Node.Kind == domain.KindFile {
			files++
			if _, ok := many.memBlobs[e.Node.Content]; !ok {
				t.Errorf("%s names content that was not stored when Tar returned", e.Path)
			}
		}
		return true
	})
	if files != 602 {
		t.Fatalf("walked %d files, want 602", files)
	}
	failing := &manyMem{memBlobs: memBlobs{}, fail: domain.Errorf(domain.CodeUnavailable, "store down")}
	if _, err := Tar(context.Background(), bytes.NewReader(buf.Bytes()), failing, Limits{}, nil); domain.ErrorCode(err) != domain.CodeUnavailable {
		t.Fatalf("import whose store fails: %v, want unavailable", err)
	}
}
