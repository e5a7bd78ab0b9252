package mount_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestMount_Dependencies: the mount is a client of the API; it never
// reaches into the streams or the service's handlers.
func TestMount_Dependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", "github.com/strand-dev/strand/mount").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, d := range strings.Fields(string(out)) {
		for _, f := range []string{"github.com/strand-dev/strand/streams", "github.com/strand-dev/strand/handlers", "github.com/nats-io/nats-server"} {
			if strings.HasPrefix(d, f) {
				t.Errorf("mount depends on %s (forbidden: %s)", d, f)
			}
		}
	}
}
