package agent

import (
	"context"
	"net/netip"
	"time"

	"github.com/vpcnet/vpcnet/internal/cloud"
	"github.com/vpcnet/vpcnet/internal/ipam"
)

// The policy bounds its requests by the subnet's free address count (EC2 assigns all or
// nothing). The agent learns the count from DescribeSubnets at init, after EC2 said the subnet is
// short, and before a grow only when the count is needed for its decision (subnetStaleForGrow);
// in between it keeps the count up to date with its own assigns, creates and releases (issue 16
// item 2: no polling). Other nodes' takings show only at the next Describe: a request that finds
// the subnet shorter than counted is retried smaller (assignIPs, createENI).

// subnetMaxAge is how old the count may be when a grow that comes near it is about to run.
const subnetMaxAge = 15 * time.Second

// subnetSlack is how far above a grow's request an old count must be for the grow to go ahead
// without asking again: other nodes' takings since the count would have to exceed it for EC2 to
// refuse the request, which then brings a fresh count and a smaller retry anyway.
const subnetSlack = 32

// refreshSubnet asks EC2 for the subnet's free count. The count is recorded unless a change of
// ours may have landed while the Describe was in flight (an action other than the caller's own,
// self of them, was running, or the count was adjusted), since the answer could then be off by
// it; an unknown count is always replaced. It returns EC2's answer.
func (a *Agent) refreshSubnet(ctx context.Context, self int) (int, error) {
	a.mu.Lock()
	subnet, gen, quiet := a.st.id.SubnetID, a.st.subnet.gen, a.st.ops <= self
	a.st.subnet.tried = time.Now()
	a.mu.Unlock()
	n, err := a.cloud.SubnetFree(ctx, subnet)
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		a.log.Warn("free addresses in the subnet unknown", "subnet", subnet, "err", err)
		return 0, err
	}
	if !a.st.subnet.known || (quiet && a.st.ops <= self && a.st.subnet.gen == gen) {
		a.st.subnet.free, a.st.subnet.known, a.st.subnet.gen = n, true, a.st.subnet.gen+1
	}
	return n, nil
}

// adjustSubnetLocked records that this node took (n > 0) or gave back (n < 0) addresses.
func (a *Agent) adjustSubnetLocked(n int) {
	a.st.subnet.free = max(a.st.subnet.free-n, 0)
	a.st.subnet.gen++
}

// subnetStaleForGrow reports whether the policy is about to grow the pool with single addresses
// and the subnet's free count is needed for it: unknown, or older than subnetMaxAge (and not
// asked for since) and within subnetSlack of what the grow asks for (an ENI's own primary
// address counted).
func (a *Agent) subnetStaleForGrow(now time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.st.started || now.Sub(a.st.subnet.tried) < subnetMaxAge {
		return false
	}
	asked, grows := 0, false
	for _, act := range ipam.Decide(a.stateLocked(now)).Actions {
		switch {
		case act.Kind == ipam.AssignIPs:
			asked, grows = asked+act.Count, true
		case act.Kind == ipam.CreateENI && !act.ByPrefix:
			asked, grows = asked+act.Count+1, true
		}
	}
	return grows && (!a.st.subnet.known || a.st.subnet.free < asked+subnetSlack)
}

// assignIPs asks for n addresses on the ENI. When EC2 says the subnet has fewer free (another
// node took some since they were counted), the request is retried smaller, so that the subnet's
// last addresses are still handed out: with as many as EC2 now says are free if that is fewer,
// else with half, down to one address.
func (a *Agent) assignIPs(ctx context.Context, eniID string, n int) ([]netip.Addr, error) {
	for {
		ips, err := a.cloud.AssignIPs(ctx, eniID, n)
		if err == nil || cloud.KindOf(err) != cloud.KindSubnetFull || n == 1 {
			return ips, err
		}
		free, ferr := a.refreshSubnet(ctx, 1)
		next := smaller(n, free, 0, ferr == nil)
		if next == 0 {
			return nil, err
		}
		a.log.Info("the subnet is shorter than counted: asking for fewer addresses", "eni", eniID, "asked", n, "next", next)
		n = next
	}
}

// createENI creates and attaches an ENI with n secondary addresses (or n /28 prefixes) in the
// same call. EC2 creates all or nothing, so when it says the subnet is short of them the create
// is retried smaller, as assignIPs does, so that the subnet's last addresses still reach pods:
// with as many as EC2 now says are left beside the ENI's primary address if that is fewer, else
// with half, down to the ENI alone. A refusal for want of aligned /28s is recorded at once, so
// that the pool falls back to single addresses however the retry ends.
func (a *Agent) createENI(ctx context.Context, id cloud.Identity, dev, n int, byPrefix bool) (cloud.ENI, error) {
	for {
		ips, pfx := n, 0
		if byPrefix {
			ips, pfx = 0, n
		}
		eni, err := a.cloud.CreateENI(ctx, id, dev, ips, pfx)
		kind := cloud.KindOf(err)
		if err == nil || n == 0 || (kind != cloud.KindSubnetFull && kind != cloud.KindNoCIDRBlocks) {
			return eni, err
		}
		next := n / 2
		switch kind {
		case cloud.KindNoCIDRBlocks:
			a.mu.Lock()
			a.st.noCIDRBlocks = time.Now()
			a.mu.Unlock()
		case cloud.KindSubnetFull:
			free, ferr := a.refreshSubnet(ctx, 1)
			next = smaller(n, free, 1, ferr == nil && !byPrefix) // 1: the ENI's primary address
		}
		a.log.Info("the subnet is shorter than counted: creating the ENI with fewer", "device", dev, "asked", n, "next", next, "prefixes", byPrefix, "code", cloud.Code(err))
		n = next
	}
}

// smaller is the next size of a request for n addresses that EC2 refused for want of free ones:
// what the subnet has left beside the reserve the request also takes, when that count is known
// and fewer, else half.
func smaller(n, free, reserve int, known bool) int {
	if known && free-reserve < n {
		return max(free-reserve, 0)
	}
	return n / 2
}
