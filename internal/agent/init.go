package agent

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vpcnet/vpcnet/internal/catalog"
	"github.com/vpcnet/vpcnet/internal/cloud"
	"github.com/vpcnet/vpcnet/internal/ipam"
)

// init learns the instance (IMDS), its limits (DescribeInstanceTypes, else the catalog) and its
// ENIs (EC2), checks the restored allocations against them, and sets up the host networking.
// Cloud calls are retried until they succeed or ctx ends; status says cloud-unreachable meanwhile.
func (a *Agent) init(ctx context.Context) error {
	id, err := retry(ctx, a, func() (cloud.Identity, error) { return a.cloud.Identity(ctx) })
	if err != nil {
		return err
	}
	a.log.Info("instance", "id", id.InstanceID, "type", id.InstanceType, "zone", id.Zone, "subnet", id.SubnetID, "cidr", id.SubnetCIDR, "ip", id.PrimaryIP)
	lim, err := a.limits(ctx, id.InstanceType)
	if err != nil {
		return err
	}
	enis, err := retry(ctx, a, func() ([]cloud.ENI, error) { return a.cloud.ENIs(ctx, id.InstanceID) })
	if err != nil {
		return err
	}
	var macs []string
	for _, e := range enis {
		macs = append(macs, strings.ToLower(e.MAC))
	}
	for _, m := range id.MACs {
		if !slices.Contains(macs, m) {
			a.log.Warn("IMDS lists a MAC EC2 does not show attached (yet)", "mac", m)
		}
	}
	maxPods := a.cfg.Pool.MaxPods
	if maxPods == 0 {
		per := lim.Slots()
		if a.cfg.Pool.PrefixDelegation {
			per *= catalog.PrefixSize
		}
		maxPods = lim.MaxENIs * per
		if a.cfg.Pool.MaxENI > 0 {
			maxPods = min(lim.MaxENIs, a.cfg.Pool.MaxENI) * per
		}
	}
	if a.cfg.HostNetworking {
		if err := a.setupNode(id); err != nil {
			return err
		}
	}
	a.mu.Lock()
	a.st.id, a.st.limits, a.st.maxPods = id, lim, maxPods
	a.applyLocked(enis)
	a.st.started, a.st.cloudErr = true, nil
	a.mu.Unlock()
	// The subnet's free count bounds growth; unknown, growth asks for the shortfall only.
	_, _ = a.refreshSubnet(ctx, 0)
	a.setupENIs() // secondary ENIs join the pool once their device and table are set up
	a.log.Info("ready to reconcile", "enis", len(enis), "maxENIs", lim.MaxENIs, "ipv4PerENI", lim.IPv4PerENI, "maxPods", maxPods, "allocations", len(a.store.List()))
	return nil
}

func (a *Agent) limits(ctx context.Context, typ string) (ipam.Limits, error) {
	l, err := a.cloud.Limits(ctx, typ)
	if err == nil && l.MaxENIs > 0 && l.IPv4PerENI > 0 {
		return ipam.Limits{MaxENIs: l.MaxENIs, IPv4PerENI: l.IPv4PerENI}, nil
	}
	cat, cerr := catalog.Load(a.cfg.InstanceTypes)
	if cerr != nil {
		return ipam.Limits{}, fmt.Errorf("instance type %s: DescribeInstanceTypes failed (%v) and the catalog did not load: %w", typ, err, cerr)
	}
	t, cerr := cat.Lookup(typ)
	if cerr != nil {
		return ipam.Limits{}, fmt.Errorf("instance type %s: DescribeInstanceTypes failed (%v): %w", typ, err, cerr)
	}
	a.log.Warn("instance type limits from the catalog", "type", typ, "source", cat.Source(), "describeErr", err)
	return ipam.Limits{MaxENIs: t.MaxENIs, IPv4PerENI: t.IPv4PerENI}, nil
}

// retry calls f until it succeeds or ctx ends, recording failures for status.
func retry[T any](ctx context.Context, a *Agent, f func() (T, error)) (T, error) {
	for delay := 200 * time.Millisecond; ; delay = min(delay*2, 10*time.Second) {
		v, err := f()
		if err == nil {
			return v, nil
		}
		a.mu.Lock()
		a.st.cloudErr = err
		a.mu.Unlock()
		a.log.Warn("init: cloud call failed; retrying", "err", err, "in", delay)
		select {
		case <-ctx.Done():
			return v, fmt.Errorf("init: %w (last error: %v)", ctx.Err(), err)
		case <-time.After(delay):
		}
	}
}
