package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// envReads finds, in the source of vpcnetd and of every package of this module it links
// (go list -deps), each environment variable read by name: os.Getenv, os.LookupEnv,
// syscall.Getenv, or a call of a func(string) string parameter or variable named like getenv
// (the getenv that internal/cloud's checks and vpcnetd's run pass around). The name may be a
// string literal, a constant (of this package or another), or the key or element of a range
// over a literal slice or map, or over a package variable holding one. A read whose name it
// cannot tell is reported as an error, so a new way of reading cannot slip past the help test.
// It returns each name with where it is read.
func envReads(t *testing.T) map[string][]string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}|{{.Dir}}|{{join .GoFiles \",\"}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	const module = "github.com/vpcnet/vpcnet/"
	fset := token.NewFileSet()
	type pkg struct {
		name  string
		files []*ast.File
	}
	var pkgs []pkg
	consts := map[string]ast.Expr{} // "pkgname.Name" -> value, for constants and variables
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		parts := strings.Split(line, "|")
		if len(parts) != 3 || !strings.HasPrefix(parts[0], module) && parts[0] != "github.com/vpcnet/vpcnet" {
			continue
		}
		var p pkg
		for _, name := range strings.Split(parts[2], ",") {
			if name == "" {
				continue
			}
			f, err := parser.ParseFile(fset, filepath.Join(parts[1], name), nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			p.name = f.Name.Name
			p.files = append(p.files, f)
			for _, d := range f.Decls {
				if g, ok := d.(*ast.GenDecl); ok && (g.Tok == token.CONST || g.Tok == token.VAR) {
					for _, s := range g.Specs {
						vs := s.(*ast.ValueSpec)
						for i, n := range vs.Names {
							if i < len(vs.Values) {
								consts[p.name+"."+n.Name] = vs.Values[i]
							}
						}
					}
				}
			}
		}
		pkgs = append(pkgs, p)
	}
	reads := map[string][]string{}
	for _, p := range pkgs {
		var names func(e ast.Expr, key bool) ([]string, error)
		// elems gives the names a range over x yields, its keys or its elements.
		elems := func(x ast.Expr, key bool) ([]string, error) {
			if id, ok := x.(*ast.Ident); ok {
				if v, ok := consts[p.name+"."+id.Name]; ok {
					x = v
				}
			}
			lit, ok := x.(*ast.CompositeLit)
			if !ok {
				return nil, fmt.Errorf("a range over %T", x)
			}
			var out []string
			for _, el := range lit.Elts {
				if kv, ok := el.(*ast.KeyValueExpr); ok {
					if !key {
						return nil, fmt.Errorf("a range over a map's values")
					}
					el = kv.Key
				} else if key {
					return nil, fmt.Errorf("a range's index")
				}
				n, err := names(el, false)
				if err != nil {
					return nil, err
				}
				out = append(out, n...)
			}
			return out, nil
		}
		names = func(e ast.Expr, _ bool) ([]string, error) {
			switch e := e.(type) {
			case *ast.BasicLit:
				if e.Kind == token.STRING {
					s, err := strconv.Unquote(e.Value)
					return []string{s}, err
				}
			case *ast.SelectorExpr:
				if x, ok := e.X.(*ast.Ident); ok {
					if v, ok := consts[x.Name+"."+e.Sel.Name]; ok {
						return names(v, false)
					}
				}
			case *ast.Ident:
				if e.Obj != nil {
					// the parser records a range's key and value as declared by
					// "key, value := range x"
					if as, ok := e.Obj.Decl.(*ast.AssignStmt); ok && len(as.Rhs) == 1 {
						if u, ok := as.Rhs[0].(*ast.UnaryExpr); ok && u.Op == token.RANGE {
							k, _ := as.Lhs[0].(*ast.Ident)
							return elems(u.X, k != nil && k.Name == e.Name)
						}
					}
				}
				if v, ok := consts[p.name+"."+e.Name]; ok {
					return names(v, false)
				}
			}
			return nil, fmt.Errorf("cannot tell which variable %T reads", e)
		}
		for _, f := range p.files {
			ast.Inspect(f, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok || len(call.Args) != 1 || !readsEnv(call.Fun) {
					return true
				}
				at := fset.Position(call.Pos()).String()
				got, err := names(call.Args[0], false)
				if err != nil {
					t.Errorf("%s: an environment read: %v", at, err)
				}
				for _, name := range got {
					reads[name] = append(reads[name], at)
				}
				return true
			})
		}
	}
	return reads
}

// readsEnv reports whether fun is os.Getenv, os.LookupEnv, syscall.Getenv, or a function value
// named like getenv.
func readsEnv(fun ast.Expr) bool {
	switch f := fun.(type) {
	case *ast.SelectorExpr:
		x, ok := f.X.(*ast.Ident)
		return ok && (x.Name == "os" && (f.Sel.Name == "Getenv" || f.Sel.Name == "LookupEnv") || x.Name == "syscall" && f.Sel.Name == "Getenv")
	case *ast.Ident:
		n := strings.ToLower(f.Name)
		return f.Obj != nil && f.Obj.Kind == ast.Var && (strings.Contains(n, "getenv") || strings.Contains(n, "lookupenv"))
	case *ast.CallExpr: // envLookup(environ)(name)
		id, ok := f.Fun.(*ast.Ident)
		return ok && id.Name == "envLookup"
	}
	return false
}
