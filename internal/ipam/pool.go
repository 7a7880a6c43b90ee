// Package ipam decides how many VPC addresses a node holds: the warm-pool policy is a pure
// function from the pool's state to the cloud actions that bring it to its targets.
package ipam

import (
	"net/netip"
	"time"
)

// Settings are the warm-pool knobs, with the AWS VPC CNI names and meanings. A zero value means
// "unset" except where noted; see docs/agent.md.
type Settings struct {
	WarmENITarget    int // WARM_ENI_TARGET: free addresses wanted, in units of one ENI's capacity
	WarmIPTarget     int // WARM_IP_TARGET: free addresses wanted; with MinimumIPTarget switches to IP targets
	MinimumIPTarget  int // MINIMUM_IP_TARGET: addresses held at least
	PrefixDelegation bool
	WarmPrefixTarget int           // WARM_PREFIX_TARGET: fully free /28 prefixes wanted
	MaxENI           int           // MAX_ENI: 0 means the instance type's limit
	Cooldown         time.Duration // IP_COOLDOWN_PERIOD: a released address rests this long before reuse
	MaxPods          int           // hard cap on addresses held; 0 means none
	// Backoff is the first wait after the subnet ran out of addresses; it doubles per failure up
	// to BackoffMax.
	Backoff, BackoffMax time.Duration
	// PrefixFallback is how long prefix mode assigns single addresses after InsufficientCidrBlocks.
	PrefixFallback time.Duration
	// ReleaseDelay is how long the pool must stay above its target before the surplus is given
	// back (VPCNET_POOL_RELEASE_DELAY; WarmENIReleaseDelay under WARM_ENI_TARGET); 0 gives it
	// back at once. Pods that come back within it reuse the surplus instead of costing an
	// assign, and an emptied ENI is not freed and recreated as load swings.
	ReleaseDelay time.Duration
	// WarmENIReleaseDelay replaces ReleaseDelay under WARM_ENI_TARGET, where the surplus is a
	// whole unused ENI (VPCNET_WARM_ENI_RELEASE_DELAY); 0 frees it at once. See ReleaseDelayOf.
	WarmENIReleaseDelay time.Duration
	// Adaptive sizes the pool from the observed pod start rate and replenish latency
	// (VPCNET_WARM_POOL=adaptive, see AdaptiveOf) instead of WARM_ENI_TARGET or
	// WARM_PREFIX_TARGET; the IP targets may not be set with it.
	Adaptive bool
}

// IPTargets reports whether the IP targets replace WARM_ENI_TARGET.
func (s Settings) IPTargets() bool { return s.WarmIPTarget > 0 || s.MinimumIPTarget > 0 }

// The agent's defaults for the two release delays (docs/agent.md, "Shrinking waits").
const (
	// DefaultReleaseDelay is VPCNET_POOL_RELEASE_DELAY's default. Under the IP targets and in
	// the adaptive mode it also sizes the top-up batch (AdaptiveOf), so a shorter one costs
	// calls: 10 s took WARM_IP_TARGET=3 from 0.37 to 0.61 EC2 calls per pod on the churn
	// bench's trace (TestChurnTraceThroughPolicy).
	DefaultReleaseDelay = 30 * time.Second
	// DefaultWarmENIReleaseDelay is VPCNET_WARM_ENI_RELEASE_DELAY's default. Under
	// WARM_ENI_TARGET a release frees a whole unused ENI: a mistake costs 5 EC2 calls and no
	// pod's wait, and the surplus held is a whole ENI's addresses, so it is held a third as long
	// as the IP targets' few addresses. On the churn bench's trace an ENI was freed and attached
	// again only with a delay under 5 s; 10 s held 37.5 % against 36.5 % at 30 s, calls level.
	DefaultWarmENIReleaseDelay = 10 * time.Second
)

// ReleaseDelayOf is how long the pool must stay above its target under s before its surplus is
// given back: WarmENIReleaseDelay under WARM_ENI_TARGET (no IP target, no prefix delegation,
// not adaptive), where only whole unused ENIs are freed; ReleaseDelay otherwise.
func (s Settings) ReleaseDelayOf() time.Duration {
	if s.Adaptive || s.IPTargets() || s.PrefixDelegation {
		return s.ReleaseDelay
	}
	return s.WarmENIReleaseDelay
}

// Limits are the instance type's networking limits.
type Limits struct {
	MaxENIs    int // interfaces the instance can hold, the primary included
	IPv4PerENI int // private addresses per interface, the primary included
}

// Slots is the number of secondary addresses or prefixes one ENI can hold.
func (l Limits) Slots() int { return max(l.IPv4PerENI-1, 0) }

// ENI is an attached interface as the pool sees it.
type ENI struct {
	ID          string
	DeviceIndex int            // 0 is the instance's primary ENI, which is never freed
	Keep        bool           // never freed either: an ENI vpcnet did not create (its addresses are used)
	IPs         []netip.Addr   // secondary addresses, the primary excluded
	Prefixes    []netip.Prefix // delegated /28 prefixes
}

// Slots counts the address slots the ENI uses.
func (e ENI) Slots() int { return len(e.IPs) + len(e.Prefixes) }

// Addrs returns every pod address the ENI holds: secondary addresses, then each prefix's.
func (e ENI) Addrs() []netip.Addr {
	out := append([]netip.Addr(nil), e.IPs...)
	for _, p := range e.Prefixes {
		for a := p.Masked().Addr(); p.Contains(a); a = a.Next() {
			out = append(out, a)
		}
	}
	return out
}

// Pending are cloud operations in flight; the policy neither repeats them nor touches their ENIs.
type Pending struct {
	CreatingENI bool            // an ENI create+attach is under way
	Busy        map[string]bool // ENI IDs with an assign, unassign or free in flight
	Addrs       int             // addresses being assigned, those a new ENI is created with included
}

// State is everything the policy looks at.
type State struct {
	Now      time.Time
	Settings Settings
	Limits   Limits
	ENIs     []ENI
	// Unmanaged counts attached ENIs pods may never use (tagged node.k8s.amazonaws.com/no_manage=true):
	// they take an attachment from the instance's limit and from MAX_ENI.
	Unmanaged int
	// SettingUp counts ENIs of ours that are attached but not ready for pods yet (their device is
	// being set up); they are not in ENIs, yet they count as attached and as capacity.
	SettingUp int
	Assigned  map[netip.Addr]bool      // addresses held by pods
	Released  map[netip.Addr]time.Time // when each recently released address was freed
	Pending   Pending
	// Demand counts Add calls that found no free address since the last reconcile.
	Demand int
	// Waiting counts Add calls that found no free address recently (the agent's window) and
	// will be retried by the runtime: the pool is not shrunk below that many free addresses,
	// so an address fetched for a waiting pod is not released before the pod's retry takes it.
	Waiting int
	// Exhausted is when EC2 last said InsufficientFreeAddressesInSubnet, and Exhaustions how
	// many times in a row.
	Exhausted   time.Time
	Exhaustions int
	// NoCIDRBlocks is when EC2 last said InsufficientCidrBlocks (no free aligned /28).
	NoCIDRBlocks time.Time
	// OverSince is since when the pool has been above its target without a break: the agent
	// sets it when a plan first says Over and clears it when one does not. Zero: not above.
	OverSince time.Time
	// SubnetFree is how many addresses the node's subnet has free (EC2's
	// AvailableIpAddressCount, less what this node took since); it counts only when SubnetKnown.
	SubnetFree  int
	SubnetKnown bool
	// History is the demand and cloud latency the adaptive mode sizes the pool from.
	History History
}

// Kind names what an action does.
type Kind string

const (
	CreateENI        Kind = "create-eni"        // create an ENI with Count addresses (or prefixes) and attach it
	AssignIPs        Kind = "assign-ips"        // assign Count secondary addresses on ENI
	AssignPrefixes   Kind = "assign-prefixes"   // assign Count /28 prefixes on ENI
	UnassignIPs      Kind = "unassign-ips"      // give IPs on ENI back to the subnet
	UnassignPrefixes Kind = "unassign-prefixes" // give Prefixes on ENI back to the subnet
	FreeENI          Kind = "free-eni"          // detach and delete ENI
	Backoff          Kind = "backoff"           // do not grow before Until
)

// Action is one step towards the targets.
type Action struct {
	Kind  Kind
	ENI   string
	Count int
	// ByPrefix says a CreateENI's Count is /28 prefixes, not secondary addresses.
	ByPrefix bool
	IPs      []netip.Addr
	Prefixes []netip.Prefix
	Until    time.Time
}

// Plan is the policy's answer: actions to run concurrently, why, and when to look again.
type Plan struct {
	Actions []Action
	Reason  string
	// Wake is when the state changes by itself (a cooldown ends, a back-off expires, a release
	// delay is over); zero if never.
	Wake time.Time
	// Over says the pool holds more than its target, whether or not the release delay lets the
	// surplus go yet.
	Over bool
	// Short is how many addresses the pool is short of its target (or of the ADDs waiting),
	// whether or not the plan could ask for them: at a limit it is > 0 with no action.
	Short int
}
