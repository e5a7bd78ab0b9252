package imports

import (
	"archive/tar"
	"bytes"
	"context"
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
