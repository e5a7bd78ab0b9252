package arch_test

import (
	"os/exec"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/strand-dev/strand/"

// allowed lists, for each package of the project, the project packages it
// may import directly. The domain is the middle and imports none; the
// adapters (streams, handlers, projections, workers, audit) depend on it
// and on names, never on each other; the clients of the API (client, web,
// workcopy and later mount, mcp) reach the service only through the light
// client. cmd/... and bench are composition roots and may import anything;
// a package missing from this table fails the test until it is placed.
var allowed = map[string][]string{
	"names":               {},
	"domain":              {},
	"keyring":             {},
	"contentcache":        {},
	"imports":             {"domain"},
	"client":              {"domain", "names"},
	"streams":             {"domain", "names", "keyring"},
	"streams/streamstest": {"streams", "domain", "names"},
	"handlers":            {"domain", "names", "client", "imports", "keyring"},
	"projections":         {"domain", "names"},
	"workers":             {"domain", "names"},
	"audit":               {"domain", "names"},
	"web":                 {"domain", "names", "client"},
	"web/webtest":         {"domain", "names", "client", "web"},
	"gateway":             {"domain", "names", "client"},
	"metrics":             {"client"},
	"workcopy":            {"domain", "names", "client", "contentcache"},
	"mount":               {"domain", "names", "client", "contentcache", "workcopy"},
	"mcp":                 {"domain", "names", "client", "contentcache", "workcopy"},
	"arch":                {},
	"faults":              {},
}

// roots may import anything: they wire the parts together.
var roots = []string{"cmd/", "bench"}

// TestImports_Layers fails for every import between the project's packages
// that the table above does not allow, naming the arrow.
func TestImports_Layers(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", module+"...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], module)
		if isRoot(pkg) {
			continue
		}
		ok, placed := allowed[pkg]
		if !placed {
			t.Errorf("package %s is not in the layer table of arch/imports_test.go; add it with the imports it may have", pkg)
			continue
		}
		for _, imp := range fields[1:] {
			dep, internal := strings.CutPrefix(imp, module)
			if !internal {
				continue
			}
			if !contains(ok, dep) {
				t.Errorf("forbidden arrow %s -> %s (allowed: %s)", pkg, dep, list(ok))
			}
		}
	}
}

// TestImports_NoStreams is the rule that matters most, checked on the
// whole dependency graph: the service, the workers, the projections and
// every client of the API reach storage only through the domain's
// contracts, never through package streams.
func TestImports_NoStreams(t *testing.T) {
	for _, pkg := range []string{"handlers", "workers", "projections", "client", "web", "workcopy", "audit", "gateway", "metrics"} {
		out, err := exec.Command("go", "list", "-deps", module+pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			if dep == module+"streams" {
				t.Errorf("%s depends on streams (go list -deps %s)", pkg, module+pkg)
			}
		}
	}
}

func isRoot(pkg string) bool {
	for _, r := range roots {
		if strings.HasPrefix(pkg, r) || pkg == r {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func list(l []string) string {
	if len(l) == 0 {
		return "no project package"
	}
	s := append([]string(nil), l...)
	sort.Strings(s)
	return strings.Join(s, ", ")
}
