package k8s

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vpcnet/vpcnet/internal/catalog"
	"github.com/vpcnet/vpcnet/internal/ipam"
	"github.com/vpcnet/vpcnet/internal/lab"
	"github.com/vpcnet/vpcnet/internal/lab/k8s/cache"
	"github.com/vpcnet/vpcnet/internal/plan"
	"github.com/vpcnet/vpcnet/internal/probe"
)

// Name is the runtime's name in lab.Config.Runtime and `lab up --runtime`.
const Name = "kubernetes"

func init() { lab.RegisterRuntime(Name, runtime{}) }

// Where the control plane listens, all inside the lab's router namespace.
const (
	APIPort = 6443
	// ServiceCIDR is the cluster's Service range: EKS's choice for VPCs in 10.0.0.0/8.
	ServiceCIDR = "172.20.0.0/16"
	etcdClient  = "127.0.0.1:2379"
	etcdPeer    = "127.0.0.1:2380"
)

// Paths lays out the runtime's files in a lab's directory: <lab>/k8s/.
type Paths struct{ Dir string }

// PathsOf returns the runtime's layout for the lab's state directory.
func PathsOf(lab lab.Paths) Paths { return Paths{Dir: filepath.Join(lab.Dir, "k8s")} }

func (p Paths) labDir() string { return filepath.Dir(p.Dir) }

// PKI holds the CA, certificates and keys.
func (p Paths) PKI() string { return filepath.Join(p.Dir, "pki") }

// Kubeconfig is the admin kubeconfig for clients in the machine's own namespace: it points at
// the API proxy on 127.0.0.1 (see RunAPIProxy).
func (p Paths) Kubeconfig() string { return filepath.Join(p.Dir, "admin.kubeconfig") }

// RouterKubeconfig is the admin kubeconfig for clients in the router namespace (127.0.0.1:6443).
func (p Paths) RouterKubeconfig() string { return filepath.Join(p.Dir, "admin-router.kubeconfig") }

// Log is a control plane component's log file.
func (p Paths) Log(component string) string { return filepath.Join(p.Dir, component+".log") }

// ProxyPort holds the port the API proxy listens on.
func (p Paths) ProxyPort() string { return filepath.Join(p.Dir, "apiproxy.port") }

// Node is a node's directory: its configs, logs, and the sources of its bind mounts.
func (p Paths) Node(index int) string { return filepath.Join(p.Dir, "nodes", strconv.Itoa(index)) }

// NodeCgroup names a node's cgroup (kubelet's cgroupRoot) in every hierarchy.
func NodeCgroup(labName string, index int) string {
	return fmt.Sprintf("vpcnet-%s-n%d", labName, index)
}

// runtime implements lab.Runtime.
type runtime struct{}

// Self is the executable that runs the hidden `lab k8s node-run` and `apiproxy` commands.
var Self = func() string {
	exe, err := os.Executable()
	if err != nil {
		return "/proc/self/exe"
	}
	return exe
}

// Start builds (or finds) the components, records the kubelet sysctls, makes the PKI, and
// starts etcd, kube-apiserver, the API proxy, kube-controller-manager and kube-scheduler.
func (runtime) Start(ctx context.Context, c *lab.Client, cfg lab.Config, progress func(string)) error {
	bc := cache.Open("", cache.Default)
	if err := bc.Build(ctx, cache.BuildOptions{Progress: progress}); err != nil {
		return err
	}
	if _, err := Images(bc, progress); err != nil {
		return err
	}
	p := PathsOf(c.Paths)
	if err := os.MkdirAll(filepath.Join(p.Dir, "nodes"), 0o700); err != nil {
		return err
	}
	if err := holdSysctls(p.labDir()); err != nil {
		return fmt.Errorf("record the kubelet sysctls: %w", err)
	}
	advertise := cfg.Subnets[0].Addr().Next()
	pki, err := newCA(p.PKI())
	if err != nil {
		return err
	}
	svcIP := netip.MustParsePrefix(ServiceCIDR).Addr().Next()
	srvCrt, srvKey, err := pki.issue("apiserver", "kube-apiserver", nil,
		[]netip.Addr{netip.MustParseAddr("127.0.0.1"), advertise, svcIP},
		[]string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"})
	if err != nil {
		return err
	}
	kcCrt, kcKey, err := pki.issue("apiserver-kubelet-client", "kube-apiserver-kubelet-client", []string{"system:masters"}, nil, nil)
	if err != nil {
		return err
	}
	saPub, saKey, err := serviceAccountKey(p.PKI())
	if err != nil {
		return err
	}
	local := fmt.Sprintf("https://127.0.0.1:%d", APIPort)
	clients := []struct{ name, cn, org, path string }{
		{"admin", "kubernetes-admin", "system:masters", p.RouterKubeconfig()},
		{"controller-manager", "system:kube-controller-manager", "", filepath.Join(p.Dir, "controller-manager.kubeconfig")},
		{"scheduler", "system:kube-scheduler", "", filepath.Join(p.Dir, "scheduler.kubeconfig")},
	}
	for _, cl := range clients {
		var orgs []string
		if cl.org != "" {
			orgs = []string{cl.org}
		}
		crt, key, err := pki.issue(cl.name, cl.cn, orgs, nil, nil)
		if err != nil {
			return err
		}
		if err := writeKubeconfig(cl.path, local, pki.CertPath(), crt, key, cl.cn); err != nil {
			return err
		}
	}
	router := lab.RouterNS(cfg.Name)
	if err := RouterSNAT(cfg.Name, cfg.VPCCIDR, advertise); err != nil {
		return err
	}
	start := func(role string, args ...string) error {
		return startIn(router, p, role, false, args...)
	}
	progress(fmt.Sprintf("starting etcd %s in %s (client %s)", bc.Versions.Etcd, router, etcdClient))
	if err := start("etcd", bc.Bin("etcd"), "--name=lab", "--data-dir="+filepath.Join(p.Dir, "etcd"),
		"--listen-client-urls=http://"+etcdClient, "--advertise-client-urls=http://"+etcdClient,
		"--listen-peer-urls=http://"+etcdPeer, "--initial-advertise-peer-urls=http://"+etcdPeer,
		"--initial-cluster=lab=http://"+etcdPeer, "--unsafe-no-fsync=true", "--log-level=warn"); err != nil {
		return err
	}
	routerHTTP := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: probe.Dialer(router)}}
	if err := waitHTTP(ctx, routerHTTP, "http://"+etcdClient+"/health", 60*time.Second); err != nil {
		return fmt.Errorf("etcd: %w (see %s)", err, p.Log("etcd"))
	}
	progress(fmt.Sprintf("starting kube-apiserver %s: listening on 0.0.0.0:%d in %s, advertised at %s (the first subnet's router address)",
		bc.Versions.Kubernetes, APIPort, router, advertise))
	if err := start("kube-apiserver", bc.Bin("kube-apiserver"),
		"--etcd-servers=http://"+etcdClient, "--bind-address=0.0.0.0", fmt.Sprintf("--secure-port=%d", APIPort),
		"--advertise-address="+advertise.String(), "--service-cluster-ip-range="+ServiceCIDR,
		"--tls-cert-file="+srvCrt, "--tls-private-key-file="+srvKey, "--client-ca-file="+pki.CertPath(),
		"--kubelet-client-certificate="+kcCrt, "--kubelet-client-key="+kcKey,
		"--kubelet-preferred-address-types=InternalIP",
		"--service-account-key-file="+saPub, "--service-account-signing-key-file="+saKey,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
		"--allow-privileged=true", "--cert-dir="+p.PKI(), "--profiling=false", "--v=1"); err != nil {
		return err
	}
	api, err := newAPI(p, router, local)
	if err != nil {
		return err
	}
	if err := waitHTTP(ctx, api.hc, local+"/readyz", 120*time.Second); err != nil {
		return fmt.Errorf("kube-apiserver: %w (see %s)", err, p.Log("kube-apiserver"))
	}
	progress("kube-apiserver ready; starting the API proxy, kube-controller-manager and kube-scheduler")
	if err := startProxy(ctx, p, router, pki, local); err != nil {
		return err
	}
	if err := start("kube-controller-manager", bc.Bin("kube-controller-manager"),
		"--kubeconfig="+filepath.Join(p.Dir, "controller-manager.kubeconfig"), "--controllers=*",
		"--use-service-account-credentials=true", "--service-account-private-key-file="+saKey,
		"--root-ca-file="+pki.CertPath(), "--cluster-signing-cert-file="+pki.CertPath(),
		"--cluster-signing-key-file="+filepath.Join(p.PKI(), "ca.key"),
		"--leader-elect=false", "--bind-address=127.0.0.1", "--v=1"); err != nil {
		return err
	}
	if err := start("kube-scheduler", bc.Bin("kube-scheduler"),
		"--kubeconfig="+filepath.Join(p.Dir, "scheduler.kubeconfig"), "--leader-elect=false",
		"--bind-address=127.0.0.1", "--v=1"); err != nil {
		return err
	}
	// A pod can be created only once its namespace's ServiceAccount exists, and the
	// controller-manager makes "default" a moment after it starts: the cluster is up then.
	if err := waitHTTP(ctx, api.hc, local+"/api/v1/namespaces/default/serviceaccounts/default", 120*time.Second); err != nil {
		return fmt.Errorf("kube-controller-manager made no default ServiceAccount: %w (see %s)", err, p.Log("kube-controller-manager"))
	}
	if cfg.DaemonSetAgent() {
		if err := startDaemonSet(ctx, cfg, p, progress); err != nil {
			return err
		}
	}
	progress(fmt.Sprintf("control plane up; admin kubeconfig %s (`vpcnet lab kubectl --name %s -- get nodes`)", p.Kubeconfig(), cfg.Name))
	return nil
}

// startIn starts a detached process with the runtime's marker in a namespace, logging to its
// log file; newMount gives it a mount namespace of its own.
func startIn(ns string, p Paths, role string, newMount bool, args ...string) error {
	logf, err := os.OpenFile(p.Log(role), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = []string{"PATH=" + filepath.Dir(args[0]) + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=/root", marker(p.labDir(), role)}
	cmd.Dir = p.Dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	if newMount {
		cmd.SysProcAttr.Cloneflags = syscall.CLONE_NEWNS
	}
	if err := lab.StartIn(ns, cmd); err != nil {
		return fmt.Errorf("start %s: %w", role, err)
	}
	go func() { _ = cmd.Wait() }()
	return nil
}

// waitHTTP polls url until it answers 200.
func waitHTTP(ctx context.Context, hc *http.Client, url string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	last := ""
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := hc.Do(req)
		if err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s: %s", url, limit, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Down stops the lab's kubelets, containerds, pods and control plane, removes the nodes'
// cgroups, and gives the kubelet sysctls back when no other lab cluster holds them.
func (runtime) Down(ctx context.Context, name string, progress func(string)) error {
	lp := lab.PathsFor(name)
	p := PathsOf(lp)
	var errs []error
	nodes, _ := filepath.Glob(filepath.Join(p.Dir, "nodes", "*"))
	for _, d := range nodes {
		idx, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		errs = append(errs, stopNode(p, name, idx, progress))
	}
	// Cgroups of nodes whose directory is gone (a crash between the two).
	for _, g := range nodeCgroups(name) {
		progress("removing cgroup " + g)
		errs = append(errs, removeCgroup(g, 30*time.Second))
	}
	if pids := markedPIDs(lp.Dir, ""); len(pids) > 0 {
		progress(fmt.Sprintf("stopping the control plane (%d processes)", len(pids)))
		stopMarked(lp.Dir, "", 10*time.Second)
	}
	if _, err := os.Stat(SysctlRecord); err == nil {
		errs = append(errs, releaseSysctls(lp.Dir, func(d string) bool {
			_, err := os.Stat(filepath.Join(d, "k8s"))
			return err == nil
		}))
	}
	return errors.Join(errs...)
}

// nodeCgroups lists the cgroups named for the lab's nodes in the pids (or any) hierarchy.
func nodeCgroups(labName string) []string {
	mounts, _ := cgroupMounts()
	seen := map[string]bool{}
	var out []string
	for _, m := range mounts {
		ents, _ := os.ReadDir(m)
		for _, e := range ents {
			n := e.Name()
			rest, ok := strings.CutPrefix(n, "vpcnet-"+labName+"-n")
			if _, err := strconv.Atoi(rest); ok && err == nil && e.IsDir() && !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	return out
}

// stopNode stops a node's runtime process (kubelet, then containerd), then every process left
// in the node's cgroups (shims, pods), and removes the cgroups.
func stopNode(p Paths, labName string, idx int, progress func(string)) error {
	role := fmt.Sprintf("node-%d", idx)
	stopMarked(p.labDir(), kubeProxyRole(idx), 10*time.Second)
	if pids := markedPIDs(p.labDir(), role); len(pids) > 0 {
		progress(fmt.Sprintf("stopping kubelet and containerd of node %d", idx))
		stopMarked(p.labDir(), role, 20*time.Second)
	}
	g := NodeCgroup(labName, idx)
	if CgroupExists(g) {
		progress(fmt.Sprintf("removing node %d's pods and cgroup %s", idx, g))
		return removeCgroup(g, 30*time.Second)
	}
	return nil
}

// maxPods is kubelet's maxPods for a lab node, as `vpcnet plan max-pods --host-network-pods N`
// computes it (plan.KubeletMaxPods): what the agent's own capacity function gives pods on a
// fresh node of the type, with the lab's ENABLE_PREFIX_DELEGATION, MAX_ENI and MAX_PODS, plus
// the host-network pods the lab node really runs (hostNetworkPods). So the scheduler stops
// placing pods on a node exactly when the agent has no address left for them. EKS's formula
// adds 2 (the agent and kube-proxy as pods); deploy/ and the agent's published max pods keep
// that for real clusters.
func maxPods(instanceType string, agent map[string]string, hostNetworkPods int) (int, error) {
	t, err := catalog.Builtin().Lookup(instanceType)
	if err != nil {
		return 0, err
	}
	st := ipam.Settings{PrefixDelegation: agent["ENABLE_PREFIX_DELEGATION"] == "true"}
	for k, dst := range map[string]*int{"MAX_ENI": &st.MaxENI, "MAX_PODS": &st.MaxPods} {
		if v, ok := agent[k]; ok {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return 0, fmt.Errorf("agent setting %s=%q: want a whole number", k, v)
			}
			*dst = n
		}
	}
	return plan.KubeletMaxPods(t, st, false, hostNetworkPods), nil
}

// hostNetworkPods is how many host-network pods a lab node runs: kube-proxy is a process of the
// node, not a pod; the agent is a pod (deploy/'s DaemonSet, vpcnet-node) only with
// `--agent daemonset`, else the lab's supervised process.
func hostNetworkPods(cfg lab.Config) int {
	if cfg.DaemonSetAgent() {
		return 1
	}
	return 0
}

// apiClient talks to the API server as the admin, from the machine's namespace through the
// router namespace.
type apiClient struct {
	hc   *http.Client
	base string
}

func newAPI(p Paths, router, base string) (*apiClient, error) {
	cert, err := tls.LoadX509KeyPair(filepath.Join(p.PKI(), "admin.crt"), filepath.Join(p.PKI(), "admin.key"))
	if err != nil {
		return nil, err
	}
	pool, err := loadPool(filepath.Join(p.PKI(), "ca.crt"))
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{DialContext: probe.Dialer(router),
		TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, ServerName: "kubernetes"}}
	return &apiClient{hc: &http.Client{Timeout: 10 * time.Second, Transport: tr}, base: base}, nil
}

// get decodes the JSON answer of a GET.
func (a *apiClient) get(ctx context.Context, path string, out any) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, a.base+path, nil)
	resp, err := a.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, strings.TrimSpace(string(b)))
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// nodeReady reports whether the Node object says Ready=True, with the condition's message.
func (a *apiClient) nodeReady(ctx context.Context, name string) (bool, string, error) {
	var n struct {
		Status struct {
			Conditions []struct{ Type, Status, Reason, Message string }
		}
	}
	if err := a.get(ctx, "/api/v1/nodes/"+name, &n); err != nil {
		return false, "", err
	}
	for _, c := range n.Status.Conditions {
		if c.Type == "Ready" {
			return c.Status == "True", c.Reason + ": " + c.Message, nil
		}
	}
	return false, "no Ready condition yet", nil
}
