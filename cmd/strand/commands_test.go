package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestCLI_TableIsTheCommandLine holds the command line to the one table in
// commands.go: help lists every row in table order, every command function
// is a row, and no command is reachable another way.
func TestCLI_TableIsTheCommandLine(t *testing.T) {
	t.Parallel()

	t.Run("RowsAreWellFormed", func(t *testing.T) {
		seen := map[string]bool{}
		for _, g := range commands {
			if seen[g.name] {
				t.Errorf("strand %s: two rows of the table, the second is unreachable", g.name)
			}
			seen[g.name] = true
			if (g.run == nil) == (len(g.cmds) == 0) {
				t.Errorf("strand %s: got run set %v and %d commands, want exactly one of them", g.name, g.run != nil, len(g.cmds))
			}
			if g.help == "" {
				t.Errorf("strand %s: no help", g.name)
			}
			inGroup := map[string]bool{}
			for _, c := range g.cmds {
				if inGroup[c.name] {
					t.Errorf("strand %s %s: two rows, the second is unreachable", g.name, c.name)
				}
				inGroup[c.name] = true
				if c.run == nil || c.help == "" {
					t.Errorf("strand %s %s: got run set %v, help %q; want both", g.name, c.name, c.run != nil, c.help)
				}
			}
		}
	})

	t.Run("HelpListsEveryRowInOrder", func(t *testing.T) {
		res := newCLI(t, "").run("", "--help")
		var got []string
		for _, line := range strings.Split(res.Stdout, "\n") {
			// A row's line is "  NAME  HELP"; the lines of the usage
			// header start with "  strand", a continuation with spaces.
			f := strings.Fields(line)
			if len(f) > 0 && strings.HasPrefix(line, "  ") && !strings.HasPrefix(line, "   ") && f[0] != "strand" && !strings.HasPrefix(f[0], "--") {
				got = append(got, f[0])
			}
		}
		var want []string
		for _, g := range commands {
			want = append(want, g.name)
		}
		if !slices.Equal(got, want) {
			t.Errorf("strand --help lists\n%v\nwant the table's rows in order\n%v", got, want)
		}
		for _, g := range commands {
			if len(g.cmds) == 0 {
				continue
			}
			res := newCLI(t, "").run("", g.name, "--help")
			var got, want []string
			for _, line := range strings.Split(res.Stdout, "\n") {
				if rest, ok := strings.CutPrefix(line, "  strand "+g.name+" "); ok {
					got = append(got, strings.Fields(rest)[0])
				}
			}
			for _, c := range g.cmds {
				want = append(want, c.name)
			}
			if res.Code != 0 || !slices.Equal(got, want) {
				t.Errorf("strand %s --help: exit %d, lists %v; want exit 0 and %v", g.name, res.Code, got, want)
			}
		}
	})

	t.Run("UnknownWordsAreUsageErrors", func(t *testing.T) {
		for _, args := range [][]string{{"no-such-command"}, {"session", "no-such-command"}, {"register"}} {
			res := newCLI(t, "").run("", args...)
			if res.Code != 2 || !strings.Contains(res.Stderr, "unknown command") {
				t.Errorf("%v\nwant exit 2 and unknown command", res)
			}
		}
	})

	t.Run("EveryCommandFunctionIsARow", func(t *testing.T) {
		fset := token.NewFileSet()
		files, err := filepath.Glob("*.go")
		if err != nil {
			t.Fatal(err)
		}
		var table ast.Node
		shaped := map[string]token.Position{} // methods shaped like a command
		type ref struct {
			name string
			pos  token.Pos
		}
		var refs []ref // method expressions (*Main).X
		for _, name := range files {
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, name, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			ast.Inspect(f, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.ValueSpec:
					if len(n.Names) == 1 && n.Names[0].Name == "commands" {
						table = n
					}
				case *ast.FuncDecl:
					if isMainMethod(n) && commandShaped(n.Type) {
						shaped[n.Name.Name] = fset.Position(n.Pos())
					}
				case *ast.SelectorExpr:
					if isMainType(n.X) {
						refs = append(refs, ref{n.Sel.Name, n.Pos()})
					}
				}
				return true
			})
		}
		if table == nil {
			t.Fatal("no var commands in the package")
		}
		inTable := map[string]bool{}
		for _, r := range refs {
			if r.pos < table.Pos() || r.pos >= table.End() {
				t.Errorf("%s: (*Main).%s outside the table: register commands only in commands.go", fset.Position(r.pos), r.name)
				continue
			}
			inTable[r.name] = true
		}
		// Branches of a row's command, called by it and reachable only
		// through it.
		branches := map[string]string{"wcDiff": "cmdDiff"}
		for name, pos := range shaped {
			if !inTable[name] && !inTable[branches[name]] {
				t.Errorf("%s: (*Main).%s is shaped like a command but no row of the table runs it", pos, name)
			}
		}
		if len(inTable) < 90 {
			t.Errorf("found %d commands in the table; the parse missed some (want over 90)", len(inTable))
		}
	})
}

// isMainMethod says whether fn is a method of *Main.
func isMainMethod(fn *ast.FuncDecl) bool {
	if fn.Recv == nil || len(fn.Recv.List) != 1 {
		return false
	}
	star, ok := fn.Recv.List[0].Type.(*ast.StarExpr)
	return ok && isIdent(star.X, "Main")
}

// isMainType says whether e is (*Main), the receiver of a method expression.
func isMainType(e ast.Expr) bool {
	p, ok := e.(*ast.ParenExpr)
	if !ok {
		return false
	}
	star, ok := p.X.(*ast.StarExpr)
	return ok && isIdent(star.X, "Main")
}

// commandShaped says whether ft is func(context.Context, []string) error.
func commandShaped(ft *ast.FuncType) bool {
	var params []ast.Expr
	for _, f := range ft.Params.List {
		for range max(1, len(f.Names)) {
			params = append(params, f.Type)
		}
	}
	if len(params) != 2 || ft.Results == nil || len(ft.Results.List) != 1 || !isIdent(ft.Results.List[0].Type, "error") {
		return false
	}
	sel, ok := params[0].(*ast.SelectorExpr)
	arr, ok2 := params[1].(*ast.ArrayType)
	return ok && ok2 && sel.Sel.Name == "Context" && arr.Len == nil && isIdent(arr.Elt, "string")
}

func isIdent(e ast.Expr, name string) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == name
}
