package cni

import (
	"fmt"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/vpcnet/vpcnet/internal/dataplane"
)

// cmdCheck confirms that the attachment is as ADD left it: the agent still holds the address for
// the key (skipped while the agent is unreachable: the pod's network does not depend on it), the
// address is the one in prevResult, and the veth, routes, rules and anti-spoofing entry are there.
func cmdCheck(args *skel.CmdArgs) error {
	c, err := load(args)
	if err != nil {
		return err
	}
	if c.conf.PrevResult == nil {
		return fieldError("prevResult", "is missing (CHECK needs the ADD result)")
	}
	prev, err := current.NewResultFromResult(c.conf.PrevResult)
	if err != nil {
		return types.NewError(types.ErrDecodingFailure, "cannot convert prevResult", err.Error())
	}
	rec, known, err := c.store.loadRecord(args.ContainerID, args.IfName)
	if err != nil {
		return types.NewError(types.ErrIOFailure, err.Error(), "")
	}
	if !known {
		return types.NewError(types.ErrUnknownContainer, fmt.Sprintf("no attachment %s/%s on network %s", args.ContainerID, args.IfName, c.conf.Name), "")
	}
	found := false
	for _, ipc := range prev.IPs {
		found = found || ipc.Address.IP.Equal(rec.Addr.AsSlice())
	}
	if !found {
		return types.NewError(types.ErrInternal, fmt.Sprintf("prevResult does not hold the pod's address %s", rec.Addr), "")
	}
	a, err := dialAgent(c.conf.AgentSocket)
	if err != nil {
		return types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("config field %q: %v", "agentSocket", err), "")
	}
	defer a.Close()
	if _, err := a.check(c.conf.Name, args.ContainerID, args.IfName, rec.Addr.String()); err != nil && !unreachable(err) {
		return a.agentError("CHECK", err)
	}
	rec.Netns = args.Netns
	if err := dataplane.CheckPod(c.pod4(rec)); err != nil {
		return types.NewError(types.ErrInternal, fmt.Sprintf("pod %s: %v", args.ContainerID, err), "")
	}
	return nil
}
