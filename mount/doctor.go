package mount

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"github.com/strand-dev/strand/client"
)

// Check is one thing a mount needs, checked.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// Checks tells whether this machine can mount sessions: /dev/fuse can be
// opened, the mount can be made (root, or fusermount3 installed), the
// service answers (when a client is given) and the cache and state folders
// are writable. `strand doctor` shows them.
func Checks(ctx context.Context, c *client.Client, cacheDir, stateDir string) []Check {
	var out []Check
	add := func(name string, err error, ok string) {
		ck := Check{Name: name, OK: err == nil, Detail: ok}
		if err != nil {
			ck.Detail = err.Error()
		}
		out = append(out, ck)
	}
	add("fuse device", FuseAvailable(), "/dev/fuse opens for reading and writing")
	add("mount permission", mountPermission(), "can mount")
	if c != nil {
		_, err := c.ListSessions(ctx, client.ListSessionsRequest{Limit: 1})
		var ce *client.Error
		if errors.As(err, &ce) && ce.Code != "unavailable" {
			err = nil // the service answered, if only with a refusal
		}
		add("service", err, "the service answers")
	}
	add("cache folder", writable(cacheDir), cacheDir+" is writable")
	add("state folder", writable(stateDir), stateDir+" is writable")
	return out
}

// FuseAvailable reports why FUSE cannot be used here, or nil.
func FuseAvailable() error {
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("/dev/fuse: %w (load the fuse module, or in a container pass --device /dev/fuse)", err)
	}
	return f.Close()
}

func mountPermission() error {
	if os.Geteuid() == 0 {
		return nil
	}
	if _, err := exec.LookPath("fusermount3"); err != nil {
		return errors.New("not root and fusermount3 is not installed (apt-get install fuse3)")
	}
	return nil
}

func writable(dir string) error {
	if dir == "" {
		return errors.New("no folder given")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".doctor-")
	if err != nil {
		return err
	}
	f.Close() //nolint:errcheck // empty
	return os.Remove(f.Name())
}

// ForceUnmount detaches a mount point whose mount process is gone (lazy
// unmount: processes using it keep what they hold open).
func ForceUnmount(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if os.Geteuid() == 0 {
		if err := syscall.Unmount(abs, syscall.MNT_DETACH); err != nil {
			return fmt.Errorf("unmount %s: %w", abs, err)
		}
		return nil
	}
	if out, err := exec.Command("fusermount3", "-u", "-z", abs).CombinedOutput(); err != nil {
		return fmt.Errorf("fusermount3 -u %s: %v: %s", abs, err, out)
	}
	return nil
}
