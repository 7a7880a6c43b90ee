package cni

import (
	"fmt"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/vpcnet/vpcnet/internal/dataplane"
)

// cmdDel unwires the pod and gives its address back. It is idempotent and needs neither the pod's
// namespace nor the agent: the data plane is cleaned from the ADD record (or the veth name), and
// a release the agent cannot take now is queued in the state dir for the next call that reaches
// it (or the next GC).
func cmdDel(args *skel.CmdArgs) error {
	c, err := load(args)
	if err != nil {
		return err
	}
	rec, known, err := c.store.loadRecord(args.ContainerID, args.IfName)
	if err != nil {
		return types.NewError(types.ErrIOFailure, err.Error(), "")
	}
	a, err := dialAgent(c.conf.AgentSocket)
	if err != nil {
		return types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("config field %q: %v", "agentSocket", err), "")
	}
	defer a.Close()

	released := false
	if !known {
		// No record (ADD never got that far, or DEL ran before): what the agent releases tells
		// us the address; the veth name needs no state.
		rec = Record{Network: c.conf.Name, ContainerID: args.ContainerID, IfName: args.IfName, HostVeth: c.hostVeth(), VethPrefix: c.conf.VethPrefix}
		alloc, err := a.del(c.conf.Name, args.ContainerID, args.IfName)
		switch {
		case err == nil:
			released = true
			if alloc != nil {
				if ip, perr := parseAddr(alloc.GetIp()); perr == nil {
					rec.Addr, rec.Table = ip, int(alloc.GetRouteTable())
				}
			}
		case !unreachable(err):
			return a.agentError("DEL", err)
		}
	}
	if err := dataplane.TeardownPod(c.pod4(rec)); err != nil {
		return types.NewError(types.ErrInternal, fmt.Sprintf("unwire pod %s (veth %s): %v", args.ContainerID, rec.HostVeth, err), "")
	}
	if !released {
		if _, err := a.del(c.conf.Name, args.ContainerID, args.IfName); err != nil {
			if !unreachable(err) {
				return a.agentError("DEL", err)
			}
			if err := c.store.queueRelease(args.ContainerID, args.IfName); err != nil {
				return types.NewError(types.ErrIOFailure, "agent unreachable and cannot queue the release: "+err.Error(), "")
			}
		} else {
			_ = a.flushPending(c.store, c.conf.Name)
		}
	}
	if err := c.store.removeRecord(args.ContainerID, args.IfName); err != nil {
		return types.NewError(types.ErrIOFailure, err.Error(), "")
	}
	return nil
}
