package imports

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"io"

	"github.com/strand-dev/strand/domain"
)

// sourceError marks an error of the reader an archive comes from (the blob
// store), which is not the archive's fault.
type sourceError struct{ err error }

func (e *sourceError) Error() string { return e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

type markedReader struct{ r io.Reader }

func (m markedReader) Read(p []byte) (int, error) {
	n, err := m.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = &sourceError{err}
	}
	return n, err
}

// Tar reads a tar archive, gzip-compressed or not (told by its first
// bytes), into blobs and a tree.
func Tar(ctx context.Context, r io.Reader, blobs Blobs, lim Limits, progress Progress) (Result, error) {
	b := newBuilder(ctx, blobs, lim, progress)
	br := bufio.NewReaderSize(markedReader{r}, 64<<10)
	var in io.Reader = br
	if magic, err := br.Peek(2); err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return Result{}, archiveError(err)
		}
		defer zr.Close()
		in = zr
	} else if err != nil && !errors.Is(err, io.EOF) {
		return Result{}, archiveError(err)
	}
	tr := tar.NewReader(in)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Result{}, archiveError(err)
		}
		if err := tarEntry(b, tr, hdr); err != nil {
			return Result{}, archiveError(err)
		}
	}
	// A gzip stream is checked (CRC and length) only when read to its end.
	if _, err := io.Copy(io.Discard, in); err != nil {
		return Result{}, archiveError(err)
	}
	return b.finish()
}

func tarEntry(b *builder, tr *tar.Reader, hdr *tar.Header) error {
	mode := uint32(hdr.Mode) & 0o777
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeRegA:
		return b.file(hdr.Name, mode, hdr.Size, tr)
	case tar.TypeDir:
		return b.dir(hdr.Name, mode)
	case tar.TypeSymlink:
		return b.symlink(hdr.Name, hdr.Linkname)
	case tar.TypeLink:
		return invalid("entry %q is a hard link; hard links are not supported", truncate(hdr.Name))
	case tar.TypeChar, tar.TypeBlock:
		return invalid("entry %q is a device file", truncate(hdr.Name))
	case tar.TypeFifo:
		return invalid("entry %q is a fifo", truncate(hdr.Name))
	case tar.TypeXGlobalHeader:
		return nil
	}
	return invalid("entry %q has the unsupported type %q", truncate(hdr.Name), string(hdr.Typeflag))
}

// archiveError turns what the archive readers say into invalid_argument,
// keeping the store's own errors and the import's limits as they are.
func archiveError(err error) error {
	var se *sourceError
	if errors.As(err, &se) {
		return se.err
	}
	var de *domain.Error
	if errors.As(err, &de) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return invalid("the archive is truncated")
	case errors.Is(err, gzip.ErrChecksum), errors.Is(err, gzip.ErrHeader):
		return invalid("the archive is not valid gzip: %v", err)
	}
	return invalid("the archive is not a valid tar or tar.gz: %v", err)
}
