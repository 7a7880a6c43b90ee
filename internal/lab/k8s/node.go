package k8s

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/vpcnet/vpcnet/internal/lab"
	"github.com/vpcnet/vpcnet/internal/lab/k8s/cache"
)

// NodeBinds are the host paths each node keeps for itself, by the bind source's name in the
// node's directory: containerd's and kubelet's state, the CNI directories, the agent's paths,
// and the log directories kubelet hard-codes.
var NodeBinds = []struct{ Name, Target string }{
	{"cni-bin", "/opt/cni/bin"},
	{"var-lib-cni", "/var/lib/cni"},
	{"run-containerd", "/run/containerd"},
	{"var-lib-containerd", "/var/lib/containerd"},
	{"var-lib-kubelet", "/var/lib/kubelet"},
	{"log-pods", "/var/log/pods"},
	{"log-containers", "/var/log/containers"},
	{"run-vpcnet", "/run/vpcnet"},
	{"var-lib-vpcnet", "/var/lib/vpcnet"},
}

// NodeAdded joins a node: its certificate and kubeconfig, containerd's and kubelet's
// configuration, then `vpcnet lab k8s node-run` in the node's namespace; it returns once the
// Node object is Ready.
func (runtime) NodeAdded(ctx context.Context, c *lab.Client, n lab.NodeInfo, progress func(string)) error {
	cfg, err := lab.ReadConfig(c.Paths)
	if err != nil {
		return err
	}
	p := PathsOf(c.Paths)
	bc := cache.Open("", cache.Default)
	if err := bc.Check(); err != nil {
		return err
	}
	images, err := Images(bc, func(string) {})
	if err != nil {
		return err
	}
	dir := p.Node(n.Index)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	pki, err := loadCA(p.PKI())
	if err != nil {
		return fmt.Errorf("node %s: the cluster's CA: %w", n.Name, err)
	}
	crt, key, err := pki.issue("node-"+n.Name, "system:node:"+n.Name, []string{"system:nodes"}, nil, nil)
	if err != nil {
		return err
	}
	advertise := cfg.Subnets[0].Addr().Next()
	kubeconfig := filepath.Join(dir, "kubelet.kubeconfig")
	if err := writeKubeconfig(kubeconfig, fmt.Sprintf("https://%s:%d", advertise, APIPort), pki.CertPath(), crt, key, "system:node:"+n.Name); err != nil {
		return err
	}
	spec := NodeSpec{Name: n.Name, Cgroup: NodeCgroup(cfg.Name, n.Index), Ctr: bc.Bin("ctr"),
		Socket: "/run/containerd/containerd.sock", Images: images}
	// The agent's CNI config directory is containerd's conf_dir.
	spec.Binds = append(spec.Binds, Bind{Source: c.Paths.Node(n.Index).CNIConfDir(), Target: "/etc/cni/net.d"})
	for _, b := range NodeBinds {
		spec.Binds = append(spec.Binds, Bind{Source: filepath.Join(dir, b.Name), Target: b.Target})
	}
	// The lab's own directory stays visible at its path even under a bind on /run/vpcnet: the
	// agent's socket, named in its CNI config, lives there.
	spec.Binds = append(spec.Binds, Bind{Source: c.Paths.Dir, Target: c.Paths.Dir})
	if err := os.MkdirAll(filepath.Join(dir, "cni-bin"), 0o755); err != nil {
		return err
	}
	if cfg.DaemonSetAgent() {
		daemonSetNode(c, p, n, &spec) // the DaemonSet's init container installs vpcnet-cni and portmap
	} else {
		if err := copyFile(cfg.CNIBin, filepath.Join(dir, "cni-bin", "vpcnet-cni"), 0o755); err != nil {
			return fmt.Errorf("install vpcnet-cni on node %s: %w", n.Name, err)
		}
		// The agent's conflist chains portmap (VPCNET_CNI_PORTMAP, lab.AgentEnv) for hostPort.
		if err := copyFile(bc.Bin("portmap"), filepath.Join(dir, "cni-bin", "portmap"), 0o755); err != nil {
			return fmt.Errorf("install portmap on node %s: %w", n.Name, err)
		}
	}
	ctrdConf := filepath.Join(dir, "containerd.toml")
	if err := os.WriteFile(ctrdConf, []byte(containerdConfig(bc)), 0o644); err != nil {
		return err
	}
	mp, err := maxPods(n.InstanceType, cfg.Agent, hostNetworkPods(cfg))
	if err != nil {
		return err
	}
	kubeletConf := filepath.Join(dir, "kubelet.json")
	kc, err := kubeletConfig(spec.Cgroup, mp, pki.CertPath())
	if err != nil {
		return err
	}
	if err := os.WriteFile(kubeletConf, kc, 0o644); err != nil {
		return err
	}
	env := []string{"PATH=" + filepath.Dir(bc.Bin("containerd")) + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=/root", marker(p.labDir(), fmt.Sprintf("node-%d", n.Index))}
	spec.Containerd = Proc{Args: []string{bc.Bin("containerd"), "--config", ctrdConf}, Env: env, Log: filepath.Join(dir, "containerd.log")}
	spec.Kubelet = Proc{Args: []string{bc.Bin("kubelet"), "--config=" + kubeletConf, "--kubeconfig=" + kubeconfig,
		"--hostname-override=" + n.Name, "--node-ip=" + n.PrimaryIP.String(), "--v=1"},
		Env: env, Log: filepath.Join(dir, "kubelet.log")}
	b, _ := json.MarshalIndent(spec, "", "  ")
	specPath := filepath.Join(dir, "node.json")
	if err := os.WriteFile(specPath, b, 0o600); err != nil {
		return err
	}
	progress(fmt.Sprintf("node %s: starting containerd %s and kubelet %s (maxPods %d) in %s with its own mount namespace",
		n.Name, bc.Versions.Containerd, bc.Versions.Kubernetes, mp, n.NS))
	start := time.Now()
	if err := startIn(n.NS, p, fmt.Sprintf("node-%d", n.Index), true, Self(), "lab", "k8s", "node-run", "--spec", specPath); err != nil {
		return err
	}
	api, err := newAPI(p, lab.RouterNS(cfg.Name), fmt.Sprintf("https://127.0.0.1:%d", APIPort))
	if err != nil {
		return err
	}
	if cfg.DaemonSetAgent() && cfg.DeferAgentInstall {
		applied, err := agentApplied(ctx, api)
		if err != nil {
			return err
		}
		if !applied {
			// No CNI yet: the node registers NotReady, and InstallAgent finishes its join.
			return waitNodeRegistered(ctx, api, p, n, spec.Kubelet.Log, progress)
		}
	}
	deadline := time.Now().Add(120 * time.Second)
	last := ""
	for {
		ok, msg, err := api.nodeReady(ctx, n.Name)
		if ok {
			progress(fmt.Sprintf("node %s Ready %s after kubelet start", n.Name, time.Since(start).Round(10*time.Millisecond)))
			if err := startKubeProxy(p, cfg.Name, n, advertise); err != nil {
				return err
			}
			if cfg.DaemonSetAgent() {
				return waitDaemonSetAgent(ctx, c, n, progress)
			}
			return nil
		}
		if err != nil {
			msg = err.Error()
		}
		if msg != last {
			last = msg
		}
		if nodeRuntimeGone(p, n.Index) {
			return fmt.Errorf("node %s: its runtime process exited (see %s, %s, %s)", n.Name, p.Log(fmt.Sprintf("node-%d", n.Index)), spec.Containerd.Log, spec.Kubelet.Log)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node %s not Ready after 120s: %s (see %s)", n.Name, last, spec.Kubelet.Log)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// waitNodeRegistered waits until kubelet has registered the Node object (Ready or not).
func waitNodeRegistered(ctx context.Context, api *apiClient, p Paths, n lab.NodeInfo, kubeletLog string, progress func(string)) error {
	start := time.Now()
	for {
		_, msg, err := api.nodeReady(ctx, n.Name)
		if err == nil {
			progress(fmt.Sprintf("node %s registered (%s); no CNI installed yet: %s", n.Name, time.Since(start).Round(10*time.Millisecond), msg))
			return nil
		}
		if nodeRuntimeGone(p, n.Index) {
			return fmt.Errorf("node %s: its runtime process exited (see %s)", n.Name, kubeletLog)
		}
		if time.Since(start) > 120*time.Second {
			return fmt.Errorf("node %s not registered after 120s: %v (see %s)", n.Name, err, kubeletLog)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// NodeRemoving drains the node through the API (kubectl drain: pods deleted, so the runtime
// runs CNI DEL for each), deletes the Node object, and stops the node's runtime.
func (runtime) NodeRemoving(ctx context.Context, c *lab.Client, n lab.NodeInfo, progress func(string)) error {
	cfg, err := lab.ReadConfig(c.Paths)
	if err != nil {
		return err
	}
	p := PathsOf(c.Paths)
	progress(fmt.Sprintf("draining %s", n.Name))
	if out, err := Kubectl(ctx, cfg.Name, "drain", n.Name, "--ignore-daemonsets", "--delete-emptydir-data", "--force", "--timeout=120s").CombinedOutput(); err != nil {
		return fmt.Errorf("drain %s: %v: %s", n.Name, err, strings.TrimSpace(string(out)))
	}
	if out, err := Kubectl(ctx, cfg.Name, "delete", "node", n.Name, "--wait=true").CombinedOutput(); err != nil {
		return fmt.Errorf("delete node %s: %v: %s", n.Name, err, strings.TrimSpace(string(out)))
	}
	return stopNode(p, cfg.Name, n.Index, progress)
}

// Kubectl returns the built kubectl with the lab's admin kubeconfig (through the API proxy on
// the machine's loopback) and args.
func Kubectl(ctx context.Context, labName string, args ...string) *exec.Cmd {
	p := PathsOf(lab.PathsFor(labName))
	cmd := exec.CommandContext(ctx, cache.Open("", cache.Default).Bin("kubectl"), append([]string{"--kubeconfig=" + p.Kubeconfig()}, args...)...)
	return cmd
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

// containerdConfig is containerd 2.x's config (version 3) for a lab node. Paths are the
// defaults: the node's mount namespace makes them the node's own.
func containerdConfig(bc *cache.Cache) string {
	return `version = 3
root = "/var/lib/containerd"
state = "/run/containerd"
imports = []

[grpc]
  address = "/run/containerd/containerd.sock"

[ttrpc]
  address = "/run/containerd/containerd.sock.ttrpc"

[plugins."io.containerd.nri.v1.nri"]
  disable = true

[plugins."io.containerd.cri.v1.runtime"]
  enable_selinux = false
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        BinaryName = "` + bc.Bin("runc-noseccomp") + `"
        Root = "/run/containerd/runc"
        SystemdCgroup = false
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["/opt/cni/bin"]
    conf_dir = "/etc/cni/net.d"
    max_conf_num = 1
    use_internal_loopback = true

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "` + PauseImage + `"

[plugins."io.containerd.grpc.v1.cri"]
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
`
}

// kubeletConfig is the node's KubeletConfiguration (JSON, which kubelet reads as YAML).
func kubeletConfig(cgroupRoot string, maxPods int, caPath string) ([]byte, error) {
	cfg := map[string]any{
		"apiVersion": "kubelet.config.k8s.io/v1beta1",
		"kind":       "KubeletConfiguration",
		"authentication": map[string]any{
			"anonymous": map[string]any{"enabled": false},
			"webhook":   map[string]any{"enabled": true},
			"x509":      map[string]any{"clientCAFile": caPath},
		},
		"authorization":               map[string]any{"mode": "Webhook"},
		"cgroupDriver":                "cgroupfs",
		"cgroupRoot":                  "/" + cgroupRoot,
		"failCgroupV1":                false,
		"failSwapOn":                  false,
		"maxPods":                     maxPods,
		"containerRuntimeEndpoint":    "unix:///run/containerd/containerd.sock",
		"readOnlyPort":                0,
		"healthzBindAddress":          "127.0.0.1",
		"clusterDomain":               "cluster.local",
		"clusterDNS":                  []string{DNSServiceIP.String()},
		"serializeImagePulls":         false,
		"resolvConf":                  "/etc/resolv.conf",
		"evictionHard":                map[string]string{"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%", "nodefs.inodesFree": "1%"},
		"imageGCHighThresholdPercent": 100,
		"imageGCLowThresholdPercent":  99,
	}
	return json.MarshalIndent(cfg, "", "  ")
}

// nodeRuntimeGone reports whether node index's runtime process (lab k8s node-run) has exited:
// no process carries its marker in two scans of /proc half a second apart. One scan can miss a
// live process on a loaded node (an environ read that fails while the process is busy in the
// kernel), and a false "exited" fails the whole lab start.
func nodeRuntimeGone(p Paths, index int) bool {
	role := fmt.Sprintf("node-%d", index)
	if len(markedPIDs(p.labDir(), role)) > 0 {
		return false
	}
	time.Sleep(500 * time.Millisecond)
	return len(markedPIDs(p.labDir(), role)) == 0
}
