package cni

import (
	"fmt"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/vpcnet/vpcnet/internal/dataplane"
)

// cmdAdd gets the pod an address from the agent, records it, wires the pod and prints the result.
// Every input that decides where it acts (config, state dir, CNI_NETNS, CNI_IFNAME, the result
// version) is checked first; it runs under the key's lock; any failure after the agent answered
// gives the address back.
func cmdAdd(args *skel.CmdArgs) error {
	c, err := load(args, needIfName|needNetns)
	if err != nil {
		return err
	}
	if err := checkResultVersion(c.conf.CNIVersion); err != nil {
		return err
	}
	kl, _, err := c.store.lockKey(args.ContainerID, args.IfName, true)
	if err != nil {
		return ioError(err)
	}
	defer func() { kl.unlock(false) }()
	a, err := dialAgent(c.conf.AgentSocket)
	if err != nil {
		return types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("config field %q: %v", "agentSocket", err), "")
	}
	defer a.Close()
	// A queued release, maybe of this very key, must reach the agent before a new Add.
	if err := a.flushPending(c.store, c.conf.Name, c.held()); err != nil {
		if unreachable(err) {
			return a.agentError("ADD", err)
		}
		return ioError(err)
	}
	alloc, err := a.add(c.conf.Name, args.ContainerID, args.IfName, args.Netns,
		string(c.pod.K8S_POD_NAMESPACE), string(c.pod.K8S_POD_NAME), string(c.pod.K8S_POD_UID))
	if err != nil {
		return a.agentError("ADD", err)
	}
	c.agentWorks()
	ip, err := parseAddr(alloc.GetIp())
	if err != nil {
		_, _ = a.del(c.conf.Name, args.ContainerID, args.IfName)
		return err
	}
	rec := Record{Network: c.conf.Name, ContainerID: args.ContainerID, IfName: args.IfName, Netns: args.Netns,
		PodNamespace: string(c.pod.K8S_POD_NAMESPACE), PodName: string(c.pod.K8S_POD_NAME), PodUID: string(c.pod.K8S_POD_UID),
		HostVeth: c.hostVeth(), VethPrefix: c.conf.VethPrefix, Addr: ip, Table: int(alloc.GetRouteTable()), ENI: alloc.GetEniId()}
	if rec.Table == 0 && alloc.GetDeviceIndex() > 0 {
		rec.Table = dataplane.TableForDevice(int(alloc.GetDeviceIndex()))
	}
	// A repeated ADD whose earlier wiring differs (another address, another netns) first removes
	// the old wiring, so no rule of an address the pod no longer holds stays behind.
	if old, ok, _ := c.store.loadRecord(args.ContainerID, args.IfName); ok && (old.Addr != rec.Addr || old.HostVeth != rec.HostVeth || old.Netns != rec.Netns) {
		_ = dataplane.TeardownPod(c.pod4(old))
	}
	if err := c.store.saveRecord(rec); err != nil {
		_, _ = a.del(c.conf.Name, args.ContainerID, args.IfName)
		return ioError(err)
	}
	links, err := dataplane.SetupPod(c.pod4(rec))
	if err != nil {
		_ = dataplane.TeardownPod(c.pod4(rec))
		if _, derr := a.del(c.conf.Name, args.ContainerID, args.IfName); derr == nil {
			_ = c.store.removeRecord(args.ContainerID, args.IfName)
		}
		return types.NewError(types.ErrInternal, fmt.Sprintf("wire pod %s (%s) with %s: %v", args.ContainerID, args.Netns, ip, err), "")
	}
	return types.PrintResult(c.result(rec, links), c.conf.CNIVersion)
}
