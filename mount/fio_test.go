package mount_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestMount_Fio runs fio (Debian's package, someone else's test tool) on
// the mount: four jobs write their own files at random offsets at the same
// time, then read them back and check every block (crc32c). After a
// flush, the service holds what the files hold.
func TestMount_Fio(t *testing.T) {
	h := start(t)
	fio, err := exec.LookPath("fio")
	if err != nil {
		if os.Getenv("STRAND_REQUIRE_FUSE") != "" {
			t.Fatalf("fio is not installed (.ci/install-fuse.sh installs it): %v", err)
		}
		t.Skipf("fio is not installed (apt-get install fio): %v", err)
	}
	m, dir := h.mount("")
	cmd := exec.Command(fio, "--name=verify", "--directory="+dir, "--rw=randwrite", "--bs=4k", "--size=2m",
		"--numjobs=4", "--ioengine=psync", "--verify=crc32c", "--do_verify=1", "--verify_fatal=1",
		"--fsync_on_close=1", "--group_reporting", "--verify_state_save=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("fio: %v\n%s", err, out)
	}
	if !bytes.Contains(out, []byte("err= 0")) {
		t.Fatalf("fio reported errors:\n%s", out)
	}
	if err := m.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "verify.*"))
	if err != nil || len(files) != 4 {
		t.Fatalf("fio's files: %v, %v; want 4", files, err)
	}
	for _, f := range files {
		local, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if got := h.read(filepath.Base(f)); got != string(local) {
			t.Errorf("%s: the service's content (%d bytes) differs from the mount's (%d bytes)", filepath.Base(f), len(got), len(local))
		}
	}
}
