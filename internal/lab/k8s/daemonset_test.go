package k8s_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vpcnet/vpcnet/deploy"
	"github.com/vpcnet/vpcnet/internal/cni"
	"github.com/vpcnet/vpcnet/internal/dataplane"
	vk8s "github.com/vpcnet/vpcnet/internal/k8s"
	"github.com/vpcnet/vpcnet/internal/lab"
	"github.com/vpcnet/vpcnet/internal/lab/k8s"
	"github.com/vpcnet/vpcnet/internal/lab/k8s/cache"
	"github.com/vpcnet/vpcnet/internal/netnsx"
	"github.com/vpcnet/vpcnet/internal/probe"
	"github.com/vpcnet/vpcnet/internal/testenv"
)

type dsPod struct {
	Metadata struct {
		Name   string
		UID    string
		Labels map[string]string
	}
	Spec struct {
		NodeName   string
		Containers []struct{ Name, Image string }
	}
	Status struct {
		Phase             string
		PodIP             string
		Conditions        []struct{ Type, Status string }
		ContainerStatuses []struct{ Image string }
	}
}

func (p dsPod) ready() bool {
	for _, c := range p.Status.Conditions {
		if c.Type == "Ready" {
			return c.Status == "True"
		}
	}
	return false
}

func (l *testLab) pods(ns, selector string) []dsPod {
	l.t.Helper()
	args := []string{"get", "pods", "-n", ns, "-o", "json"}
	if selector != "" {
		args = append(args, "-l", selector)
	}
	var list struct{ Items []dsPod }
	if err := json.Unmarshal([]byte(l.mustKubectl("", args...)), &list); err != nil {
		l.t.Fatal(err)
	}
	return list.Items
}

// onePodRunning waits up to within for the one pod of selector in namespace default to be
// Running with an address, and returns it; what names it in the failure.
func (l *testLab) onePodRunning(what, selector string, within time.Duration) dsPod {
	var pod dsPod
	l.waitFor(what+" Running with an address", within, func() (bool, string) {
		p := l.pods("default", selector)
		if len(p) != 1 || p[0].Status.Phase != "Running" || p[0].Status.PodIP == "" {
			return false, fmt.Sprintf("%+v", p)
		}
		pod = p[0]
		return true, ""
	})
	return pod
}

// agentsReady: one Ready agent pod per node, each running image.
func (l *testLab) agentsReady(nodes []lab.NodeInfo, image string) (bool, string) {
	on := map[string]bool{}
	for _, p := range l.pods(deploy.Namespace, "k8s-app=vpcnet-node") {
		if !p.ready() {
			return false, fmt.Sprintf("agent pod %s on %s not Ready (%s)", p.Metadata.Name, p.Spec.NodeName, p.Status.Phase)
		}
		// The pod's spec, not its container status: two tags of one image (vpcnet image build
		// is reproducible, so the same binaries under another tag are the same image) show
		// in the status under whichever tag the runtime names first.
		for _, c := range p.Spec.Containers {
			if c.Image != image {
				return false, fmt.Sprintf("agent pod %s runs %s, want %s", p.Metadata.Name, c.Image, image)
			}
		}
		on[p.Spec.NodeName] = true
	}
	for _, n := range nodes {
		if !on[n.Name] {
			return false, "no Ready agent pod on " + n.Name
		}
	}
	return true, ""
}

// nodeWatch records every Node object the API server reports (kubectl get --watch) that is
// not Ready or carries a not-ready or unreachable taint.
type nodeWatch struct {
	mu     sync.Mutex
	bad    []string
	seen   int
	cancel context.CancelFunc
	done   chan struct{}
}

func (l *testLab) watchNodes() *nodeWatch {
	ctx, cancel := context.WithCancel(context.Background())
	w := &nodeWatch{cancel: cancel, done: make(chan struct{})}
	cmd := k8s.Kubectl(ctx, l.name, "get", "nodes", "--watch", "-o", "json")
	out, err := cmd.StdoutPipe()
	if err != nil {
		l.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		l.t.Fatal(err)
	}
	go func() {
		defer close(w.done)
		dec := json.NewDecoder(bufio.NewReader(out))
		for {
			var n struct {
				Metadata struct{ Name string }
				Spec     struct {
					Taints []struct{ Key, Effect string }
				}
				Status struct {
					Conditions []struct{ Type, Status, Reason string }
				}
			}
			if err := dec.Decode(&n); err != nil {
				_ = cmd.Wait()
				return
			}
			w.mu.Lock()
			w.seen++
			for _, c := range n.Status.Conditions {
				if c.Type == "Ready" && c.Status != "True" {
					w.bad = append(w.bad, fmt.Sprintf("%s %s Ready=%s (%s)", time.Now().Format(time.TimeOnly), n.Metadata.Name, c.Status, c.Reason))
				}
			}
			for _, tn := range n.Spec.Taints {
				if tn.Key == "node.kubernetes.io/not-ready" || tn.Key == "node.kubernetes.io/unreachable" || tn.Key == "node.kubernetes.io/network-unavailable" {
					w.bad = append(w.bad, fmt.Sprintf("%s %s taint %s:%s", time.Now().Format(time.TimeOnly), n.Metadata.Name, tn.Key, tn.Effect))
				}
			}
			w.mu.Unlock()
		}
	}()
	return w
}

// stop ends the watch and returns what it saw wrong and how many updates it saw.
func (w *nodeWatch) stop() ([]string, int) {
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.bad, w.seen
}

// agentAllocs returns the node's agent's allocations (/v1/pods) as canonical JSON lines, sorted,
// and as pod namespace/name → address. Two allocations of one pod name are an error unless
// their pod UIDs differ (a pod and its predecessor under the same name); the map then holds
// either: byUID tells them apart.
func agentAllocs(t *testing.T, n lab.NodeInfo) ([]string, map[string]string) {
	t.Helper()
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: probe.Dialer(n.NS)}}
	resp, err := hc.Get("http://" + lab.AgentMetricsAddr + "/v1/pods")
	if err != nil {
		t.Fatalf("%s /v1/pods: %v", n.Name, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var list []map[string]any
	if err := json.Unmarshal(b, &list); err != nil {
		t.Fatalf("%s /v1/pods: %v: %s", n.Name, err, b)
	}
	var lines []string
	pods := map[string]string{}
	seen := map[string]string{}
	for _, a := range list {
		c, _ := json.Marshal(a)
		lines = append(lines, string(c))
		pn, _ := a["pn"].(string)
		p, _ := a["p"].(string)
		u, _ := a["u"].(string)
		ip, _ := a["a"].(string)
		if prev, dup := seen[pn+"/"+p+"/"+u]; dup {
			t.Errorf("%s: pod %s/%s (UID %q) holds two allocations (%s and %s)", n.Name, pn, p, u, prev, ip)
		}
		seen[pn+"/"+p+"/"+u] = ip
		pods[pn+"/"+p] = ip
	}
	sort.Strings(lines)
	return lines, pods
}

// byUID is the allocations of agentAllocs's lines as pod UID → address (those with a UID).
func byUID(t *testing.T, lines []string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, l := range lines {
		var a struct{ U, A string }
		if err := json.Unmarshal([]byte(l), &a); err != nil {
			t.Fatal(err)
		}
		if a.U != "" {
			out[a.U] = a.A
		}
	}
	return out
}

// podSet is the pods with an address the API server places on node ("": on any node), as
// namespace/name → address.
func podSet(pods []dsPod, node string) map[string]string {
	out := map[string]string{}
	for _, p := range pods {
		if (node == "" || p.Spec.NodeName == node) && p.Status.PodIP != "" {
			out["default/"+p.Metadata.Name] = p.Status.PodIP
		}
	}
	return out
}

// sameMap reports the differences of two maps, or "".
func sameMap(want, got map[string]string) string {
	var d []string
	for k, v := range want {
		if got[k] != v {
			d = append(d, fmt.Sprintf("%s: want %s, got %q", k, v, got[k]))
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			d = append(d, fmt.Sprintf("%s: %s not wanted", k, v))
		}
	}
	sort.Strings(d)
	return strings.Join(d, "; ")
}

// reachOnce probes every pod's vtool server (GET /, answered "<pod name> ...") from the node
// namespace ns, each pod until it answers or within 5 s, and returns the pods that did not.
func reachOnce(ns string, ips map[string]string) []string {
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DialContext: probe.Dialer(ns), DisableKeepAlives: true}}
	var mu sync.Mutex
	var failed []string
	var wg sync.WaitGroup
	for ip, name := range ips {
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := time.Now().Add(5 * time.Second)
			for {
				resp, err := hc.Get("http://" + ip + ":8080/")
				if err == nil {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if strings.HasPrefix(string(b), name+" ") {
						return
					}
					err = fmt.Errorf("answer %q", b)
				}
				if time.Now().After(deadline) {
					mu.Lock()
					failed = append(failed, fmt.Sprintf("%s %s (%s): %v", time.Now().Format(time.TimeOnly), name, ip, err))
					mu.Unlock()
					return
				}
				time.Sleep(200 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	sort.Strings(failed)
	return failed
}

// prober probes the pods (address → name) in rounds from ns until stop is called.
type prober struct {
	once   sync.Once
	stopc  chan struct{}
	done   chan struct{}
	failed []string
	rounds int
}

func startProber(ns string, ips map[string]string) *prober {
	p := &prober{stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for {
			p.failed = append(p.failed, reachOnce(ns, ips)...)
			p.rounds++
			select {
			case <-p.stopc:
				return
			default:
			}
		}
	}()
	return p
}

// stop ends the probing after the round under way and returns the failures and the rounds.
func (p *prober) stop() ([]string, int) {
	p.once.Do(func() { close(p.stopc) })
	<-p.done
	return p.failed, p.rounds
}

// handover watches one node's agent socket and CNI config every 50 ms (the DaemonSet's host
// paths /run/vpcnet and /etc/cni/net.d are the lab node's directory and its net.d): the
// socket may be absent while one agent hands over to the next, never a file no agent answers
// on twice in a row (an agent that died without removing it); the conflist must stay, byte for
// byte, so that the runtime keeps the node's network configured.
type handover struct {
	node     string
	socket   string
	conflist string
	want     []byte
	once     sync.Once
	stopc    chan struct{}
	done     chan struct{}
	absent   int // polls that found no socket
	stale    int // longest run of polls that found a socket no agent answers on
	polls    int
	problems []string
}

func watchHandover(t *testing.T, labName string, n lab.NodeInfo) *handover {
	t.Helper()
	np := lab.PathsFor(labName).Node(n.Index)
	h := &handover{node: n.Name, socket: np.AgentSocket(), conflist: filepath.Join(np.CNIConfDir(), lab.AgentCNIConfName),
		stopc: make(chan struct{}), done: make(chan struct{})}
	var err error
	if h.want, err = os.ReadFile(h.conflist); err != nil {
		t.Fatalf("%s: the conflist before the handover: %v", n.Name, err)
	}
	go func() {
		defer close(h.done)
		run := 0
		for {
			h.polls++
			c, err := net.DialTimeout("unix", h.socket, time.Second)
			switch {
			case err == nil:
				c.Close()
				run = 0
			case errors.Is(err, os.ErrNotExist):
				h.absent++
				run = 0
			default:
				run++
				h.stale = max(h.stale, run)
			}
			if b, err := os.ReadFile(h.conflist); err != nil {
				h.problems = append(h.problems, fmt.Sprintf("%s conflist: %v", time.Now().Format(time.TimeOnly), err))
			} else if !bytes.Equal(b, h.want) {
				h.problems = append(h.problems, fmt.Sprintf("%s conflist changed: %s", time.Now().Format(time.TimeOnly), b))
			}
			select {
			case <-h.stopc:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return h
}

func (h *handover) stop() {
	h.once.Do(func() { close(h.stopc) })
	<-h.done
}

// untainted waits until no node carries the not-ready or unreachable taint (a node that has
// just joined keeps the start-up one until the node lifecycle controller's next pass).
func (l *testLab) untainted() {
	l.t.Helper()
	l.waitFor("the nodes' not-ready taints removed", 120*time.Second, func() (bool, string) {
		out, err := l.kubectl("", "get", "nodes", "-o", `jsonpath={range .items[*]}{.metadata.name}{" "}{.spec.taints[*].key}{"\n"}{end}`)
		return err == nil && !strings.Contains(out, "node.kubernetes.io/not-ready") && !strings.Contains(out, "node.kubernetes.io/unreachable"), out
	})
}

type dsEvent struct {
	Reason, Message, Type string
	Count                 int
	InvolvedObject        struct{ Kind, Name, Namespace, UID string }
}

// events lists the events with reason about the object kind/name.
func (l *testLab) events(ns, kind, name, reason string) []dsEvent {
	l.t.Helper()
	var list struct{ Items []dsEvent }
	out := l.mustKubectl("", "get", "events", "-n", ns, "-o", "json", "--field-selector",
		"involvedObject.kind="+kind+",involvedObject.name="+name+",reason="+reason)
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		l.t.Fatal(err)
	}
	return list.Items
}

const dsDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 30
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      terminationGracePeriodSeconds: 1
      affinity:
        nodeAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            nodeSelectorTerms:
              - matchExpressions:
                  - {key: kubernetes.io/hostname, operator: In, values: [%s, %s]}
      topologySpreadConstraints:
        - maxSkew: 1
          topologyKey: kubernetes.io/hostname
          whenUnsatisfiable: DoNotSchedule
          labelSelector:
            matchLabels: {app: web}
      containers:
        - name: web
          image: ` + k8s.TestImage + `
          imagePullPolicy: Never
`

// dsPodOn is a Pod manifest: one web container of the test image, pinned to node, labelled
// app=<app>; the container's fields end the text, so a caller may append more (ports:).
func dsPodOn(name, app, node string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
  labels: {app: %s}
spec:
  nodeName: %s
  terminationGracePeriodSeconds: 1
  containers:
    - name: web
      image: %s
      imagePullPolicy: Never
`, name, app, node, k8s.TestImage)
}

// dsPodGCGrace is the agents' VPCNET_POD_GC_GRACE in the test's lab.
const dsPodGCGrace = 15 * time.Second

// TestDaemonSetInstall is issue 14's "done when" in the lab cluster, with vpcnetd run only by
// deploy/'s DaemonSet (lab up --agent daemonset): agents Ready on every node with kubelet's
// maxPods = the agent's capacity + host-network pods; a 30-pod Deployment over two nodes
// with distinct subnet addresses, filling both nodes, and the nodes Ready throughout with no
// not-ready taint and nothing evicted; a pod kubelet admits beyond the agent's capacity stays
// pending with an event saying the node is full, the node Ready; a third node in an exhausted
// /28 whose pending pod's events (kubectl describe pod) name the subnet, with a
// VPCSubnetExhausted event on the node; a rolling update to a new image tag (vpcnet image
// build) with the 30 pods answering throughout, every agent's allocations unchanged, each old
// agent's socket removed and the conflist left byte for byte; the whole manifest deleted and
// applied again with the same allocations taken over and a new pod given a distinct address;
// no node NotReady over the rollout and the re-apply; a pod's hostPort answering on its node's
// address from a pod on another node (portmap from the image, installed by install-cni). The
// lab goes down with nothing left.
func TestDaemonSetInstall(t *testing.T) {
	testenv.RequireLabComponents(t, "the cluster test")
	l := newTestLab(t, testenv.CLI(t), 'd', 1)
	bin := l.bin
	labDir := lab.PathsFor(l.name).Dir
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := l.kubectl("", "get", "pods", "-A", "-o", "wide")
			t.Logf("--- pods\n%s", out)
			for _, f := range []string{"k8s/node-1.log", "k8s/nodes/1/kubelet.log", "k8s/nodes/1/containerd.log", "k8s/node-2.log"} {
				if b, err := os.ReadFile(filepath.Join(labDir, f)); err == nil {
					if len(b) > 3000 {
						b = b[len(b)-3000:]
					}
					t.Logf("--- %s (tail)\n%s", f, b)
				}
			}
		}
		start := time.Now()
		if out, err := l.run("lab", "down"); err != nil {
			t.Errorf("lab down: %v\n%s", err, out)
		}
		t.Logf("lab down in %s", time.Since(start).Round(100*time.Millisecond))
		if ns, _ := netnsx.List(lab.NSPrefix(l.name)); len(ns) > 0 {
			t.Errorf("namespaces left: %v", ns)
		}
		for i := 1; i <= 3; i++ {
			if g := k8s.NodeCgroup(l.name, i); k8s.CgroupExists(g) {
				t.Errorf("cgroup %s left", g)
			}
		}
		if _, err := os.Stat(labDir); err == nil {
			t.Errorf("%s left", labDir)
		}
	})
	start := time.Now()
	upOut := l.must("lab", "up", "--nodes", "2", "--runtime", "kubernetes", "--agent", "daemonset",
		"--subnet", "10.10.1.0/24", "--subnet", "10.10.2.0/28", "--vpcnet-pod-gc-grace", dsPodGCGrace.String())
	t.Logf("cluster of 2 nodes with the DaemonSet's agents up in %s", time.Since(start).Round(100*time.Millisecond))
	subnet := netip.MustParsePrefix("10.10.1.0/24")
	st := l.status()
	if len(st.Nodes) != 2 {
		t.Fatalf("%d nodes, want 2", len(st.Nodes))
	}
	nodes := st.Nodes
	// lab up reports each node's warm pool as lab status shows it moments later: after the
	// first top-up, not the "0 address(es) free" of the DaemonSet's agent seen before it ran.
	for _, n := range nodes {
		want := fmt.Sprintf("node %s ready: %d ENI(s), %d address(es) free", n.Name, len(n.ENIs), n.Agent.Free)
		if n.Agent.Free == 0 || !strings.Contains(upOut, want) {
			t.Errorf("lab up does not report what lab status shows (%q):\n%s", want, upOut)
		}
	}

	t.Run("apply brings the agents up", func(t *testing.T) {
		l := l.sub(t)
		// No vpcnetd of the lab's own: the only agents are the DaemonSet's pods.
		if pids, _ := filepath.Glob(filepath.Join(labDir, "nodes", "*", "vpcnetd.pid")); len(pids) > 0 {
			t.Errorf("the lab started agents of its own: %v", pids)
		}
		// The lab saw each agent ready on its socket and /healthz; kubelet's readiness probe
		// (every 5 s) marks the pod Ready on its next run.
		l.waitFor("agent pods Ready", 60*time.Second, func() (bool, string) { return l.agentsReady(nodes, deploy.Image) })
		var ds struct {
			Status struct{ DesiredNumberScheduled, NumberReady int }
		}
		if err := json.Unmarshal([]byte(l.mustKubectl("", "-n", deploy.Namespace, "get", "ds", deploy.DaemonSet, "-o", "json")), &ds); err != nil {
			t.Fatal(err)
		}
		if ds.Status.DesiredNumberScheduled != 2 || ds.Status.NumberReady != 2 {
			t.Errorf("DaemonSet %+v, want 2 scheduled and Ready", ds.Status)
		}
		for _, n := range nodes {
			if !n.Agent.Ready {
				t.Errorf("%s: the lab sees its agent %s: %s", n.Name, n.Agent.Reason, n.Agent.Message)
			}
			var node struct {
				Status struct{ Capacity map[string]string }
			}
			if err := json.Unmarshal([]byte(l.mustKubectl("", "get", "node", n.Name, "-o", "json")), &node); err != nil {
				t.Fatal(err)
			}
			// The agent's pod (vpcnet-node) is the node's one host-network pod; kube-proxy is a
			// process of the lab node, not a pod.
			if want := strconv.Itoa(n.Agent.MaxPods + 1); node.Status.Capacity["pods"] != want {
				t.Errorf("%s: kubelet's pods capacity %s, want the agent's %d + 1 host-network pod (vpcnet-node)", n.Name, node.Status.Capacity["pods"], n.Agent.MaxPods)
			}
		}
	})
	if t.Failed() {
		return
	}

	// A node that has just turned Ready keeps the start-up taint node.kubernetes.io/not-ready
	// until the controller-manager's node lifecycle pass removes it (seconds later): wait for
	// that, so the watch below judges the fill, not the nodes' start.
	l.untainted()
	watch := l.watchNodes()
	webIPs := map[string]string{}
	var webPods []dsPod
	t.Run("30 pods over two nodes, nodes full and Ready", func(t *testing.T) {
		l := l.sub(t)
		for _, n := range nodes {
			if n.Agent.MaxPods != 15 {
				t.Fatalf("%s: agent capacity %d, this test fills two t3.medium nodes of 15 with 30 pods", n.Name, n.Agent.MaxPods)
			}
		}
		fill := time.Now()
		l.mustKubectl(fmt.Sprintf(dsDeployment, nodes[0].Name, nodes[1].Name), "apply", "-f", "-")
		l.waitFor("30 web pods Running with an address", 300*time.Second, func() (bool, string) {
			webPods = l.pods("default", "app=web")
			running := 0
			for _, p := range webPods {
				if p.Status.Phase == "Running" && p.Status.PodIP != "" {
					running++
				}
			}
			return running == 30 && len(webPods) == 30, fmt.Sprintf("%d of %d running", running, len(webPods))
		})
		t.Logf("30 pods Running %s after apply", time.Since(fill).Round(100*time.Millisecond))
		perNode := map[string]int{}
		for _, p := range webPods {
			ip, err := netip.ParseAddr(p.Status.PodIP)
			if err != nil || !subnet.Contains(ip) {
				t.Errorf("pod %s: %q is not an address of %s", p.Metadata.Name, p.Status.PodIP, subnet)
			}
			for _, n := range nodes {
				if n.PrimaryIP == ip {
					t.Errorf("pod %s has node %s's primary address", p.Metadata.Name, n.Name)
				}
			}
			if other, dup := webIPs[p.Status.PodIP]; dup {
				t.Errorf("pods %s and %s share %s", other, p.Metadata.Name, p.Status.PodIP)
			}
			webIPs[p.Status.PodIP] = p.Metadata.Name
			perNode[p.Spec.NodeName]++
		}
		for _, n := range nodes {
			if perNode[n.Name] != 15 {
				t.Errorf("%s runs %d web pods, want 15 (full)", n.Name, perNode[n.Name])
			}
		}
		// kubelet's maxPods is the agent's 15 plus the node's one host-network pod (vpcnet-node),
		// so a pod beyond the agent's capacity is refused by kubelet (OutOfpods) before any CNI
		// ADD; with EKS's +2 kubelet admitted it and it waited for an address forever.
		l.mustKubectl(dsPodOn("over", "extra", nodes[0].Name), "apply", "-f", "-")
		l.waitFor("kubelet refuses the pod beyond capacity", 90*time.Second, func() (bool, string) {
			out, _ := l.kubectl("", "get", "pod", "over", "-o", "jsonpath={.status.phase} {.status.reason}")
			return strings.TrimSpace(out) == "Failed OutOfpods", out
		})
		if p := l.pods("default", "app=extra"); len(p) != 1 || p[0].Status.PodIP != "" {
			t.Errorf("the pod beyond capacity: %+v", p)
		}
		l.mustKubectl("", "delete", "pod", "over", "--wait=true")
	})
	bad, seen := watch.stop()
	t.Run("nodes Ready throughout, nothing evicted", func(t *testing.T) {
		l := l.sub(t)
		if seen == 0 {
			t.Fatal("the node watch saw no update at all")
		}
		if len(bad) > 0 {
			t.Errorf("over the fill (%d node updates):\n%s", seen, strings.Join(bad, "\n"))
		}
		now := l.pods("default", "app=web")
		uids := map[string]bool{}
		for _, p := range webPods {
			uids[p.Metadata.UID] = true
		}
		for _, p := range now {
			if !uids[p.Metadata.UID] || p.Status.Phase != "Running" {
				t.Errorf("web pod %s (%s) is new or not running: a pod was evicted or replaced", p.Metadata.Name, p.Status.Phase)
			}
		}
		if len(now) != 30 {
			t.Errorf("%d web pods, want the same 30", len(now))
		}
		if out := l.mustKubectl("", "get", "events", "-A", "--field-selector", "reason=Evicted", "-o", "name"); strings.TrimSpace(out) != "" {
			t.Errorf("eviction events: %s", out)
		}
		if out := l.mustKubectl("", "get", "events", "-A", "--field-selector", "reason=TaintManagerEviction", "-o", "name"); strings.TrimSpace(out) != "" {
			t.Errorf("taint eviction events: %s", out)
		}
	})
	if t.Failed() {
		return
	}

	// A node in a subnet too small for its pods: the pods that find the subnet exhausted are
	// told so on their own events (what `kubectl describe pod` shows), naming the subnet, and
	// the node gets a VPCSubnetExhausted event and says so in its annotations, staying Ready.
	t.Run("exhausted subnet named in the pod's and the node's events", func(t *testing.T) {
		l := l.sub(t)
		start := time.Now()
		out := l.must("lab", "node", "add", "--subnet", "10.10.2.0/28")
		t.Logf("lab node add into 10.10.2.0/28 with the DaemonSet's agent: %s", time.Since(start).Round(100*time.Millisecond))
		st := l.status()
		if len(st.Nodes) != 3 {
			t.Fatalf("%d nodes after node add, want 3: %s", len(st.Nodes), out)
		}
		nodes = st.Nodes
		third := nodes[2]
		var sn lab.SubnetInfo
		for _, s := range st.Subnets {
			if s.CIDR.String() == "10.10.2.0/28" {
				sn = s
			}
		}
		if sn.ID == "" || third.SubnetID != sn.ID {
			t.Fatalf("node %s in %s, want the /28 in %+v", third.Name, third.SubnetID, st.Subnets)
		}
		// One pod more than the subnet has usable addresses (the node's primary ENI takes one
		// of them): some pods cannot get an address whatever the agent does.
		for i := 1; i <= sn.Usable+1; i++ {
			l.mustKubectl(dsPodOn(fmt.Sprintf("tiny-%d", i), "extra", third.Name), "apply", "-f", "-")
		}
		var pending string
		l.waitFor("a pod without an address with a NoFreeVPCAddress event naming the subnet", 180*time.Second, func() (bool, string) {
			last := "no pod without an address"
			for _, p := range l.pods("default", "app=extra") {
				if p.Status.PodIP != "" {
					continue
				}
				evs := l.events("default", "Pod", p.Metadata.Name, "NoFreeVPCAddress")
				last = fmt.Sprintf("pod %s: events %+v", p.Metadata.Name, evs)
				for _, e := range evs {
					if e.Type == "Warning" && e.InvolvedObject.UID == p.Metadata.UID && strings.Contains(e.Message, sn.ID) && strings.Contains(e.Message, sn.CIDR.String()) {
						pending = p.Metadata.Name
						t.Logf("pod %s: %s %s: %s", p.Metadata.Name, e.Type, e.Reason, e.Message)
						return true, ""
					}
				}
			}
			return false, last
		})
		if out := l.mustKubectl("", "describe", "pod", pending); !strings.Contains(out, "NoFreeVPCAddress") || !strings.Contains(out, sn.ID) {
			t.Errorf("kubectl describe pod %s shows no NoFreeVPCAddress event naming %s:\n%s", pending, sn.ID, out)
		}
		l.waitFor("a VPCSubnetExhausted event on the node naming the subnet", 60*time.Second, func() (bool, string) {
			evs := l.events("default", "Node", third.Name, "VPCSubnetExhausted")
			for _, e := range evs {
				if e.Type == "Warning" && strings.Contains(e.Message, sn.ID) {
					t.Logf("node %s: %s %s: %s", third.Name, e.Type, e.Reason, e.Message)
					return true, ""
				}
			}
			return false, fmt.Sprintf("%+v", evs)
		})
		if out := l.mustKubectl("", "describe", "node", third.Name); !strings.Contains(out, "VPCSubnetExhausted") {
			t.Errorf("kubectl describe node %s shows no VPCSubnetExhausted event:\n%s", third.Name, out)
		}
		l.waitFor("the node's annotations saying the subnet is exhausted", 30*time.Second, func() (bool, string) {
			out, _ := l.kubectl("", "get", "node", third.Name, "-o", `jsonpath={.metadata.annotations.vpcnet\.io/reason} {.status.conditions[?(@.type=="Ready")].status}`)
			return out == "subnet-exhausted True", out
		})
		l.mustKubectl("", "delete", "pod", "-l", "app=extra", "--wait=true")
	})
	if t.Failed() {
		return
	}

	// GC from the API server's pods: sandboxes wired on the third node by the plugin as a
	// runtime would, for pods the API server never had. One's namespace is deleted with no DEL
	// (a runtime that lost it): after VPCNET_POD_GC_GRACE the agent releases its address, its
	// record and its rules through the plugin's own DEL. The other is just as old and as unknown
	// to the API server, but its sandbox is alive (its veth exists): it keeps its address. A
	// third is the lost sandbox of a predecessor of a pod the API server has under the same name
	// (a StatefulSet's db-0 re-created): another K8S_POD_UID, so it is released too, while the
	// pod of that name keeps its address.
	t.Run("GC releases the address of a pod the API server lacks once its sandbox is gone", func(t *testing.T) {
		l := l.sub(t)
		third := nodes[2]
		np := lab.PathsFor(l.name).Node(third.Index)
		plugin := filepath.Join(filepath.Dir(bin), "vpcnet-cni")
		conf, _ := json.Marshal(map[string]any{"cniVersion": "1.0.0", "name": "vpcnet", "type": "vpcnet-cni",
			"agentSocket": np.AgentSocket(), "mtu": 9001, "vethPrefix": "eni", "stateDir": filepath.Join(np.AgentState(), "cni")})
		cniRun := func(verb, cid, netns, pod, uid string) (string, error) {
			cmd := exec.Command("ip", "netns", "exec", third.NS, plugin)
			cmd.Env = append(os.Environ(), "CNI_COMMAND="+verb, "CNI_CONTAINERID="+cid, "CNI_NETNS="+netns, "CNI_IFNAME=eth0",
				"CNI_PATH="+filepath.Dir(plugin), "CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME="+pod+";K8S_POD_UID="+uid)
			cmd.Stdin = bytes.NewReader(conf)
			out, err := cmd.CombinedOutput()
			return string(out), err
		}
		// The pod of the name; containerd passes its UID (K8S_POD_UID) to the plugin.
		l.mustKubectl(dsPodOn("db-0", "db", third.Name), "apply", "-f", "-")
		db := l.onePodRunning("pod db-0", "app=db", 180*time.Second)
		type sandbox struct{ cid, ns, pod, uid, ip string }
		var sbs []*sandbox
		for _, what := range []string{"gone", "live", "predecessor"} {
			sb := &sandbox{cid: fmt.Sprintf("gc-%s-%d", what, os.Getpid()), ns: testenv.NSName("gc-" + what), pod: "ghost-" + what,
				uid: fmt.Sprintf("00000000-0000-4000-%04d-%012d", len(sbs), os.Getpid())}
			if what == "predecessor" {
				sb.pod = "db-0"
			}
			h, err := netnsx.Create(sb.ns)
			if err != nil {
				t.Fatal(err)
			}
			h.Close()
			t.Cleanup(func() {
				if _, err := os.Stat(netnsx.Path(sb.ns)); err == nil {
					_, _ = cniRun("DEL", sb.cid, netnsx.Path(sb.ns), sb.pod, sb.uid)
					_ = netnsx.Delete(sb.ns)
				}
			})
			// The third node's addresses rest after the exhausted-subnet pods went: the plugin
			// answers try again (CNI code 11), and a runtime retries.
			l.waitFor("ADD of "+sb.pod, 120*time.Second, func() (bool, string) {
				out, err := cniRun("ADD", sb.cid, netnsx.Path(sb.ns), sb.pod, sb.uid)
				if err != nil {
					return false, out
				}
				var res struct{ IPs []struct{ Address string } }
				if json.Unmarshal([]byte(out), &res) != nil || len(res.IPs) != 1 {
					t.Fatalf("ADD result %s", out)
				}
				sb.ip = strings.TrimSuffix(res.IPs[0].Address, "/32")
				return true, ""
			})
			sbs = append(sbs, sb)
		}
		gone, live, pred := sbs[0], sbs[1], sbs[2]
		lines, allocs := agentAllocs(t, third)
		uids := byUID(t, lines)
		if allocs["default/"+gone.pod] != gone.ip || allocs["default/"+live.pod] != live.ip || uids[pred.uid] != pred.ip {
			t.Fatalf("the agent's allocations %v lack the sandboxes' %s, %s and %s", lines, gone.ip, live.ip, pred.ip)
		}
		// containerd passed db-0's UID with its ADD, and the agent recorded it.
		if uids[db.Metadata.UID] != db.Status.PodIP {
			t.Fatalf("pod db-0 (UID %s, %s): the agent's allocations by UID %v", db.Metadata.UID, db.Status.PodIP, uids)
		}
		lost := []*sandbox{gone, pred}
		var nsIno []uint64
		for _, sb := range lost {
			var ino uint64
			if fi, err := os.Stat(netnsx.Path(sb.ns)); err == nil {
				ino = fi.Sys().(*syscall.Stat_t).Ino
			}
			nsIno = append(nsIno, ino)
			if err := netnsx.Delete(sb.ns); err != nil {
				t.Fatal(err)
			}
		}
		start := time.Now()
		// The kernel destroys the namespace, and the veth with it, once nothing holds it (a
		// workqueue, slow on a loaded machine): the agent's liveness check waits for exactly
		// that. Twice in CI something else on the machine still held the namespace after its
		// mount was gone (the veth stayed 2 min); what is tested here is the agent's GC once the
		// sandbox's network is gone, so after 20 s the test removes the host veth itself (what
		// the kernel would have done) and names the holders it finds.
		for i, sb := range lost {
			veth := dataplane.ContainerVethName("eni", "vpcnet", sb.cid, "eth0")
			vethGone := func() (bool, string) {
				out, err := exec.Command("ip", "-n", third.NS, "link", "show", veth).CombinedOutput()
				return err != nil, string(out)
			}
			for deadline := start.Add(20 * time.Second); ; time.Sleep(250 * time.Millisecond) {
				if ok, _ := vethGone(); ok {
					break
				}
				if time.Now().After(deadline) {
					t.Logf("%s still there %s after its namespace's mount went: namespace held by %s; deleting the veth", veth, time.Since(start).Round(100*time.Millisecond), netnsHolders(nsIno[i]))
					if out, err := exec.Command("ip", "-n", third.NS, "link", "del", veth).CombinedOutput(); err != nil {
						t.Logf("ip link del %s: %v: %s", veth, err, out)
					}
					break
				}
			}
			l.waitFor("the lost sandbox's veth gone", 60*time.Second, vethGone)
			t.Logf("the kernel removed %s (%s) %s after the namespace was deleted", veth, sb.pod, time.Since(start).Round(100*time.Millisecond))
		}
		defer func() {
			if t.Failed() {
				name, _ := l.kubectl("", "-n", deploy.Namespace, "get", "pods", "-l", "k8s-app=vpcnet-node", "--field-selector", "spec.nodeName="+third.Name, "-o", "jsonpath={.items[0].metadata.name}")
				out, _ := l.kubectl("", "-n", deploy.Namespace, "logs", "-c", deploy.AgentContainer, name, "--tail", "40")
				t.Logf("--- the third node's agent (tail)\n%s", out)
			}
		}()
		l.waitFor("the lost sandboxes' addresses released", 120*time.Second, func() (bool, string) {
			lines, allocs := agentAllocs(t, third)
			return allocs["default/"+gone.pod] == "" && byUID(t, lines)[pred.uid] == "", fmt.Sprint(lines)
		})
		t.Logf("%s released %s (%s) and %s (%s's predecessor, UID %s) after their namespaces went (VPCNET_POD_GC_GRACE %s)",
			third.Name, gone.ip, gone.pod, pred.ip, pred.pod, pred.uid, dsPodGCGrace)
		if took := time.Since(start); took < dsPodGCGrace-time.Second {
			t.Errorf("released after %s, before the grace period %s", took, dsPodGCGrace)
		}
		// The release is the plugin's own DEL run in the agent: it frees the address through the
		// agent, then removes its record; wait for the records to go too.
		l.waitFor("the plugin's records of the released attachments removed", 30*time.Second, func() (bool, string) {
			recs, err := cni.Attachments(filepath.Join(np.AgentState(), "cni"))
			if err != nil {
				return false, err.Error()
			}
			for _, r := range recs {
				if r.ContainerID == gone.cid || r.ContainerID == pred.cid {
					return false, fmt.Sprintf("left: %+v", r)
				}
			}
			return true, ""
		})
		l.waitFor("VPCAddressReleased events on the node", 30*time.Second, func() (bool, string) {
			evs := l.events("default", "Node", third.Name, vk8s.ReasonReleasedGone)
			found := 0
			for _, sb := range lost {
				for _, e := range evs {
					if strings.Contains(e.Message, sb.ip+" ") && strings.Contains(e.Message, sb.pod) {
						t.Logf("node %s: %s %s: %s", third.Name, e.Type, e.Reason, e.Message)
						found++
						break
					}
				}
			}
			return found == len(lost), fmt.Sprintf("%+v", evs)
		})
		lines, allocs = agentAllocs(t, third)
		if allocs["default/"+live.pod] != live.ip {
			t.Errorf("the live sandbox lost its address %s (the grace period passed for it too): %v", live.ip, lines)
		}
		if byUID(t, lines)[db.Metadata.UID] != db.Status.PodIP {
			t.Errorf("pod db-0 lost its address %s with its predecessor's: %v", db.Status.PodIP, lines)
		}
		if out, err := cniRun("DEL", live.cid, netnsx.Path(live.ns), live.pod, live.uid); err != nil {
			t.Fatalf("DEL of the live sandbox: %v: %s", err, out)
		}
		if err := netnsx.Delete(live.ns); err != nil {
			t.Fatal(err)
		}
		l.mustKubectl("", "delete", "pod", "db-0", "--wait=true")
		l.waitFor("the third node's agent holding nothing", 60*time.Second, func() (bool, string) {
			lines, _ := agentAllocs(t, third)
			return len(lines) == 0, fmt.Sprint(lines)
		})
	})
	if t.Failed() {
		return
	}

	// Handover through a rolling update to a new image tag: one node at a time, the old agent
	// removes its socket on SIGTERM and leaves the conflist, the new one takes the same
	// allocations over; running pods never notice and no node turns NotReady.
	l.untainted()
	watch = l.watchNodes()
	t.Run("rolling update keeps every pod, address and allocation", func(t *testing.T) {
		l := l.sub(t)
		before := map[string][]string{}
		for _, n := range nodes {
			lines, allocs := agentAllocs(t, n)
			before[n.Name] = lines
			if n.Index <= 2 {
				if d := sameMap(podSet(webPods, n.Name), allocs); d != "" {
					t.Errorf("%s: the agent's allocations are not the node's pods: %s", n.Name, d)
				}
			}
		}
		// The new tag, packed by `vpcnet image build` from static binaries (those the lab
		// built for its own image when the test's are not static).
		cfg, err := lab.ReadConfig(lab.PathsFor(l.name))
		if err != nil {
			t.Fatal(err)
		}
		binDir := filepath.Dir(cfg.AgentBin)
		if _, err := os.Stat(filepath.Join(k8s.PathsOf(lab.PathsFor(l.name)).Dir, "bin", "vpcnetd")); err == nil {
			binDir = filepath.Join(k8s.PathsOf(lab.PathsFor(l.name)).Dir, "bin")
		}
		const tag = "vpcnet.local/vpcnetd:rollout"
		tarball := filepath.Join(t.TempDir(), "rollout.tar")
		out, err := exec.Command(bin, "image", "build", "--bin-dir", binDir, "--portmap", cache.Open("", cache.Default).Bin("portmap"),
			"--tag", tag, "--out", tarball).CombinedOutput()
		if err != nil {
			t.Fatalf("vpcnet image build: %v\n%s", err, out)
		}
		for _, n := range nodes {
			if err := k8s.ImportImage(context.Background(), l.name, n.Index, tarball); err != nil {
				t.Fatal(err)
			}
		}
		var hs []*handover
		for _, n := range nodes {
			h := watchHandover(t, l.name, n)
			defer h.stop()
			hs = append(hs, h)
		}
		pr := startProber(nodes[0].NS, webIPs)
		defer pr.stop()
		roll := time.Now()
		l.mustKubectl("", "-n", deploy.Namespace, "set", "image", "ds/"+deploy.DaemonSet, deploy.AgentContainer+"="+tag, "install-cni="+tag)
		l.mustKubectl("", "-n", deploy.Namespace, "rollout", "status", "ds/"+deploy.DaemonSet, "--timeout=300s")
		l.waitFor("agents Ready on the new tag", 120*time.Second, func() (bool, string) { return l.agentsReady(nodes, tag) })
		took := time.Since(roll)
		failed, rounds := pr.stop()
		for _, h := range hs {
			h.stop()
		}
		t.Logf("rolling update of %d agents to %s: %s; %d rounds probing the 30 pods", len(nodes), tag, took.Round(100*time.Millisecond), rounds)
		if len(failed) > 0 {
			t.Errorf("pods unreachable during the rollout: %v", failed)
		}
		for _, h := range hs {
			t.Logf("%s: socket absent in %d of %d polls (50 ms apart), conflist unchanged throughout: %v", h.node, h.absent, h.polls, len(h.problems) == 0)
			if h.absent == 0 {
				t.Errorf("%s: the agent's socket was never seen absent: the old agent did not remove it on SIGTERM", h.node)
			}
			if h.stale > 1 {
				t.Errorf("%s: a socket no agent answers on for %d polls in a row (left behind by the old agent)", h.node, h.stale)
			}
			if len(h.problems) > 0 {
				t.Errorf("%s: the conflist did not stay: %v", h.node, h.problems)
			}
		}
		for _, n := range nodes {
			if after, _ := agentAllocs(t, n); strings.Join(after, "\n") != strings.Join(before[n.Name], "\n") {
				t.Errorf("%s: allocations changed over the rollout:\nbefore %v\nafter  %v", n.Name, before[n.Name], after)
			}
		}
		if p := l.pods("default", "app=web"); len(p) != 30 || sameMap(podSet(webPods, ""), podSet(p, "")) != "" {
			t.Errorf("web pods changed over the rollout")
		}
	})

	// Uninstall and install again, as a user would with `kubectl delete -f deploy/` and
	// `kubectl apply -f deploy/` (here the lab's kustomization of it): the allocations live in
	// the node's /var/lib/vpcnet (a hostPath), so the new agents take every one of them over.
	t.Run("delete the manifest and apply it again loses no allocation", func(t *testing.T) {
		l := l.sub(t)
		before := map[string][]string{}
		for _, n := range nodes {
			before[n.Name], _ = agentAllocs(t, n)
		}
		ov := k8s.PathsOf(lab.PathsFor(l.name)).OverlayDir()
		pr := startProber(nodes[0].NS, webIPs)
		defer pr.stop()
		gone := time.Now()
		l.mustKubectl("", "delete", "-k", ov, "--wait=true")
		l.waitFor("agent pods gone", 120*time.Second, func() (bool, string) {
			p := l.pods(deploy.Namespace, "k8s-app=vpcnet-node")
			return len(p) == 0, fmt.Sprintf("%d agent pods", len(p))
		})
		for _, n := range nodes {
			np := lab.PathsFor(l.name).Node(n.Index)
			if _, err := os.Stat(np.AgentSocket()); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s: the agent's socket after the agent was deleted: %v", n.Name, err)
			}
			if _, err := os.Stat(filepath.Join(np.CNIConfDir(), lab.AgentCNIConfName)); err != nil {
				t.Errorf("%s: the conflist after the agent was deleted: %v", n.Name, err)
			}
		}
		l.mustKubectl("", "apply", "-k", ov)
		l.waitFor("agents Ready again", 180*time.Second, func() (bool, string) { return l.agentsReady(nodes, deploy.Image) })
		t.Logf("manifest deleted and applied again: agents Ready %s after the delete", time.Since(gone).Round(100*time.Millisecond))
		failed, rounds := pr.stop()
		if len(failed) > 0 {
			t.Errorf("pods unreachable with no agent or after: %v (%d rounds)", failed, rounds)
		}
		for _, n := range nodes {
			if after, _ := agentAllocs(t, n); strings.Join(after, "\n") != strings.Join(before[n.Name], "\n") {
				t.Errorf("%s: allocations changed over delete + apply:\nbefore %v\nafter  %v", n.Name, before[n.Name], after)
			}
		}
		// A new pod after the re-apply: one web pod replaced on a full node gets an address no
		// other pod has, and each agent's allocations are again exactly its node's pods.
		victim := webPods[0]
		l.mustKubectl("", "delete", "pod", victim.Metadata.Name, "--wait=true")
		var now []dsPod
		l.waitFor("30 web pods Running again", 180*time.Second, func() (bool, string) {
			now = l.pods("default", "app=web")
			running := 0
			for _, p := range now {
				if p.Status.Phase == "Running" && p.Status.PodIP != "" {
					running++
				}
			}
			return running == 30 && len(now) == 30, fmt.Sprintf("%d of %d running", running, len(now))
		})
		seenIP := map[string]string{}
		for _, p := range now {
			if other, dup := seenIP[p.Status.PodIP]; dup {
				t.Errorf("pods %s and %s share %s", other, p.Metadata.Name, p.Status.PodIP)
			}
			seenIP[p.Status.PodIP] = p.Metadata.Name
			if _, old := podSet(webPods, "")["default/"+p.Metadata.Name]; !old {
				t.Logf("new pod %s on %s: %s (the deleted pod had %s; a released address rests IP_COOLDOWN_PERIOD before reuse)", p.Metadata.Name, p.Spec.NodeName, p.Status.PodIP, victim.Status.PodIP)
			}
		}
		for _, n := range nodes[:2] {
			_, allocs := agentAllocs(t, n)
			if d := sameMap(podSet(now, n.Name), allocs); d != "" {
				t.Errorf("%s: the agent's allocations are not the node's pods after the re-apply: %s", n.Name, d)
			}
		}
	})
	bad, seen = watch.stop()
	t.Run("no node NotReady over the rollout and the re-apply", func(t *testing.T) {
		if seen == 0 {
			t.Fatal("the node watch saw no update at all")
		}
		if len(bad) > 0 {
			t.Errorf("%d node updates:\n%s", seen, strings.Join(bad, "\n"))
		}
	})

	// hostPort with nothing but deploy/: the image ships portmap, install-cni put it in each
	// node's /opt/cni/bin and the agent chains it (VPCNET_CNI_PORTMAP in the DaemonSet), so a
	// pod's hostPort answers on its node's own address, here from a pod on another node.
	t.Run("a pod's hostPort answers on its node's address from another node", func(t *testing.T) {
		l := l.sub(t)
		third := nodes[2]
		const hostPort = 18080
		cniBin := filepath.Join(k8s.PathsOf(lab.PathsFor(l.name)).Node(third.Index), "cni-bin")
		for _, plugin := range []string{"vpcnet-cni", "portmap"} {
			if fi, err := os.Stat(filepath.Join(cniBin, plugin)); err != nil || fi.Mode()&0o111 == 0 {
				t.Errorf("%s: the node's /opt/cni/bin has no executable %s (%v): install-cni should have put it there", third.Name, plugin, err)
			}
		}
		b, err := os.ReadFile(filepath.Join(lab.PathsFor(l.name).Node(third.Index).CNIConfDir(), lab.AgentCNIConfName))
		if err != nil {
			t.Fatal(err)
		}
		var conflist struct {
			Plugins []struct {
				Type         string
				Capabilities map[string]bool
			}
		}
		if err := json.Unmarshal(b, &conflist); err != nil {
			t.Fatalf("%s: conflist: %v: %s", third.Name, err, b)
		}
		if n := len(conflist.Plugins); n != 2 || conflist.Plugins[0].Type != "vpcnet-cni" || conflist.Plugins[1].Type != "portmap" || !conflist.Plugins[1].Capabilities["portMappings"] {
			t.Fatalf("%s: the agent's conflist does not chain portmap with portMappings after vpcnet-cni: %s", third.Name, b)
		}
		l.mustKubectl(dsPodOn("hostport", "hostport", third.Name)+fmt.Sprintf(`      ports:
        - {containerPort: 8080, hostPort: %d, protocol: TCP}
`, hostPort), "apply", "-f", "-")
		defer l.kubectl("", "delete", "pod", "hostport", "--wait=false")
		pod := l.onePodRunning("the hostPort pod", "app=hostport", 120*time.Second)
		if pod.Status.PodIP == third.PrimaryIP.String() {
			t.Fatalf("the hostPort pod has its node's address %s: not a pod-network pod", pod.Status.PodIP)
		}
		var client dsPod
		for _, p := range l.pods("default", "app=web") {
			if p.Spec.NodeName == nodes[0].Name && p.Status.Phase == "Running" {
				client = p
				break
			}
		}
		if client.Metadata.Name == "" {
			t.Fatalf("no Running web pod on %s to call from", nodes[0].Name)
		}
		url := fmt.Sprintf("http://%s:%d/", third.PrimaryIP, hostPort)
		var answer string
		l.waitFor("the hostPort answering on "+url+" from "+client.Metadata.Name, 30*time.Second, func() (bool, string) {
			out, err := l.kubectl("", "exec", client.Metadata.Name, "--", "/vtool", "get", url)
			answer = strings.TrimSpace(out)
			return err == nil && strings.HasPrefix(answer, "hostport "), fmt.Sprintf("%v: %s", err, out)
		})
		// portmap DNATs to the pod and keeps the caller's address (its snat is for hairpin and
		// loopback callers only): the pod sees the calling pod, as on EKS.
		if answer != "hostport "+client.Status.PodIP {
			t.Errorf("the hostPort pod answered %q, want it to see the caller %s", answer, client.Status.PodIP)
		}
		t.Logf("pod %s (%s) on %s: GET %s answered %q by pod hostport (%s) on %s", client.Metadata.Name, client.Status.PodIP, client.Spec.NodeName, url, answer, pod.Status.PodIP, third.Name)
	})
}

// netnsHolders names the processes whose network namespace has inode ino, and the mount
// namespaces that still bind-mount it, for a test's log.
func netnsHolders(ino uint64) string {
	if ino == 0 {
		return "(unknown namespace)"
	}
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid := e.Name()
		if _, err := strconv.Atoi(pid); err != nil {
			continue
		}
		if fi, err := os.Stat("/proc/" + pid + "/ns/net"); err == nil && fi.Sys().(*syscall.Stat_t).Ino == ino {
			comm, _ := os.ReadFile("/proc/" + pid + "/comm")
			out = append(out, fmt.Sprintf("pid %s (%s)", pid, strings.TrimSpace(string(comm))))
		}
		if b, err := os.ReadFile("/proc/" + pid + "/mountinfo"); err == nil && strings.Contains(string(b), fmt.Sprintf("net:[%d]", ino)) {
			comm, _ := os.ReadFile("/proc/" + pid + "/comm")
			out = append(out, fmt.Sprintf("a mount in pid %s's mount namespace (%s)", pid, strings.TrimSpace(string(comm))))
		}
		if len(out) > 8 {
			break
		}
	}
	if len(out) == 0 {
		return "no process or mount found (an open file descriptor, perhaps)"
	}
	return strings.Join(out, ", ")
}
