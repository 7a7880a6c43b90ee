package dataplane_test

import (
	"net"
	"net/netip"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"github.com/vpcnet/vpcnet/internal/dataplane"
	"github.com/vpcnet/vpcnet/internal/testenv"
)

// topo is a node namespace wired to a router namespace that stands for the VPC fabric:
//
//	pod ns (eth0) <-veth-> node ns (eniXXXX ... eth0 10.0.1.10/24, eth1 10.0.2.10/24)
//	node eth0 <-> router r0 10.0.1.1/24; node eth1 <-> router r1 10.0.2.1/24
//	router lo: 10.0.200.1 (another VPC host), 203.0.113.1 (internet), 198.51.100.1 (excluded)
type topo struct {
	node, router ns.NetNS
}

var (
	nodeIP    = netip.MustParseAddr("10.0.1.10")
	subnet1   = netip.MustParsePrefix("10.0.1.0/24")
	eni1IP    = netip.MustParseAddr("10.0.2.10")
	subnet2   = netip.MustParsePrefix("10.0.2.0/24")
	vpcCIDR   = netip.MustParsePrefix("10.0.0.0/16")
	vpcHost   = netip.MustParseAddr("10.0.200.1")
	inetHost  = netip.MustParseAddr("203.0.113.1")
	exclHost  = netip.MustParseAddr("198.51.100.1")
	eth0MAC   = "02:00:00:00:00:10"
	eth1MAC   = "02:00:00:00:01:10"
	exclCIDR  = netip.MustParsePrefix("198.51.100.0/24")
	gatewayV4 = net.IPv4(10, 0, 1, 1)
)

func do(t *testing.T, h ns.NetNS, f func() error) {
	t.Helper()
	if err := h.Do(func(ns.NetNS) error { return f() }); err != nil {
		t.Fatal(err)
	}
}

func newTopo(t *testing.T) *topo {
	t.Helper()
	tp := &topo{node: testenv.NewNS(t), router: testenv.NewNS(t)}
	do(t, tp.node, func() error {
		for i, mac := range []string{eth0MAC, eth1MAC} {
			hw, _ := net.ParseMAC(mac)
			v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: []string{"eth0", "eth1"}[i], HardwareAddr: hw},
				PeerName: []string{"r0", "r1"}[i], PeerNamespace: netlink.NsFd(int(tp.router.Fd()))}
			if err := netlink.LinkAdd(v); err != nil {
				return err
			}
		}
		if err := dataplane.SetupENI(dataplane.ENI{MAC: eth0MAC, DeviceIndex: 0, PrimaryIP: nodeIP, Subnet: subnet1}); err != nil {
			return err
		}
		eth0, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		return netlink.RouteAdd(&netlink.Route{LinkIndex: eth0.Attrs().Index, Gw: gatewayV4})
	})
	do(t, tp.router, func() error {
		for i, a := range []string{"10.0.1.1/24", "10.0.2.1/24"} {
			l, err := netlink.LinkByName([]string{"r0", "r1"}[i])
			if err != nil {
				return err
			}
			_ = netlink.LinkSetMTU(l, dataplane.DefaultMTU)
			addr, _ := netlink.ParseAddr(a)
			if err := netlink.AddrAdd(l, addr); err != nil {
				return err
			}
			if err := netlink.LinkSetUp(l); err != nil {
				return err
			}
		}
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		for _, a := range []netip.Addr{vpcHost, inetHost, exclHost} {
			if err := netlink.AddrAdd(lo, &netlink.Addr{IPNet: &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(32, 32)}}); err != nil {
				return err
			}
		}
		return nil
	})
	return tp
}

// addPod sets up a pod namespace through dataplane.SetupPod run in the node namespace.
func (tp *topo) addPod(t *testing.T, name string, ip netip.Addr, table int) (dataplane.Pod, ns.NetNS) {
	t.Helper()
	podNS := testenv.NewNS(t)
	p := dataplane.Pod{Netns: podNS.Path(), IfName: "eth0", HostVeth: dataplane.VethName("eni", "default", name), Addr: ip, Table: table}
	do(t, tp.node, func() error { _, err := dataplane.SetupPod(p); return err })
	// The router reaches pods of the second subnet through r1 (the fabric's job in the lab).
	return p, podNS
}

// leftovers lists what of pod p is still in the node namespace.
func leftovers(t *testing.T, tp *topo, p dataplane.Pod) []string {
	t.Helper()
	var left []string
	do(t, tp.node, func() error {
		if _, err := netlink.LinkByName(p.HostVeth); err == nil {
			left = append(left, "veth "+p.HostVeth)
		}
		routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: 254}, netlink.RT_FILTER_TABLE)
		if err != nil {
			return err
		}
		for _, r := range routes {
			if r.Dst != nil && r.Dst.IP.Equal(p.Addr.AsSlice()) {
				left = append(left, "route "+r.String())
			}
		}
		rules, err := netlink.RuleList(netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		for _, r := range rules {
			for _, n := range []*net.IPNet{r.Src, r.Dst} {
				if n != nil && n.IP.Equal(p.Addr.AsSlice()) {
					left = append(left, "rule "+r.String())
				}
			}
		}
		return nil
	})
	return left
}

// routeToPod makes the router deliver ip to the node through the ENI whose primary address is via.
func (tp *topo) routeToPod(t *testing.T, ip, via netip.Addr) {
	t.Helper()
	do(t, tp.router, func() error {
		return netlink.RouteReplace(&netlink.Route{Dst: &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(32, 32)}, Gw: via.AsSlice()})
	})
}
