package plan

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/vpcnet/vpcnet/internal/catalog"
)

// FuzzPlan feeds the planner arbitrary input: it must answer with an *InputError or a plan
// whose numbers add up, and never panic.
func FuzzPlan(f *testing.F) {
	f.Add("10.10.0.0/16", "10.10.1.0/24", uint8(4), 3, 20, 1, 0, 0, 0, 0, false)
	f.Add("10.10.0.0/16", "10.10.1.0/24,10.10.2.0/28", uint8(0), 100, 110, 0, 5, 10, 2, 58, true)
	f.Add("10.0.0.0/28", "10.0.0.0/28", uint8(7), 1, 0, 2, 0, 0, 0, 0, true)
	f.Add("192.168.0.0/20", "192.168.0.0/21,192.168.8.0/22,192.168.8.0/23", uint8(9), 7, 3, -1, 0, 0, 0, 0, false)
	names := catalog.Builtin().Names()
	f.Fuzz(func(t *testing.T, vpc, subnets string, typ uint8, nodes, pods, eni, ip, minIP, prefix, maxPods int, pd bool) {
		in := Input{Nodes: nodes, PodsPerNode: pods, PrefixDelegation: pd, MaxPods: maxPods,
			Warm: Warm{ENITarget: eni, IPTarget: ip, MinimumIPTarget: minIP, PrefixTarget: prefix}}
		in.Type, _ = catalog.Builtin().Lookup(names[int(typ)%len(names)])
		var err error
		if in.VPC, err = netip.ParsePrefix(vpc); err != nil {
			return
		}
		for _, s := range strings.Split(subnets, ",") {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return
			}
			in.Subnets = append(in.Subnets, p)
		}
		r, err := Plan(in)
		if err != nil {
			var ie *InputError
			if !errors.As(err, &ie) || ie.Field == "" || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q is not a one-line *InputError", err)
			}
			return
		}
		for _, m := range r.Modes {
			if m.Unavailable != "" {
				continue
			}
			n := m.Node
			if n.ENIs < 1 || n.ENIs > n.MaxENIs || n.PodsWithAddress+n.PodsWithoutAddress != n.Pods || n.Warm < 0 {
				t.Fatalf("%s node %+v", m.Mode, n)
			}
			placed := 0
			for _, s := range m.Subnets {
				placed += s.Nodes
				if s.Free < 0 || s.MoreNodes < 0 || s.Free != max(s.Size-s.Reserved-s.Nodes*n.SubnetAddresses, 0) {
					t.Fatalf("%s subnet %+v", m.Mode, s)
				}
			}
			if placed != in.Nodes || m.Headroom.RoundRobin > m.Headroom.MoreNodes {
				t.Fatalf("%s: %d of %d nodes placed, headroom %+v", m.Mode, placed, in.Nodes, m.Headroom)
			}
		}
	})
}
