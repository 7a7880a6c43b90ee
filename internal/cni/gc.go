package cni

import (
	"errors"
	"fmt"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/vpcnet/vpcnet/internal/dataplane"
)

// cmdGC removes every attachment of the network that the runtime no longer lists as valid: their
// data plane from our records, their addresses through the agent's GC. While the agent is away
// the releases are queued like DEL's.
func cmdGC(args *skel.CmdArgs) error {
	c, err := load(args)
	if err != nil {
		return err
	}
	valid := map[types.GCAttachment]bool{}
	for _, v := range c.conf.ValidAttachments {
		valid[v] = true
	}
	recs, err := c.store.records()
	if err != nil {
		return types.NewError(types.ErrIOFailure, err.Error(), "")
	}
	var errs []error
	for _, rec := range recs {
		if valid[types.GCAttachment{ContainerID: rec.ContainerID, IfName: rec.IfName}] {
			continue
		}
		if err := dataplane.TeardownPod(c.pod4(rec)); err != nil {
			errs = append(errs, fmt.Errorf("%s/%s: %w", rec.ContainerID, rec.IfName, err))
			continue
		}
		if err := c.store.queueRelease(rec.ContainerID, rec.IfName); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := c.store.removeRecord(rec.ContainerID, rec.IfName); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return types.NewError(types.ErrInternal, "GC: "+err.Error(), "")
	}
	a, err := dialAgent(c.conf.AgentSocket)
	if err != nil {
		return types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("config field %q: %v", "agentSocket", err), "")
	}
	defer a.Close()
	if err := a.flushPending(c.store, c.conf.Name); err != nil {
		if unreachable(err) {
			return nil // queued; the next call that reaches the agent sends them
		}
		return a.agentError("GC", err)
	}
	if _, err := a.gc(c.conf.Name, c.conf.ValidAttachments); err != nil && !unreachable(err) {
		return a.agentError("GC", err)
	}
	return nil
}
