package fabric

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"github.com/vpcnet/vpcnet/internal/netnsx"
	"golang.org/x/sys/unix"
)

// Netlink carries Actions out in the router namespace and the nodes' namespaces.
type Netlink struct {
	RouterNS string // name of the router namespace
}

// handleFor opens a netlink handle on the named namespace; close both when done.
func handleFor(ns string) (*netlink.Handle, netns.NsHandle, error) {
	nsh, err := netns.GetFromPath(netnsx.Path(ns))
	if err != nil {
		return nil, 0, fmt.Errorf("open netns %s: %w", ns, err)
	}
	h, err := netlink.NewHandleAt(nsh)
	if err != nil {
		nsh.Close()
		return nil, 0, fmt.Errorf("netlink in %s: %w", ns, err)
	}
	return h, nsh, nil
}

// Apply carries out the actions in order and stops at the first failure.
func (n Netlink) Apply(acts []Action) error {
	if len(acts) == 0 {
		return nil
	}
	r, rns, err := handleFor(n.RouterNS)
	if err != nil {
		return err
	}
	defer rns.Close()
	defer r.Close()
	for _, a := range acts {
		if err := n.apply(r, a); err != nil {
			return fmt.Errorf("%s: %w", a, err)
		}
	}
	return nil
}

func (n Netlink) apply(r *netlink.Handle, a Action) error {
	switch a.Op {
	case AddGateway:
		lo, err := r.LinkByName("lo")
		if err != nil {
			return err
		}
		return r.AddrReplace(lo, &netlink.Addr{IPNet: ipNet(a.Addr)})
	case AddPort:
		if err := addPort(r, a.Port); err != nil {
			return err
		}
		return portSysctls(n.RouterNS, a.Port.Link)
	case DelPort:
		l, err := r.LinkByName(a.Port.Link)
		if err != nil {
			return ignoreNotFound(err)
		}
		return r.LinkDel(l)
	case AddRoute, DelRoute:
		return route(r, a)
	case ConfigureNode:
		return configureNode(a)
	case AllowEgress:
		err := r.RuleAdd(egressRule(a.Addr))
		if errors.Is(err, unix.EEXIST) {
			return nil
		}
		return err
	case DenyEgress:
		return ignoreNotFound(r.RuleDel(egressRule(a.Addr)))
	}
	return fmt.Errorf("unknown op %d", a.Op)
}

func addPort(r *netlink.Handle, p Port) error {
	mac, err := net.ParseMAC(p.MAC)
	if err != nil {
		return fmt.Errorf("ENI MAC %q: %w", p.MAC, err)
	}
	if old, err := r.LinkByName(p.Link); err == nil {
		_ = r.LinkDel(old)
	}
	node, nodeNS, err := handleFor(p.NS)
	if err != nil {
		return err
	}
	defer nodeNS.Close()
	defer node.Close()
	if old, err := node.LinkByName(p.Peer); err == nil {
		_ = node.LinkDel(old)
	}
	veth := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: p.Link, MTU: MTU},
		PeerName:         p.Peer,
		PeerHardwareAddr: mac,
		PeerMTU:          MTU,
		PeerNamespace:    netlink.NsFd(int(nodeNS)),
	}
	if err := r.LinkAdd(veth); err != nil {
		return fmt.Errorf("create veth %s: %w", p.Link, err)
	}
	l, err := r.LinkByName(p.Link)
	if err != nil {
		return err
	}
	if err := r.LinkSetUp(l); err != nil {
		return err
	}
	// On EC2 a freshly attached ENI shows up with the ENI's MAC and down; the node brings it up.
	if p.Primary.IsValid() {
		return r.NeighSet(&netlink.Neigh{LinkIndex: l.Attrs().Index, Family: netlink.FAMILY_V4,
			State: netlink.NUD_PERMANENT, IP: p.Primary.AsSlice(), HardwareAddr: mac})
	}
	return nil
}

// route adds or removes the route of a.Dst to its port. A single address gets a direct route
// and a permanent neighbour entry with the ENI's MAC (the VPC never ARPs for an instance's
// addresses); a prefix goes via the ENI's primary address, whose neighbour entry is pinned.
func route(r *netlink.Handle, a Action) error {
	l, err := r.LinkByName(a.Port.Link)
	if err != nil {
		if a.Op == DelRoute {
			return ignoreNotFound(err)
		}
		return err
	}
	rt := &netlink.Route{LinkIndex: l.Attrs().Index, Dst: ipNet(a.Dst), Scope: netlink.SCOPE_LINK}
	single := a.Dst.Bits() == 32
	if !single {
		rt.Scope = netlink.SCOPE_UNIVERSE
		rt.Gw = a.Port.Primary.AsSlice()
		rt.Flags = int(netlink.FLAG_ONLINK)
	}
	mac, _ := net.ParseMAC(a.Port.MAC)
	neigh := &netlink.Neigh{LinkIndex: l.Attrs().Index, Family: netlink.FAMILY_V4,
		State: netlink.NUD_PERMANENT, IP: a.Dst.Addr().AsSlice(), HardwareAddr: mac}
	if a.Op == DelRoute {
		if single && a.Dst.Addr() != a.Port.Primary {
			_ = r.NeighDel(neigh)
		}
		return ignoreNotFound(r.RouteDel(rt))
	}
	if single {
		if err := r.NeighSet(neigh); err != nil {
			return fmt.Errorf("neighbour %s: %w", a.Dst.Addr(), err)
		}
	}
	return r.RouteReplace(rt)
}

// configureNode does what DHCP does for an instance's primary interface.
func configureNode(a Action) error {
	h, nsh, err := handleFor(a.Port.NS)
	if err != nil {
		return err
	}
	defer nsh.Close()
	defer h.Close()
	l, err := h.LinkByName(a.Port.Peer)
	if err != nil {
		return err
	}
	if err := h.LinkSetUp(l); err != nil {
		return err
	}
	if err := h.AddrReplace(l, &netlink.Addr{IPNet: ipNet(a.Addr)}); err != nil {
		return err
	}
	return h.RouteReplace(&netlink.Route{LinkIndex: l.Attrs().Index, Dst: ipNet(netip.MustParsePrefix("0.0.0.0/0")),
		Gw: a.Gateway.AsSlice()})
}

func egressRule(src netip.Prefix) *netlink.Rule {
	r := netlink.NewRule()
	r.Src = ipNet(src)
	r.Table = egressTable
	r.Priority = egressRulePriority
	r.Family = netlink.FAMILY_V4
	return r
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func ignoreNotFound(err error) error {
	var lnf netlink.LinkNotFoundError
	if err == nil || errors.As(err, &lnf) || errors.Is(err, unix.ESRCH) || errors.Is(err, unix.ENOENT) ||
		errors.Is(err, unix.ENODEV) {
		return nil
	}
	return err
}
