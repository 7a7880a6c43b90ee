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
	"github.com/vpcnet/vpcnet/internal/testenv"
)

// TestBenchK8sShort runs `vpcnet lab bench --short --scenario k8s`: a 3-node lab cluster, a
// Deployment of 9 pods with vpcnet and then with ptp + host-local, the short churn trace through
// the API with each, and a scale-out (a node joins while 5 pods wait for it). It checks the
// harness (every row, both sides measured, the SLO rows judged, nothing left behind), not the
// speed. It needs the Kubernetes build cache: without it the test skips, and in strict mode
// (CI, VPCNET_REQUIRE_NETNS=1) it builds it (`vpcnet lab k8s build`, about 15 min cold).
func TestBenchK8sShort(t *testing.T) {
	testenv.RequireLabComponents(t, "the k8s bench")
	bin := vpcnetBin(t)
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
	figs := []string{"Deployment of 9 pods on 3 nodes: create to all Running", "pod create to Running, p50", "pod create to Running, p99",
		"churn through the API: pod create to Running, p50", "churn through the API: pod create to Running, p99", "churn through the API: utilisation",
		"EC2 calls per pod, churn through the API", "scale-out: node add → agent ready", "scale-out: node add → Node Ready",
		"scale-out: node add → first pod Running", "scale-out: node add → 5 pods Running"}
	if len(rep.Rows) != len(figs) {
		t.Fatalf("%d rows, want %d: %+v", len(rep.Rows), len(figs), rep.Rows)
	}
	for i, r := range rep.Rows {
		checkRow(t, r)
		want := "ptp + host-local"
		switch {
		case strings.HasPrefix(r.Figure, "scale-out"):
			want = "cloud latency on the critical path"
		case strings.Contains(r.Figure, "utilisation") || strings.HasPrefix(r.Figure, "EC2 calls"):
			want = bench.NoReference
		}
		if r.Scenario != "k8s" || !strings.HasPrefix(r.Figure, figs[i]) || r.Reference != want {
			t.Errorf("row %d: %+v, want figure %q against %q", i, r, figs[i], want)
		}
		if strings.Contains(r.Figure, "SLO") && (r.Target == nil || r.Pass == nil) {
			t.Errorf("row %q is not judged against the SLO", r.Figure)
		}
	}
	// The scale-out's moments come in their order: kubelet reports the node Ready, and a pod
	// gets its network, only once the agent has written its CNI config.
	if a, n, f, all := rep.Rows[7].Value, rep.Rows[8].Value, rep.Rows[9].Value, rep.Rows[10].Value; !(a <= n && a <= f && f <= all) {
		t.Errorf("scale-out out of order: agent ready %v, Node Ready %v, first pod %v, all pods %v ms", a, n, f, all)
	}
	// Utilisation is pods over held addresses while the trace ran: some pods, never more than held.
	if u := rep.Rows[5].Value; u <= 0 || u > 100 {
		t.Errorf("churn utilisation %v%%", u)
	}
}
