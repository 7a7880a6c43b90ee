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
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, filepath.Join("..", "internal", "cloud"), func(fi os.FileInfo) bool {
		return !strings.HasSuffix(fi.Name(), "_test.go")
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, p := range pkgs {
		ast.Inspect(p, func(n ast.Node) bool {
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
