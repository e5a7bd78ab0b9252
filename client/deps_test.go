package client_test

import (
	"os/exec"
	"strings"
	"testing"
)

// maxDeps bounds the packages outside the standard library that importing
// the client compiles (nats.go and its few dependencies, the domain and its
// MessagePack library, and the names: 25 when this test was written).
const maxDeps = 60

// forbiddenDeps are server-side modules a client program must never pull in.
var forbiddenDeps = []string{
	"github.com/nats-io/nats-server",
	"github.com/go-git/",
	"github.com/strand-dev/strand/streams",
	"github.com/strand-dev/strand/handlers",
}

// TestClient_Dependencies holds the client light: what `go list -deps`
// reports for it, outside the standard library, stays small and free of
// server code.
func TestClient_Dependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}",
		"github.com/strand-dev/strand/client").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	for _, d := range deps {
		for _, f := range forbiddenDeps {
			if strings.HasPrefix(d, f) {
				t.Errorf("client depends on %s (forbidden: %s)", d, f)
			}
		}
	}
	if len(deps) > maxDeps {
		t.Errorf("client compiles %d packages outside the standard library, want at most %d:\n%s",
			len(deps), maxDeps, strings.Join(deps, "\n"))
	}
}
