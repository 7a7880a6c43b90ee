package invariant

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"github.com/vpcnet/vpcnet/internal/cni"
	"github.com/vpcnet/vpcnet/internal/ipam/store"
	"golang.org/x/sys/unix"
)

// gateway is the pods' default gateway (dataplane.Gateway).
var gateway = netip.MustParseAddr("169.254.1.1")

// Source says where Collect looks.
type Source struct {
	// NodeNetns is the path of the node's network namespace (where the plugin runs); "" means
	// the calling thread's.
	NodeNetns string
	// StateDir is the plugin's stateDir (its config field; every network in it is read).
	StateDir string
	// Allocations are the agent's, e.g. FromStore of vpcnetd's /v1/pods.
	Allocations []Allocation
	// PodNetns are pod namespaces to inspect besides those the attachment records name, e.g.
	// every sandbox the test created and has not removed.
	PodNetns []string
}

// FromStore converts the agent's allocations (ipam/store.Alloc, as /v1/pods serves them).
func FromStore(as []store.Alloc) []Allocation {
	out := make([]Allocation, len(as))
	for i, a := range as {
		out[i] = Allocation{Key: Key{a.Key.Network, a.Key.ContainerID, a.Key.IfName}, Addr: a.Addr}
	}
	return out
}

// Collect reads a Snapshot of a node: the plugin's records and queued releases from
// src.StateDir, the interfaces of every pod namespace (the records' and src.PodNetns), and the
// /32 routes of the node's main table. Call it while no CNI verb runs on the node. Errors: the
// state dir unreadable or a record undecodable, a namespace that exists but cannot be read.
// A record's namespace that no longer exists goes to Snapshot.MissingNetns.
func Collect(src Source) (Snapshot, error) {
	s := Snapshot{Allocations: src.Allocations}
	recs, err := cni.Attachments(src.StateDir)
	if err != nil {
		return s, err
	}
	pend, err := cni.PendingReleases(src.StateDir)
	if err != nil {
		return s, err
	}
	for _, p := range pend {
		s.Pending = append(s.Pending, Key{p.Network, p.ContainerID, p.IfName})
	}
	netnses := slices.Clone(src.PodNetns)
	for _, r := range recs {
		s.Attachments = append(s.Attachments, Attachment{Key: Key{r.Network, r.ContainerID, r.IfName}, Addr: r.Addr, Netns: r.Netns, HostVeth: r.HostVeth})
		netnses = append(netnses, r.Netns)
	}
	slices.Sort(netnses)
	for _, path := range slices.Compact(netnses) {
		ifs, err := PodInterfaces(path)
		if errors.Is(err, os.ErrNotExist) {
			s.MissingNetns = append(s.MissingNetns, path)
			continue
		}
		if err != nil {
			return s, err
		}
		s.Interfaces = append(s.Interfaces, ifs...)
	}
	read := func() error {
		s.HostRoutes, err = hostRoutes()
		return err
	}
	if src.NodeNetns == "" {
		err = read()
	} else {
		err = ns.WithNetNSPath(src.NodeNetns, func(ns.NetNS) error { return read() })
	}
	return s, err
}

// PodInterfaces lists the interfaces of the namespace at path (loopback left out) with their
// IPv4 addresses and whether they carry the pod routes through 169.254.1.1. A path that does
// not exist gives an error that is os.ErrNotExist.
func PodInterfaces(path string) ([]Interface, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	var out []Interface
	err := ns.WithNetNSPath(path, func(ns.NetNS) error {
		links, err := netlink.LinkList()
		if err != nil {
			return err
		}
		for _, l := range links {
			if l.Attrs().Flags&net.FlagLoopback != 0 {
				continue
			}
			i := Interface{Netns: path, Name: l.Attrs().Name, Up: l.Attrs().Flags&net.FlagUp != 0}
			addrs, err := netlink.AddrList(l, unix.AF_INET)
			if err != nil {
				return err
			}
			for _, a := range addrs {
				if ip, ok := netip.AddrFromSlice(a.IP.To4()); ok {
					i.Addrs = append(i.Addrs, ip)
				}
			}
			routes, err := netlink.RouteList(l, unix.AF_INET)
			if err != nil {
				return err
			}
			for _, r := range routes {
				if r.Dst != nil && r.Scope == netlink.SCOPE_LINK && r.Dst.IP.Equal(gateway.AsSlice()) {
					if ones, _ := r.Dst.Mask.Size(); ones == 32 {
						i.GatewayRoute = true
					}
				}
				if (r.Dst == nil || r.Dst.IP.IsUnspecified()) && r.Gw.Equal(gateway.AsSlice()) {
					i.DefaultRoute = true
				}
			}
			out = append(out, i)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pod netns %s: %w", path, err)
	}
	return out, nil
}

// hostRoutes lists the /32 scope-link routes of the calling thread's main table.
func hostRoutes() ([]HostRoute, error) {
	routes, err := netlink.RouteListFiltered(unix.AF_INET, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, err
	}
	names := map[int]string{}
	var out []HostRoute
	for _, r := range routes {
		if r.Dst == nil || r.Scope != netlink.SCOPE_LINK {
			continue
		}
		if ones, _ := r.Dst.Mask.Size(); ones != 32 {
			continue
		}
		name, ok := names[r.LinkIndex]
		if !ok {
			if l, err := netlink.LinkByIndex(r.LinkIndex); err == nil {
				name = l.Attrs().Name
			}
			names[r.LinkIndex] = name
		}
		ip, _ := netip.AddrFromSlice(r.Dst.IP.To4())
		out = append(out, HostRoute{Addr: ip, Dev: name})
	}
	return out, nil
}
