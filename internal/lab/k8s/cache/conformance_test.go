package cache

import (
	"slices"
	"strings"
	"testing"
)

// The conformance components are built only when named: `lab up` (Select with no names) must
// not wait 10 minutes for e2e.test, and naming them must give all four with their recipes.
func TestConformanceComponentsAreOptional(t *testing.T) {
	all, err := Select(Default, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range all {
		if slices.Contains(ConformanceComponents, c.Name) {
			t.Errorf("Select(nil) includes optional component %s", c.Name)
		}
	}
	cs, err := Select(Default, ConformanceComponents)
	if err != nil || len(cs) != len(ConformanceComponents) {
		t.Fatalf("Select(conformance) = %d components, %v", len(cs), err)
	}
	byName := map[string]Component{}
	for _, c := range cs {
		byName[c.Name] = c
	}
	e2e := byName["e2e"]
	if e2e.Verb != "test" || e2e.Binaries[0] != "e2e.test" || !strings.Contains(e2e.Module["go.mod"], "require k8s.io/kubernetes v1.37.2") {
		t.Errorf("e2e component %+v", e2e)
	}
	if !slices.Contains(byName["agnhost"].Env, "CGO_ENABLED=0") || byName["coredns"].Packages[0] != "github.com/coredns/coredns@"+CoreDNSVersion {
		t.Errorf("agnhost %+v / coredns %+v", byName["agnhost"], byName["coredns"])
	}
	if _, ok := byName["k8tools"].Module["main.go"]; !ok || !strings.Contains(byName["k8tools"].Module["go.mod"], "mvdan.cc/sh/v3 "+ShVersion) {
		t.Errorf("k8tools module files: %v", byName["k8tools"].Module["go.mod"])
	}
	c := Open(t.TempDir(), Default)
	if err := c.Check("e2e"); err == nil {
		t.Error("Check(e2e) on an empty cache passed")
	}
}
