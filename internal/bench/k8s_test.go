package bench_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vpcnet/vpcnet/internal/bench"
	"github.com/vpcnet/vpcnet/internal/lab/k8s/cache"
)

// TestBenchK8sShort runs `vpcnet lab bench --short --scenario k8s`: a 3-node lab cluster, a
// Deployment of 9 pods with vpcnet and then with ptp + host-local. It checks the harness (the
// three rows, both sides measured, the SLO row judged, nothing left behind), not the speed.
// Opt-in (VPCNET_TEST_K8S=1): it needs the Kubernetes build cache (`vpcnet lab k8s build`, about
// 15 min cold on 2 cores) and takes about a minute.
func TestBenchK8sShort(t *testing.T) {
	if os.Getenv("VPCNET_TEST_K8S") != "1" {
		t.Skip("set VPCNET_TEST_K8S=1 to run the Kubernetes bench (needs `vpcnet lab k8s build`)")
	}
	bin := vpcnetBin(t)
	if err := cache.Open("", cache.Default).Check(); err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("b%d", os.Getpid())
	t.Cleanup(func() { noLeftovers(t, name) })
	cmd := exec.Command(bin, "lab", "bench", "--short", "--scenario", "k8s", "--format", "json", "--name", name)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("lab bench --short --scenario k8s: %v\n%s", err, errOut.String())
	}
	t.Logf("took %s", time.Since(start).Round(time.Second))
	var rep bench.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("JSON: %v\n%s", err, out.String())
	}
	figs := []string{"Deployment of 9 pods on 3 nodes: create to all Running", "pod create to Running, p50", "pod create to Running, p99"}
	if len(rep.Rows) != len(figs) {
		t.Fatalf("%d rows, want %d: %+v", len(rep.Rows), len(figs), rep.Rows)
	}
	for i, r := range rep.Rows {
		checkRow(t, r)
		if r.Scenario != "k8s" || !strings.HasPrefix(r.Figure, figs[i]) || r.Reference != "ptp + host-local" {
			t.Errorf("row %d: %+v", i, r)
		}
	}
	if p99 := rep.Rows[2]; p99.Target == nil || p99.Pass == nil {
		t.Errorf("the p99 row is not judged against the SLO: %+v", p99)
	}
}
