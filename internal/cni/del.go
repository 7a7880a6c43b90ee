package cni

import (
	"fmt"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/vpcnet/vpcnet/internal/dataplane"
)

// cmdDel unwires the attachment and gives its address back, under the key's lock. It removes
// only what provably belongs to this container: what its ADD record names, a host veth whose
// alias is its owner tag or whose peer is in its recorded namespace, and the rules of its address
// unless that address is routed to another link now (dataplane.TeardownPod). It is idempotent
// and needs neither the pod's namespace (CNI_NETNS is not used) nor the agent: a release the
// agent cannot take now is queued in the state dir for the next verb that reaches it.
func cmdDel(args *skel.CmdArgs) error {
	c, err := load(args, needIfName)
	if err != nil {
		return err
	}
	kl, _, err := c.store.lockKey(args.ContainerID, args.IfName, true)
	if err != nil {
		return ioError(err)
	}
	done := false
	defer func() { kl.unlock(done) }()
	rec, known, err := c.store.loadRecord(args.ContainerID, args.IfName)
	if err != nil {
		return ioError(err)
	}
	if !known {
		// ADD saves its record before it wires anything, so without a record nothing was
		// wired; a host veth of this container's name is removed only if its alias says it is
		// this container's (left by an older plugin, or by hand).
		rec = Record{Network: c.conf.Name, ContainerID: args.ContainerID, IfName: args.IfName, HostVeth: c.hostVeth(), VethPrefix: c.conf.VethPrefix}
	}
	unwire := dataplane.TeardownPod
	if known {
		// The runtime deletes the pod's namespace after DEL, and the veth with it: leave it
		// to that, with the address and routes gone (dataplane.UnwirePod).
		unwire = dataplane.UnwirePod
	}
	if err := unwire(c.pod4(rec)); err != nil {
		return types.NewError(types.ErrInternal, fmt.Sprintf("unwire pod %s (veth %s): %v", args.ContainerID, rec.HostVeth, err), "")
	}
	a, err := dialAgent(c.conf.AgentSocket)
	if err != nil {
		return types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("config field %q: %v", "agentSocket", err), "")
	}
	defer a.Close()
	if _, err := a.del(c.conf.Name, args.ContainerID, args.IfName); err != nil {
		if !unreachable(err) {
			return a.agentError("DEL", err)
		}
		if err := c.store.queueRelease(args.ContainerID, args.IfName); err != nil {
			return ioError(fmt.Errorf("agent unreachable and cannot queue the release: %w", err))
		}
	} else {
		if err := c.store.dropPending(args.ContainerID, args.IfName); err != nil {
			return ioError(err)
		}
		_ = a.flushPending(c.store, c.conf.Name, c.held())
	}
	if err := c.store.removeRecord(args.ContainerID, args.IfName); err != nil {
		return ioError(err)
	}
	done = true
	return nil
}
