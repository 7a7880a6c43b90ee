package plan

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/vpcnet/vpcnet/internal/catalog"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func baseInput(t *testing.T) Input {
	return Input{
		VPC: pfx("10.10.0.0/16"), Subnets: []netip.Prefix{pfx("10.10.1.0/24")},
		Type: typ(t, "m5.large"), Nodes: 3, PodsPerNode: 20, Warm: DefaultWarm(),
	}
}

func TestInputErrors(t *testing.T) {
	xen := typ(t, "t2.micro")
	tests := []struct {
		name   string
		change func(*Input)
		field  string
		want   string
	}{
		{"no VPC", func(in *Input) { in.VPC = netip.Prefix{} }, FieldVPC, "no VPC CIDR"},
		{"IPv6 VPC", func(in *Input) { in.VPC = pfx("fd00::/56") }, FieldVPC, "not an IPv4 CIDR"},
		{"host bits", func(in *Input) { in.VPC = pfx("10.10.0.1/16") }, FieldVPC, "host bits set; the VPC is 10.10.0.0/16"},
		{"VPC too big", func(in *Input) { in.VPC = pfx("10.0.0.0/8") }, FieldVPC, "/16 to /28"},
		{"VPC too small", func(in *Input) { in.VPC = pfx("10.10.0.0/29") }, FieldVPC, "/16 to /28"},
		{"no subnet", func(in *Input) { in.Subnets = nil }, FieldSubnet, "at least one"},
		{"invalid subnet", func(in *Input) { in.Subnets = []netip.Prefix{{}} }, FieldSubnet, "no subnet CIDR"},
		{"subnet host bits", func(in *Input) { in.Subnets = []netip.Prefix{pfx("10.10.1.7/24")} }, FieldSubnet, "host bits set"},
		{"subnet too small", func(in *Input) { in.Subnets = []netip.Prefix{pfx("10.10.1.0/29")} }, FieldSubnet, "/16 to /28"},
		{"subnet too big", func(in *Input) { in.VPC = pfx("10.0.0.0/16"); in.Subnets = []netip.Prefix{pfx("10.0.0.0/15")} }, FieldSubnet, "/16 to /28"},
		{"subnet outside", func(in *Input) { in.Subnets = []netip.Prefix{pfx("10.20.1.0/24")} }, FieldSubnet, "10.20.1.0/24 is outside the VPC 10.10.0.0/16"},
		{"subnet larger than VPC", func(in *Input) { in.VPC = pfx("10.10.0.0/20"); in.Subnets = []netip.Prefix{pfx("10.10.0.0/19")} }, FieldSubnet, "outside the VPC"},
		{"IPv6 subnet", func(in *Input) { in.Subnets = []netip.Prefix{pfx("fd00::/64")} }, FieldSubnet, "not an IPv4"},
		{"overlap", func(in *Input) { in.Subnets = []netip.Prefix{pfx("10.10.1.0/24"), pfx("10.10.1.128/25")} }, FieldSubnet, "10.10.1.128/25 overlaps 10.10.1.0/24"},
		{"duplicate", func(in *Input) { in.Subnets = []netip.Prefix{pfx("10.10.1.0/24"), pfx("10.10.1.0/24")} }, FieldSubnet, "overlaps"},
		{"no type", func(in *Input) { in.Type = catalog.InstanceType{} }, FieldInstanceType, "no instance type"},
		{"type without slots", func(in *Input) { in.Type = catalog.InstanceType{Name: "x.one", MaxENIs: 2, IPv4PerENI: 1} }, FieldInstanceType, "no room for pod addresses"},
		{"zero nodes", func(in *Input) { in.Nodes = 0 }, FieldNodes, "expected 1 to"},
		{"negative nodes", func(in *Input) { in.Nodes = -3 }, FieldNodes, "-3"},
		{"too many nodes", func(in *Input) { in.Nodes = maxNodes + 1 }, FieldNodes, "expected 1 to"},
		{"negative pods", func(in *Input) { in.PodsPerNode = -1 }, FieldPodsPerNode, "expected 0 to"},
		{"too many pods", func(in *Input) { in.PodsPerNode = maxPodsInput + 1 }, FieldPodsPerNode, "expected 0 to"},
		{"negative warm ENI", func(in *Input) { in.Warm.ENITarget = -1 }, FieldWarmENITarget, "-1"},
		{"negative warm IP", func(in *Input) { in.Warm.IPTarget = -1 }, FieldWarmIPTarget, "-1"},
		{"negative minimum IP", func(in *Input) { in.Warm.MinimumIPTarget = -2 }, FieldMinimumIPTarget, "-2"},
		{"negative warm prefix", func(in *Input) { in.Warm.PrefixTarget = -1 }, FieldWarmPrefixTarget, "-1"},
		{"negative max pods", func(in *Input) { in.MaxPods = -1 }, FieldMaxPods, "-1"},
		{"prefix on xen", func(in *Input) { in.Type = xen; in.PrefixDelegation = true }, FieldPrefixDelegation, "t2.micro is not Nitro-based"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInput(t)
			tc.change(&in)
			_, err := Plan(in)
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Fatalf("Plan error = %v; want an *InputError", err)
			}
			if ie.Field != tc.field || !strings.Contains(ie.Msg, tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q (field %s); want field %s and %q on one line", err, ie.Field, tc.field, tc.want)
			}
		})
	}
	if _, err := Plan(baseInput(t)); err != nil {
		t.Fatalf("the base input is valid: %v", err)
	}
	// Edge sizes are fine.
	in := baseInput(t)
	in.VPC, in.Subnets = pfx("10.10.0.0/16"), []netip.Prefix{pfx("10.10.0.0/16")}
	if _, err := Plan(in); err != nil {
		t.Errorf("a /16 subnet filling a /16 VPC: %v", err)
	}
	in.VPC, in.Subnets = pfx("10.10.0.0/28"), []netip.Prefix{pfx("10.10.0.0/28")}
	if _, err := Plan(in); err != nil {
		t.Errorf("a /28 subnet: %v", err)
	}
}

// TestSecondarySubnet follows the example: 3 x m5.large, 20 pods each, one /24.
func TestSecondarySubnet(t *testing.T) {
	r, err := Plan(baseInput(t))
	if err != nil {
		t.Fatal(err)
	}
	m := r.Selected()
	if m.Mode != Secondary || r.Mode != Secondary {
		t.Fatalf("selected mode %s", m.Mode)
	}
	// Each node: ceil(20/9)+1 = 4 ENIs wanted, 3 allowed, all 27 slots filled; 3 primaries.
	n := m.Node
	if n.ENIs != 3 || n.Addresses != 27 || n.Warm != 7 || n.SubnetAddresses != 30 || n.MaxPods != 29 || n.ExceedsMaxPods {
		t.Fatalf("node %+v", n)
	}
	s := m.Subnets[0]
	want := Subnet{CIDR: pfx("10.10.1.0/24"), Size: 256, Reserved: 5, Nodes: 3, NodePrimaries: 3, ENIPrimaries: 6,
		PodAddresses: 60, WarmAddresses: 21, Free: 256 - 5 - 90, Utilisation: 35.9, Fits: true,
		MoreNodes: (256 - 5 - 90) / 30, Limit: LimitAddresses}
	if s != want {
		t.Fatalf("subnet\n got %+v\nwant %+v", s, want)
	}
	if s.Size != s.Reserved+s.NodePrimaries+s.ENIPrimaries+s.PodAddresses+s.WarmAddresses+s.Free {
		t.Fatalf("subnet does not add up: %+v", s)
	}
	h := m.Headroom
	if h.MoreNodes != 5 || h.RoundRobin != 5 || h.FirstExhausted != s.CIDR || h.RunsOut != LimitAddresses {
		t.Fatalf("headroom %+v", h)
	}
	if r.VPC.Size != 65536 || r.VPC.InSubnets != 256 || r.VPC.OutsideSubnets != 65280 {
		t.Fatalf("vpc %+v", r.VPC)
	}
}

func TestOverlay(t *testing.T) {
	r, _ := Plan(baseInput(t))
	m := r.For(Overlay)
	s := m.Subnets[0]
	if m.Node.SubnetAddresses != 1 || s.PodAddresses != 0 || s.Free != 256-5-3 || s.MoreNodes != 248 || m.Headroom.MoreNodes != 248 {
		t.Fatalf("overlay node %+v subnet %+v", m.Node, s)
	}
}

// TestPrefixAlignment: the first and the last /28 of a subnet hold no prefix; ENI primaries fill
// them first (12 + 15 single addresses), then whole /28s; a prefix needs a fully free /28.
func TestPrefixAlignment(t *testing.T) {
	m5 := typ(t, "m5.large")
	one := Node{ENIs: 1, Prefixes: 1, Addresses: 16, SubnetAddresses: 17}
	tests := []struct {
		name      string
		subnet    string
		shape     Node
		nodes     int
		free      int
		packed    int
		scattered int
		fits      bool
		more      int
		limit     string
	}{
		// /24: 16 blocks, 14 usable for prefixes.
		{"/24 empty", "10.10.1.0/24", one, 0, 251, 14, 14, true, 14, LimitBlocks},
		{"/24 3 nodes", "10.10.1.0/24", one, 3, 251 - 51, 11, 8, true, 11, LimitBlocks},
		{"/24 full", "10.10.1.0/24", one, 14, 251 - 14*17, 0, -14, true, 0, LimitBlocks},
		{"/24 over", "10.10.1.0/24", one, 15, 251 - 15*17, -1, -15, false, 0, LimitBlocks},
		// 28 primaries overflow the 27 edge addresses into one more /28.
		{"/24 primaries spill", "10.10.1.0/24", Node{ENIs: 28, SubnetAddresses: 28}, 1, 251 - 28, 13, 0, true, 7, LimitAddresses},
		// /28: one block, both first and last: 11 addresses and never a prefix.
		{"/28 singles only", "10.10.1.0/28", Node{ENIs: 1, SubnetAddresses: 1}, 11, 0, 0, 0, true, 0, LimitAddresses},
		{"/28 no prefix", "10.10.1.0/28", one, 1, 11 - 17, -1, -1, false, 0, LimitBlocks},
		// /27: two blocks, both edges: no prefix fits.
		{"/27 no prefix", "10.10.1.0/27", one, 1, 27 - 17, -1, -1, false, 0, LimitBlocks},
		// /26: 4 blocks, 2 usable.
		{"/26 two nodes", "10.10.1.0/26", one, 2, 59 - 34, 0, -2, true, 0, LimitBlocks},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := subnet(pfx(tc.subnet), tc.nodes, Prefix, tc.shape)
			if s.Free != max(tc.free, 0) || s.FreeBlocks != tc.packed || s.FreeBlocksIfScattered != tc.scattered || s.Fits != tc.fits || s.MoreNodes != tc.more || s.Limit != tc.limit {
				t.Fatalf("got free %d blocks %d/%d fits %v more %d limit %q; want %d %d/%d %v %d %q",
					s.Free, s.FreeBlocks, s.FreeBlocksIfScattered, s.Fits, s.MoreNodes, s.Limit,
					max(tc.free, 0), tc.packed, tc.scattered, tc.fits, tc.more, tc.limit)
			}
			if !tc.fits && tc.free < 0 && s.Shortfall != -tc.free {
				t.Fatalf("shortfall %d; want %d", s.Shortfall, -tc.free)
			}
		})
	}

	// Through Plan: 3 m5.large in prefix mode with WARM_PREFIX_TARGET=0, 20 pods each:
	// 2 prefixes and 1 ENI per node.
	in := baseInput(t)
	in.Type, in.PrefixDelegation, in.Warm.PrefixTarget = m5, true, 0
	r, err := Plan(in)
	if err != nil {
		t.Fatal(err)
	}
	m := r.Selected()
	s := m.Subnets[0]
	if r.Mode != Prefix || m.Node.Prefixes != 2 || s.Prefixes != 6 || s.FreeBlocks != 14-6 || s.FreeBlocksIfScattered != 14-3-6 {
		t.Fatalf("prefix plan: node %+v subnet %+v", m.Node, s)
	}
	// 4 more nodes take the 8 free /28s; with scattered primaries, 14 - n - 2n >= 0 allows 4 nodes.
	if m.Headroom.MoreNodes != 4 || m.Headroom.RunsOut != LimitBlocks || m.Headroom.MoreNodesIfScattered != 1 {
		t.Fatalf("prefix headroom %+v", m.Headroom)
	}
}

func TestNonNitroComparison(t *testing.T) {
	in := baseInput(t)
	in.Type, in.PodsPerNode = typ(t, "t2.micro"), 2
	r, err := Plan(in)
	if err != nil {
		t.Fatal(err)
	}
	if p := r.For(Prefix); !strings.Contains(p.Unavailable, "not Nitro") || p.Subnets != nil {
		t.Fatalf("prefix mode on t2.micro: %+v", p)
	}
	if s := r.Selected(); s.Unavailable != "" || s.Node.Addresses != 2 {
		t.Fatalf("secondary on t2.micro: %+v", s.Node)
	}
}

// TestRoundRobin: nodes spread over subnets in order; the headroom continues the round robin.
func TestRoundRobin(t *testing.T) {
	in := baseInput(t)
	in.Nodes = 5
	in.Subnets = []netip.Prefix{pfx("10.10.1.0/24"), pfx("10.10.2.0/26"), pfx("10.10.3.0/25")}
	r, err := Plan(in)
	if err != nil {
		t.Fatal(err)
	}
	m := r.Selected()
	// nodes 0,3 -> /24; 1,4 -> /26; 2 -> /25. Each node takes 30 addresses.
	wantNodes := []int{2, 2, 1}
	wantMore := []int{(251 - 60) / 30, 0, (123 - 30) / 30} // the /26 is already over
	for i, s := range m.Subnets {
		if s.Nodes != wantNodes[i] || s.MoreNodes != wantMore[i] {
			t.Errorf("subnet %s: nodes %d more %d; want %d %d", s.CIDR, s.Nodes, s.MoreNodes, wantNodes[i], wantMore[i])
		}
	}
	// The /26 (59 usable) cannot hold its two nodes (60).
	if s := m.Subnets[1]; s.Fits || s.Shortfall != 1 || s.Free != 0 || s.Utilisation <= 100 {
		t.Errorf("/26: %+v", s)
	}
	// Next new node (index 5) goes to subnet 5 mod 3 = 2 (the /25), then 0, then 1: the /26 is
	// full, so the round robin stops at the third new node.
	h := m.Headroom
	if h.RoundRobin != 2 || h.FirstExhausted != pfx("10.10.2.0/26") || h.MoreNodes != 6+0+3 {
		t.Errorf("headroom %+v", h)
	}
	for i := range 7 {
		got := 0
		for s := range 3 {
			got += nodesIn(i, 3, s)
		}
		if got != i {
			t.Errorf("nodesIn spreads %d nodes as %d", i, got)
		}
	}
}

// TestExtremes walks extreme valid inputs: nothing negative, everything adds up.
func TestExtremes(t *testing.T) {
	for _, name := range []string{"t3.nano", "t2.micro", "m5.24xlarge"} {
		for _, bits := range []int{16, 20, 28} {
			for _, pods := range []int{0, 1, 110, maxPodsInput} {
				in := Input{VPC: pfx("10.0.0.0/16"), Subnets: []netip.Prefix{netip.PrefixFrom(netip.MustParseAddr("10.0.0.0"), bits)},
					Type: typ(t, name), Nodes: 1000, PodsPerNode: pods, Warm: Warm{ENITarget: 3, IPTarget: 100, PrefixTarget: 5},
					PrefixDelegation: name != "t2.micro"}
				r, err := Plan(in)
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range r.Modes {
					for _, s := range m.Subnets {
						if s.Free < 0 || s.MoreNodes < 0 || (s.Fits && s.Free+s.Reserved+m.Node.SubnetAddresses*s.Nodes != s.Size) {
							t.Fatalf("%s /%d %d pods %s: %+v", name, bits, pods, m.Mode, s)
						}
					}
				}
			}
		}
	}
}
