package agent

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"

	"github.com/vpcnet/vpcnet/internal/cloud"
	"github.com/vpcnet/vpcnet/internal/cni"
	"github.com/vpcnet/vpcnet/internal/dataplane"
	"github.com/vpcnet/vpcnet/internal/ipam/store"
)

// Kube is the agent's optional Kubernetes side (internal/k8s; Config.Kube, nil without one). The
// agent calls it from its own goroutines, so no method may block.
type Kube interface {
	// Started gives the identity read from IMDS, once the agent has started; the Kubernetes side
	// checks its Node against it before it writes anything. gc is how it releases the
	// allocations of pods the API server no longer has on this node.
	Started(id cloud.Identity, gc PodGC)
	// Status gives the node's status after every pass of the reconcile loop.
	Status(st Status)
	// AddRefused tells of an ADD answered try-again for want of an address, with the status
	// that says why.
	AddRefused(podNamespace, podName string, st Status)
}

// PodGC is what the agent offers its Kubernetes side for garbage collection from the API
// server's pods (issue 14 item 4), beside the runtime's CNI GC.
type PodGC interface {
	// Allocations lists the allocations the agent holds.
	Allocations() []store.Alloc
	// ReleaseGone releases al, whose pod the API server no longer places on this node, as the
	// runtime's DEL would. It refuses (false, nil) unless the store still holds al.Key with
	// al.Addr and no host veth of the attachment exists: a sandbox whose network is alive keeps
	// its address whatever the API server says (the runtime DELs it when it stops it).
	ReleaseGone(al store.Alloc) (bool, error)
}

func (a *Agent) kubeStarted() {
	if a.cfg.Kube == nil {
		return
	}
	a.mu.Lock()
	id := a.st.id
	a.mu.Unlock()
	a.cfg.Kube.Started(id, a)
}

func (a *Agent) kubeStatus() {
	if a.cfg.Kube != nil {
		a.cfg.Kube.Status(a.view().status)
	}
}

func (a *Agent) kubeAddRefused(ns, name string, st Status) {
	if a.cfg.Kube != nil {
		a.cfg.Kube.AddRefused(ns, name, st)
	}
}

// Allocations implements PodGC.
func (a *Agent) Allocations() []store.Alloc { return a.store.List() }

// ReleaseGone implements PodGC. The release is the plugin's own DEL, run in this process with
// the configuration the agent writes (cni.Release): under the attachment's lock it removes the
// address's rules and route and the plugin's record (so no restart restores the allocation from
// it), then asks this agent over its socket to release the address, which rests for
// IP_COOLDOWN_PERIOD like any other. The liveness check looks for the attachment's host veth in
// the agent's network namespace (the node's: the DaemonSet runs with hostNetwork): by its owner
// tag (the interface alias the plugin sets) or its name. The kernel deletes that veth with the
// sandbox's namespace, so its absence means no pod uses the address.
func (a *Agent) ReleaseGone(al store.Alloc) (bool, error) {
	if al.PodName == "" || strings.HasPrefix(al.Key.ContainerID, store.QuarantinePrefix) {
		return false, nil
	}
	if cur, ok := a.store.Get(al.Key); !ok || cur.Addr != al.Addr {
		return false, nil
	}
	live, err := attachmentLive(a.cfg.VethPrefix, al.Key)
	if err != nil {
		return false, fmt.Errorf("looking for the host veth of %s: %w", al.Key, err)
	}
	if live {
		a.log.Info("kept the address of a pod the API server no longer has: its sandbox's veth still exists (the runtime's DEL releases it)", "key", al.Key.String(), "ip", al.Addr, "pod", al.PodNamespace+"/"+al.PodName)
		return false, nil
	}
	if err := cni.Release(a.cfg.pluginConf(al.Key.Network), al.Key.ContainerID, al.Key.IfName); err != nil {
		return false, fmt.Errorf("DEL of %s: %w", al.Key, err)
	}
	if _, ok := a.store.Get(al.Key); ok {
		return false, fmt.Errorf("DEL of %s left the allocation (the release is queued in the plugin's state)", al.Key)
	}
	a.log.Warn("released the address of a pod the API server no longer has on this node and whose sandbox is gone", "key", al.Key.String(), "ip", al.Addr, "pod", al.PodNamespace+"/"+al.PodName)
	return true, nil
}

// pluginConf is the plugin's network configuration as a runtime passes it on stdin: the
// conflist's one plugin with the cniVersion and the network's name.
func (c Config) pluginConf(network string) []byte {
	b, _ := json.Marshal(map[string]any{
		"cniVersion":  ConfCNIVersion,
		"name":        network,
		"type":        "vpcnet-cni",
		"agentSocket": c.Socket,
		"mtu":         c.MTU,
		"vethPrefix":  c.VethPrefix,
		"stateDir":    filepath.Join(c.StateDir, "cni"),
	})
	return b
}

// attachmentLive reports whether the attachment k has a host veth in this network namespace:
// one whose alias is its owner tag (dataplane.OwnerTag) or whose name is its veth name
// (dataplane.ContainerVethName).
func attachmentLive(vethPrefix string, k store.Key) (bool, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return false, err
	}
	tag := dataplane.OwnerTag(k.Network, k.ContainerID, k.IfName)
	name := dataplane.ContainerVethName(vethPrefix, k.Network, k.ContainerID, k.IfName)
	for _, l := range links {
		if l.Attrs().Alias == tag || l.Attrs().Name == name {
			return true, nil
		}
	}
	return false, nil
}
