package plan

import (
	"fmt"

	"github.com/vpcnet/vpcnet/internal/catalog"
)

// HostNetworkPods is the number of host-network pods the AWS max-pods formula allows for (the
// node agent and kube-proxy). They count against max pods but need no pod address.
const HostNetworkPods = 2

// What can stop a node's pool short of what its pods and warm target ask (Node.Limit).
const (
	PoolMaxENIs     = "max ENIs"                                 // every slot of every ENI is taken
	PoolMaxPods     = "max pods"                                 // the agent stops once it holds max pods
	PoolMinimumOnly = "MINIMUM_IP_TARGET without WARM_IP_TARGET" // the pool never grows past the minimum
)

// Node is what one node holds in one mode. Every node of a plan has the same shape.
type Node struct {
	Pods               int  `json:"pods"`               // pods per node that need a pod address
	PodsWithAddress    int  `json:"podsWithAddress"`    // of those, the ones that get one
	PodsWithoutAddress int  `json:"podsWithoutAddress"` // pods that cannot start: the pool is at a limit
	MaxPods            int  `json:"maxPods"`            // kubelet's limit, host-network pods included
	ExceedsMaxPods     bool `json:"exceedsMaxPods"`     // Pods + HostNetworkPods > MaxPods
	ENIs               int  `json:"enis"`               // ENIs attached, the primary ENI included
	MaxENIs            int  `json:"maxEnis"`
	Prefixes           int  `json:"prefixes"`  // /28 prefixes held (prefix mode)
	Addresses          int  `json:"addresses"` // pod addresses held: secondary IPs, or 16 per prefix
	Warm               int  `json:"warm"`      // Addresses - PodsWithAddress
	// SubnetAddresses is what the node takes from its subnet: one primary per ENI plus Addresses.
	SubnetAddresses int `json:"subnetAddresses"`
	// Rule says which warm setting sizes the pool; Limit what stopped it growing, if anything.
	Rule  string `json:"rule"`
	Limit string `json:"limit,omitempty"`
}

// node works out one node's shape in the given mode. The input is valid.
func node(in Input, mode Mode) Node {
	t := in.Type
	n := Node{Pods: in.PodsPerNode, MaxENIs: t.MaxENIs}
	n.MaxPods = maxPods(in, mode)
	n.ExceedsMaxPods = in.PodsPerNode+HostNetworkPods > n.MaxPods
	if mode == Overlay {
		n.ENIs, n.PodsWithAddress, n.SubnetAddresses = 1, in.PodsPerNode, 1
		n.Rule = "pod addresses come from the overlay range, not the subnet"
		return n
	}
	slots := t.SlotsPerENI()
	g := growth{perENI: slots, capacity: t.MaxENIs * slots}
	unit := 1
	if mode == Prefix {
		unit = catalog.PrefixSize
	}
	g.limit = ceilDiv(n.MaxPods, unit)
	g.start, g.target, g.step, n.Rule = targets(in.Warm, mode, in.PodsPerNode, slots)
	held, limit := g.held()
	n.Limit = limit
	n.ENIs = max(1, ceilDiv(held, slots))
	n.Addresses = held * unit
	if mode == Prefix {
		n.Prefixes = held
	}
	n.PodsWithAddress = min(in.PodsPerNode, n.Addresses)
	n.PodsWithoutAddress = in.PodsPerNode - n.PodsWithAddress
	if n.PodsWithoutAddress > 0 && n.Limit == "" {
		n.Limit = PoolMinimumOnly
	}
	n.Warm = n.Addresses - n.PodsWithAddress
	n.SubnetAddresses = n.ENIs + n.Addresses
	return n
}

// maxPods is the node's max pods: the override, else the AWS formula for the mode, capped at the
// recommended 110/250 in prefix mode (as EKS sets it) and for an overlay (the kubelet default).
func maxPods(in Input, mode Mode) int {
	if in.MaxPods > 0 {
		return in.MaxPods
	}
	m, err := catalog.MaxPods(in.Type, catalog.Mode{PrefixDelegation: mode == Prefix})
	if err != nil || mode == Overlay {
		m, _ = catalog.RecommendedCap(in.Type)
		return m
	}
	if mode == Prefix {
		return catalog.Capped(in.Type, m)
	}
	return m
}

// targets turns the warm settings into pool sizes in slots (one slot is one secondary address,
// or one /28 prefix in prefix mode), as the AWS agent decides them:
//
//	IP targets (WARM_IP_TARGET or MINIMUM_IP_TARGET set), T(p) = max(p + WARM_IP_TARGET, MINIMUM_IP_TARGET),
//	  or just MINIMUM_IP_TARGET when WARM_IP_TARGET is 0 (pods then never grow the pool):
//	  secondary: T(pods) addresses; prefix: ceil(T(pods) / 16) prefixes; growth one slot at a time
//	WARM_ENI_TARGET = W (secondary):   whole ENIs, ceil(pods / S) + W of them (W = 0: floor(pods / S) + 1)
//	WARM_PREFIX_TARGET = W (prefix):   ceil(pods / 16) + W prefixes (W = 0: floor(pods / 16) + 1)
//
// start is the pool of a node with no pods yet, target the pool once pods arrived, step how much
// the pool grows at a time as pods arrive (S = slots per ENI).
func targets(w Warm, mode Mode, pods, slots int) (start, target, step int, rule string) {
	if w.IPTargets() {
		t := func(p int) int { return max(p+w.IPTarget, w.MinimumIPTarget) }
		rule = fmt.Sprintf("WARM_IP_TARGET=%d, MINIMUM_IP_TARGET=%d: hold max(pods + %d, %d) addresses", w.IPTarget, w.MinimumIPTarget, w.IPTarget, w.MinimumIPTarget)
		if w.IPTarget == 0 {
			// The agent grows only while free addresses fall short of WARM_IP_TARGET; at 0 that
			// never happens, so the pool stays at the minimum whatever the pods need.
			t = func(int) int { return w.MinimumIPTarget }
			rule = fmt.Sprintf("MINIMUM_IP_TARGET=%d, WARM_IP_TARGET unset: hold %d addresses and never more", w.MinimumIPTarget, w.MinimumIPTarget)
		}
		if mode == Prefix {
			return ceilDiv(t(0), catalog.PrefixSize), ceilDiv(t(pods), catalog.PrefixSize), 1, rule + ", counted in whole /28s"
		}
		return t(0), t(pods), 1, rule
	}
	if mode == Prefix {
		wp := w.PrefixTarget
		rule = fmt.Sprintf("WARM_PREFIX_TARGET=%d: keep %d free /28 prefix%s", wp, wp, map[bool]string{true: "es"}[wp != 1])
		if wp == 0 {
			rule = "WARM_PREFIX_TARGET=0: add a /28 when the last free address is taken"
		}
		return warmUnits(0, catalog.PrefixSize, wp), warmUnits(pods, catalog.PrefixSize, wp), 1, rule
	}
	we := w.ENITarget
	rule = fmt.Sprintf("WARM_ENI_TARGET=%d: keep %d ENI%s worth (%d) of free addresses", we, we, map[bool]string{true: "'s", false: "s'"}[we == 1], we*slots)
	if we == 0 {
		rule = "WARM_ENI_TARGET=0: add an ENI when the last free address is taken"
	}
	return warmUnits(0, slots, we) * slots, warmUnits(pods, slots, we) * slots, slots, rule
}

// warmUnits is the number of units of size `size` the agent holds for `pods` addresses in use so
// that at least `warm` whole units' worth stay free: ceil(pods/size) + warm; with warm 0 it adds
// a unit only once no address is free: floor(pods/size) + 1.
func warmUnits(pods, size, warm int) int {
	if warm == 0 {
		return pods/size + 1
	}
	return ceilDiv(pods, size) + warm
}

// growth models how the agent grows a node's pool, in slots. When the node starts it fills
// toward start one ENI at a time (an allocation never spans ENIs); then, as pods arrive, it
// grows by step toward target. Before each allocation the agent stops if the pool already holds
// limit slots (max pods' worth), and it never goes past capacity (max ENIs x slots per ENI).
type growth struct {
	start, target, step int
	perENI, capacity    int
	limit               int
}

// held returns the slots held and, when a limit cut the pool short of its target, which one.
func (g growth) held() (int, string) {
	start := min(g.start, g.capacity, roundUp(g.limit, g.perENI))
	if start >= g.limit {
		return g.cut(start)
	}
	return g.cut(min(g.target, g.capacity, start+roundUp(g.limit-start, g.step)))
}

func (g growth) cut(held int) (int, string) {
	held = max(held, 0)
	switch {
	case held >= g.target:
		return held, ""
	case held == g.capacity:
		return held, PoolMaxENIs
	default:
		return held, PoolMaxPods
	}
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

func roundUp(a, b int) int { return ceilDiv(a, b) * b }
