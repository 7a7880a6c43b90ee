package clusterdemo_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vpcnet/vpcnet/internal/lab"
	"github.com/vpcnet/vpcnet/internal/lab/k8s"
	"github.com/vpcnet/vpcnet/internal/netnsx"
	"github.com/vpcnet/vpcnet/internal/testenv"
)

var demoLabRE = regexp.MustCompile(`^w([0-9]+)x1$`)

func vpcnet(bin string, args ...string) (string, error) {
	var out bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// TestDemoKubectlWalkThrough runs `vpcnet lab demo` (issue 13 item 5) and requires every step
// of the seed's walk-through verified with exit status 0: VPC and subnets, 2 nodes NotReady
// until `kubectl apply` of vpcnet's manifest makes the agent Ready on each, a Deployment's
// pods with distinct subnet addresses, traffic across nodes with no tunnel, describe pod, a
// third node's pods, a full /28 leaving pods ContainerCreating with the reason in their
// events. With --keep it then checks, on the demo's cluster, that `lab status` and `lab
// describe node` count the Kubernetes pods (issue 13 item 4), that `lab logs NODE` is the
// DaemonSet agent's log, and that a second demo of the
// same name fails without touching the running lab. `lab down` then leaves no namespace,
// runtime process, cgroup or directory.
func TestDemoKubectlWalkThrough(t *testing.T) {
	testenv.RequireLabComponents(t, "the demo")
	bin := testenv.CLI(t)
	ents, _ := os.ReadDir(lab.Root())
	for _, e := range ents {
		if m := demoLabRE.FindStringSubmatch(e.Name()); m != nil {
			if pid, _ := strconv.Atoi(m[1]); pid != os.Getpid() && syscall.Kill(pid, 0) != nil {
				_, _ = vpcnet(bin, "lab", "down", "--name", e.Name())
			}
		}
	}
	name := fmt.Sprintf("w%dx1", os.Getpid())
	labDir := lab.PathsFor(name).Dir
	t.Cleanup(func() {
		if out, err := vpcnet(bin, "lab", "down", "--name", name); err != nil {
			t.Errorf("lab down: %v\n%s", err, out)
		}
		if ns, _ := netnsx.List(lab.NSPrefix(name)); len(ns) > 0 {
			t.Errorf("namespaces left: %v", ns)
		}
		for i := 1; i <= 4; i++ {
			if g := k8s.NodeCgroup(name, i); k8s.CgroupExists(g) {
				t.Errorf("cgroup %s left", g)
			}
		}
		if out, _ := exec.Command("sh", "-c", "grep -lsz '^"+k8s.EnvMarker+"="+labDir+"/' /proc/[0-9]*/environ").Output(); len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("processes of the lab left: %s", out)
		}
		if _, err := os.Stat(labDir); err == nil {
			t.Errorf("%s left", labDir)
		}
	})
	start := time.Now()
	out, err := vpcnet(bin, "lab", "demo", "--name", name, "--keep")
	t.Logf("lab demo --keep: %s", time.Since(start).Round(100*time.Millisecond))
	if err != nil {
		t.Fatalf("lab demo: %v\n%s", err, out)
	}
	for _, step := range []string{"1", "2", "3", "4", "5", "6", "7", "7b"} {
		if !regexp.MustCompile(`(?m)^` + step + ` +.+ {2}yes {2}`).MatchString(out) {
			t.Errorf("demo step %s not verified", step)
		}
	}
	for _, shown := range []string{"$ kubectl get nodes -o wide", "NotReady", "$ kubectl apply -k ", "$ kubectl get pods -n kube-system -o wide",
		"$ kubectl get pods -o wide", "$ kubectl exec ", "$ kubectl describe pod ", "NoFreeVPCAddress", "All 8 steps verified"} {
		if !strings.Contains(out, shown) {
			t.Errorf("the demo's output does not show %q", shown)
		}
	}
	if t.Failed() {
		t.Logf("demo output:\n%s", out)
		return
	}

	// lab status on the cluster counts the Kubernetes pods holding an address, node by node,
	// as the API has them.
	var st lab.Status
	sout, err := vpcnet(bin, "lab", "status", "--name", name, "--format", "json")
	if err != nil || json.Unmarshal([]byte(sout), &st) != nil {
		t.Fatalf("lab status: %v\n%s", err, sout)
	}
	kout, err := vpcnet(bin, "lab", "kubectl", "--name", name, "--", "get", "pods", "-A", "-o", "json")
	if err != nil {
		t.Fatalf("kubectl get pods: %v\n%s", err, kout)
	}
	var list struct {
		Items []struct {
			Metadata struct{ Name string }
			Spec     struct {
				NodeName    string
				HostNetwork bool
			}
			Status struct{ PodIP string }
		}
	}
	if err := json.Unmarshal([]byte(kout), &list); err != nil {
		t.Fatal(err)
	}
	perNode := map[string]int{}
	withIP := 0
	for _, p := range list.Items {
		if p.Status.PodIP != "" && !p.Spec.HostNetwork {
			perNode[p.Spec.NodeName]++
			withIP++
		}
	}
	if withIP < 8 || len(st.Pods) != withIP {
		t.Errorf("lab status lists %d pods; the API has %d with a pod-network address (want at least the 6 web pods and 2 in the /28)", len(st.Pods), withIP)
	}
	if len(st.Nodes) != 4 {
		t.Fatalf("lab status: %d nodes, want 4", len(st.Nodes))
	}
	for _, n := range st.Nodes {
		if len(n.Pods) != perNode[n.Name] {
			t.Errorf("lab status: node %s has %d pods, the API %d", n.Name, len(n.Pods), perNode[n.Name])
		}
	}
	for _, p := range st.Pods {
		if !netip.MustParsePrefix("10.10.0.0/16").Contains(p.IP) {
			t.Errorf("lab status: pod %s with %s, outside the VPC", p.Name, p.IP)
		}
	}
	last := st.Nodes[len(st.Nodes)-1]
	dout, err := vpcnet(bin, "lab", "describe", "node", "--name", name, last.Name)
	if err != nil || !strings.Contains(dout, fmt.Sprintf("%d running", perNode[last.Name])) {
		t.Errorf("lab describe node %s does not count its %d pods: %v\n%s", last.Name, perNode[last.Name], err, dout)
	}
	if text, _ := vpcnet(bin, "lab", "status", "--name", name); !strings.Contains(text, fmt.Sprintf("%d/", perNode[last.Name])) {
		t.Errorf("lab status text does not count %s's %d pods:\n%s", last.Name, perNode[last.Name], text)
	}

	// lab logs NODE on a DaemonSet lab is the agent pod's log: it names the node's instance.
	if lout, err := vpcnet(bin, "lab", "logs", "--name", name, last.Name); err != nil || !strings.Contains(lout, last.InstanceID) {
		t.Errorf("lab logs %s: %v; the agent's log does not name %s:\n%.2000s", last.Name, err, last.InstanceID, lout)
	}

	// A demo of a lab that is up fails, names why, and leaves that lab running.
	again, err := vpcnet(bin, "lab", "demo", "--name", name)
	if err == nil || !strings.Contains(again, "already up") {
		t.Errorf("a second demo of the running lab: %v\n%s", err, again)
	}
	if _, err := lab.NewClient(name); err != nil {
		t.Errorf("the running lab is gone after a refused demo: %v", err)
	}
	if _, err := os.Stat(filepath.Join(labDir, "k8s")); err != nil {
		t.Errorf("the running lab's cluster is gone after a refused demo: %v", err)
	}
}
