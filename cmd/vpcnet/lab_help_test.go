package main

import (
	"strings"
	"testing"
)

// `vpcnet lab --help` introduces both ways the lab runs pods, the Kubernetes cluster first (the
// demo's default), not bare namespaces alone.
func TestLabHelpDescribesBothRuntimes(t *testing.T) {
	out, _, code := vpcnet(t, nil, "lab", "--help")
	if code != 0 {
		t.Fatalf("lab --help: exit %d\n%s", code, out)
	}
	intro, _, _ := strings.Cut(out, "Usage:")
	for _, want := range []string{
		"--runtime",
		"kubernetes  a real cluster", "containerd and kubelet on every node", "kubectl", "--agent daemonset", "vpcnet lab k8s build",
		"none        bare pods", "libcni",
		"'lab demo' runs on kubernetes by default, 'lab up' on none",
		"vpcnet lab demo ", "vpcnet lab demo --runtime none",
	} {
		if !strings.Contains(intro, want) {
			t.Errorf("lab --help's intro lacks %q:\n%s", want, intro)
		}
	}
	if k, n := strings.Index(intro, "kubernetes  "), strings.Index(intro, "none        "); k < 0 || n < k {
		t.Errorf("lab --help: the Kubernetes runtime should come first (the default demo):\n%s", intro)
	}
}
