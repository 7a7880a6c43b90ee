package deploy

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// ec2Actions lists the EC2 actions internal/cloud calls: every ec2.<Action>Input it builds
// outside its tests.
func ec2Actions(t *testing.T) []string {
	t.Helper()
	seen := map[string]bool{}
	for _, f := range parseGoFiles(t, filepath.Join("..", "internal", "cloud")) {
		ast.Inspect(f, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok {
				if x, ok := sel.X.(*ast.Ident); ok && x.Name == "ec2" && strings.HasSuffix(sel.Sel.Name, "Input") {
					seen[strings.TrimSuffix(sel.Sel.Name, "Input")] = true
				}
			}
			return true
		})
	}
	var out []string
	for a := range seen {
		out = append(out, a)
	}
	slices.Sort(out)
	if len(out) < 5 {
		t.Fatalf("found only %v in internal/cloud; did the client change shape?", out)
	}
	return out
}

// docs/kubernetes.md's IAM table must name every EC2 action the agent calls, and nothing else
// but ec2:CreateTags (needed to tag an ENI in CreateNetworkInterface).
func TestKubernetesDocListsEveryEC2Action(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "docs", "kubernetes.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	_, iam, ok := strings.Cut(doc, "### IAM permissions")
	if !ok {
		t.Fatal("docs/kubernetes.md has no IAM permissions section")
	}
	iam, _, _ = strings.Cut(iam, "\n## ")
	listed := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `ec2:([A-Za-z]+)`").FindAllStringSubmatch(iam, -1) {
		listed[m[1]] = true
	}
	for _, a := range ec2Actions(t) {
		if !listed[a] {
			t.Errorf("the agent calls ec2:%s but docs/kubernetes.md's IAM table does not list it", a)
		}
		delete(listed, a)
	}
	delete(listed, "CreateTags")
	for a := range listed {
		t.Errorf("docs/kubernetes.md lists ec2:%s, which internal/cloud does not call", a)
	}
}

// parseGoFiles parses the non-test Go files of one package directory (comments dropped).
func parseGoFiles(t *testing.T, dir string) []*ast.File {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var files []*ast.File
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	return files
}
