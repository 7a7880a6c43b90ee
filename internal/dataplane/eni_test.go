package dataplane_test

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vpcnet/vpcnet/internal/dataplane"
	"github.com/vpcnet/vpcnet/internal/probe"
)

var eni1 = dataplane.ENI{MAC: eth1MAC, DeviceIndex: 1, PrimaryIP: eni1IP, Subnet: subnet2}

func txPackets(t *testing.T, tp *topo, dev string) uint64 {
	t.Helper()
	var n uint64
	do(t, tp.node, func() error {
		l, err := netlink.LinkByName(dev)
		if err != nil {
			return err
		}
		n = l.Attrs().Statistics.TxPackets
		return nil
	})
	return n
}

// A pod holding an address of a secondary ENI leaves through that ENI's table, not main.
func TestSecondaryENIPodLeavesThroughItsTable(t *testing.T) {
	tp := newTopo(t)
	for i := 0; i < 2; i++ { // twice: idempotent
		do(t, tp.node, func() error { return dataplane.SetupENI(eni1) })
	}
	table := dataplane.TableForDevice(eni1.DeviceIndex)
	p, podNS := tp.addPod(t, "on-eni1", netip.MustParseAddr("10.0.2.30"), table)
	tp.routeToPod(t, p.Addr, eni1IP)
	primary, primaryNS := tp.addPod(t, "on-eni0", netip.MustParseAddr("10.0.1.40"), 0)
	tp.routeToPod(t, primary.Addr, nodeIP)

	// The kernel's own answer: from the pod's veth, to a VPC host, out of eth1 via the router.
	do(t, tp.node, func() error {
		veth, err := netlink.LinkByName(p.HostVeth)
		if err != nil {
			return err
		}
		routes, err := netlink.RouteGetWithOptions(vpcHost.AsSlice(), &netlink.RouteGetOptions{
			IifIndex: veth.Attrs().Index, SrcAddr: p.Addr.AsSlice()})
		if err != nil {
			return err
		}
		eth1, _ := netlink.LinkByName("eth1")
		if len(routes) != 1 || routes[0].LinkIndex != eth1.Attrs().Index || !routes[0].Gw.Equal(net.IPv4(10, 0, 2, 1)) {
			t.Errorf("route from %s to %s = %v, want via 10.0.2.1 dev eth1 (index %d)", p.Addr, vpcHost, routes, eth1.Attrs().Index)
		}
		return nil
	})
	// And the packets: echo requests to the VPC host show up on eth1, not eth0.
	for _, w := range []struct {
		path string
	}{{podNS.Path()}, {primaryNS.Path()}} {
		if err := probe.WaitPing(w.path, vpcHost, 30*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	e0, e1 := txPackets(t, tp, "eth0"), txPackets(t, tp, "eth1")
	if n, err := probe.Ping(podNS.Path(), vpcHost, 5, 10*time.Second); err != nil || n != 5 {
		t.Fatalf("ping %s -> %s: %d/5 replies, %v", p.Addr, vpcHost, n, err)
	}
	if d0, d1 := txPackets(t, tp, "eth0")-e0, txPackets(t, tp, "eth1")-e1; d1 < 5 || d0 >= 5 {
		t.Fatalf("pod on eth1's address sent %d packets out of eth1 and %d out of eth0; want >=5 and <5", d1, d0)
	}
	// A pod on the primary ENI uses main and eth0.
	e0, e1 = txPackets(t, tp, "eth0"), txPackets(t, tp, "eth1")
	if n, err := probe.Ping(primaryNS.Path(), vpcHost, 5, 10*time.Second); err != nil || n != 5 {
		t.Fatalf("ping %s -> %s: %d/5 replies, %v", primary.Addr, vpcHost, n, err)
	}
	if d0, d1 := txPackets(t, tp, "eth0")-e0, txPackets(t, tp, "eth1")-e1; d0 < 5 || d1 >= 5 {
		t.Fatalf("pod on eth0's address sent %d packets out of eth0 and %d out of eth1", d0, d1)
	}

	do(t, tp.node, func() error { return dataplane.TeardownPod(p) })
	if left := leftovers(t, tp, p); len(left) > 0 {
		t.Fatalf("after pod teardown: %v", left)
	}
	for i := 0; i < 2; i++ {
		do(t, tp.node, func() error { return dataplane.TeardownENI(eni1) })
	}
	do(t, tp.node, func() error {
		routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: table}, netlink.RT_FILTER_TABLE)
		if err != nil || len(routes) > 0 {
			t.Errorf("table %d after TeardownENI: %v %v", table, routes, err)
		}
		rules, _ := netlink.RuleList(netlink.FAMILY_V4)
		for _, r := range rules {
			if r.Table == table {
				t.Errorf("rule left after TeardownENI: %v", r)
			}
		}
		eth1, _ := netlink.LinkByName("eth1")
		addrs, _ := netlink.AddrList(eth1, netlink.FAMILY_V4)
		if len(addrs) > 0 {
			t.Errorf("eth1 still has %v", addrs)
		}
		return nil
	})
}

func TestSetupENIErrors(t *testing.T) {
	tp := newTopo(t)
	do(t, tp.node, func() error {
		if err := dataplane.SetupENI(dataplane.ENI{MAC: "02:00:00:00:09:09", DeviceIndex: 2, PrimaryIP: eni1IP, Subnet: subnet2}); err == nil {
			t.Error("SetupENI with an unknown MAC succeeded")
		}
		if err := dataplane.SetupENI(dataplane.ENI{MAC: eth1MAC, DeviceIndex: 1, PrimaryIP: nodeIP, Subnet: subnet2}); err == nil {
			t.Error("SetupENI with a primary IP outside its subnet succeeded")
		}
		return nil
	})
}

// An ENI detached and replaced at the same device index: tearing the old one down late must not
// empty the table the new one now uses.
func TestTeardownENIKeepsSuccessorTable(t *testing.T) {
	tp := newTopo(t)
	do(t, tp.node, func() error { return dataplane.SetupENI(eni1) })
	// The old ENI's device goes away (detach); a new ENI arrives at device index 1.
	successor := dataplane.ENI{MAC: "02:00:00:00:02:10", DeviceIndex: 1, PrimaryIP: netip.MustParseAddr("10.0.2.11"), Subnet: subnet2}
	do(t, tp.node, func() error {
		old, err := netlink.LinkByName("eth1")
		if err != nil {
			return err
		}
		if err := netlink.LinkDel(old); err != nil {
			return err
		}
		hw, _ := net.ParseMAC(successor.MAC)
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth1", HardwareAddr: hw}, PeerName: "r1"}); err != nil {
			return err
		}
		if err := dataplane.SetupENI(successor); err != nil {
			return err
		}
		return dataplane.TeardownENI(eni1) // the old ENI's teardown, arriving late
	})
	do(t, tp.node, func() error {
		routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: 2}, netlink.RT_FILTER_TABLE)
		if err != nil || len(routes) != 2 {
			t.Errorf("table 2 after the old ENI's teardown: %v (%v), want the successor's 2 routes", routes, err)
		}
		rules, _ := netlink.RuleList(netlink.FAMILY_V4)
		n := 0
		for _, r := range rules {
			if r.Table == 2 {
				n++
				if r.Src == nil || !r.Src.IP.Equal(successor.PrimaryIP.AsSlice()) {
					t.Errorf("rule into table 2 left: %v", r)
				}
			}
		}
		if n != 1 {
			t.Errorf("%d rules into table 2, want the successor's 1", n)
		}
		return nil
	})
}
