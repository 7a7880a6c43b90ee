package fabric

import (
	"net/netip"
	"slices"
	"testing"
)

var (
	subnet = netip.MustParsePrefix("10.10.1.0/24")
	n1     = Node{Index: 1, NS: "vpcnet-x-node-1"}
	a      = netip.MustParseAddr
	p      = netip.MustParsePrefix
)

func attached(inst, eniID string, dev int, addrs ...netip.Addr) Event {
	return Event{Kind: ENIAttached, InstanceID: inst, ENIID: eniID, MAC: "02:00:00:00:00:0" + string(rune('0'+dev)),
		DeviceIndex: dev, Subnet: subnet, Addrs: addrs}
}

// render turns actions into strings, which read well in a table.
func render(acts []Action) []string {
	out := []string{}
	for _, x := range acts {
		out = append(out, x.String())
	}
	return out
}

func TestStateDecisions(t *testing.T) {
	tests := []struct {
		name  string
		setup func(s *State)
		do    func(s *State) []Action
		want  []string
	}{{
		name: "attach before bind waits for the node",
		do:   func(s *State) []Action { return s.Handle(attached("i-1", "eni-a", 0, a("10.10.1.10"))) },
		want: []string{},
	}, {
		name:  "bind builds the gateway, the port, its routes, the node's address and egress",
		setup: func(s *State) { s.Handle(attached("i-1", "eni-a", 0, a("10.10.1.10"))) },
		do:    func(s *State) []Action { return s.Bind("i-1", n1) },
		want: []string{
			"add-gateway 10.10.1.1/32",
			"add-port n1e0<->vpcnet-x-node-1/eth0 02:00:00:00:00:00",
			"add-route 10.10.1.10/32 dev n1e0",
			"configure-node vpcnet-x-node-1/eth0 10.10.1.10/24 via 10.10.1.1",
			"allow-egress 10.10.1.10/32",
		},
	}, {
		name:  "secondary ENI: port and routes, no node config, no egress, gateway once",
		setup: func(s *State) { s.Handle(attached("i-1", "eni-a", 0, a("10.10.1.10"))); s.Bind("i-1", n1) },
		do: func(s *State) []Action {
			e := attached("i-1", "eni-b", 2, a("10.10.1.20"), a("10.10.1.21"))
			e.Prefixes = []netip.Prefix{p("10.10.1.32/28")}
			return s.Handle(e)
		},
		want: []string{
			"add-port n1e2<->vpcnet-x-node-1/eth2 02:00:00:00:00:02",
			"add-route 10.10.1.20/32 dev n1e2",
			"add-route 10.10.1.21/32 dev n1e2",
			"add-route 10.10.1.32/28 dev n1e2",
		},
	}, {
		name:  "address assigned and unassigned on a bound ENI",
		setup: func(s *State) { s.Handle(attached("i-1", "eni-a", 0, a("10.10.1.10"))); s.Bind("i-1", n1) },
		do: func(s *State) []Action {
			acts := s.Handle(Event{Kind: AddressAssigned, InstanceID: "i-1", ENIID: "eni-a", Addr: a("10.10.1.11")})
			acts = append(acts, s.Handle(Event{Kind: AddressAssigned, InstanceID: "i-1", ENIID: "eni-a", Addr: a("10.10.1.11")})...)
			acts = append(acts, s.Handle(Event{Kind: PrefixAssigned, InstanceID: "i-1", ENIID: "eni-a", Prefix: p("10.10.1.48/28")})...)
			acts = append(acts, s.Handle(Event{Kind: AddressUnassigned, InstanceID: "i-1", ENIID: "eni-a", Addr: a("10.10.1.11")})...)
			return append(acts, s.Handle(Event{Kind: PrefixUnassigned, InstanceID: "i-1", ENIID: "eni-a", Prefix: p("10.10.1.48/28")})...)
		},
		want: []string{
			"add-route 10.10.1.11/32 dev n1e0",
			"add-route 10.10.1.48/28 dev n1e0",
			"del-route 10.10.1.11/32 dev n1e0",
			"del-route 10.10.1.48/28 dev n1e0",
		},
	}, {
		name: "assignment to an unattached ENI changes nothing, attach carries it",
		do: func(s *State) []Action {
			s.Bind("i-1", n1)
			acts := s.Handle(Event{Kind: AddressAssigned, ENIID: "eni-c", Addr: a("10.10.1.30")})
			return append(acts, s.Handle(attached("i-1", "eni-c", 1, a("10.10.1.29"), a("10.10.1.30")))...)
		},
		want: []string{
			"add-gateway 10.10.1.1/32",
			"add-port n1e1<->vpcnet-x-node-1/eth1 02:00:00:00:00:01",
			"add-route 10.10.1.29/32 dev n1e1",
			"add-route 10.10.1.30/32 dev n1e1",
		},
	}, {
		name:  "detach of the primary ENI: egress, routes, port",
		setup: func(s *State) { s.Handle(attached("i-1", "eni-a", 0, a("10.10.1.10"))); s.Bind("i-1", n1) },
		do: func(s *State) []Action {
			e := attached("i-1", "eni-a", 0, a("10.10.1.10"))
			e.Kind = ENIDetached
			return s.Handle(e)
		},
		want: []string{
			"deny-egress 10.10.1.10/32",
			"del-route 10.10.1.10/32 dev n1e0",
			"del-port n1e0<->vpcnet-x-node-1/eth0 02:00:00:00:00:00",
		},
	}, {
		name: "unbind takes every port down",
		setup: func(s *State) {
			s.Handle(attached("i-1", "eni-a", 0, a("10.10.1.10")))
			s.Handle(attached("i-1", "eni-b", 1, a("10.10.1.20")))
			s.Bind("i-1", n1)
		},
		do: func(s *State) []Action { return s.Unbind("i-1") },
		want: []string{
			"deny-egress 10.10.1.10/32",
			"del-route 10.10.1.10/32 dev n1e0",
			"del-port n1e0<->vpcnet-x-node-1/eth0 02:00:00:00:00:00",
			"del-route 10.10.1.20/32 dev n1e1",
			"del-port n1e1<->vpcnet-x-node-1/eth1 02:00:00:00:00:01",
		},
	}, {
		name: "events of unbound instances never act",
		do: func(s *State) []Action {
			acts := s.Handle(attached("i-9", "eni-z", 0, a("10.10.1.90")))
			return append(acts, s.Handle(Event{Kind: AddressAssigned, InstanceID: "i-9", ENIID: "eni-z", Addr: a("10.10.1.91")})...)
		},
		want: []string{},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := NewState()
			if tc.setup != nil {
				tc.setup(s)
			}
			got := render(tc.do(s))
			if !slices.Equal(got, tc.want) {
				t.Errorf("actions:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestOwner(t *testing.T) {
	s := NewState()
	e := attached("i-1", "eni-a", 0, a("10.10.1.10"), a("10.10.1.11"))
	e.Prefixes = []netip.Prefix{p("10.10.1.64/28")}
	s.Handle(e)
	s.Handle(attached("i-2", "eni-b", 0, a("10.10.1.12")))
	tests := []struct {
		addr string
		want string
		ok   bool
	}{{"10.10.1.10", "i-1", true}, {"10.10.1.11", "i-1", true}, {"10.10.1.70", "i-1", true},
		{"10.10.1.12", "i-2", true}, {"10.10.1.13", "", false}}
	for _, tc := range tests {
		got, ok := s.Owner(a(tc.addr))
		if got != tc.want || ok != tc.ok {
			t.Errorf("Owner(%s) = %q, %v; want %q, %v", tc.addr, got, ok, tc.want, tc.ok)
		}
	}
}

func TestGateway(t *testing.T) {
	for in, want := range map[string]string{"10.10.1.0/24": "10.10.1.1", "10.10.2.16/28": "10.10.2.17", "10.10.1.5/24": "10.10.1.1"} {
		if got := Gateway(p(in)); got != a(want) {
			t.Errorf("Gateway(%s) = %s, want %s", in, got, want)
		}
	}
}
