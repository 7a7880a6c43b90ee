package fabric

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"github.com/vpcnet/vpcnet/internal/netnsx"
)

// routerSysctls make the router forward, answer ARP for every address it routes to another
// port (proxy ARP: the VPC answers ARP for the whole subnet) and drop packets whose source is
// not routed back through the port they came in on. Since the router holds a route for exactly
// the addresses assigned to each ENI, strict reverse-path filtering is the AWS source/dest
// check. "default" settings are inherited by every port created later.
var routerSysctls = map[string]string{
	"net/ipv4/ip_forward":                    "1",
	"net/ipv4/conf/all/forwarding":           "1",
	"net/ipv4/conf/all/rp_filter":            "1",
	"net/ipv4/conf/default/rp_filter":        "1",
	"net/ipv4/conf/default/proxy_arp":        "1",
	"net/ipv4/conf/all/accept_redirects":     "0",
	"net/ipv4/conf/all/send_redirects":       "0",
	"net/ipv4/conf/default/send_redirects":   "0",
	"net/ipv4/conf/default/accept_redirects": "0",
}

// SetupRouter prepares the existing router namespace: forwarding, the source/dest check, the
// link-local service addresses on its loopback, and the internet namespace inetNS (which it
// creates) linked to it. Only primary ENI addresses are let through to the internet (see
// AllowEgress).
func SetupRouter(routerNS, inetNS string) error {
	rns, err := ns.GetNS(netnsx.Path(routerNS))
	if err != nil {
		return err
	}
	defer rns.Close()
	if err := rns.Do(func(ns.NetNS) error { return writeSysctls(routerSysctls) }); err != nil {
		return fmt.Errorf("router %s: %w", routerNS, err)
	}
	r, rh, err := handleFor(routerNS)
	if err != nil {
		return err
	}
	defer rh.Close()
	defer r.Close()
	lo, err := r.LinkByName("lo")
	if err != nil {
		return err
	}
	for _, a := range []string{IMDSAddr.String(), EC2Addr.String()} {
		addr, _ := netlink.ParseAddr(a + "/32")
		if err := r.AddrReplace(lo, addr); err != nil {
			return fmt.Errorf("router: address %s: %w", a, err)
		}
	}
	return setupInternet(r, inetNS)
}

func setupInternet(r *netlink.Handle, inetNS string) error {
	h, err := netnsx.Create(inetNS)
	if err != nil {
		return err
	}
	h.Close()
	inet, inh, err := handleFor(inetNS)
	if err != nil {
		return err
	}
	defer inh.Close()
	defer inet.Close()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: InternetLink, MTU: 1500}, PeerName: "eth0",
		PeerNamespace: netlink.NsFd(int(inh))}
	if err := r.LinkAdd(veth); err != nil {
		return fmt.Errorf("internet link: %w", err)
	}
	l, err := r.LinkByName(InternetLink)
	if err != nil {
		return err
	}
	if err := r.LinkSetUp(l); err != nil {
		return err
	}
	// The router's own address without a prefix route: the route to the internet lives only
	// in the egress table, which only primary ENI addresses may use.
	if err := r.AddrAdd(l, &netlink.Addr{IPNet: ipNet(prefix32(InternetRouter)), Flags: 0x200 /* IFA_F_NOPREFIXROUTE */}); err != nil {
		return err
	}
	if err := r.RouteReplace(&netlink.Route{LinkIndex: l.Attrs().Index, Dst: ipNet(InternetNet),
		Scope: netlink.SCOPE_LINK, Table: egressTable}); err != nil {
		return err
	}
	il, err := inet.LinkByName("eth0")
	if err != nil {
		return err
	}
	if err := inet.LinkSetUp(il); err != nil {
		return err
	}
	if err := inet.AddrAdd(il, &netlink.Addr{IPNet: ipNet(netipPrefix(InternetHost, InternetNet.Bits()))}); err != nil {
		return err
	}
	return inet.RouteAdd(&netlink.Route{LinkIndex: il.Attrs().Index, Gw: InternetRouter.AsSlice()})
}

// portSysctls answer proxy ARP at once on a new port (the "default" neighbour settings exist
// only in the root namespace, so they are set per port).
func portSysctls(routerNS, link string) error {
	rns, err := ns.GetNS(netnsx.Path(routerNS))
	if err != nil {
		return err
	}
	defer rns.Close()
	return rns.Do(func(ns.NetNS) error {
		return writeSysctls(map[string]string{"net/ipv4/neigh/" + link + "/proxy_delay": "0"})
	})
}

func writeSysctls(kv map[string]string) error {
	for k, v := range kv {
		if err := os.WriteFile(filepath.Join("/proc/sys", k), []byte(v), 0o644); err != nil {
			return fmt.Errorf("sysctl %s=%s: %w", k, v, err)
		}
	}
	return nil
}
