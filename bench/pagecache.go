package bench

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/unix"
)

// dropPageCache takes the data of every regular file under dir out of the
// kernel's page cache, so that the next read of the tree is a cold read
// from the disk: each file is fdatasync'ed (a dirty page cannot be
// dropped), then given posix_fadvise(POSIX_FADV_DONTNEED). Only this
// tree's pages go; the rest of the machine keeps its cache (dropping all
// of it, as /proc/sys/vm/drop_caches does, would disturb everyone else on
// a shared machine). Metadata stays cached: inodes, dentries and
// directory blocks cannot be dropped for one tree, so a walk (stat of
// every entry) of the tree is as warm after this as before (dropEntries
// drops them, for the whole machine).
//
// It returns the tree's pages resident in the page cache before and after
// (mincore), and their total, so that a report can show it took effect.
func dropPageCache(dir string) (before, after, total int64, err error) {
	page := int64(os.Getpagesize())
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil || fi.Size() == 0 {
			return err
		}
		fd := int(f.Fd())
		b, err := resident(fd, fi.Size())
		if err != nil {
			return err
		}
		if err := unix.Fdatasync(fd); err != nil {
			return err
		}
		if err := unix.Fadvise(fd, 0, 0, unix.FADV_DONTNEED); err != nil {
			return err
		}
		a, err := resident(fd, fi.Size())
		if err != nil {
			return err
		}
		before += b
		after += a
		total += (fi.Size() + page - 1) / page
		return nil
	})
	return before, after, total, err
}

// resident counts the pages of a file held in the page cache (mincore of
// a mapping of it; mapping a file reads none of it).
func resident(fd int, size int64) (int64, error) {
	m, err := unix.Mmap(fd, 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return 0, err
	}
	defer unix.Munmap(m) //nolint:errcheck // read-only mapping
	page := os.Getpagesize()
	vec := make([]byte, (len(m)+page-1)/page)
	// x/sys/unix has no wrapper for mincore(2).
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		return 0, errno
	}
	var n int64
	for _, v := range vec {
		n += int64(v & 1)
	}
	return n, nil
}

// dropEntries makes the kernel forget the file system entries it holds and
// nobody uses (dentries and inodes, every file system's, with the inode
// blocks they were read from staying in the buffer cache):
// /proc/sys/vm/drop_caches = 2, after a sync (a dirty inode is not
// dropped). A walk of a tree then starts knowing no entry of it, as a walk
// of a fresh mount does. It needs root and disturbs the whole machine's
// lookups for a moment; ok is false, and nothing is dropped, where the
// file cannot be written. before and after are the kernel's dentries
// (/proc/sys/fs/dentry-state), to show that it took effect.
func dropEntries() (ok bool, before, after int64, err error) {
	before, err = dentries()
	if err != nil {
		return false, 0, 0, err
	}
	unix.Sync()
	f, err := os.OpenFile("/proc/sys/vm/drop_caches", os.O_WRONLY, 0)
	if err != nil {
		return false, before, before, nil
	}
	_, werr := f.WriteString("2")
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return false, before, before, nil
	}
	after, err = dentries()
	return err == nil, before, after, err
}

// dentries is the number of dentries the kernel holds (the first field of
// /proc/sys/fs/dentry-state).
func dentries() (int64, error) {
	b, err := os.ReadFile("/proc/sys/fs/dentry-state")
	if err != nil {
		return 0, err
	}
	var n int64
	if _, err := fmt.Sscan(string(b), &n); err != nil {
		return 0, fmt.Errorf("read /proc/sys/fs/dentry-state: %w", err)
	}
	return n, nil
}
