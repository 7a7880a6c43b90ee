package cni

import (
	"fmt"
	"syscall"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/vpcnet/vpcnet/internal/dataplane"
)

// cmdCheck confirms that the attachment is as ADD left it: the agent still holds the address for
// the key (skipped while the agent is unreachable: the pod's network does not depend on it), the
// address is the one in prevResult, and everything ADD made plus the node settings the pod's path
// depends on are in place (dataplane.CheckPod lists what is not).
func cmdCheck(args *skel.CmdArgs) error {
	c, err := load(args, needIfName|needNetns)
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
	kl, _, err := c.store.lockKey(args.ContainerID, args.IfName, true)
	if err != nil {
		return ioError(err)
	}
	rec, known, err := c.store.loadRecord(args.ContainerID, args.IfName)
	defer func() { kl.unlock(!known) }() // a key with no attachment keeps no lock file
	if err != nil {
		return ioError(err)
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
	flushErr := a.flushPending(c.store, c.conf.Name, c.held())
	if flushErr != nil && !unreachable(flushErr) {
		return ioError(flushErr)
	}
	if flushErr == nil {
		if _, err := a.check(c.conf.Name, args.ContainerID, args.IfName, rec.Addr.String()); err != nil && !unreachable(err) {
			return a.agentError("CHECK", err)
		}
	}
	if !sameNetns(rec.Netns, args.Netns) {
		return types.NewError(types.ErrInternal, fmt.Sprintf("attachment %s/%s was wired in %s, not CNI_NETNS %s", args.ContainerID, args.IfName, rec.Netns, args.Netns), "")
	}
	if err := dataplane.CheckPod(c.pod4(rec)); err != nil {
		return types.NewError(types.ErrInternal, fmt.Sprintf("pod %s (%s): %v", args.ContainerID, rec.Addr, err), "")
	}
	return nil
}

// sameNetns reports whether two namespace paths name one namespace.
func sameNetns(a, b string) bool {
	if a == b {
		return true
	}
	var sa, sb syscall.Stat_t
	return syscall.Stat(a, &sa) == nil && syscall.Stat(b, &sb) == nil && sa.Dev == sb.Dev && sa.Ino == sb.Ino
}
