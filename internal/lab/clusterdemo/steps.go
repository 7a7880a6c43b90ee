package clusterdemo

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/vpcnet/vpcnet/deploy"
	"github.com/vpcnet/vpcnet/internal/lab"
	"github.com/vpcnet/vpcnet/internal/lab/k8s"
)

// The demo's steps, in the order of the seed's process table. Each prints what it runs and
// returns what it observed, or an error saying what it observed instead.

func (d *demo) createVPC() (string, error) {
	cfg := lab.DefaultConfig(d.o.Name)
	cfg.VPCCIDR, cfg.Subnets = VPC, []netip.Prefix{Main, Small}
	cfg.Runtime = k8s.Name
	cfg.AgentMode, cfg.DeferAgentInstall = lab.AgentDaemonSet, true
	d.say("vpcsim: CreateVpc %s, CreateSubnet %s and %s; the control plane (etcd, kube-apiserver,", VPC, Main, Small)
	d.say("controller-manager, scheduler) starts in the lab's router namespace, on the VPC at %s:%d", Main.Addr().Next(), k8s.APIPort)
	c, err := lab.Up(d.ctx, lab.UpOptions{Config: cfg, Nodes: 0, Progress: d.o.Progress})
	if err != nil {
		return "", err
	}
	d.c = c
	st, err := d.status()
	if err != nil {
		return "", err
	}
	if st.VPC.ID == "" || st.VPC.CIDR != VPC {
		return "", fmt.Errorf("VPC is %q %s, want %s", st.VPC.ID, st.VPC.CIDR, VPC)
	}
	parts := []string{fmt.Sprintf("%s %s", st.VPC.ID, st.VPC.CIDR)}
	for i, want := range cfg.Subnets {
		if i >= len(st.Subnets) || st.Subnets[i].CIDR != want || st.Subnets[i].ID == "" {
			return strings.Join(parts, "; "), fmt.Errorf("subnets %+v, want %v", st.Subnets, cfg.Subnets)
		}
		s := st.Subnets[i]
		parts = append(parts, fmt.Sprintf("%s %s (%d free)", s.ID, s.CIDR, s.Free))
	}
	return strings.Join(parts, "; "), nil
}

// k8sNode is what the demo reads of a Node object.
type k8sNode struct {
	Metadata struct{ Name string }
	Status   struct {
		Addresses  []struct{ Type, Address string }
		Conditions []struct{ Type, Status, Reason, Message string }
	}
}

func (n k8sNode) internalIP() string {
	for _, a := range n.Status.Addresses {
		if a.Type == "InternalIP" {
			return a.Address
		}
	}
	return ""
}

func (n k8sNode) ready() (bool, string) {
	for _, c := range n.Status.Conditions {
		if c.Type == "Ready" {
			return c.Status == "True", c.Reason + ": " + c.Message
		}
	}
	return false, "no Ready condition"
}

func (d *demo) k8sNodes() ([]k8sNode, error) {
	out, err := d.kubectlQuiet("get", "nodes", "-o", "json")
	if err != nil {
		return nil, err
	}
	var list struct{ Items []k8sNode }
	return list.Items, json.Unmarshal([]byte(out), &list)
}

func (d *demo) createCluster() (string, error) {
	// The API server's address in the VPC, as the nodes reach it (the seed's X-ENI).
	out, err := d.kubectl(0, "get", "endpointslices", "-l", "kubernetes.io/service-name=kubernetes")
	if err != nil {
		return "", err
	}
	api := fmt.Sprintf("%s:%d", Main.Addr().Next(), k8s.APIPort)
	if !strings.Contains(out, Main.Addr().Next().String()) {
		return "", fmt.Errorf("the kubernetes Service's endpoint is not the API server's VPC address %s", api)
	}
	for i := range nodes0 {
		d.say("node %d: RunInstances t3.medium in %s; containerd and kubelet in the node's namespaces", i+1, Main)
		n, err := d.c.AddNode(d.ctx, lab.NodeRequest{}, d.o.Progress)
		if err != nil {
			return "", err
		}
		d.nodes = append(d.nodes, n)
	}
	if _, err := d.kubectl(0, "get", "nodes", "-o", "wide"); err != nil {
		return "", err
	}
	kn, err := d.k8sNodes()
	if err != nil {
		return "", err
	}
	if len(kn) != nodes0 {
		return "", fmt.Errorf("%d nodes registered, want %d", len(kn), nodes0)
	}
	var parts []string
	notReady := ""
	for _, ln := range d.nodes {
		var found *k8sNode
		for i := range kn {
			if kn[i].Metadata.Name == ln.Name {
				found = &kn[i]
			}
		}
		if found == nil || ln.Name != lab.NodeName(ln.PrimaryIP) || !Main.Contains(ln.PrimaryIP) {
			return "", fmt.Errorf("node %s (%s) is not registered under its EC2 name with an address of %s", ln.Name, ln.InstanceID, Main)
		}
		if ip := found.internalIP(); ip != ln.PrimaryIP.String() {
			return "", fmt.Errorf("node %s InternalIP %q, want its primary ENI address %s", ln.Name, ip, ln.PrimaryIP)
		}
		if ok, why := found.ready(); ok {
			return "", fmt.Errorf("node %s is Ready with no CNI installed", ln.Name)
		} else {
			notReady = why
		}
		parts = append(parts, fmt.Sprintf("%s (%s, InternalIP %s)", short(ln.Name), ln.InstanceID, ln.PrimaryIP))
	}
	return fmt.Sprintf("API server on the VPC at %s; %s registered, NotReady until a CNI is installed (%s)",
		api, strings.Join(parts, ", "), firstLine(notReady, 90)), nil
}

func firstLine(s string, n int) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > n {
		s = s[:n] + "..."
	}
	return s
}

// k8sPod is what the demo reads of a Pod object.
type k8sPod struct {
	Metadata struct {
		Name   string
		Labels map[string]string
	}
	Spec struct {
		NodeName    string
		HostNetwork bool
	}
	Status struct {
		Phase      string
		PodIP      string
		Conditions []struct{ Type, Status string }
	}
}

func (p k8sPod) ready() bool {
	for _, c := range p.Status.Conditions {
		if c.Type == "Ready" {
			return c.Status == "True"
		}
	}
	return false
}

type pod = k8sPod

func (d *demo) pods(ns, selector string) ([]k8sPod, error) {
	out, err := d.kubectlQuiet("get", "pods", "-n", ns, "-l", selector, "-o", "json")
	if err != nil {
		return nil, err
	}
	var list struct{ Items []k8sPod }
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		return nil, err
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Metadata.Name < list.Items[j].Metadata.Name })
	return list.Items, nil
}

// agentsReady checks one Ready vpcnet-node pod on each of the nodes.
func (d *demo) agentsReady(nodes []lab.NodeInfo) (bool, string) {
	pods, err := d.pods(deploy.Namespace, "k8s-app="+deploy.DaemonSet)
	if err != nil {
		return false, err.Error()
	}
	ready := map[string]int{}
	for _, p := range pods {
		if p.Status.Phase == "Running" && p.ready() {
			ready[p.Spec.NodeName]++
		}
	}
	for _, n := range nodes {
		if ready[n.Name] != 1 {
			return false, fmt.Sprintf("node %s has %d Ready %s pods (%d pods in all)", n.Name, ready[n.Name], deploy.DaemonSet, len(pods))
		}
	}
	return true, ""
}

func (d *demo) installCNI() (string, error) {
	p := k8s.PathsOf(lab.PathsFor(d.o.Name))
	d.say("the manifest is deploy/vpcnet.yaml as shipped; the lab's kustomize overlay in %s adds only", p.OverlayDir())
	d.say("the lab's EC2/IMDS endpoints and API server address to the agent's environment")
	out, err := k8s.InstallAgent(d.ctx, d.c, d.o.Progress)
	fmt.Fprintf(d.w, "   $ kubectl apply -k %s\n", p.OverlayDir())
	fmt.Fprint(d.w, indent(out))
	if err != nil {
		return "", err
	}
	// kubelet's readiness probe marks each agent pod Ready on its next run.
	if err := d.waitFor("an agent pod Ready on every node", 90*time.Second, func() (bool, string) { return d.agentsReady(d.nodes) }); err != nil {
		_, _ = d.kubectl(0, "get", "pods", "-n", deploy.Namespace, "-o", "wide")
		return "", err
	}
	if _, err := d.kubectl(0, "get", "pods", "-n", deploy.Namespace, "-o", "wide"); err != nil {
		return "", err
	}
	if _, err := d.kubectl(0, "get", "nodes"); err != nil {
		return "", err
	}
	kn, err := d.k8sNodes()
	if err != nil {
		return "", err
	}
	for _, n := range kn {
		if ok, why := n.ready(); !ok {
			return "", fmt.Errorf("node %s not Ready after the install: %s", n.Metadata.Name, why)
		}
	}
	st, err := d.status()
	if err != nil {
		return "", err
	}
	var parts []string
	for _, n := range st.Nodes {
		if !n.Agent.Ready {
			return "", fmt.Errorf("the agent on %s: %s %s", n.Name, n.Agent.Reason, n.Agent.Message)
		}
		addrs := 0
		for _, e := range n.ENIs {
			addrs += len(e.Secondary)
		}
		parts = append(parts, fmt.Sprintf("%s: %d ENI(s), %d secondary IP(s) warm", short(n.Name), len(n.ENIs), addrs))
	}
	return fmt.Sprintf("%s Ready on %d/%d nodes, nodes Ready; %s", deploy.DaemonSet, len(st.Nodes), len(st.Nodes), strings.Join(parts, "; ")), nil
}

// deployment is a Deployment of the lab's test image (vtool serve on :8080); spread puts its
// pods evenly over the nodes; node, when not "", pins them to one node.
func deployment(name string, replicas int, spread bool, node string) string {
	spec := map[string]any{
		"terminationGracePeriodSeconds": 1,
		"containers": []any{map[string]any{"name": "main", "image": k8s.TestImage, "imagePullPolicy": "Never",
			"args": []string{"serve", ":8080"}}},
	}
	if spread {
		spec["topologySpreadConstraints"] = []any{map[string]any{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
			"whenUnsatisfiable": "DoNotSchedule", "labelSelector": map[string]any{"matchLabels": map[string]string{"app": name}}}}
	}
	if node != "" {
		spec["nodeSelector"] = map[string]string{"kubernetes.io/hostname": node}
	}
	b, _ := json.MarshalIndent(map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment", "metadata": map[string]any{"name": name},
		"spec": map[string]any{
			"replicas": replicas,
			"selector": map[string]any{"matchLabels": map[string]string{"app": name}},
			"template": map[string]any{"metadata": map[string]any{"labels": map[string]string{"app": name}}, "spec": spec},
		},
	}, "", "  ")
	return string(b) + "\n"
}

// writeManifest writes a manifest into the lab's directory, for `kubectl apply -f`.
func (d *demo) writeManifest(name, body string) (string, error) {
	dir := filepath.Join(lab.PathsFor(d.o.Name).Dir, "demo")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, name)
	return path, os.WriteFile(path, []byte(body), 0o644)
}

// runningWeb waits until want pods of the Deployment run with an address, and returns them.
func (d *demo) running(app string, want int, limit time.Duration) ([]k8sPod, error) {
	var pods []k8sPod
	err := d.waitFor(fmt.Sprintf("%d %s pods Running with an address", want, app), limit, func() (bool, string) {
		var err error
		if pods, err = d.pods("default", "app="+app); err != nil {
			return false, err.Error()
		}
		n := 0
		for _, p := range pods {
			if p.Status.Phase == "Running" && p.Status.PodIP != "" {
				n++
			}
		}
		return n == want && len(pods) == want, fmt.Sprintf("%d of %d running", n, len(pods))
	})
	return pods, err
}

// checkAddrs verifies each pod's address is in subnet, distinct from every other pod's in
// seen, and a secondary IP of an ENI of the pod's node in EC2 (vpcsim); it adds them to seen.
func checkAddrs(st lab.Status, pods []k8sPod, subnet netip.Prefix, seen map[netip.Addr]string) error {
	for _, p := range pods {
		ip, err := netip.ParseAddr(p.Status.PodIP)
		if err != nil || !subnet.Contains(ip) {
			return fmt.Errorf("pod %s has %q, not an address of %s", p.Metadata.Name, p.Status.PodIP, subnet)
		}
		if other, dup := seen[ip]; dup {
			return fmt.Errorf("pods %s and %s share %s", other, p.Metadata.Name, ip)
		}
		seen[ip] = p.Metadata.Name
		n, err := lab.FindNode(st, p.Spec.NodeName)
		if err != nil {
			return err
		}
		if eni := eniHolding(n, ip); eni == "" {
			return fmt.Errorf("pod %s's %s is not a secondary IP of any ENI of its node %s in EC2", p.Metadata.Name, ip, n.Name)
		}
	}
	return nil
}

// eniHolding names the node's ENI that holds ip as a secondary IP or in a delegated prefix.
func eniHolding(n lab.NodeInfo, ip netip.Addr) string {
	for _, e := range n.ENIs {
		for _, a := range e.Secondary {
			if a == ip {
				return e.ID
			}
		}
		for _, p := range e.Prefixes {
			if p.Contains(ip) {
				return e.ID
			}
		}
	}
	return ""
}

func (d *demo) podsStart() (string, error) {
	path, err := d.writeManifest("web.yaml", deployment("web", 4, true, ""))
	if err != nil {
		return "", err
	}
	d.say("a Deployment of 4 pods of the lab's test image, spread over the nodes (%s)", path)
	if _, err := d.kubectl(0, "apply", "-f", path); err != nil {
		return "", err
	}
	pods, err := d.running("web", 4, 3*time.Minute)
	if _, kerr := d.kubectl(0, "get", "pods", "-o", "wide"); kerr != nil && err == nil {
		err = kerr
	}
	if err != nil {
		return "", err
	}
	st, err := d.status()
	if err != nil {
		return "", err
	}
	seen := map[netip.Addr]string{}
	if err := checkAddrs(st, pods, Main, seen); err != nil {
		return "", err
	}
	perNode := map[string]int{}
	var parts []string
	for _, p := range pods {
		perNode[p.Spec.NodeName]++
		parts = append(parts, fmt.Sprintf("%s=%s", p.Metadata.Name[len(p.Metadata.Name)-5:], p.Status.PodIP))
	}
	for _, n := range d.nodes {
		if perNode[n.Name] == 0 {
			return "", fmt.Errorf("no web pod on %s", n.Name)
		}
	}
	d.web = pods
	return fmt.Sprintf("4 pods on %d nodes, distinct addresses of %s, each a secondary IP of its node's ENI in EC2: %s",
		len(perNode), Main, strings.Join(parts, " ")), nil
}

// onNode returns the first pod on the node.
func onNode(pods []k8sPod, node string) (k8sPod, bool) {
	for _, p := range pods {
		if p.Spec.NodeName == node {
			return p, true
		}
	}
	return k8sPod{}, false
}

// talk checks, through kubectl exec, that a pings b and that an HTTP GET from a to b answers
// with b's name and a's own address (no NAT between pods).
func (d *demo) talk(a, b k8sPod, show bool) error {
	run := d.kubectlQuiet
	if show {
		run = func(args ...string) (string, error) { return d.kubectl(0, args...) }
	}
	out, err := run("exec", a.Metadata.Name, "--", "/vtool", "ping", "-c", "2", b.Status.PodIP)
	if err != nil {
		return err
	}
	if !strings.Contains(out, "reply from "+b.Status.PodIP) {
		return fmt.Errorf("%s ping %s: %s", a.Metadata.Name, b.Status.PodIP, strings.TrimSpace(out))
	}
	want := b.Metadata.Name + " " + a.Status.PodIP
	// Running means the container started; its server may take a moment to listen.
	err = d.waitFor("the HTTP answer", 30*time.Second, func() (bool, string) {
		out, err = d.kubectlQuiet("exec", a.Metadata.Name, "--", "/vtool", "get", "http://"+b.Status.PodIP+":8080/")
		return err == nil && strings.TrimSpace(out) == want, strings.TrimSpace(out)
	})
	if show {
		fmt.Fprintf(d.w, "   $ kubectl exec %s -- /vtool get http://%s:8080/\n", a.Metadata.Name, b.Status.PodIP)
		fmt.Fprint(d.w, indent(out))
	}
	if err != nil {
		return fmt.Errorf("%s -> %s: answer %q, want %q (b's name, a's address kept)", a.Metadata.Name, b.Metadata.Name, strings.TrimSpace(out), want)
	}
	return nil
}

func (d *demo) podToPod() (string, error) {
	a, okA := onNode(d.web, d.nodes[0].Name)
	b, okB := onNode(d.web, d.nodes[1].Name)
	if !okA || !okB {
		return "", fmt.Errorf("no web pod on each of the first two nodes")
	}
	d.say("%s on %s -> %s on %s", a.Metadata.Name, short(a.Spec.NodeName), b.Metadata.Name, short(b.Spec.NodeName))
	if err := d.talk(a, b, true); err != nil {
		return "", err
	}
	if err := d.talk(b, a, false); err != nil {
		return "", err
	}
	out, err := d.kubectl(0, "exec", a.Metadata.Name, "--", "/vtool", "addrs")
	if err != nil {
		return "", err
	}
	if !strings.Contains(out, "eth0 "+a.Status.PodIP+"/32") {
		return "", fmt.Errorf("%s's eth0 does not hold %s/32", a.Metadata.Name, a.Status.PodIP)
	}
	tunnels, count, err := lab.TunnelDevices(d.o.Name)
	if err != nil {
		return "", err
	}
	d.say("link types in the lab's %d network namespaces (router, nodes, internet): tunnel devices: %d", count, len(tunnels))
	if len(tunnels) > 0 {
		return "", fmt.Errorf("tunnel devices found: %s", strings.Join(tunnels, ", "))
	}
	return fmt.Sprintf("ping and HTTP both ways across nodes, source address kept (%s); no vxlan/geneve/ipip/gre link in %d namespaces",
		a.Status.PodIP, count), nil
}

var describeKeep = regexp.MustCompile(`^(Name|Namespace|Node|Status|IP|IPs|  IP|Controlled By):`)

func (d *demo) describePod() (string, error) {
	a := d.web[0]
	out, err := d.kubectlQuiet("describe", "pod", a.Metadata.Name)
	fmt.Fprintf(d.w, "   $ kubectl describe pod %s   (the lines about its address)\n", a.Metadata.Name)
	var kept []string
	ip := ""
	for _, line := range strings.Split(out, "\n") {
		if describeKeep.MatchString(line) {
			kept = append(kept, line)
		}
		if f := strings.Fields(line); len(f) == 2 && f[0] == "IP:" {
			ip = f[1]
		}
	}
	fmt.Fprint(d.w, indent(strings.Join(kept, "\n")))
	if err != nil {
		return "", err
	}
	if ip != a.Status.PodIP {
		return "", fmt.Errorf("describe pod shows IP %q, the pod has %s", ip, a.Status.PodIP)
	}
	st, err := d.status()
	if err != nil {
		return "", err
	}
	n, err := lab.FindNode(st, a.Spec.NodeName)
	if err != nil {
		return "", err
	}
	eni := eniHolding(n, netip.MustParseAddr(ip))
	if eni == "" {
		return "", fmt.Errorf("%s is on no ENI of %s", ip, n.Name)
	}
	d.say("EC2 (vpcsim): %s of %s holds %s as a secondary private IP", eni, n.InstanceID, ip)
	return fmt.Sprintf("%s: IP %s in %s = a secondary IP of %s on %s", a.Metadata.Name, ip, Main, eni, n.InstanceID), nil
}

func (d *demo) scale() (string, error) {
	d.say("lab node add: RunInstances t3.medium; kubelet joins; the DaemonSet starts the agent there")
	n, err := d.c.AddNode(d.ctx, lab.NodeRequest{}, d.o.Progress)
	if err != nil {
		return "", err
	}
	d.nodes = append(d.nodes, n)
	if err := d.waitFor("an agent pod Ready on every node", 90*time.Second, func() (bool, string) { return d.agentsReady(d.nodes) }); err != nil {
		return "", err
	}
	if _, err := d.kubectl(0, "get", "nodes", "-o", "wide"); err != nil {
		return "", err
	}
	if _, err := d.kubectl(0, "get", "pods", "-n", deploy.Namespace, "-o", "wide"); err != nil {
		return "", err
	}
	if _, err := d.kubectl(0, "scale", "deployment", "web", "--replicas=6"); err != nil {
		return "", err
	}
	pods, err := d.running("web", 6, 3*time.Minute)
	if _, kerr := d.kubectl(0, "get", "pods", "-o", "wide", "--field-selector", "spec.nodeName="+n.Name); kerr != nil && err == nil {
		err = kerr
	}
	if err != nil {
		return "", err
	}
	st, err := d.status()
	if err != nil {
		return "", err
	}
	if err := checkAddrs(st, pods, Main, map[netip.Addr]string{}); err != nil {
		return "", err
	}
	var mine []string
	for _, p := range pods {
		if p.Spec.NodeName == n.Name {
			mine = append(mine, p.Status.PodIP)
		}
	}
	if len(mine) == 0 {
		return "", fmt.Errorf("no web pod on the new node %s", n.Name)
	}
	a, _ := onNode(pods, n.Name)
	b, _ := onNode(pods, d.nodes[0].Name)
	if err := d.talk(a, b, true); err != nil {
		return "", err
	}
	d.web = pods
	return fmt.Sprintf("%s joined (%s) with %d ENI(s); its %d pod(s) got %s and reach %s on %s",
		short(n.Name), n.InstanceID, len(n.ENIs), len(mine), strings.Join(mine, ", "), b.Status.PodIP, short(b.Spec.NodeName)), nil
}

// exhaustedRE is what the events of a pod left without an address must say: the agent's
// NoFreeVPCAddress event or kubelet's sandbox failure carrying the agent's reason.
var exhaustedRE = regexp.MustCompile(`has no free addresses|InsufficientFreeAddressesInSubnet|subnet-exhausted`)

func (d *demo) exhaust() (string, error) {
	d.say("lab node add --subnet %s: a node in a subnet of %d usable addresses", Small, 11)
	n, err := d.c.AddNode(d.ctx, lab.NodeRequest{Subnet: Small.String()}, d.o.Progress)
	if err != nil {
		return "", err
	}
	d.nodes = append(d.nodes, n)
	if !Small.Contains(n.PrimaryIP) {
		return "", fmt.Errorf("node %s got %s, outside %s", n.Name, n.PrimaryIP, Small)
	}
	// 12 pods: more than the subnet's 11 usable addresses, of which the node's primary ENI
	// takes one already; fewer than kubelet's maxPods, so kubelet admits them all.
	const replicas = 12
	path, err := d.writeManifest("dry.yaml", deployment("dry", replicas, false, n.Name))
	if err != nil {
		return "", err
	}
	d.say("%d pods pinned to %s (%s)", replicas, short(n.Name), path)
	if _, err := d.kubectl(0, "apply", "-f", path); err != nil {
		return "", err
	}
	var pods []k8sPod
	var stuck k8sPod
	var events string
	// Settled: EC2 has no free address left in the subnet, the node's agent none in its
	// pool, and every address it holds for pods is a running pod's.
	err = d.waitFor("the node's addresses all in use by pods", 2*time.Minute, func() (bool, string) {
		st, err := d.status()
		if err != nil {
			return false, err.Error()
		}
		ni, err := lab.FindNode(st, n.Name)
		if err != nil {
			return false, err.Error()
		}
		if pods, err = d.pods("default", "app=dry"); err != nil {
			return false, err.Error()
		}
		withIP := 0
		for _, p := range pods {
			if p.Status.PodIP != "" && p.Status.Phase == "Running" {
				withIP++
			}
		}
		return len(pods) == replicas && subnetFree(st, Small) == 0 && ni.Agent.Free == 0 && withIP == ni.Agent.Assigned,
			fmt.Sprintf("subnet free %d, agent free %d, assigned %d, pods with an address %d", subnetFree(st, Small), ni.Agent.Free, ni.Agent.Assigned, withIP)
	})
	if err == nil {
		err = d.waitFor("a pod left without an address, its events saying why", 3*time.Minute, func() (bool, string) {
			var err error
			if pods, err = d.pods("default", "app=dry"); err != nil {
				return false, err.Error()
			}
			if len(pods) != replicas {
				return false, fmt.Sprintf("%d dry pods", len(pods))
			}
			waiting := 0
			for _, p := range pods {
				if p.Status.PodIP != "" {
					continue
				}
				waiting++
				out, err := d.kubectlQuiet("describe", "pod", p.Metadata.Name)
				if err != nil {
					return false, err.Error()
				}
				if ev := eventsOf(out); exhaustedRE.MatchString(ev) {
					stuck, events = p, ev
					return true, ""
				}
			}
			return false, fmt.Sprintf("%d of %d pods without an address, no event naming the full subnet yet", waiting, len(pods))
		})
	}
	if _, kerr := d.kubectl(0, "get", "pods", "-o", "wide", "-l", "app=dry"); kerr != nil && err == nil {
		err = kerr
	}
	if err != nil {
		return "", err
	}
	fmt.Fprintf(d.w, "   $ kubectl describe pod %s   (its status and events)\n", stuck.Metadata.Name)
	fmt.Fprint(d.w, indent("Status:  "+stuck.Status.Phase+"\n"+trim(events, 12)))
	st, err := d.status()
	if err != nil {
		return "", err
	}
	free := subnetFree(st, Small)
	got, waiting := 0, 0
	var addrs []k8sPod
	for _, p := range pods {
		if p.Status.PodIP != "" {
			got++
			addrs = append(addrs, p)
		} else {
			waiting++
		}
	}
	if err := checkAddrs(st, addrs, Small, map[netip.Addr]string{}); err != nil {
		return "", err
	}
	if free != 0 {
		return "", fmt.Errorf("EC2 still shows %d free addresses in %s", free, Small)
	}
	if got == 0 {
		return "", fmt.Errorf("no pod got an address of %s", Small)
	}
	if stuck.Status.Phase != "Pending" || stuck.Status.PodIP != "" {
		return "", fmt.Errorf("pod %s is %s without an address, want Pending (ContainerCreating)", stuck.Metadata.Name, stuck.Status.Phase)
	}
	reasons := eventReasons(events)
	nodeEv, _ := d.kubectlQuiet("get", "events", "--field-selector", "involvedObject.kind=Node,reason=VPCSubnetExhausted", "-o", "name")
	nodeNote := "no VPCSubnetExhausted event on the Node"
	if strings.TrimSpace(nodeEv) != "" {
		nodeNote = "VPCSubnetExhausted on the Node"
	}
	return fmt.Sprintf("%s in %s: %d pods got addresses of %s, %d stay Pending (ContainerCreating), subnet free 0 in EC2; %s's events: %s; %s",
		short(n.Name), Small, got, Small, waiting, stuck.Metadata.Name, strings.Join(reasons, ", "), nodeNote), nil
}

// subnetFree is EC2's count of free addresses in the subnet, -1 if the lab has no such subnet.
func subnetFree(st lab.Status, cidr netip.Prefix) int {
	for _, s := range st.Subnets {
		if s.CIDR == cidr {
			return s.Free
		}
	}
	return -1
}

// eventsOf returns the Events section of `kubectl describe` output.
func eventsOf(describe string) string {
	_, ev, ok := strings.Cut(describe, "\nEvents:")
	if !ok {
		return ""
	}
	return "Events:" + ev
}

// eventReasons lists the distinct reasons of the Warning events in an Events section.
func eventReasons(events string) []string {
	seen := map[string]bool{}
	var out []string
	for _, line := range strings.Split(events, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "Warning" && !seen[f[1]] {
			seen[f[1]] = true
			out = append(out, f[1])
		}
	}
	return out
}

func (d *demo) teardown() (string, error) {
	d.say("lab down: nodes drained and stopped, control plane stopped, kubelet's sysctls restored")
	if err := lab.Down(d.ctx, d.o.Name, d.o.Progress); err != nil {
		return "", err
	}
	left, err := lab.Leftovers(d.o.Name)
	if err != nil {
		return "", err
	}
	for i := 1; i <= len(d.nodes)+1; i++ {
		if g := k8s.NodeCgroup(d.o.Name, i); k8s.CgroupExists(g) {
			left = append(left, "cgroup "+g)
		}
	}
	left = append(left, markedProcesses(lab.PathsFor(d.o.Name).Dir)...)
	if len(left) > 0 {
		return "", fmt.Errorf("left behind: %s", strings.Join(left, ", "))
	}
	return "no namespace, process, cgroup or file of the lab left", nil
}

// markedProcesses lists the processes the Kubernetes runtime started for the lab (they carry
// k8s.EnvMarker with a path under the lab's directory) that still run.
func markedProcesses(labDir string) []string {
	procs, _ := filepath.Glob("/proc/[0-9]*/environ")
	var out []string
	for _, f := range procs {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if strings.Contains(string(b), k8s.EnvMarker+"="+labDir+"/") {
			out = append(out, "process "+filepath.Base(filepath.Dir(f)))
		}
	}
	return out
}
