package dataplane

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Pod is one pod attachment as the host data plane sees it.
type Pod struct {
	Netns      string     // path of the pod's network namespace
	IfName     string     // interface name inside the pod, usually eth0
	HostVeth   string     // host-side veth name (VethName)
	VethPrefix string     // the prefix HostVeth starts with; "": DefaultVethPrefix
	Addr       netip.Addr // the pod's VPC address
	MTU        int        // 0: DefaultMTU
	Table      int        // routing table of the pod's ENI: 0 for the primary ENI (main)
	// Owner is the attachment's OwnerTag, set as the host veth's alias; DEL and GC remove a host
	// veth only when its alias is Owner or its peer is in Netns. "": no alias is set, and only
	// the peer proves ownership.
	Owner string
}

// PodLinks describes the veth pair SetupPod made.
type PodLinks struct {
	HostMAC string
	PodMAC  string
}

func (p Pod) validate() error {
	switch {
	case p.HostVeth == "" || len(p.HostVeth) > maxIfName:
		return fmt.Errorf("host veth name %q is not valid", p.HostVeth)
	case !strings.HasPrefix(p.HostVeth, p.prefix()):
		return fmt.Errorf("host veth %q does not start with veth prefix %q (anti-spoofing matches by prefix)", p.HostVeth, p.prefix())
	case p.IfName == "" || len(p.IfName) > maxIfName:
		return fmt.Errorf("pod interface name %q is not valid", p.IfName)
	case !p.Addr.Is4():
		return fmt.Errorf("pod address %v is not IPv4", p.Addr)
	case p.Table < 0 || p.Table == mainTable:
		return fmt.Errorf("routing table %d is not an ENI table", p.Table)
	case len(p.Owner) > maxAlias:
		return fmt.Errorf("owner tag of %d bytes is longer than an interface alias (%d)", len(p.Owner), maxAlias)
	}
	return nil
}

func (p Pod) prefix() string {
	if p.VethPrefix == "" {
		return DefaultVethPrefix
	}
	return p.VethPrefix
}

func (p Pod) mtu() int {
	if p.MTU <= 0 {
		return DefaultMTU
	}
	return p.MTU
}

// SetupPod wires a pod into the node, from the caller's namespace (the node's): a veth pair with
// the host end here and the pod end in p.Netns, the pod's /32 address and its routes through
// 169.254.1.1, the host route and policy rules to and from the pod, and the anti-spoofing entry.
// A host veth of the same name left from an earlier attempt of the same attachment (its alias is
// p.Owner, or its peer is in p.Netns) is replaced; one that belongs to anything else is an error
// and is left alone.
func SetupPod(p Pod) (PodLinks, error) {
	if err := p.validate(); err != nil {
		return PodLinks{}, err
	}
	podNS, err := ns.GetNS(p.Netns)
	if err != nil {
		return PodLinks{}, fmt.Errorf("pod netns %s: %w", p.Netns, err)
	}
	defer podNS.Close()

	// Anti-spoofing is in place before the pod can send anything.
	if err := ensureAntispoof(p.prefix()); err != nil {
		return PodLinks{}, err
	}
	if old, err := netlink.LinkByName(p.HostVeth); err == nil {
		if !owns(old, p) {
			return PodLinks{}, fmt.Errorf("host veth %s exists and is not this attachment's (alias %q)", p.HostVeth, old.Attrs().Alias)
		}
		if err := netlink.LinkDel(old); err != nil && !errors.Is(err, unix.ENODEV) {
			return PodLinks{}, fmt.Errorf("delete the earlier %s: %w", p.HostVeth, err)
		}
	} else if !isNotFound(err) {
		return PodLinks{}, fmt.Errorf("find %s: %w", p.HostVeth, err)
	}
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: p.HostVeth, MTU: p.mtu()},
		PeerName:      p.IfName,
		PeerNamespace: netlink.NsFd(int(podNS.Fd())),
		PeerMTU:       uint32(p.mtu()),
	}
	if err := netlink.LinkAdd(veth); err != nil {
		return PodLinks{}, fmt.Errorf("create veth %s with %s in %s: %w", p.HostVeth, p.IfName, p.Netns, err)
	}
	host, err := netlink.LinkByName(p.HostVeth)
	if err != nil {
		return PodLinks{}, fmt.Errorf("veth %s: %w", p.HostVeth, err)
	}
	// The owner tag goes on first, so that whatever happens next the veth is provably ours.
	if p.Owner != "" {
		if err := netlink.LinkSetAlias(host, p.Owner); err != nil {
			_ = netlink.LinkDel(host)
			return PodLinks{}, fmt.Errorf("alias of %s: %w", p.HostVeth, err)
		}
	}
	links := PodLinks{HostMAC: host.Attrs().HardwareAddr.String()}

	err = podNS.Do(func(ns.NetNS) error {
		mac, err := setupPodSide(p, host.Attrs().HardwareAddr)
		links.PodMAC = mac
		return err
	})
	if err != nil {
		return links, fmt.Errorf("pod side in %s: %w", p.Netns, err)
	}
	if err := setSysctl("net/ipv4/ip_forward", "1"); err != nil {
		return links, err
	}
	if err := netlink.LinkSetUp(host); err != nil {
		return links, fmt.Errorf("veth %s up: %w", p.HostVeth, err)
	}
	route := &netlink.Route{LinkIndex: host.Attrs().Index, Dst: hostPrefix(p.Addr), Scope: netlink.SCOPE_LINK, Table: mainTable}
	if err := netlink.RouteReplace(route); err != nil {
		return links, fmt.Errorf("route %s dev %s: %w", p.Addr, p.HostVeth, err)
	}
	if err := addRule(toRule(p.Addr)); err != nil {
		return links, err
	}
	if p.Table != 0 {
		if err := addRule(fromRule(p.Addr, p.Table)); err != nil {
			return links, err
		}
	}
	// The kernel starts transmitting on a veth end only once its link-watch work has seen the
	// carrier (asynchronously, and later on a busy host); until then the pod's first packets are
	// dropped. Wait for both ends to be operationally up, so the pod starts with a working link.
	if err := waitOperUp(p.HostVeth, nil); err != nil {
		return links, err
	}
	if err := waitOperUp(p.IfName, podNS); err != nil {
		return links, err
	}
	return links, nil
}

// operUpTimeout bounds the wait for a veth end's link-watch work: a failure bound, not an
// expected time (well under 100 ms on an idle node; seconds on a loaded one, whose kernel
// workqueue runs behind every busy task).
const operUpTimeout = 15 * time.Second

// waitOperUp polls until the named link (in podNS, or here when nil) is operationally up.
func waitOperUp(name string, podNS ns.NetNS) error {
	deadline := time.Now().Add(operUpTimeout)
	for delay := 200 * time.Microsecond; ; delay = min(2*delay, 20*time.Millisecond) {
		var state netlink.LinkOperState
		get := func() error {
			l, err := netlink.LinkByName(name)
			if err == nil {
				state = l.Attrs().OperState
			}
			return err
		}
		var err error
		if podNS == nil {
			err = get()
		} else {
			err = podNS.Do(func(ns.NetNS) error { return get() })
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if state == netlink.OperUp {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s is still %s after %s", name, state, operUpTimeout)
		}
		time.Sleep(delay)
	}
}

// setupPodSide runs inside the pod's namespace.
func setupPodSide(p Pod, hostMAC net.HardwareAddr) (string, error) {
	link, err := netlink.LinkByName(p.IfName)
	if err != nil {
		return "", err
	}
	idx := link.Attrs().Index
	if err := netlink.AddrReplace(link, &netlink.Addr{IPNet: hostPrefix(p.Addr)}); err != nil {
		return "", fmt.Errorf("address %s/32: %w", p.Addr, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return "", fmt.Errorf("%s up: %w", p.IfName, err)
	}
	gw := Gateway.AsSlice()
	if err := netlink.RouteReplace(&netlink.Route{LinkIndex: idx, Dst: hostPrefix(Gateway), Scope: netlink.SCOPE_LINK}); err != nil {
		return "", fmt.Errorf("route %s dev %s: %w", Gateway, p.IfName, err)
	}
	def := &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}
	if err := netlink.RouteReplace(&netlink.Route{LinkIndex: idx, Dst: def, Gw: gw}); err != nil {
		return "", fmt.Errorf("default via %s: %w", Gateway, err)
	}
	neigh := &netlink.Neigh{LinkIndex: idx, Family: unix.AF_INET, State: netlink.NUD_PERMANENT, IP: gw, HardwareAddr: hostMAC}
	if err := netlink.NeighSet(neigh); err != nil {
		return "", fmt.Errorf("neighbour %s lladdr %s: %w", Gateway, hostMAC, err)
	}
	return link.Attrs().HardwareAddr.String(), nil
}

// TeardownPod removes what SetupPod made for the pod, and only that: the host veth if it is
// provably this attachment's (its alias is p.Owner, or its peer is in p.Netns; the pod end and
// the host route go with it), then the policy rules 512 and 1536 of p.Addr unless the address is
// now routed to another link (another sandbox holds it; its rules are the same and stay). There
// is no per-pod nftables state. It needs no pod namespace; anything already gone, or a veth of
// that name that is someone else's, is not an error. An invalid Addr removes only the veth.
func TeardownPod(p Pod) error { return teardown(p, false) }

// UnwirePod is TeardownPod for a DEL whose pod namespace still exists: it leaves the veth pair to
// go with the namespace (the runtime deletes it after DEL; deleting a veth costs the kernel RCU
// grace periods, 10 to 40 ms here, against under 1 ms for this) and removes what carries traffic
// instead: the pod's address from the veth's peer in p.Netns (no namespace keeps an address it
// gave back), the host route through the veth, and the rules as TeardownPod does. With nothing
// routed to it the veth carries nothing: the anti-spoofing rule drops whatever the pod still
// sends. When the peer is not provably in p.Netns, or anything of that fails, the veth is
// deleted as TeardownPod does. A later SetupPod of the same attachment replaces the veth.
func UnwirePod(p Pod) error { return teardown(p, true) }

func teardown(p Pod, keepVeth bool) error {
	if p.HostVeth == "" {
		return errors.New("teardown: no host veth name")
	}
	var errs []error
	l, err := netlink.LinkByName(p.HostVeth)
	switch {
	case err == nil && owns(l, p):
		if keepVeth && p.Addr.IsValid() && p.Netns != "" && peerIn(l, p.Netns) && unwireKeepingVeth(l, p) == nil {
			break
		}
		if err := netlink.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
			errs = append(errs, fmt.Errorf("delete %s: %w", p.HostVeth, err))
		}
	case err != nil && !isNotFound(err):
		errs = append(errs, fmt.Errorf("find %s: %w", p.HostVeth, err))
	}
	if p.Addr.IsValid() && len(errs) == 0 {
		routes, err := routesTo(p.Addr)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("routes to %s: %w", p.Addr, err))
		case len(routes) > 0:
			// Routed to a link that is not (or no longer) ours: another attachment holds the
			// address now, and the rules are its.
		default:
			// Deleted by their keys, never picked from a dump: the kernel resumes a rule dump by
			// position, so a dump taken while other pods' rules go (parallel DELs) skips some,
			// and a rule it skipped stayed behind.
			for _, r := range podRuleKeys(p.Addr) {
				if err := delRule(r); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	return errors.Join(errs...)
}

// unwireKeepingVeth takes p.Addr off the peer of host veth l in p.Netns and the host route to
// it through l.
func unwireKeepingVeth(l netlink.Link, p Pod) error {
	podNS, err := ns.GetNS(p.Netns)
	if err != nil {
		return err
	}
	defer podNS.Close()
	err = podNS.Do(func(ns.NetNS) error {
		peer, err := netlink.LinkByIndex(l.Attrs().ParentIndex)
		if err != nil {
			return err
		}
		if peer.Attrs().ParentIndex != l.Attrs().Index {
			return fmt.Errorf("%s in %s is not the peer of %s", peer.Attrs().Name, p.Netns, p.HostVeth)
		}
		err = netlink.AddrDel(peer, &netlink.Addr{IPNet: hostPrefix(p.Addr)})
		if err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			return fmt.Errorf("remove %s from the pod's %s: %w", p.Addr, peer.Attrs().Name, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	err = netlink.RouteDel(&netlink.Route{LinkIndex: l.Attrs().Index, Dst: hostPrefix(p.Addr), Table: mainTable, Scope: netlink.SCOPE_LINK})
	if err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("route %s dev %s: %w", p.Addr, p.HostVeth, err)
	}
	return nil
}

// owns reports whether link l is p's host veth: a veth whose alias is p.Owner, or whose peer
// lives in the namespace p.Netns.
func owns(l netlink.Link, p Pod) bool {
	if l.Type() != "veth" {
		return false
	}
	if p.Owner != "" && l.Attrs().Alias == p.Owner {
		return true
	}
	return p.Netns != "" && peerIn(l, p.Netns)
}

// peerIn reports whether the peer of veth l is in the namespace at path, comparing the
// namespace ids the calling thread's namespace knows them by.
func peerIn(l netlink.Link, path string) bool {
	target, err := ns.GetNS(path)
	if err != nil {
		return false
	}
	defer target.Close()
	id, err := netlink.GetNetNsIdByFd(int(target.Fd()))
	return err == nil && id >= 0 && l.Attrs().NetNsID == id
}

func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf)
}
