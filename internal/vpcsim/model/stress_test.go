package model

import (
	"math/rand/v2"
	"net/netip"
	"testing"
)

// TestRandomOpsKeepIndexesConsistent applies random assigns and unassigns and checks after each
// that the subnet's used-address set matches the ENIs exactly and no address is on two ENIs.
func TestRandomOpsKeepIndexesConsistent(t *testing.T) {
	w := newWorld(t, "10.0.0.0/23")
	var enis []string
	for i := 0; i < 8; i++ {
		enis = append(enis, w.eni(t, AddrRequest{}).ID)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for step := 0; step < 5000; step++ {
		e := w.m.st.ENIs[enis[rng.IntN(len(enis))]]
		switch rng.IntN(4) {
		case 0:
			w.m.AssignPrivateIpAddresses(AssignPrivateIpAddressesInput{ENIID: e.ID, Addrs: AddrRequest{Count: 1 + rng.IntN(3)}})
		case 1:
			w.m.AssignPrivateIpAddresses(AssignPrivateIpAddressesInput{ENIID: e.ID, Addrs: AddrRequest{PrefixCount: 1}})
		case 2:
			if n := len(e.SecondaryIPs); n > 0 {
				k := 1 + rng.IntN(n)
				if _, err := w.m.UnassignPrivateIpAddresses(UnassignPrivateIpAddressesInput{ENIID: e.ID, Addrs: append([]netip.Addr(nil), e.SecondaryIPs[:k]...)}); err != nil {
					t.Fatal(err)
				}
			}
		case 3:
			if n := len(e.Prefixes); n > 0 {
				if _, err := w.m.UnassignPrivateIpAddresses(UnassignPrivateIpAddressesInput{ENIID: e.ID, Prefixes: append([]netip.Prefix(nil), e.Prefixes...)}); err != nil {
					t.Fatal(err)
				}
			}
		}
		checkConsistent(t, w.m, step)
	}
}

func checkConsistent(t *testing.T, m *Model, step int) {
	t.Helper()
	for sid, s := range m.st.Subnets {
		want := newAddrSet(s.CIDR)
		owner := map[netip.Addr]string{}
		claim := func(a netip.Addr, id string) {
			if o, ok := owner[a]; ok {
				t.Fatalf("step %d: %s on %s and %s", step, a, o, id)
			}
			owner[a] = id
			want.mark(a)
		}
		for id, e := range m.st.ENIs {
			if e.SubnetID != sid {
				continue
			}
			for _, a := range e.Addrs() {
				claim(a, id)
			}
			for _, p := range e.Prefixes {
				for a := p.Addr(); p.Contains(a); a = a.Next() {
					claim(a, id)
				}
			}
		}
		got := m.used[sid]
		for i := range want.bits {
			if want.bits[i] != got.bits[i] {
				t.Fatalf("step %d: used set word %d = %x, ENIs say %x", step, i, got.bits[i], want.bits[i])
			}
		}
		if want.free != got.free {
			t.Fatalf("step %d: free %d, want %d", step, got.free, want.free)
		}
	}
}
