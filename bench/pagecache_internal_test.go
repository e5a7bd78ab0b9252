package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// dropEntriesEnv lets TestDropEntries drop the kernel's entries.
const dropEntriesEnv = "STRAND_TEST_DROP_ENTRIES"

// TestDropEntries checks that, as root, the kernel forgets the entries of
// a tree just walked (the native side of row 12's cold walk), and that
// elsewhere it says it could not rather than failing the row.
//
// The drop is the whole machine's: it runs only where dropEntriesEnv is
// set, in a CI step of its own (.ci/dropentries), never beside the mount
// tests of other packages, whose kernel would forget their entries too.
func TestDropEntries(t *testing.T) {
	if os.Getenv(dropEntriesEnv) == "" {
		t.Skipf("drops the whole machine's dentries and inodes: run alone with %s=1 (.ci/dropentries does)", dropEntriesEnv)
	}
	dir := t.TempDir()
	for i := range 2000 {
		p := filepath.Join(dir, fmt.Sprintf("f%04d", i))
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Walked, so that every entry is known to the kernel.
	if err := filepath.WalkDir(dir, func(string, os.DirEntry, error) error { return nil }); err != nil {
		t.Fatal(err)
	}
	ok, before, after, err := dropEntries()
	if err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		if ok || after != before {
			t.Fatalf("not root: ok %v, dentries %d -> %d; want nothing dropped", ok, before, after)
		}
		return
	}
	if !ok {
		t.Fatal("root, but the kernel's entries were not dropped")
	}
	if after >= before-2000 {
		t.Errorf("dentries %d before, %d after: the tree's 2,000 should have gone", before, after)
	}
}
