package dataplane_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/vpcnet/vpcnet/internal/dataplane"
	"github.com/vpcnet/vpcnet/internal/probe"
)

// sourceSeen sends one datagram from the pod to dst and returns the source the router saw.
func sourceSeen(t *testing.T, tp *topo, podPath string, dst netip.Addr, port uint16) (netip.Addr, bool) {
	t.Helper()
	c, err := probe.ListenUDP(tp.router.Path(), netip.AddrPortFrom(dst, port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := 0; i < 10; i++ {
		if err := probe.SendUDP(podPath, netip.AddrPort{}, netip.AddrPortFrom(dst, port), []byte("x")); err != nil {
			t.Fatal(err)
		}
		if _, from, ok, err := probe.RecvUDP(c, 300*time.Millisecond); err != nil || ok {
			return from.Addr(), ok
		}
	}
	return netip.Addr{}, false
}

func TestSNAT(t *testing.T) {
	tp := newTopo(t)
	do(t, tp.node, func() error { return dataplane.SetupENI(eni1) })
	snat := dataplane.SNAT{PrimaryIP: nodeIP, VPCCIDRs: []netip.Prefix{vpcCIDR}, Exclude: []netip.Prefix{exclCIDR}}
	for i := 0; i < 2; i++ {
		do(t, tp.node, func() error { return dataplane.SetupSNAT(snat) })
	}
	// The pod is on the secondary ENI: outside the VPC it must still leave as the node.
	p, podNS := tp.addPod(t, "snat", netip.MustParseAddr("10.0.2.50"), dataplane.TableForDevice(1))
	tp.routeToPod(t, p.Addr, eni1IP)

	cases := []struct {
		dst  netip.Addr
		want netip.Addr
	}{
		{inetHost, nodeIP}, // internet: SNAT to the primary IP
		{vpcHost, p.Addr},  // inside the VPC: no SNAT
		{exclHost, p.Addr}, // excluded CIDR: no SNAT
	}
	for i, c := range cases {
		got, ok := sourceSeen(t, tp, podNS.Path(), c.dst, uint16(8000+i))
		if !ok || got != c.want {
			t.Errorf("pod -> %s seen from %v (arrived %v), want %s", c.dst, got, ok, c.want)
		}
	}

	// Many flows share the primary IP: each keeps its own source port (a second pod to the same
	// destination and port still gets through).
	q, qNS := tp.addPod(t, "snat-2", netip.MustParseAddr("10.0.1.51"), 0)
	tp.routeToPod(t, q.Addr, nodeIP)
	for i, path := range []string{podNS.Path(), qNS.Path(), podNS.Path()} {
		if got, ok := sourceSeen(t, tp, path, inetHost, 8053); !ok || got != nodeIP {
			t.Errorf("flow %d to %s:8053 seen from %v (arrived %v), want %s", i, inetHost, got, ok, nodeIP)
		}
	}

	do(t, tp.node, func() error { return dataplane.SetupSNAT(dataplane.SNAT{External: true}) })
	do(t, tp.node, func() error { return dataplane.SetupSNAT(dataplane.SNAT{External: true}) })
	if got, ok := sourceSeen(t, tp, podNS.Path(), inetHost, 8100); !ok || got != p.Addr {
		t.Errorf("with external SNAT, pod -> %s seen from %v (arrived %v), want %s", inetHost, got, ok, p.Addr)
	}
	do(t, tp.node, dataplane.Remove)
}
