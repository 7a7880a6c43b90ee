package invariant

import (
	"net/netip"
	"slices"
	"testing"
)

var (
	kA  = Key{"vpcnet", "ctr-a", "eth0"}
	kB  = Key{"vpcnet", "ctr-b", "eth0"}
	ip1 = netip.MustParseAddr("10.10.0.11")
	ip2 = netip.MustParseAddr("10.10.0.12")
)

// healthy is a node with two wired pods.
func healthy() Snapshot {
	return Snapshot{
		Allocations: []Allocation{{kA, ip1}, {kB, ip2}},
		Attachments: []Attachment{{kA, ip1, "/run/netns/a", "enia"}, {kB, ip2, "/run/netns/b", "enib"}},
		Interfaces: []Interface{
			{Netns: "/run/netns/a", Name: "eth0", Up: true, Addrs: []netip.Addr{ip1}, GatewayRoute: true, DefaultRoute: true},
			{Netns: "/run/netns/b", Name: "eth0", Up: true, Addrs: []netip.Addr{ip2}, GatewayRoute: true, DefaultRoute: true},
		},
		HostRoutes: []HostRoute{{ip1, "enia"}, {ip2, "enib"}},
	}
}

func rules(vs []Violation) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Rule)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name   string
		break_ func(*Snapshot)
		want   []string
	}{
		{"healthy", func(*Snapshot) {}, nil},
		{"empty node", func(s *Snapshot) { *s = Snapshot{} }, nil},
		{"released while the agent was away", func(s *Snapshot) {
			s.Attachments, s.Interfaces, s.HostRoutes = s.Attachments[1:], s.Interfaces[1:], s.HostRoutes[1:]
			s.Pending = []Key{kA}
		}, nil},
		{"agent holds an address nothing records", func(s *Snapshot) {
			s.Attachments, s.Interfaces, s.HostRoutes = s.Attachments[1:], s.Interfaces[1:], s.HostRoutes[1:]
		}, []string{RuleAllocNoRecord}},
		{"pod wired with an address the agent considers free", func(s *Snapshot) {
			s.Allocations = s.Allocations[1:]
		}, []string{RuleAddrNotAllocated, RuleRecordNotHeld}},
		{"same address on two pods", func(s *Snapshot) {
			s.Interfaces[1].Addrs = append(s.Interfaces[1].Addrs, ip1)
		}, []string{RuleAddrNotAllocated, RuleAddrOnTwoPods, RuleAllocManyIfaces}},
		{"agent holds one address twice", func(s *Snapshot) {
			s.Allocations[1].Addr = ip1
		}, []string{RuleAllocNoRecord, RuleDuplicateAlloc, RuleRecordNotHeld, RuleAddrNotAllocated}},
		{"two records of one address", func(s *Snapshot) {
			s.Attachments[1].Addr = ip1
		}, []string{RuleAllocNoRecord, RuleAddrNotAllocated, RuleDuplicateRecord, RulePodWithoutNetwork, RuleRecordNotHeld}},
		{"pod lost eth0", func(s *Snapshot) { s.Interfaces = s.Interfaces[:1] }, []string{RulePodWithoutNetwork}},
		{"pod lost its address", func(s *Snapshot) { s.Interfaces[1].Addrs = nil }, []string{RulePodWithoutNetwork}},
		{"pod lost its gateway route", func(s *Snapshot) { s.Interfaces[1].GatewayRoute = false }, []string{RulePodWithoutNetwork}},
		{"pod lost its default route", func(s *Snapshot) { s.Interfaces[1].DefaultRoute = false }, []string{RulePodWithoutNetwork}},
		{"pod interface down", func(s *Snapshot) { s.Interfaces[1].Up = false }, []string{RulePodWithoutNetwork}},
		{"host route gone", func(s *Snapshot) { s.HostRoutes = s.HostRoutes[:1] }, []string{RulePodWithoutNetwork}},
		{"host route through another veth", func(s *Snapshot) { s.HostRoutes[1].Dev = "enia" }, []string{RulePodWithoutNetwork}},
		{"pod namespace gone", func(s *Snapshot) {
			s.Interfaces = s.Interfaces[:1]
			s.MissingNetns = []string{"/run/netns/b"}
		}, []string{RulePodWithoutNetwork}},
		{"record and agent disagree on the address", func(s *Snapshot) {
			s.Allocations[1].Addr = netip.MustParseAddr("10.10.0.99")
		}, []string{RuleAllocNoRecord, RuleAddrNotAllocated, RuleRecordNotHeld}},
		{"acknowledged ADDs still held", func(s *Snapshot) { s.Acknowledged = []Allocation{{kA, ip1}, {kB, ip2}} }, nil},
		{"an acknowledged ADD lost by the agent", func(s *Snapshot) {
			s.Acknowledged = []Allocation{{kA, ip1}, {kB, ip2}}
			s.Allocations = s.Allocations[:1]
		}, []string{RuleAcknowledgedLost, RuleAddrNotAllocated, RuleRecordNotHeld}},
		{"an acknowledged ADD whose record is gone", func(s *Snapshot) {
			s.Acknowledged = []Allocation{{kA, ip1}}
			s.Attachments, s.Interfaces, s.HostRoutes = s.Attachments[1:], s.Interfaces[1:], s.HostRoutes[1:]
			s.Pending = []Key{kA}
		}, []string{RuleAcknowledgedLost}},
		{"a deleted sandbox still carries the address", func(s *Snapshot) {
			s.Interfaces = append(s.Interfaces, Interface{Netns: "/run/netns/old", Name: "eth0", Up: true, Addrs: []netip.Addr{ip2}})
		}, []string{RuleAddrNotAllocated, RuleAddrOnTwoPods, RuleAllocManyIfaces}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := healthy()
			tc.break_(&s)
			vs := Check(s)
			want := slices.Sorted(slices.Values(tc.want))
			if got := rules(vs); !slices.Equal(got, want) {
				t.Fatalf("rules broken = %v, want %v\n%v", got, want, Err(vs))
			}
			if (Err(vs) == nil) != (len(tc.want) == 0) {
				t.Fatalf("Err = %v with %d violations", Err(vs), len(vs))
			}
		})
	}
}
