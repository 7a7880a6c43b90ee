package k8s_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vpcnet/vpcnet/internal/lab"
	"github.com/vpcnet/vpcnet/internal/lab/k8s"
	"github.com/vpcnet/vpcnet/internal/netnsx"
	"github.com/vpcnet/vpcnet/internal/testenv"
)

// machineState is what a lab must leave as it found it.
type machineState struct {
	sysctls map[string]string
}

func snapshot(t *testing.T) machineState {
	s := machineState{sysctls: map[string]string{}}
	for _, k := range k8s.KubeletSysctls {
		v, err := k8s.ReadSysctl(k)
		if err != nil {
			t.Fatal(err)
		}
		s.sysctls[k] = v
	}
	return s
}

type node struct {
	Metadata struct{ Name string }
	Status   struct {
		Addresses  []struct{ Type, Address string }
		Conditions []struct{ Type, Status string }
		Capacity   map[string]string
	}
}

type pod struct {
	Metadata struct{ Name string }
	Spec     struct{ NodeName string }
	Status   struct {
		Phase string
		PodIP string
	}
}

// TestClusterTwoNodesPodsAcrossNodesAndNodeAdd is issue 13's "done when": a 2-node cluster,
// nodes Ready with EC2 names and their primary ENI as InternalIP, a pod on each node with an
// address of the subnet, traffic across nodes through kubectl exec with the source address
// kept, a third node joining and its pod reaching the others, that node drained and removed,
// and a teardown that leaves no namespace, process, cgroup, mount or changed sysctl.
func TestClusterTwoNodesPodsAcrossNodesAndNodeAdd(t *testing.T) {
	testenv.RequireLabComponents(t, "the cluster test")
	l := newTestLab(t, testenv.CLI(t), 'k', 1)
	_, recordHeld := os.Stat(k8s.SysctlRecord)
	before := snapshot(t)
	labDir := lab.PathsFor(l.name).Dir
	t.Cleanup(func() {
		if t.Failed() {
			for _, f := range []string{"k8s/kube-apiserver.log", "k8s/nodes/1/kubelet.log", "k8s/nodes/1/containerd.log", "k8s/node-1.log"} {
				if b, err := os.ReadFile(filepath.Join(labDir, f)); err == nil {
					if len(b) > 3000 {
						b = b[len(b)-3000:]
					}
					t.Logf("--- %s (tail)\n%s", f, b)
				}
			}
		}
		out, err := l.run("lab", "down")
		if err != nil {
			t.Errorf("lab down: %v\n%s", err, out)
		}
		checkNothingLeft(t, l.name, labDir, before, recordHeld == nil)
	})
	start := time.Now()
	l.must("lab", "up", "--nodes", "2", "--runtime", "kubernetes")
	t.Logf("cluster of 2 nodes up in %s", time.Since(start).Round(100*time.Millisecond))

	st := l.status()
	subnet := netip.MustParsePrefix("10.10.1.0/24")
	checkNodes(t, l, st, 2)
	// The harness runs the lab's kubectl directly; `vpcnet lab kubectl --` is the same one.
	if out := l.must("lab", "kubectl", "--", "get", "nodes", "-o", "name"); strings.Count(out, "node/") != 2 {
		t.Errorf("vpcnet lab kubectl -- get nodes -o name:\n%s", out)
	}

	// A pod on each node, by nodeName, from the lab's test image.
	for i, n := range st.Nodes {
		l.mustKubectl(string(k8s.PodManifest(fmt.Sprintf("web-%d", i+1), n.Name)), "apply", "-f", "-")
	}
	pods := waitPods(t, l, 2)
	for _, p := range pods {
		ip := netip.MustParseAddr(p.Status.PodIP)
		if !subnet.Contains(ip) {
			t.Errorf("pod %s has %s, not an address of %s", p.Metadata.Name, ip, subnet)
		}
		for _, n := range st.Nodes {
			if n.PrimaryIP == ip {
				t.Errorf("pod %s has its node's primary address %s (host network?)", p.Metadata.Name, ip)
			}
		}
	}
	if pods[0].Spec.NodeName == pods[1].Spec.NodeName {
		t.Fatalf("both pods on %s", pods[0].Spec.NodeName)
	}
	checkTraffic(t, l, pods[0], pods[1])
	checkTraffic(t, l, pods[1], pods[0])

	// The lab's pod commands act through the API on a cluster (issue 13 item 4).
	out := l.must("lab", "pod", "run", "extra", "--node", "2")
	m := regexp.MustCompile(`pod extra running on (\S+) with IP (\S+)`).FindStringSubmatch(out)
	if m == nil || m[1] != st.Nodes[1].Name || !subnet.Contains(netip.MustParseAddr(m[2])) {
		t.Fatalf("lab pod run: %q, want it on %s with an address of %s", out, st.Nodes[1].Name, subnet)
	}
	if ls := l.must("lab", "pod", "ls"); !strings.Contains(ls, "extra") || !strings.Contains(ls, m[2]) {
		t.Errorf("lab pod ls does not show extra with %s:\n%s", m[2], ls)
	}
	if addrs := l.must("lab", "exec", "extra", "--", "/vtool", "addrs"); !strings.Contains(addrs, "eth0 "+m[2]+"/32") {
		t.Errorf("lab exec extra -- /vtool addrs: %q, want eth0 %s/32", addrs, m[2])
	}
	if ping := l.must("lab", "ping", "extra", "web-1", "--count", "1"); !strings.Contains(ping, "reply from "+pods[0].Status.PodIP) {
		t.Errorf("lab ping extra web-1: %q", ping)
	}
	l.must("lab", "pod", "rm", "extra")
	if ls := l.must("lab", "pod", "ls"); strings.Contains(ls, "extra") {
		t.Errorf("extra still listed after lab pod rm:\n%s", ls)
	}
	// A pod that is not there: the lab's one line, as on bare pods, not kubectl's NotFound.
	for _, args := range [][]string{{"lab", "exec", "extra", "--", "/vtool", "addrs"}, {"lab", "ping", "extra", "web-1", "--count", "1"}} {
		out, err := l.run(args...)
		want := fmt.Sprintf("vpcnet: lab %s has no pod \"extra\"", l.name)
		if err == nil || strings.TrimSpace(out) != want {
			t.Errorf("vpcnet %s after the pod was removed: %v, %q; want an error and only %q", strings.Join(args, " "), err, out, want)
		}
	}

	// Scale out: a third node joins, and a pod on it talks to the first.
	out = l.must("lab", "node", "add")
	t.Log(strings.TrimSpace(out))
	st = l.status()
	checkNodes(t, l, st, 3)
	third := st.Nodes[len(st.Nodes)-1]
	l.mustKubectl(string(k8s.PodManifest("web-3", third.Name)), "apply", "-f", "-")
	pods = waitPods(t, l, 3)
	var p3 pod
	for _, p := range pods {
		if p.Metadata.Name == "web-3" {
			p3 = p
		}
	}
	if p3.Spec.NodeName != third.Name || !subnet.Contains(netip.MustParseAddr(p3.Status.PodIP)) {
		t.Fatalf("web-3 on %s with %s: want %s and an address of %s", p3.Spec.NodeName, p3.Status.PodIP, third.Name, subnet)
	}
	checkTraffic(t, l, p3, pods[0])

	// Scale in: the third node is drained (its pod deleted through the API) and removed.
	l.must("lab", "node", "rm", third.Name)
	out = l.mustKubectl("", "get", "nodes", "-o", "name")
	if strings.Contains(out, third.Name) {
		t.Errorf("node %s still registered after lab node rm:\n%s", third.Name, out)
	}
	if out, _ := l.kubectl("", "get", "pod", "web-3", "-o", "name"); strings.Contains(out, "pod/web-3") {
		t.Errorf("web-3 survived the drain of its node: %s", out)
	}
	if k8s.CgroupExists(k8s.NodeCgroup(l.name, third.Index)) {
		t.Errorf("cgroup of the removed node %s is still there", third.Name)
	}
}

// checkNodes asserts the API shows exactly the lab's nodes, Ready, named as EC2 names them,
// with the primary ENI address as InternalIP and max pods from the instance type.
func checkNodes(t *testing.T, l *testLab, st lab.Status, want int) {
	t.Helper()
	var list struct{ Items []node }
	if err := json.Unmarshal([]byte(l.mustKubectl("", "get", "nodes", "-o", "json")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != want || len(st.Nodes) != want {
		t.Fatalf("API has %d nodes, lab %d; want %d", len(list.Items), len(st.Nodes), want)
	}
	for _, ln := range st.Nodes {
		var found *node
		for i := range list.Items {
			if list.Items[i].Metadata.Name == ln.Name {
				found = &list.Items[i]
			}
		}
		if found == nil {
			t.Errorf("lab node %s is not registered", ln.Name)
			continue
		}
		ready, internal := false, ""
		for _, c := range found.Status.Conditions {
			ready = ready || (c.Type == "Ready" && c.Status == "True")
		}
		for _, a := range found.Status.Addresses {
			if a.Type == "InternalIP" {
				internal = a.Address
			}
		}
		if !ready {
			t.Errorf("node %s not Ready: %+v", ln.Name, found.Status.Conditions)
		}
		if internal != ln.PrimaryIP.String() {
			t.Errorf("node %s InternalIP %q, want its primary ENI address %s", ln.Name, internal, ln.PrimaryIP)
		}
		// t3.medium: 3 ENIs × 5 addresses, and no host-network pod (the agent and kube-proxy are
		// the node's processes here, not pods).
		if got := found.Status.Capacity["pods"]; got != "15" {
			t.Errorf("node %s pod capacity %q, want 15 (t3.medium, no host-network pods)", ln.Name, got)
		}
	}
}

// waitPods waits until n pods run with an address, and returns them by name.
func waitPods(t *testing.T, l *testLab, n int) []pod {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		var list struct{ Items []pod }
		out, err := l.kubectl("", "get", "pods", "-o", "json")
		if err == nil && json.Unmarshal([]byte(out), &list) == nil {
			running := 0
			for _, p := range list.Items {
				if p.Status.Phase == "Running" && p.Status.PodIP != "" {
					running++
				}
			}
			if running == n && len(list.Items) == n {
				sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Metadata.Name < list.Items[j].Metadata.Name })
				return list.Items
			}
		}
		if time.Now().After(deadline) {
			desc, _ := l.kubectl("", "describe", "pods")
			t.Fatalf("pods not Running after 3 min:\n%s", desc)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// checkTraffic: from pod a, through kubectl exec, an HTTP GET to pod b's address answers with
// b's name and a's own address (no SNAT between pods), and an ICMP echo is answered.
func checkTraffic(t *testing.T, l *testLab, a, b pod) {
	t.Helper()
	want := b.Metadata.Name + " " + a.Status.PodIP
	// Running means the container started; its server may take a moment to listen.
	var out string
	var err error
	for deadline := time.Now().Add(30 * time.Second); ; {
		out, err = l.kubectl("", "exec", a.Metadata.Name, "--", "/vtool", "get", "http://"+b.Status.PodIP+":8080/")
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	if err != nil || strings.TrimSpace(out) != want {
		t.Errorf("%s -> %s: answer %q (%v), want %q (b's name, a's address kept)", a.Metadata.Name, b.Metadata.Name, strings.TrimSpace(out), err, want)
	}
	out = l.mustKubectl("", "exec", a.Metadata.Name, "--", "/vtool", "ping", "-c", "2", b.Status.PodIP)
	if !strings.Contains(out, "reply from "+b.Status.PodIP) {
		t.Errorf("%s ping %s: %s", a.Metadata.Name, b.Status.PodIP, out)
	}
}

// checkNothingLeft asserts the lab left no namespace, runtime process, cgroup, mount or
// changed sysctl. The sysctls are compared only when no other lab cluster held them.
func checkNothingLeft(t *testing.T, name, labDir string, before machineState, otherHeld bool) {
	if ns, _ := netnsx.List(lab.NSPrefix(name)); len(ns) > 0 {
		t.Errorf("namespaces left: %v", ns)
	}
	if out, _ := exec.Command("sh", "-c", "grep -lsz '^"+k8s.EnvMarker+"="+labDir+"/' /proc/[0-9]*/environ").Output(); len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("processes of the lab left: %s", out)
	}
	for i := 1; i <= 3; i++ {
		if k8s.CgroupExists(k8s.NodeCgroup(name, i)) {
			t.Errorf("cgroup %s left", k8s.NodeCgroup(name, i))
		}
	}
	after := snapshot(t)
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(mi), "\n") {
		if strings.Contains(line, labDir) || strings.Contains(line, lab.NSPrefix(name)) || strings.Contains(line, k8s.NodeCgroup(name, 0)[:len(k8s.NodeCgroup(name, 0))-1]) {
			t.Errorf("mount left: %s", line)
		}
	}
	if _, err := os.Stat(labDir); err == nil {
		t.Errorf("%s left", labDir)
	}
	if _, err := os.Stat(k8s.SysctlRecord); err == nil || otherHeld {
		t.Logf("another lab cluster holds the kubelet sysctls; not comparing them")
		return
	}
	for k, v := range before.sysctls {
		if after.sysctls[k] != v {
			t.Errorf("sysctl %s = %s after teardown, was %s", k, after.sysctls[k], v)
		}
	}
}
