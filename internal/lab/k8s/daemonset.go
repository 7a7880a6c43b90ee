package k8s

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/vpcnet/vpcnet/deploy"
	"github.com/vpcnet/vpcnet/internal/image"
	"github.com/vpcnet/vpcnet/internal/lab"
	"github.com/vpcnet/vpcnet/internal/lab/fabric"
	"github.com/vpcnet/vpcnet/internal/lab/k8s/cache"
)

// The lab with `--agent daemonset`: no vpcnetd of the lab's own; deploy/vpcnet.yaml, applied
// unchanged under a kustomize overlay that adds only the lab's endpoints and settings, runs the
// agent on every node as on any cluster. The node's mount namespace binds the DaemonSet's host
// paths /run/vpcnet and /var/lib/vpcnet to the lab node's directory and state, so the agent's
// socket is where the lab looks for a node's agent (lab.NodePaths.AgentSocket) and its
// allocations are where a supervised agent keeps them.

// AgentImagePath is the vpcnet node image tarball the lab packs and imports into every node.
func (p Paths) AgentImagePath() string { return filepath.Join(p.Dir, "vpcnet-image.tar") }

// OverlayDir holds the kustomization the lab applies: deploy/vpcnet.yaml and the lab's patch.
func (p Paths) OverlayDir() string { return filepath.Join(p.Dir, "deploy") }

// ContainerdSocket is a node's containerd socket as the machine's namespace sees it.
func (p Paths) ContainerdSocket(index int) string {
	return filepath.Join(p.Node(index), "run-containerd", "containerd.sock")
}

// PackAgentImage writes the node image (static vpcnetd, vpcnet-cni and portmap at /vpcnetd,
// /vpcnet-cni and /portmap, as `vpcnet image build` packs it) to path with tag. portmap is the
// build cache's (containernetworking/plugins' released module, built with CGO_ENABLED=0);
// deploy/'s init container installs it for hostPort. A dynamically linked vpcnetd or
// vpcnet-cni is rebuilt statically (CGO_ENABLED=0) from the module source when it is at hand.
func PackAgentImage(cfg lab.Config, portmap, path, tag string) error {
	if !isStatic(portmap) {
		return fmt.Errorf("the node image needs a statically linked portmap plugin: %s is not one (vpcnet lab k8s build makes it)", portmap)
	}
	agent, cni := cfg.AgentBin, cfg.CNIBin
	if !isStatic(agent) || !isStatic(cni) {
		dir := filepath.Join(filepath.Dir(path), "bin")
		var err error
		if agent, cni, err = buildStatic(dir); err != nil {
			return fmt.Errorf("the node image needs statically linked vpcnetd and vpcnet-cni (%s is not): %w", cfg.AgentBin, err)
		}
	}
	img, err := image.Build([]image.File{
		{Path: "/vpcnetd", Source: agent, Mode: 0o755},
		{Path: "/vpcnet-cni", Source: cni, Mode: 0o755},
		{Path: "/portmap", Source: portmap, Mode: 0o755},
	}, image.Config{Entrypoint: []string{"/vpcnetd"}})
	if err != nil {
		return err
	}
	return image.Write(path, img, tag)
}

// isStatic reports whether path is an ELF executable with no program interpreter.
func isStatic(path string) bool {
	f, err := elf.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false
		}
	}
	return true
}

// buildStatic builds vpcnetd and vpcnet-cni with CGO_ENABLED=0 from the vpcnet module above
// the working directory into dir.
func buildStatic(dir string) (string, string, error) {
	root, err := os.Getwd()
	if err != nil {
		return "", "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(root, "go.mod")); err == nil && bytes.HasPrefix(b, []byte("module github.com/vpcnet/vpcnet\n")) {
			break
		}
		parent := filepath.Dir(root)
		if parent == root {
			return "", "", errors.New("no vpcnet module source above the working directory to build them from: build them with `CGO_ENABLED=0 go build ./cmd/vpcnetd ./cmd/vpcnet-cni`")
		}
		root = parent
	}
	cmd := exec.Command("go", "build", "-trimpath", "-tags", "grpcnotrace", "-o", dir+"/", "./cmd/vpcnetd", "./cmd/vpcnet-cni")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("CGO_ENABLED=0 go build: %v\n%s", err, out)
	}
	return filepath.Join(dir, "vpcnetd"), filepath.Join(dir, "vpcnet-cni"), nil
}

// OverlayEnv is what the lab's overlay adds to the agent container's environment: the lab's
// EC2 and IMDS endpoints (credentials come from IMDS, the instance role, as on EC2), the API
// server's address (a node's kube-proxy starts only once the node is Ready, which needs this
// agent first, so the kubernetes Service's ClusterIP does not route yet), the lab's cluster name, pods kept from IMDS, and the settings given to `lab up`.
func OverlayEnv(cfg lab.Config) map[string]string {
	env := map[string]string{
		"AWS_EC2_ENDPOINT":                  "http://" + fabric.EC2Addr.String(),
		"AWS_ENDPOINT_URL_EC2":              "http://" + fabric.EC2Addr.String(),
		"AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://" + fabric.IMDSAddr.String(),
		"KUBERNETES_SERVICE_HOST":           cfg.Subnets[0].Addr().Next().String(),
		"KUBERNETES_SERVICE_PORT":           fmt.Sprint(APIPort),
		"VPCNET_CLUSTER_NAME":               cfg.Name,
		"VPCNET_BLOCK_POD_IMDS":             "true",
	}
	for k, v := range cfg.Agent {
		env[k] = v
	}
	return env
}

// WriteOverlay writes the kustomization: deploy/vpcnet.yaml as shipped plus a strategic-merge
// patch of the agent container's env (entries merge by name; the ConfigMap is untouched).
func WriteOverlay(dir string, cfg lab.Config) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	env := OverlayEnv(cfg)
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var list []map[string]string
	for _, k := range keys {
		list = append(list, map[string]string{"name": k, "value": env[k]})
	}
	patch := map[string]any{
		"apiVersion": "apps/v1", "kind": "DaemonSet",
		"metadata": map[string]any{"name": deploy.DaemonSet, "namespace": deploy.Namespace},
		"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
			"containers": []any{map[string]any{"name": deploy.AgentContainer, "env": list}}}}},
	}
	pb, err := json.MarshalIndent(patch, "", "  ")
	if err != nil {
		return err
	}
	kust := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - vpcnet.yaml\npatches:\n  - path: lab-env.json\n"
	for name, b := range map[string][]byte{"vpcnet.yaml": deploy.Manifest, "lab-env.json": pb, "kustomization.yaml": []byte(kust)} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// startDaemonSet packs the node image and applies deploy/ with the lab's overlay. It runs
// before the first node joins: each node then imports the image before its kubelet starts.
// With cfg.DeferAgentInstall it packs the image and writes the overlay but applies nothing:
// InstallAgent does that once the nodes have registered.
func startDaemonSet(ctx context.Context, cfg lab.Config, p Paths, progress func(string)) error {
	progress(fmt.Sprintf("packing the node image %s into %s", deploy.Image, p.AgentImagePath()))
	if err := PackAgentImage(cfg, cache.Open("", cache.Default).Bin("portmap"), p.AgentImagePath(), deploy.Image); err != nil {
		return err
	}
	if err := WriteOverlay(p.OverlayDir(), cfg); err != nil {
		return err
	}
	if cfg.DeferAgentInstall {
		progress(fmt.Sprintf("the DaemonSet is not applied yet: nodes join NotReady until `kubectl apply -k %s`", p.OverlayDir()))
		return nil
	}
	_, err := applyOverlay(ctx, cfg.Name, p, progress)
	return err
}

// applyOverlay runs `kubectl apply -k` on the lab's overlay and returns kubectl's output.
func applyOverlay(ctx context.Context, labName string, p Paths, progress func(string)) (string, error) {
	progress(fmt.Sprintf("kubectl apply -k %s (deploy/vpcnet.yaml + the lab's endpoints)", p.OverlayDir()))
	out, err := Kubectl(ctx, labName, "apply", "-k", p.OverlayDir()).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("kubectl apply -k %s: %v: %s", p.OverlayDir(), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// agentApplied reports whether deploy/'s DaemonSet exists in the cluster.
func agentApplied(ctx context.Context, a *apiClient) (bool, error) {
	var ds struct{ Metadata struct{ Name string } }
	err := a.get(ctx, "/apis/apps/v1/namespaces/"+deploy.Namespace+"/daemonsets/"+deploy.DaemonSet, &ds)
	if err != nil && strings.Contains(err.Error(), "404 Not Found") {
		return false, nil
	}
	return err == nil, err
}

// InstallAgent is the deferred install of a lab started with Config.DeferAgentInstall:
// `kubectl apply -k` of the overlay (deploy/vpcnet.yaml + the lab's endpoints), then, for
// every node that registered without an agent, the rest of its join: Node Ready (the agent
// wrote the CNI config), kube-proxy, the agent ready on its socket and /healthz. It returns
// kubectl's output. Errors: a lab that is not a DaemonSet lab, kubectl's own, or a node whose
// agent is not ready within 120 s.
func InstallAgent(ctx context.Context, c *lab.Client, progress func(string)) (string, error) {
	cfg, err := lab.ReadConfig(c.Paths)
	if err != nil {
		return "", err
	}
	if cfg.Runtime != Name || !cfg.DaemonSetAgent() {
		return "", fmt.Errorf("lab %s: the agent is installed by kubectl apply only with --runtime kubernetes --agent daemonset", cfg.Name)
	}
	p := PathsOf(c.Paths)
	out, err := applyOverlay(ctx, cfg.Name, p, progress)
	if err != nil {
		return "", err
	}
	st, err := c.Status(ctx)
	if err != nil {
		return out, err
	}
	api, err := newAPI(p, lab.RouterNS(cfg.Name), fmt.Sprintf("https://127.0.0.1:%d", APIPort))
	if err != nil {
		return out, err
	}
	for _, n := range st.Nodes {
		if err := waitNodeReady(ctx, api, p, n, 120*time.Second, progress); err != nil {
			return out, err
		}
		if err := startKubeProxy(p, cfg.Name, n, cfg.Subnets[0].Addr().Next()); err != nil {
			return out, err
		}
		if err := waitDaemonSetAgent(ctx, c, n, progress); err != nil {
			return out, err
		}
	}
	return out, nil
}

// waitNodeReady polls the Node object until it says Ready=True.
func waitNodeReady(ctx context.Context, api *apiClient, p Paths, n lab.NodeInfo, limit time.Duration, progress func(string)) error {
	start := time.Now()
	last := ""
	for {
		ok, msg, err := api.nodeReady(ctx, n.Name)
		if ok {
			progress(fmt.Sprintf("node %s Ready (%s)", n.Name, time.Since(start).Round(10*time.Millisecond)))
			return nil
		}
		if err != nil {
			msg = err.Error()
		}
		last = msg
		if time.Since(start) > limit {
			return fmt.Errorf("node %s not Ready after %s: %s (see %s)", n.Name, limit, last, filepath.Join(p.Node(n.Index), "kubelet.log"))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// daemonSetNode adapts a node's spec for the DaemonSet's agent: the vpcnet image joins the
// images containerd imports, and the agent's host paths are the lab node's own. The lab copies
// no plugin into the node's /opt/cni/bin: the init container installs vpcnet-cni and portmap
// from the image, as on any cluster.
func daemonSetNode(c *lab.Client, p Paths, n lab.NodeInfo, spec *NodeSpec) {
	spec.Images = append(spec.Images, p.AgentImagePath())
	np := c.Paths.Node(n.Index)
	for i, b := range spec.Binds {
		switch b.Target {
		case "/run/vpcnet":
			spec.Binds[i].Source = np.Dir
		case "/var/lib/vpcnet":
			spec.Binds[i].Source = np.AgentState()
		}
	}
}

// waitDaemonSetAgent waits until the DaemonSet's vpcnetd on the node is ready as the lab sees
// any node's agent: through its socket (ready, CNI config written) and its /healthz.
func waitDaemonSetAgent(ctx context.Context, c *lab.Client, n lab.NodeInfo, progress func(string)) error {
	start := time.Now()
	deadline := start.Add(120 * time.Second)
	last := ""
	for {
		st, err := c.Status(ctx)
		if err == nil {
			var ni lab.NodeInfo
			if ni, err = lab.FindNode(st, n.Name); err == nil {
				if ni.Agent.Ready {
					if err = lab.AgentHealthz(n.NS); err == nil {
						progress(fmt.Sprintf("node %s: the DaemonSet's vpcnetd is ready (%s)", n.Name, time.Since(start).Round(10*time.Millisecond)))
						return nil
					}
				} else {
					err = fmt.Errorf("%s: %s", ni.Agent.Reason, ni.Agent.Message)
				}
			}
		}
		last = err.Error()
		if time.Now().After(deadline) {
			return fmt.Errorf("node %s: the DaemonSet's vpcnetd not ready after 120s: %s (kubectl -n %s get pods -o wide)", n.Name, last, deploy.Namespace)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// ImportImage imports an image tarball into the node's containerd (namespace k8s.io), as the
// node did at start, e.g. a new agent image for a rolling update.
func ImportImage(ctx context.Context, labName string, index int, tarball string) error {
	p := PathsOf(lab.PathsFor(labName))
	out, err := exec.CommandContext(ctx, cache.Open("", cache.Default).Bin("ctr"), "--address", p.ContainerdSocket(index),
		"-n", "k8s.io", "images", "import", "--local", tarball).CombinedOutput()
	if err != nil {
		return fmt.Errorf("node %d: import %s: %v: %s", index, tarball, err, strings.TrimSpace(string(out)))
	}
	return nil
}
