package names_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// nameLike are string literals that look like a name of the wire whatever
// their value: a subject under strand.<area>., a Strand or NATS header.
var nameLike = regexp.MustCompile(`^(strand\.[a-z0-9_]+\.|Strand-[A-Z]|Nats-[A-Z])`)

// TestNames_DeclaredOnce fails for a string literal in non-test Go code
// outside this package that spells a subject, stream, bucket, consumer or
// header name: every such name is declared here, once, and used by name.
func TestNames_DeclaredOnce(t *testing.T) {
	fset := token.NewFileSet()
	declared := map[string]string{}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(af, func(n ast.Node) bool {
			vs, ok := n.(*ast.ValueSpec)
			if !ok {
				return true
			}
			for i, v := range vs.Values {
				if lit, ok := v.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					// Plain words (the service name "strand", the scope
					// "tenant") are too common to track.
					if s, _ := strconv.Unquote(lit.Value); strings.ContainsAny(s, "._-") {
						declared[s] = vs.Names[i].Name
					}
				}
			}
			return false
		})
	}
	if len(declared) < 30 {
		t.Fatalf("found %d names in package names, want the whole set", len(declared))
	}
	root := ".."
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			base := d.Name()
			if path != root && (strings.HasPrefix(base, ".") || base == "testdata" || base == "names") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		af, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(af, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err != nil {
				return true
			}
			if name, ok := declared[s]; ok {
				t.Errorf("%s: %q is names.%s; use the name", fset.Position(lit.Pos()), s, name)
			} else if nameLike.MatchString(s) {
				t.Errorf("%s: %q looks like a subject or header name; declare it in package names", fset.Position(lit.Pos()), s)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
