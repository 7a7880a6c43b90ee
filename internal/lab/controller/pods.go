package controller

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/vpcnet/vpcnet/internal/lab"
	"github.com/vpcnet/vpcnet/internal/netnsx"
	"github.com/vpcnet/vpcnet/internal/probe"
)

// pod is one lab pod: a namespace wired by the node's CNI plugin.
type pod struct {
	name        string
	node        string
	ns          string
	containerID string
	ip          netip.Addr
}

// podNamespace is the Kubernetes namespace the lab's pods claim to be in.
const podNamespace = "default"

// NodeExec returns a libcni executor that runs CNI plugins with the calling thread in the
// named node namespace, as a container runtime on that node would (the lab bench uses it too).
func NodeExec(nsName string) invoke.Exec {
	return nsExec{ns: nsName, raw: &invoke.RawExec{Stderr: os.Stderr}}
}

// nsExec runs CNI plugins with the calling thread in the node's namespace.
type nsExec struct {
	ns  string
	raw *invoke.RawExec
}

func (e nsExec) ExecPlugin(ctx context.Context, pluginPath string, stdin []byte, environ []string) ([]byte, error) {
	var out []byte
	err := probe.In(e.ns, func() error {
		var err error
		out, err = e.raw.ExecPlugin(ctx, pluginPath, stdin, environ)
		return err
	})
	return out, err
}

func (e nsExec) FindInPath(plugin string, paths []string) (string, error) {
	return invoke.FindInPath(plugin, paths)
}

func (e nsExec) Decode(b []byte) (version.PluginInfo, error) {
	var d version.PluginDecoder
	return d.Decode(b)
}

// cni returns libcni set up to run the lab's plugin on node n, and the node's config list.
func (c *Controller) cni(n *node) (*libcni.CNIConfig, *libcni.NetworkConfigList, error) {
	list, err := libcni.ConfListFromFile(filepath.Join(n.paths.CNIConfDir(), CNIConfName))
	if err != nil {
		return nil, nil, fmt.Errorf("node %s has no CNI config yet (is its vpcnetd ready?): %w", n.name, err)
	}
	cfg := libcni.NewCNIConfigWithCacheDir([]string{filepath.Dir(c.cfg.CNIBin)}, c.paths.CNICache(),
		NodeExec(n.ns))
	return cfg, list, nil
}

func (p *pod) runtimeConf() *libcni.RuntimeConf {
	return &libcni.RuntimeConf{ContainerID: p.containerID, NetNS: netnsx.Path(p.ns), IfName: "eth0",
		Args: [][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", podNamespace}, {"K8S_POD_NAME", p.name},
			{"K8S_POD_INFRA_CONTAINER_ID", p.containerID}}}
}

// runPod creates the pod's namespace and asks the node's plugin for its network.
func (c *Controller) runPod(ctx context.Context, req lab.PodRequest, step func(string)) (*pod, error) {
	if err := lab.ValidatePodName(req.Name); err != nil {
		return nil, errf(lab.CodeInvalid, "%v", err)
	}
	c.mu.Lock()
	_, exists := c.pods[req.Name]
	c.mu.Unlock()
	if exists {
		return nil, errf(lab.CodeExists, "pod %s already exists", req.Name)
	}
	n, err := c.placePod(ctx, req.Node)
	if err != nil {
		return nil, err
	}
	cfg, list, err := c.cni(n)
	if err != nil {
		return nil, err
	}
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	p := &pod{name: req.Name, node: n.name, ns: lab.PodNS(c.cfg.Name, req.Name), containerID: "lab" + hex.EncodeToString(id)}
	h, err := netnsx.Create(p.ns)
	if err != nil {
		return nil, err
	}
	h.Close()
	step(fmt.Sprintf("pod %s on %s: CNI ADD (namespace %s)", p.name, n.name, p.ns))
	res, err := c.addRetrying(ctx, n, cfg, list, p)
	if err != nil {
		_ = cfg.DelNetworkList(context.Background(), list, p.runtimeConf())
		_ = netnsx.Delete(p.ns)
		return nil, c.podError(ctx, n, p, err)
	}
	r, err := current.NewResultFromResult(res)
	if err != nil || len(r.IPs) == 0 {
		_ = cfg.DelNetworkList(context.Background(), list, p.runtimeConf())
		_ = netnsx.Delete(p.ns)
		return nil, fmt.Errorf("pod %s: the plugin's result has no address (%v)", p.name, err)
	}
	p.ip, _ = netip.AddrFromSlice(r.IPs[0].Address.IP.To4())
	c.mu.Lock()
	c.pods[p.name] = p
	c.mu.Unlock()
	return p, nil
}

// addRetrying runs CNI ADD and, as kubelet does, runs it again while the plugin answers
// try-again (code 11) and the node's pool is fetching an address (agent reason no-addresses,
// or none once the address arrived), for up to 30 s. A full node or a dry subnet is answered
// at once.
func (c *Controller) addRetrying(ctx context.Context, n *node, cfg *libcni.CNIConfig, list *libcni.NetworkConfigList, p *pod) (types.Result, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := cfg.AddNetworkList(ctx, list, p.runtimeConf())
		var cniErr *types.Error
		if err == nil || !errors.As(err, &cniErr) || cniErr.Code != types.ErrTryAgainLater || time.Now().After(deadline) {
			return res, err
		}
		if r := c.agentStatus(ctx, n).Reason; r != "" && r != "no-addresses" {
			return res, err // full, or the subnet or the cloud fails: waiting does not help soon
		}
		_ = cfg.DelNetworkList(context.Background(), list, p.runtimeConf()) // as a runtime does after a failed ADD
		select {
		case <-ctx.Done():
			return res, err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// podError explains a failed CNI ADD; an agent out of addresses because its subnet is dry
// gets the code subnet-exhausted.
func (c *Controller) podError(ctx context.Context, n *node, p *pod, err error) error {
	var cniErr *types.Error
	if errors.As(err, &cniErr) && cniErr.Code == types.ErrTryAgainLater {
		st := c.agentStatus(ctx, n)
		msg := cniErr.Msg
		if cniErr.Details != "" {
			msg += ": " + cniErr.Details
		}
		if st.Reason == lab.CodeSubnetExhausted || strings.Contains(strings.ToLower(msg), "exhausted") {
			return errf(lab.CodeSubnetExhausted, "pod %s on %s: subnet exhausted: %s", p.name, n.name, cniErr.Msg)
		}
		return errf(lab.CodeNoAddress, "pod %s on %s: no address free now: %s (agent: %s %s)", p.name, n.name, msg, st.Reason, st.Message)
	}
	return fmt.Errorf("pod %s on %s: %w", p.name, n.name, err)
}

// placePod picks the named node, or the ready node with the fewest pods.
func (c *Controller) placePod(ctx context.Context, name string) (*node, error) {
	if name != "" {
		return c.nodeByName(name)
	}
	c.mu.Lock()
	nodes := append([]*node(nil), c.nodes...)
	count := map[string]int{}
	for _, p := range c.pods {
		count[p.node]++
	}
	c.mu.Unlock()
	sort.SliceStable(nodes, func(i, j int) bool { return count[nodes[i].name] < count[nodes[j].name] })
	for _, n := range nodes {
		// A ready node with room: an ADD there gets an address, or waits while the pool grows.
		if st := c.agentStatus(ctx, n); st.Ready && st.Assigned < st.MaxPods {
			return n, nil
		}
	}
	if len(nodes) == 0 {
		return nil, errf(lab.CodeNotFound, "lab %s has no nodes: add one with `vpcnet lab node add`", c.cfg.Name)
	}
	return nil, errf(lab.CodeNoAddress, "no node of lab %s can hand out an address now (see `vpcnet lab status`)", c.cfg.Name)
}

// deletePod runs CNI DEL and removes the pod's namespace.
func (c *Controller) deletePod(p *pod) error {
	var errs []error
	if n, err := c.nodeByName(p.node); err == nil {
		if cfg, list, err := c.cni(n); err == nil {
			if err := cfg.DelNetworkList(context.Background(), list, p.runtimeConf()); err != nil {
				errs = append(errs, fmt.Errorf("CNI DEL: %w", err))
			}
		} else {
			errs = append(errs, err)
		}
	}
	if err := netnsx.Delete(p.ns); err != nil {
		errs = append(errs, err)
	}
	c.mu.Lock()
	delete(c.pods, p.name)
	c.mu.Unlock()
	return errors.Join(errs...)
}

func (c *Controller) podByName(name string) (*pod, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.pods[name]; ok {
		return p, nil
	}
	return nil, errf(lab.CodeNotFound, "lab %s has no pod %q", c.cfg.Name, name)
}

// podsOn lists the pods of a node.
func (c *Controller) podsOn(node string) []*pod {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*pod
	for _, p := range c.pods {
		if p.node == node {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}
