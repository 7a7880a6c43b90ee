package plan

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/vpcnet/vpcnet/internal/catalog"
	"github.com/vpcnet/vpcnet/internal/ipam"
)

// HostNetworkPods is the number of host-network pods the AWS max-pods formula allows for (the
// node agent and kube-proxy). They count against max pods but need no pod address.
const HostNetworkPods = 2

// What can stop a node's pool short of what its pods and warm target ask (Node.Limit).
const (
	PoolMaxENIs = "max ENIs" // every slot of every ENI the agent may use is taken
	PoolMaxPods = "max pods" // kubelet admits no more pods: max pods less the host-network pods
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

// node works out one node's shape in the given mode by running the agent's own policy
// (ipam.Decide) step by step, as vpcnetd would: the node starts and fills its pool, then its
// pods arrive one at a time, each ADD taking the lowest free address and, when none is free,
// making the pool grow; then the pool settles (the release delay over). The input is valid.
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
	n.Rule = rule(in.Warm, mode, t.SlotsPerENI())
	// kubelet admits pods up to its max pods, the host-network pods included; only those reach
	// the agent.
	admitted := min(in.PodsPerNode, max(n.MaxPods-HostNetworkPods, 0))
	r := runAgent(t, AgentSettings(in, mode), admitted)
	n.ENIs, n.Addresses, n.Prefixes = r.enis, r.addresses, r.prefixes
	n.PodsWithAddress = r.pods
	n.PodsWithoutAddress = in.PodsPerNode - r.pods
	n.Limit = r.limit
	if admitted < in.PodsPerNode && n.Limit == "" {
		n.Limit = PoolMaxPods
	}
	n.Warm = n.Addresses - n.PodsWithAddress
	n.SubnetAddresses = n.ENIs + n.Addresses
	return n
}

// AgentSettings are the vpcnetd settings the plan assumes for its nodes in mode: the warm
// settings given and prefix delegation in prefix mode; MAX_PODS and MAX_ENI unset. Timing
// settings do not change the steady state: the plan is the state once every release delay and
// cooldown is over.
func AgentSettings(in Input, mode Mode) ipam.Settings {
	return ipam.Settings{
		WarmENITarget:    in.Warm.ENITarget,
		WarmIPTarget:     in.Warm.IPTarget,
		MinimumIPTarget:  in.Warm.MinimumIPTarget,
		WarmPrefixTarget: in.Warm.PrefixTarget,
		PrefixDelegation: mode == Prefix,
	}
}

// maxPods is the node's max pods (kubelet's): the override, else the node's pod-address
// capacity (ipam.CapacityOf, which for an empty node is the AWS formula's ENIs x slots) plus
// the host-network pods, capped at the recommended 110/250 in prefix mode (as EKS sets it); for
// an overlay the kubelet default.
func maxPods(in Input, mode Mode) int {
	if in.MaxPods > 0 {
		return in.MaxPods
	}
	if mode == Overlay || (mode == Prefix && !in.Type.Nitro()) {
		m, _ := catalog.RecommendedCap(in.Type)
		return m
	}
	m := KubeletMaxPods(in.Type, ipam.Settings{PrefixDelegation: mode == Prefix}, false, HostNetworkPods)
	if mode == Prefix {
		return catalog.Capped(in.Type, m)
	}
	return m
}

// KubeletMaxPods is kubelet's maxPods for a node of type t whose agent runs with settings st:
// the pods it can give a VPC address (PodCapacity) plus hostNetwork pods, which need none.
// EKS's formula takes hostNetwork = 2 (aws-node and kube-proxy).
func KubeletMaxPods(t catalog.InstanceType, st ipam.Settings, customNetworking bool, hostNetwork int) int {
	return PodCapacity(t, st, customNetworking) + hostNetwork
}

// PodCapacity is how many pods a fresh node of type t can give a VPC address, by the agent's
// own capacity function (ipam.CapacityOf): the ENIs it may manage (the type's limit or MAX_ENI;
// with custom networking the primary ENI carries no pods) x their slots, x16 in prefix mode,
// capped by MAX_PODS. It equals the agent's status maxPods on such a node.
func PodCapacity(t catalog.InstanceType, st ipam.Settings, customNetworking bool) int {
	s := ipam.State{Settings: st, Limits: ipam.Limits{MaxENIs: t.MaxENIs, IPv4PerENI: t.IPv4PerENI}}
	if customNetworking {
		s.Unmanaged = 1
	}
	return ipam.CapacityOf(s).Pods
}

// rule says in words which warm setting sizes the pool, with the AWS VPC CNI's names.
func rule(w Warm, mode Mode, slots int) string {
	switch {
	case w.IPTargets():
		r := fmt.Sprintf("WARM_IP_TARGET=%d, MINIMUM_IP_TARGET=%d: keep %d free and hold at least %d addresses", w.IPTarget, w.MinimumIPTarget, w.IPTarget, w.MinimumIPTarget)
		if w.IPTarget == 0 {
			r += "; each pod beyond the minimum grows the pool as it arrives"
		}
		if mode == Prefix {
			r += ", counted in whole /28s"
		}
		return r
	case mode == Prefix:
		if w.PrefixTarget == 0 {
			return "WARM_PREFIX_TARGET=0: add a /28 when the last free address is taken"
		}
		return fmt.Sprintf("WARM_PREFIX_TARGET=%d: keep %d free /28 prefix%s", w.PrefixTarget, w.PrefixTarget, map[bool]string{true: "es"}[w.PrefixTarget != 1])
	case w.ENITarget == 0:
		return "WARM_ENI_TARGET=0: no warm pool; each pod that finds no free address grows it"
	}
	return fmt.Sprintf("WARM_ENI_TARGET=%d: keep %d ENI%s worth (%d) of free addresses", w.ENITarget, w.ENITarget, map[bool]string{true: "'s", false: "s'"}[w.ENITarget == 1], w.ENITarget*slots)
}

// agentRun is what runAgent found: the steady-state pool with the pods placed.
type agentRun struct {
	enis, addresses, prefixes int
	pods                      int    // pods that got an address
	limit                     string // PoolMaxENIs or PoolMaxPods when one held the pool short
}

// runAgent runs ipam.Decide on one node of type t, applying each plan's actions as EC2 would
// (at once and in full), while pods pods arrive. Pods take the lowest free addresses; those that
// find none wait, counted as the policy's Demand, while the pool grows, as ADDs answered
// try-again do. The subnet is taken to have room; what the nodes take from it is counted per
// subnet afterwards.
func runAgent(t catalog.InstanceType, st ipam.Settings, pods int) agentRun {
	sim := newNodeSim(t, st)
	sim.run(0) // the node starts and fills its pool before pods arrive
	waiting, last := sim.run(pods)
	c := ipam.Count(sim.s)
	r := agentRun{enis: len(sim.s.ENIs), addresses: c.Total, prefixes: c.Prefixes, pods: pods - waiting}
	if waiting > 0 || last.Short > 0 {
		r.limit = PoolMaxENIs
	}
	return r
}

// nodeSim is one node's pool with made-up addresses: secondary addresses count up from
// 0.0.0.1, prefixes from 128.0.0.0/28, so none repeats.
type nodeSim struct {
	s       ipam.State
	nextIP  uint32
	nextPfx uint32
}

func newNodeSim(t catalog.InstanceType, st ipam.Settings) *nodeSim {
	return &nodeSim{
		s: ipam.State{
			Now:         time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
			Settings:    st,
			Limits:      ipam.Limits{MaxENIs: t.MaxENIs, IPv4PerENI: t.IPv4PerENI},
			ENIs:        []ipam.ENI{{ID: "eni-0"}},
			Assigned:    map[netip.Addr]bool{},
			Released:    map[netip.Addr]time.Time{},
			SubnetFree:  1 << 24,
			SubnetKnown: true,
		},
		nextIP: 1, nextPfx: 1 << 31,
	}
}

// run lets arrive pods take addresses and applies the policy's plans until one has nothing to
// do. Before each plan the waiting pods take what is free (an ADD retried after try-again), and
// those still waiting are the plan's Demand. It returns how many still wait (the node is full)
// and the last plan.
func (n *nodeSim) run(arrive int) (waiting int, last ipam.Plan) {
	waiting = arrive
	// Each plan moves the pool towards its target, so a few dozen plans settle any node; the
	// bound only guards against a policy change that would oscillate.
	for range 100000 {
		waiting -= n.place(waiting)
		n.s.Demand = waiting
		last = ipam.Decide(n.s) // ReleaseDelay 0: the steady state, once the delay is over
		acted := false
		for _, a := range last.Actions {
			acted = n.apply(a) || acted
		}
		if !acted {
			break
		}
	}
	n.s.Demand = 0
	return waiting, last
}

// apply carries out one action as EC2 would; it reports whether anything changed.
func (n *nodeSim) apply(a ipam.Action) bool {
	i := slices.IndexFunc(n.s.ENIs, func(e ipam.ENI) bool { return e.ID == a.ENI })
	switch a.Kind {
	case ipam.CreateENI:
		e := ipam.ENI{ID: fmt.Sprint("eni-", len(n.s.ENIs)), DeviceIndex: len(n.s.ENIs)}
		n.fill(&e, a.Count, a.ByPrefix)
		n.s.ENIs = append(n.s.ENIs, e)
	case ipam.AssignIPs, ipam.AssignPrefixes:
		n.fill(&n.s.ENIs[i], a.Count, a.Kind == ipam.AssignPrefixes)
	case ipam.UnassignIPs:
		n.s.ENIs[i].IPs = slices.DeleteFunc(n.s.ENIs[i].IPs, func(x netip.Addr) bool { return slices.Contains(a.IPs, x) })
	case ipam.UnassignPrefixes:
		n.s.ENIs[i].Prefixes = slices.DeleteFunc(n.s.ENIs[i].Prefixes, func(x netip.Prefix) bool { return slices.Contains(a.Prefixes, x) })
	case ipam.FreeENI:
		n.s.ENIs = slices.Delete(n.s.ENIs, i, i+1)
	default:
		return false // a back-off: never planned here, the subnet has room
	}
	return true
}

func (n *nodeSim) fill(e *ipam.ENI, count int, prefixes bool) {
	for range count {
		if prefixes {
			e.Prefixes = append(e.Prefixes, netip.PrefixFrom(addr4(n.nextPfx), 28))
			n.nextPfx += 16
		} else {
			e.IPs = append(e.IPs, addr4(n.nextIP))
			n.nextIP++
		}
	}
}

// place gives up to n pods the lowest free addresses, as the agent's ADD does, never more than
// the node's capacity (MAX_PODS included); it returns how many got one.
func (n *nodeSim) place(want int) int {
	room := ipam.CapacityOf(n.s).Pods - ipam.Count(n.s).Assigned
	got := 0
	for _, e := range n.s.ENIs {
		for _, a := range e.Addrs() {
			if got == want || got >= room {
				return got
			}
			if n.s.Usable(a) {
				n.s.Assigned[a] = true
				got++
			}
		}
	}
	return got
}

func addr4(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }
