package cni

import (
	"errors"
	"fmt"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/vpcnet/vpcnet/internal/dataplane"
)

// cmdGC removes every attachment of the network that the runtime no longer lists as valid: their
// data plane from our records (each under its key's lock, as DEL would), their addresses through
// the agent's GC. A valid-attachments entry without a container ID or interface name fails with
// 7 before anything is removed. While the agent is away the releases are queued like DEL's.
func cmdGC(args *skel.CmdArgs) error {
	c, err := load(args, 0)
	if err != nil {
		return err
	}
	if err := checkValidAttachments(c.conf.ValidAttachments); err != nil {
		return err
	}
	valid := map[types.GCAttachment]bool{}
	for _, v := range c.conf.ValidAttachments {
		valid[v] = true
	}
	recs, err := c.store.records()
	if err != nil {
		return ioError(err)
	}
	var errs []error
	for _, r := range recs {
		if valid[types.GCAttachment{ContainerID: r.ContainerID, IfName: r.IfName}] {
			continue
		}
		if err := c.collect(r.ContainerID, r.IfName); err != nil {
			errs = append(errs, fmt.Errorf("%s/%s: %w", r.ContainerID, r.IfName, err))
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
	if err := a.flushPending(c.store, c.conf.Name, nil); err != nil {
		if unreachable(err) {
			return nil // queued; the next call that reaches the agent sends them
		}
		return ioError(err)
	}
	if _, err := a.gc(c.conf.Name, c.conf.ValidAttachments); err != nil && !unreachable(err) {
		return a.agentError("GC", err)
	}
	return nil
}

// collect unwires one recorded attachment and queues its release, under its key's lock (the
// record is read again under it: a DEL may have finished it meanwhile).
func (c *call) collect(containerID, ifname string) error {
	kl, _, err := c.store.lockKey(containerID, ifname, true)
	if err != nil {
		return err
	}
	done := false
	defer func() { kl.unlock(done) }()
	rec, ok, err := c.store.loadRecord(containerID, ifname)
	if err != nil || !ok {
		return err
	}
	if err := dataplane.TeardownPod(c.pod4(rec)); err != nil {
		return err
	}
	if err := c.store.queueRelease(containerID, ifname); err != nil {
		return err
	}
	if err := c.store.removeRecord(containerID, ifname); err != nil {
		return err
	}
	done = true
	return nil
}
