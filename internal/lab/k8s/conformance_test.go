package k8s_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/vpcnet/vpcnet/internal/lab"
	"github.com/vpcnet/vpcnet/internal/lab/k8s"
	"github.com/vpcnet/vpcnet/internal/lab/k8s/cache"
	"github.com/vpcnet/vpcnet/internal/testenv"
)

// ciSelection is CI's short conformance selection: pod-to-pod across nodes and node-to-pod
// (Networking Granular Checks), a pod's hostPort through the chained portmap (the HostPort
// conformance spec; it failed while vpcnet's conflist had no portmap), and a Service's
// ClusterIP keeping the client pod's source address through kube-proxy's DNAT and vpcnet's
// SNAT (failed before the SNAT-after-DNAT fix), and the API server's proxy to pods and services
// over http and https (failed while the control plane reached pods from 169.254.169.254, whose
// replies the pod IMDS block dropped, and while agnhost had no localhost.crt).
var ciSelection = []string{
	`Networking Granular Checks: Pods should function for intra-pod communication: http \[`,
	`Networking Granular Checks: Pods should function for node-pod communication: udp \[`,
	`HostPort validates that there is no conflict between pods with same hostPort but different hostIP and protocol`,
	`Services should preserve source pod IP for traffic thru service cluster IP`,
	`Proxy version v1 should proxy through a service and a pod \[Conformance\]`,
}

var ranRE = regexp.MustCompile(`(?m)^ran (\d+) of \d+ specs in \S+: (\d+) passed, (\d+) failed`)

// TestConformanceShort runs CI's short selection of Kubernetes' own e2e specs through `vpcnet
// lab conformance` on a 2-node lab cluster (m5.large, no cluster DNS: no selected spec needs
// it) and requires every selected spec to run and pass. Same gate as the cluster test; in
// strict mode (CI) it builds e2e.test, agnhost and k8tools into the cache if missing.
func TestConformanceShort(t *testing.T) {
	testenv.RequireLabComponents(t, "the cluster test")
	bc := cache.Open("", cache.Default)
	comps := k8s.ConformanceComponents(false)
	if err := bc.Check(comps...); err != nil {
		if !testenv.Strict() {
			t.Skipf("%v (build them with `vpcnet lab k8s build --only e2e,agnhost,k8tools`)", err)
		}
		if err := bc.Build(context.Background(), cache.BuildOptions{Only: comps, Progress: func(s string) { t.Log(s) }}); err != nil {
			t.Fatalf("build the conformance components: %v", err)
		}
	}
	l := newTestLab(t, testenv.CLI(t), 'k', 9)
	_, recordHeld := os.Stat(k8s.SysctlRecord)
	before := snapshot(t)
	labDir := lab.PathsFor(l.name).Dir
	reports := t.TempDir()
	t.Cleanup(func() {
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(reports, "e2e.log")); err == nil {
				if len(b) > 6000 {
					b = b[len(b)-6000:]
				}
				t.Logf("--- e2e.log (tail)\n%s", b)
			}
		}
		if out, err := l.run("lab", "down"); err != nil {
			t.Errorf("lab down: %v\n%s", err, out)
		}
		checkNothingLeft(t, l.name, labDir, before, recordHeld == nil)
	})
	start := time.Now()
	l.must("lab", "up", "--nodes", "2", "--runtime", "kubernetes", "--instance-type", "m5.large")
	t.Logf("cluster of 2 nodes up in %s", time.Since(start).Round(100*time.Millisecond))

	focus := ""
	for i, s := range ciSelection {
		if i > 0 {
			focus += "|"
		}
		focus += s
	}
	start = time.Now()
	out, err := l.run("lab", "conformance", "--dns=false", "--focus", focus, "--skip", `SCTP|\[Feature:`, "--report-dir", reports, "--timeout", "20m")
	t.Logf("lab conformance took %s:\n%s", time.Since(start).Round(time.Second), out)
	if err != nil {
		t.Fatalf("lab conformance: %v", err)
	}
	m := ranRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no summary line in the output")
	}
	ran, _ := strconv.Atoi(m[1])
	passed, _ := strconv.Atoi(m[2])
	failed, _ := strconv.Atoi(m[3])
	if ran != len(ciSelection) || passed != len(ciSelection) || failed != 0 {
		t.Errorf("ran %d, passed %d, failed %d; want all %d of the selection run and passed", ran, passed, failed, len(ciSelection))
	}
	if _, err := os.Stat(filepath.Join(reports, "junit_01.xml")); err != nil {
		t.Errorf("no JUnit report: %v", err)
	}
}
