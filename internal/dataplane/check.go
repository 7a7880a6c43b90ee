package dataplane

import (
	"fmt"
	"net"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// CheckPod confirms that what SetupPod made is still in place, and says what is not.
func CheckPod(p Pod) error {
	if err := p.validate(); err != nil {
		return err
	}
	host, err := netlink.LinkByName(p.HostVeth)
	if err != nil {
		return fmt.Errorf("host veth %s: %w", p.HostVeth, err)
	}
	if host.Attrs().Flags&net.FlagUp == 0 {
		return fmt.Errorf("host veth %s is down", p.HostVeth)
	}
	routes, err := netlink.RouteListFiltered(unix.AF_INET, &netlink.Route{Dst: hostPrefix(p.Addr), Table: mainTable},
		netlink.RT_FILTER_DST|netlink.RT_FILTER_TABLE)
	if err != nil {
		return err
	}
	if len(routes) != 1 || routes[0].LinkIndex != host.Attrs().Index {
		return fmt.Errorf("no route %s dev %s in the main table", p.Addr, p.HostVeth)
	}
	rules, err := rulesFor(p.Addr)
	if err != nil {
		return err
	}
	var to, from bool
	for _, r := range rules {
		to = to || r.Priority == RulePrioToPod && r.Table == mainTable && r.Dst != nil
		from = from || r.Priority == RulePrioFromPod && r.Table == p.Table && r.Src != nil
	}
	if !to {
		return fmt.Errorf("no rule %d: to %s lookup main", RulePrioToPod, p.Addr)
	}
	if p.Table != 0 && !from {
		return fmt.Errorf("no rule %d: from %s lookup %d", RulePrioFromPod, p.Addr, p.Table)
	}
	if ok, err := antispoofPresent(p.prefix()); err != nil || !ok {
		return fmt.Errorf("nftables anti-spoofing for %s* is missing (%v)", p.prefix(), err)
	}
	podNS, err := ns.GetNS(p.Netns)
	if err != nil {
		return fmt.Errorf("pod netns %s: %w", p.Netns, err)
	}
	defer podNS.Close()
	return podNS.Do(func(ns.NetNS) error { return checkPodSide(p, host.Attrs().HardwareAddr) })
}

func checkPodSide(p Pod, hostMAC net.HardwareAddr) error {
	link, err := netlink.LinkByName(p.IfName)
	if err != nil {
		return fmt.Errorf("pod interface %s: %w", p.IfName, err)
	}
	addrs, err := netlink.AddrList(link, unix.AF_INET)
	if err != nil {
		return err
	}
	found := false
	for _, a := range addrs {
		ones, _ := a.Mask.Size()
		found = found || ones == 32 && a.IP.Equal(p.Addr.AsSlice())
	}
	if !found {
		return fmt.Errorf("pod interface %s lacks %s/32", p.IfName, p.Addr)
	}
	routes, err := netlink.RouteList(link, unix.AF_INET)
	if err != nil {
		return err
	}
	def := false
	for _, r := range routes {
		def = def || (r.Dst == nil || r.Dst.IP.IsUnspecified()) && r.Gw.Equal(Gateway.AsSlice())
	}
	if !def {
		return fmt.Errorf("pod has no default route via %s dev %s", Gateway, p.IfName)
	}
	neighs, err := netlink.NeighList(link.Attrs().Index, unix.AF_INET)
	if err != nil {
		return err
	}
	for _, n := range neighs {
		if n.IP.Equal(Gateway.AsSlice()) && n.State == netlink.NUD_PERMANENT && n.HardwareAddr.String() == hostMAC.String() {
			return nil
		}
	}
	return fmt.Errorf("pod has no permanent neighbour %s lladdr %s", Gateway, hostMAC)
}
