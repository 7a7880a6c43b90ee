package k8s

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/vpcnet/vpcnet/internal/lab"
	"github.com/vpcnet/vpcnet/internal/testenv"
)

// TestSysctlsRestoredByTheLastHolder: two lab clusters hold the kubelet sysctls; the values
// are written back only when the last one lets go, and a holder whose lab is gone does not
// keep them changed forever.
func TestSysctlsRestoredByTheLastHolder(t *testing.T) {
	testenv.RequireNetns(t) // writes /proc/sys
	old := SysctlRecord
	SysctlRecord = filepath.Join(t.TempDir(), "sysctls.json")
	t.Cleanup(func() { SysctlRecord = old })
	const key = "kernel.panic"
	orig, err := ReadSysctl(key)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.WriteFile(sysctlPath(key), []byte(orig), 0o644) })
	all := func(string) bool { return true }
	if err := holdSysctls("/labs/a"); err != nil {
		t.Fatal(err)
	}
	if err := holdSysctls("/labs/b"); err != nil {
		t.Fatal(err)
	}
	// What kubelet does.
	changed := "10"
	if orig == "10" {
		changed = "11"
	}
	if err := os.WriteFile(sysctlPath(key), []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := releaseSysctls("/labs/a", all); err != nil {
		t.Fatal(err)
	}
	if v, _ := ReadSysctl(key); v != changed {
		t.Fatalf("%s = %s after the first of two labs went down; want it left at %s for the other", key, v, changed)
	}
	// b crashed (its directory is gone); a third lab's teardown must restore.
	if err := holdSysctls("/labs/c"); err != nil {
		t.Fatal(err)
	}
	if err := releaseSysctls("/labs/c", func(d string) bool { return d != "/labs/b" }); err != nil {
		t.Fatal(err)
	}
	if v, _ := ReadSysctl(key); v != orig {
		t.Fatalf("%s = %s after the last lab went down, want %s restored", key, v, orig)
	}
	if _, err := os.Stat(SysctlRecord); !os.IsNotExist(err) {
		t.Fatalf("the record is still there: %v", err)
	}
}

// TestMaxPodsIsThePlannersKubeletNumber: kubelet's maxPods is `vpcnet plan max-pods
// --host-network-pods N`: the agent's capacity, following the lab's agent settings, plus the
// host-network pods a lab node really runs. kube-proxy is a process there, not a pod, so with
// the supervised agent that is none (EKS's +2 would leave 2 pods per node admitted by kubelet
// with no address: "full: ... 15 pod addresses"); with `--agent daemonset` the agent's pod is one.
func TestMaxPodsIsThePlannersKubeletNumber(t *testing.T) {
	supervised := lab.Config{AgentMode: lab.AgentSupervised}
	daemonset := lab.Config{AgentMode: lab.AgentDaemonSet}
	for _, tc := range []struct {
		itype string
		agent map[string]string
		cfg   lab.Config
		want  int
	}{
		{"t3.medium", nil, supervised, 15},
		{"t3.medium", nil, lab.Config{}, 15},
		{"t3.medium", nil, daemonset, 16},
		{"m5.large", nil, supervised, 27},
		{"m5.large", nil, daemonset, 28},
		{"t3.medium", map[string]string{"MAX_PODS": "5"}, supervised, 5},
		{"t3.medium", map[string]string{"MAX_ENI": "1"}, daemonset, 6},
	} {
		got, err := maxPods(tc.itype, tc.agent, hostNetworkPods(tc.cfg))
		if err != nil || got != tc.want {
			t.Errorf("maxPods(%s, %v, agent %q) = %d, %v; want %d", tc.itype, tc.agent, tc.cfg.AgentMode, got, err, tc.want)
		}
	}
	if _, err := maxPods("t3.medium", map[string]string{"MAX_PODS": "many"}, 0); err == nil {
		t.Error("MAX_PODS=many accepted")
	}
}
