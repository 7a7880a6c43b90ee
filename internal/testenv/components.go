package testenv

import (
	"context"
	"testing"

	"github.com/vpcnet/vpcnet/internal/lab/k8s/cache"
)

// RequireLabComponents is the gate of every test that runs a lab Kubernetes cluster: it needs
// namespaces (RequireNetns) and the cluster's built components in the shared build cache
// (cache.Default: Kubernetes, containerd, runc, etcd, the lab's tools). Without them the test
// skips, naming what is missing and what needs it (who); in strict mode (CI,
// VPCNET_REQUIRE_NETNS=1) it builds them instead (`vpcnet lab k8s build`, about 15 min cold on 2
// idle cores) and fails only if the build fails.
func RequireLabComponents(t *testing.T, who string) {
	t.Helper()
	RequireNetns(t)
	bc := cache.Open("", cache.Default)
	err := bc.Check()
	if err == nil {
		return
	}
	if !Strict() {
		t.Skipf("%v (%s needs the built components)", err, who)
	}
	if err := bc.Build(context.Background(), cache.BuildOptions{Progress: func(s string) { t.Log(s) }}); err != nil {
		t.Fatalf("build the lab cluster's components: %v", err)
	}
}
