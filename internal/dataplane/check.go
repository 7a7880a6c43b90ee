package dataplane

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// CheckPod confirms that everything SetupPod made is still in place, and every node setting the
// pod's path depends on, from the node's namespace. The error lists every problem found, each
// naming the object ("node sysctl net.ipv4.ip_forward is 0, want 1; pod eth0 has no route
// 169.254.1.1 scope link"):
//
//   - node: net.ipv4.ip_forward = 1; forwarding = 1 on the host veth; for a pod on a secondary
//     ENI, table p.Table has a default route through a device that is up and whose rp_filter is
//     not strict (1), as SetupENI sets it;
//   - host veth: exists, is a veth, carries p.Owner as alias (when set), is up (admin and
//     operational), has MTU p.MTU; route `<ip> dev <veth> scope link` in main; rule 512 (and
//     1536 for a secondary ENI); the nftables anti-spoofing rule for the veth prefix;
//   - pod: p.IfName is the peer of the host veth, is up with MTU p.MTU, holds <ip>/32, has
//     `169.254.1.1 scope link`, `default via 169.254.1.1` and the permanent neighbour entry for
//     169.254.1.1 with the host veth's MAC.
func CheckPod(p Pod) error {
	if err := p.validate(); err != nil {
		return err
	}
	var bad []string
	fail := func(format string, a ...any) { bad = append(bad, fmt.Sprintf(format, a...)) }
	result := func() error {
		if len(bad) == 0 {
			return nil
		}
		return errors.New(strings.Join(bad, "; "))
	}

	if v, err := readSysctl("net/ipv4/ip_forward"); err != nil || v != "1" {
		fail("node sysctl net.ipv4.ip_forward is %q, want 1 (%v)", v, err)
	}
	host, err := netlink.LinkByName(p.HostVeth)
	if err != nil {
		fail("host veth %s: %v", p.HostVeth, err)
		return result()
	}
	checkHost(p, host, fail)
	if p.Table != 0 {
		checkENITable(p.Table, fail)
	}
	podNS, err := ns.GetNS(p.Netns)
	if err != nil {
		fail("pod netns %s: %v", p.Netns, err)
		return result()
	}
	defer podNS.Close()
	if err := podNS.Do(func(ns.NetNS) error { checkPodSide(p, host, fail); return nil }); err != nil {
		fail("pod netns %s: %v", p.Netns, err)
	}
	return result()
}

func checkHost(p Pod, host netlink.Link, fail func(string, ...any)) {
	a := host.Attrs()
	if host.Type() != "veth" {
		fail("host link %s is a %s, not a veth", p.HostVeth, host.Type())
	}
	if p.Owner != "" && a.Alias != p.Owner {
		fail("host veth %s belongs to %q, not %q", p.HostVeth, a.Alias, p.Owner)
	}
	if a.Flags&net.FlagUp == 0 {
		fail("host veth %s is down", p.HostVeth)
	} else if a.OperState != netlink.OperUp {
		fail("host veth %s is %s, not up", p.HostVeth, a.OperState)
	}
	if a.MTU != p.mtu() {
		fail("host veth %s has MTU %d, want %d", p.HostVeth, a.MTU, p.mtu())
	}
	if v, err := readSysctl("net/ipv4/conf/" + p.HostVeth + "/forwarding"); err != nil || v != "1" {
		fail("node sysctl net.ipv4.conf.%s.forwarding is %q, want 1 (%v)", p.HostVeth, v, err)
	}
	routes, err := routesTo(p.Addr)
	switch {
	case err != nil:
		fail("routes to %s: %v", p.Addr, err)
	case len(routes) != 1 || routes[0].LinkIndex != a.Index || routes[0].Scope != netlink.SCOPE_LINK:
		fail("no route %s dev %s scope link in the main table (found %d routes to it)", p.Addr, p.HostVeth, len(routes))
	}
	to, errTo := ruleThere(p.Addr, func(r netlink.Rule) bool {
		return r.Priority == RulePrioToPod && r.Table == mainTable && r.Dst != nil
	})
	switch {
	case errTo != nil:
		fail("rules of %s: %v", p.Addr, errTo)
	case !to:
		fail("no rule %d: to %s lookup main", RulePrioToPod, p.Addr)
	}
	if p.Table != 0 {
		from, errFrom := ruleThere(p.Addr, func(r netlink.Rule) bool {
			return r.Priority == RulePrioFromPod && r.Table == p.Table && r.Src != nil
		})
		switch {
		case errFrom != nil:
			fail("rules of %s: %v", p.Addr, errFrom)
		case !from:
			fail("no rule %d: from %s lookup %d", RulePrioFromPod, p.Addr, p.Table)
		}
	}
	if ok, err := antispoofPresent(p.prefix()); err != nil || !ok {
		fail("nftables anti-spoofing for %s* is missing (%v)", p.prefix(), err)
	}
}

// checkENITable checks the routing table of a secondary ENI: a default route through a device
// that is up and does not drop the pods' replies by a strict reverse-path filter.
func checkENITable(table int, fail func(string, ...any)) {
	routes, err := dump(func() ([]netlink.Route, error) {
		return netlink.RouteListFiltered(unix.AF_INET, &netlink.Route{Table: table}, netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		fail("table %d: %v", table, err)
		return
	}
	for _, r := range routes {
		if r.Dst != nil && !r.Dst.IP.IsUnspecified() {
			continue
		}
		dev, err := netlink.LinkByIndex(r.LinkIndex)
		if err != nil {
			fail("table %d: default route device %d: %v", table, r.LinkIndex, err)
			return
		}
		name := dev.Attrs().Name
		if dev.Attrs().Flags&net.FlagUp == 0 {
			fail("ENI device %s (table %d) is down", name, table)
		}
		all, _ := readSysctl("net/ipv4/conf/all/rp_filter")
		own, _ := readSysctl("net/ipv4/conf/" + name + "/rp_filter")
		if max(all, own) == "1" { // the kernel uses the larger of the two; values are 0, 1, 2
			fail("node sysctl rp_filter of ENI device %s is strict (all=%s, %s=%s): replies to its pods are dropped; want 2", name, all, name, own)
		}
		return
	}
	fail("table %d has no default route (the ENI's table is gone)", table)
}

func checkPodSide(p Pod, host netlink.Link, fail func(string, ...any)) {
	link, err := netlink.LinkByName(p.IfName)
	if err != nil {
		fail("pod interface %s: %v", p.IfName, err)
		return
	}
	a := link.Attrs()
	if a.ParentIndex != host.Attrs().Index || host.Attrs().ParentIndex != a.Index {
		fail("pod interface %s is not the peer of host veth %s", p.IfName, p.HostVeth)
	}
	if a.Flags&net.FlagUp == 0 {
		fail("pod interface %s is down", p.IfName)
	}
	if a.MTU != p.mtu() {
		fail("pod interface %s has MTU %d, want %d", p.IfName, a.MTU, p.mtu())
	}
	addrs, err := dump(func() ([]netlink.Addr, error) { return netlink.AddrList(link, unix.AF_INET) })
	if err != nil {
		fail("addresses of pod %s: %v", p.IfName, err)
	}
	found := false
	for _, ad := range addrs {
		ones, _ := ad.Mask.Size()
		found = found || ones == 32 && ad.IP.Equal(p.Addr.AsSlice())
	}
	if !found {
		fail("pod interface %s lacks %s/32", p.IfName, p.Addr)
	}
	routes, err := netlink.RouteList(link, unix.AF_INET)
	if err != nil {
		fail("routes of pod %s: %v", p.IfName, err)
	}
	var gwRoute, def bool
	gw := Gateway.AsSlice()
	for _, r := range routes {
		if r.Dst != nil && r.Dst.IP.Equal(gw) && r.Scope == netlink.SCOPE_LINK {
			ones, _ := r.Dst.Mask.Size()
			gwRoute = gwRoute || ones == 32
		}
		def = def || (r.Dst == nil || r.Dst.IP.IsUnspecified()) && r.Gw.Equal(gw)
	}
	if !gwRoute {
		fail("pod has no route %s dev %s scope link", Gateway, p.IfName)
	}
	if !def {
		fail("pod has no default route via %s dev %s", Gateway, p.IfName)
	}
	neighs, err := netlink.NeighList(a.Index, unix.AF_INET)
	if err != nil {
		fail("neighbours of pod %s: %v", p.IfName, err)
	}
	hostMAC := host.Attrs().HardwareAddr.String()
	for _, n := range neighs {
		if n.IP.Equal(gw) && n.State == netlink.NUD_PERMANENT && n.HardwareAddr.String() == hostMAC {
			return
		}
	}
	fail("pod has no permanent neighbour %s lladdr %s", Gateway, hostMAC)
}
