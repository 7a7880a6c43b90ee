package agent

import (
	"fmt"

	"github.com/vpcnet/vpcnet/internal/cloud"
	"github.com/vpcnet/vpcnet/internal/dataplane"
)

// The node-level data plane, in the agent's network namespace, only with VPCNET_HOST_NETWORKING.

func (a *Agent) dpENI(e cloud.ENI) dataplane.ENI {
	return dataplane.ENI{MAC: e.MAC, DeviceIndex: e.DeviceIndex, PrimaryIP: e.PrimaryIP, Subnet: a.st.id.SubnetCIDR, MTU: a.cfg.MTU}
}

func (a *Agent) setupENI(e cloud.ENI) error {
	if !a.cfg.HostNetworking {
		return nil
	}
	if e.DeviceIndex == 0 {
		// The primary ENI's address and routes are the node's; only the MTU is the agent's.
		// It carries pods whatever its MTU: a failure is reported, not retried (CheckENI shows it).
		if err := dataplane.SetMTU(a.dpENI(e)); err != nil {
			a.log.Warn("primary ENI: MTU not set", "eni", e.ID, "mac", e.MAC, "mtu", a.cfg.MTU, "err", err)
		}
		return nil
	}
	if err := dataplane.SetupENI(a.dpENI(e)); err != nil {
		return fmt.Errorf("set up ENI %s (device %d, %s): %w", e.ID, e.DeviceIndex, e.MAC, err)
	}
	return nil
}

// setupENIs sets up every attached secondary ENI not set up yet; until then its addresses are
// not handed out. A failure is logged and retried on the next pass.
func (a *Agent) setupENIs() {
	a.mu.Lock()
	var todo []cloud.ENI
	for _, e := range a.st.enis {
		if !e.Unmanaged && !a.st.setUp[e.ID] && !a.st.pending.Busy[e.ID] && !a.isLost(e.ID) {
			todo = append(todo, e)
		}
	}
	a.mu.Unlock()
	for _, e := range todo {
		err := a.setupENI(e)
		a.mu.Lock()
		if err != nil {
			a.log.Error("ENI not usable yet", "eni", e.ID, "err", err)
		} else if _, still := a.st.enis[e.ID]; still {
			a.st.setUp[e.ID] = true
		}
		a.mu.Unlock()
	}
}

func (a *Agent) teardownENI(e cloud.ENI) error {
	if !a.cfg.HostNetworking || e.DeviceIndex == 0 {
		return nil
	}
	if err := dataplane.TeardownENI(a.dpENI(e)); err != nil {
		return fmt.Errorf("tear down ENI %s: %w", e.ID, err)
	}
	return nil
}

// setupNode sets up the node-wide filters: SNAT, and the drop of pods' traffic to IMDS when
// BlockPodIMDS is set (removed when it is not, so turning it off and restarting takes it away).
func (a *Agent) setupNode(id cloud.Identity) error {
	err := dataplane.SetupSNAT(dataplane.SNAT{PrimaryIP: id.PrimaryIP, VPCCIDRs: id.VPCCIDRs, Exclude: a.cfg.ExcludeSNAT, External: a.cfg.ExternalSNAT})
	if err != nil {
		return fmt.Errorf("SNAT: %w", err)
	}
	if err := dataplane.BlockPodIMDS(a.cfg.VethPrefix, a.cfg.BlockPodIMDS); err != nil {
		return fmt.Errorf("VPCNET_BLOCK_POD_IMDS: %w", err)
	}
	return nil
}
