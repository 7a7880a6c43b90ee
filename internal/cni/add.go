package cni

import (
	"fmt"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vpcnet/vpcnet/internal/dataplane"
)

// cmdAdd gets the pod an address from the agent, records it, wires the pod and prints the result.
// Any failure after the agent answered gives the address back.
func cmdAdd(args *skel.CmdArgs) error {
	c, err := load(args)
	if err != nil {
		return err
	}
	// A sandbox that is not there gets no address.
	podNS, err := ns.GetNS(args.Netns)
	if err != nil {
		return types.NewError(types.ErrInvalidNetNS, fmt.Sprintf("pod netns %s: %v", args.Netns, err), "")
	}
	podNS.Close()
	a, err := dialAgent(c.conf.AgentSocket)
	if err != nil {
		return types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("config field %q: %v", "agentSocket", err), "")
	}
	defer a.Close()
	// A queued release, maybe of this very key, must reach the agent before a new Add.
	if err := a.flushPending(c.store, c.conf.Name); err != nil {
		return a.agentError("ADD", err)
	}
	alloc, err := a.add(c.conf.Name, args.ContainerID, args.IfName, args.Netns,
		string(c.pod.K8S_POD_NAMESPACE), string(c.pod.K8S_POD_NAME))
	if err != nil {
		return a.agentError("ADD", err)
	}
	ip, err := parseAddr(alloc.GetIp())
	if err != nil {
		_, _ = a.del(c.conf.Name, args.ContainerID, args.IfName)
		return err
	}
	rec := Record{Network: c.conf.Name, ContainerID: args.ContainerID, IfName: args.IfName, Netns: args.Netns,
		PodNamespace: string(c.pod.K8S_POD_NAMESPACE), PodName: string(c.pod.K8S_POD_NAME),
		HostVeth: c.hostVeth(), VethPrefix: c.conf.VethPrefix, Addr: ip, Table: int(alloc.GetRouteTable()), ENI: alloc.GetEniId()}
	if rec.Table == 0 && alloc.GetDeviceIndex() > 0 {
		rec.Table = dataplane.TableForDevice(int(alloc.GetDeviceIndex()))
	}
	// A repeated ADD whose earlier wiring differs (another address, another veth name) first
	// removes the old wiring, so no rule of an address the pod no longer holds stays behind.
	if old, ok, _ := c.store.loadRecord(args.ContainerID, args.IfName); ok && (old.Addr != rec.Addr || old.HostVeth != rec.HostVeth) {
		_ = dataplane.TeardownPod(c.pod4(old))
	}
	if err := c.store.saveRecord(rec); err != nil {
		_, _ = a.del(c.conf.Name, args.ContainerID, args.IfName)
		return types.NewError(types.ErrIOFailure, err.Error(), "")
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
