package plan

import (
	"fmt"
	"net/netip"
)

// Mode is how pods get their addresses.
type Mode string

// The modes the planner compares.
const (
	Secondary Mode = "secondary-ip" // one secondary private IP per pod
	Prefix    Mode = "prefix"       // /28 prefixes on the ENIs, 16 pod addresses each
	Overlay   Mode = "overlay"      // pods from a separate range; the subnet holds only nodes
)

// Modes lists every mode in the order the planner reports them.
var Modes = []Mode{Secondary, Prefix, Overlay}

// Result is the plan.
type Result struct {
	VPC          VPC          `json:"vpc"`
	InstanceType TypeInfo     `json:"instanceType"`
	Nodes        int          `json:"nodes"`
	PodsPerNode  int          `json:"podsPerNode"`
	Warm         Warm         `json:"warm"`
	Mode         Mode         `json:"mode"` // the mode asked for; its ModeResult is the detailed one
	Modes        []ModeResult `json:"modes"`
}

// VPC sums up the VPC's address space.
type VPC struct {
	CIDR           netip.Prefix `json:"cidr"`
	Size           int          `json:"size"`
	InSubnets      int          `json:"inSubnets"`
	OutsideSubnets int          `json:"outsideSubnets"` // room to add or grow subnets
}

// TypeInfo is the instance type's limits, as the plan used them.
type TypeInfo struct {
	Name       string `json:"name"`
	MaxENIs    int    `json:"maxEnis"`
	IPv4PerENI int    `json:"ipv4PerEni"`
	Nitro      bool   `json:"nitro"`
	VCPUs      int    `json:"vcpus,omitempty"`
}

// ModeResult is the whole cluster under one mode.
type ModeResult struct {
	Mode Mode `json:"mode"`
	// Unavailable says why the mode cannot be used (prefix mode on a non-Nitro type); the other
	// fields are then empty.
	Unavailable string   `json:"unavailable,omitempty"`
	Node        Node     `json:"node"`
	Subnets     []Subnet `json:"subnets"`
	Headroom    Headroom `json:"headroom"`
	// SubnetAddresses is what the cluster takes from its subnets: primaries and pod addresses.
	SubnetAddresses int `json:"subnetAddresses"`
}

// Headroom is how the cluster can grow.
type Headroom struct {
	// MoreNodes is how many more nodes of this shape fit when each goes wherever there is room.
	MoreNodes int `json:"moreNodes"`
	// RoundRobin is how many more nodes fit while they keep spreading round robin, before the
	// first one finds its subnet full; FirstExhausted is that subnet, RunsOut what it lacks.
	RoundRobin     int          `json:"roundRobin"`
	FirstExhausted netip.Prefix `json:"firstExhausted"`
	RunsOut        string       `json:"runsOut"`
	// MoreNodesIfScattered is MoreNodes when every ENI primary takes a /28 of its own (prefix mode).
	MoreNodesIfScattered int `json:"moreNodesIfScattered,omitempty"`
}

// Plan checks the input and works out the plan. Errors are *InputError.
func Plan(in Input) (Result, error) {
	if err := in.Validate(); err != nil {
		return Result{}, err
	}
	r := Result{
		VPC: vpc(in),
		InstanceType: TypeInfo{Name: in.Type.Name, MaxENIs: in.Type.MaxENIs, IPv4PerENI: in.Type.IPv4PerENI,
			Nitro: in.Type.Nitro(), VCPUs: in.Type.VCPUs},
		Nodes: in.Nodes, PodsPerNode: in.PodsPerNode, Warm: in.Warm, Mode: Secondary,
	}
	if in.PrefixDelegation {
		r.Mode = Prefix
	}
	for _, m := range Modes {
		r.Modes = append(r.Modes, planMode(in, m))
	}
	return r, nil
}

// Selected returns the result for the mode asked for.
func (r Result) Selected() ModeResult { return r.For(r.Mode) }

// For returns the result for mode m.
func (r Result) For(m Mode) ModeResult {
	for _, mr := range r.Modes {
		if mr.Mode == m {
			return mr
		}
	}
	return ModeResult{Mode: m, Unavailable: "not planned"}
}

func vpc(in Input) VPC {
	v := VPC{CIDR: in.VPC, Size: 1 << (32 - in.VPC.Bits())}
	for _, s := range in.Subnets {
		v.InSubnets += 1 << (32 - s.Bits())
	}
	v.OutsideSubnets = v.Size - v.InSubnets
	return v
}

func planMode(in Input, m Mode) ModeResult {
	mr := ModeResult{Mode: m}
	if m == Prefix && !in.Type.Nitro() {
		mr.Unavailable = fmt.Sprintf("%s is not Nitro-based: no prefix delegation", in.Type.Name)
		return mr
	}
	mr.Node = node(in, m)
	for i, p := range in.Subnets {
		s := subnet(p, nodesIn(in.Nodes, len(in.Subnets), i), m, mr.Node)
		mr.Subnets = append(mr.Subnets, s)
		mr.SubnetAddresses += s.Nodes * mr.Node.SubnetAddresses
	}
	mr.Headroom = headroom(in, m, mr)
	return mr
}

// nodesIn is how many of `nodes` round-robin nodes land in subnet i of n: node j goes to j mod n.
func nodesIn(nodes, n, i int) int {
	c := nodes / n
	if i < nodes%n {
		c++
	}
	return c
}

// headroom sums what the subnets take and finds which one fills first when new nodes continue
// the round robin: new node r (0-based) goes to subnet (Nodes + r) mod n, so subnet i, which
// takes k more, turns away new node ((i - Nodes) mod n) + k*n.
func headroom(in Input, m Mode, mr ModeResult) Headroom {
	n := len(in.Subnets)
	h := Headroom{RoundRobin: -1}
	for i, s := range mr.Subnets {
		h.MoreNodes += s.MoreNodes
		first := ((i-in.Nodes)%n + n) % n
		if at := first + s.MoreNodes*n; h.RoundRobin < 0 || at < h.RoundRobin {
			h.RoundRobin, h.FirstExhausted, h.RunsOut = at, s.CIDR, s.Limit
		}
		if m == Prefix {
			u := newUsage(s.CIDR, m, mr.Node)
			more, _ := u.more(s.Nodes, true)
			h.MoreNodesIfScattered += more
		}
	}
	return h
}
