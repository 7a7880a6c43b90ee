package dataplane

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ENI is a network interface attached to the node, as the agent knows it.
type ENI struct {
	MAC         string       // find the device by MAC
	DeviceIndex int          // table = DeviceIndex + 1
	PrimaryIP   netip.Addr   // the ENI's primary private address
	Subnet      netip.Prefix // the ENI's subnet; its router is the first address + 1
	MTU         int          // 0: DefaultMTU
}

// Router returns the subnet router: the subnet's first address + 1.
func (e ENI) Router() netip.Addr { return e.Subnet.Masked().Addr().Next() }

func (e ENI) validate() error {
	switch {
	case e.DeviceIndex < 0 || e.DeviceIndex > 250:
		return fmt.Errorf("ENI %s: device index %d out of range", e.MAC, e.DeviceIndex)
	case !e.PrimaryIP.Is4():
		return fmt.Errorf("ENI %s: primary IP %v is not IPv4", e.MAC, e.PrimaryIP)
	case !e.Subnet.IsValid() || !e.Subnet.Addr().Is4() || !e.Subnet.Contains(e.PrimaryIP):
		return fmt.Errorf("ENI %s: subnet %v does not hold primary IP %s", e.MAC, e.Subnet, e.PrimaryIP)
	}
	return nil
}

// LinkByMAC returns the device with hardware address mac (case-insensitive) in this namespace.
func LinkByMAC(mac string) (netlink.Link, error) {
	hw, err := net.ParseMAC(mac)
	if err != nil {
		return nil, fmt.Errorf("MAC %q: %w", mac, err)
	}
	links, err := dump(netlink.LinkList)
	if err != nil {
		return nil, err
	}
	for _, l := range links {
		if strings.EqualFold(l.Attrs().HardwareAddr.String(), hw.String()) {
			return l, nil
		}
	}
	return nil, fmt.Errorf("no device with MAC %s: %w", mac, errNoDevice)
}

var errNoDevice = errors.New("device not found")

// SetupENI brings up the ENI's device in the current namespace: MTU, link up, its primary
// address. For a secondary ENI (DeviceIndex > 0) it also fills table DeviceIndex+1 with the
// subnet's link route and a default route via the subnet router on that device, adds rule 1536
// `from <primary IP> lookup <table>`, and sets loose reverse-path filtering on the device. The
// primary ENI's routes are the node's own (main table) and are left alone.
func SetupENI(e ENI) error {
	if err := e.validate(); err != nil {
		return err
	}
	link, err := LinkByMAC(e.MAC)
	if err != nil {
		return err
	}
	name := link.Attrs().Name
	mtu := e.MTU
	if mtu <= 0 {
		mtu = DefaultMTU
	}
	if link.Attrs().MTU != mtu {
		if err := netlink.LinkSetMTU(link, mtu); err != nil {
			return fmt.Errorf("ENI %s (%s): MTU %d: %w", e.MAC, name, mtu, err)
		}
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("ENI %s (%s): link up: %w", e.MAC, name, err)
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: e.PrimaryIP.AsSlice(), Mask: net.CIDRMask(e.Subnet.Bits(), 32)}}
	if e.DeviceIndex > 0 {
		// The subnet route belongs in the ENI's table, not in main.
		addr.Flags = unix.IFA_F_NOPREFIXROUTE
	}
	if err := netlink.AddrReplace(link, addr); err != nil {
		return fmt.Errorf("ENI %s (%s): address %s: %w", e.MAC, name, addr.IPNet, err)
	}
	if e.DeviceIndex == 0 {
		return nil
	}
	if err := setSysctl("net/ipv4/conf/"+name+"/rp_filter", "2"); err != nil {
		return err
	}
	table := TableForDevice(e.DeviceIndex)
	idx := link.Attrs().Index
	routes := []*netlink.Route{
		{LinkIndex: idx, Dst: ipNet(e.Subnet), Scope: netlink.SCOPE_LINK, Src: e.PrimaryIP.AsSlice(), Table: table},
		{LinkIndex: idx, Dst: &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}, Gw: e.Router().AsSlice(), Table: table},
	}
	for _, r := range routes {
		if err := netlink.RouteReplace(r); err != nil {
			return fmt.Errorf("ENI %s (%s): route %s in table %d: %w", e.MAC, name, r, table, err)
		}
	}
	return addRule(fromRule(e.PrimaryIP, table))
}

// mtu is the MTU the ENI's device should have.
func (e ENI) mtu() int {
	if e.MTU <= 0 {
		return DefaultMTU
	}
	return e.MTU
}

// SetMTU sets the MTU of the ENI's device (found by MAC) and nothing else. The agent uses it for
// the primary ENI (device 0), whose address and routes are the node's own, so that the
// configured MTU (VPCNET_MTU, `vpcnet lab up --eni-mtu`) applies to every ENI, not only to the
// secondary ones, the veths and the pods.
func SetMTU(e ENI) error {
	link, err := LinkByMAC(e.MAC)
	if err != nil {
		return err
	}
	if link.Attrs().MTU == e.mtu() {
		return nil
	}
	if err := netlink.LinkSetMTU(link, e.mtu()); err != nil {
		return fmt.Errorf("ENI %s (%s): MTU %d: %w", e.MAC, link.Attrs().Name, e.mtu(), err)
	}
	return nil
}

// CheckENI confirms that what SetupENI (SetMTU for the primary ENI) set is still in place, from
// the node's namespace; the error lists every problem found, each naming the object:
//
//   - every ENI: its device exists, is up and has MTU e.MTU (DefaultMTU when 0);
//   - a secondary ENI (DeviceIndex > 0) also: it holds its primary address, its rp_filter is
//     loose (2), table DeviceIndex+1 has the subnet's link route and a default route via the
//     subnet router on its device, and rule 1536 `from <primary IP> lookup <table>` exists.
func CheckENI(e ENI) error {
	if err := e.validate(); err != nil {
		return err
	}
	link, err := LinkByMAC(e.MAC)
	if err != nil {
		return err
	}
	var bad []string
	fail := func(format string, a ...any) { bad = append(bad, fmt.Sprintf(format, a...)) }
	name := link.Attrs().Name
	if got := link.Attrs().MTU; got != e.mtu() {
		fail("ENI %s (%s) has MTU %d, want %d", e.MAC, name, got, e.mtu())
	}
	if link.Attrs().Flags&net.FlagUp == 0 {
		fail("ENI %s (%s) is down", e.MAC, name)
	}
	if e.DeviceIndex > 0 {
		checkSecondaryENI(e, link, fail)
	}
	if len(bad) > 0 {
		return errors.New(strings.Join(bad, "; "))
	}
	return nil
}

func checkSecondaryENI(e ENI, link netlink.Link, fail func(string, ...any)) {
	name := link.Attrs().Name
	addrs, err := dump(func() ([]netlink.Addr, error) { return netlink.AddrList(link, netlink.FAMILY_V4) })
	if err != nil {
		fail("ENI %s (%s): addresses: %v", e.MAC, name, err)
	}
	has := false
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP.To4()); ok && ip == e.PrimaryIP {
			has = true
		}
	}
	if !has {
		fail("ENI %s (%s) does not hold its primary address %s", e.MAC, name, e.PrimaryIP)
	}
	if v, err := readSysctl("net/ipv4/conf/" + name + "/rp_filter"); err != nil || v != "2" {
		fail("ENI %s (%s) rp_filter is %q, want 2 (%v)", e.MAC, name, v, err)
	}
	table := TableForDevice(e.DeviceIndex)
	routes, err := dump(func() ([]netlink.Route, error) {
		return netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: table}, netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		fail("table %d: %v", table, err)
	}
	subnetRoute, defaultRoute := false, false
	for _, r := range routes {
		if r.LinkIndex != link.Attrs().Index {
			continue
		}
		switch {
		case r.Dst != nil && r.Dst.String() == e.Subnet.Masked().String():
			subnetRoute = true
		case (r.Dst == nil || r.Dst.String() == "0.0.0.0/0") && r.Gw.Equal(e.Router().AsSlice()):
			defaultRoute = true
		}
	}
	if !subnetRoute {
		fail("table %d has no route %s dev %s", table, e.Subnet.Masked(), name)
	}
	if !defaultRoute {
		fail("table %d has no default route via %s dev %s", table, e.Router(), name)
	}
	rule, err := ruleThere(e.PrimaryIP, func(r netlink.Rule) bool { return r.Table == table && r.Src != nil })
	if err != nil {
		fail("rules: %v", err)
	} else if !rule {
		fail("no rule from %s lookup %d", e.PrimaryIP, table)
	}
}

// TeardownENI undoes SetupENI for a secondary ENI: its rule 1536, the routes of its table that go
// through its device, and its primary address. It only touches what is this ENI's: another ENI
// attached at the same device index (same table) keeps its routes, and pods keep their rules (the
// plugin removes those). When the device is already gone (detached), its routes went with it.
// The primary ENI is left alone.
func TeardownENI(e ENI) error {
	if e.DeviceIndex <= 0 {
		return nil
	}
	table := TableForDevice(e.DeviceIndex)
	var errs []error
	if e.PrimaryIP.Is4() {
		if err := delRule(fromRule(e.PrimaryIP, table)); err != nil {
			errs = append(errs, err)
		}
	}
	link, err := LinkByMAC(e.MAC)
	if err != nil {
		if !errors.Is(err, errNoDevice) {
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	}
	routes, err := dump(func() ([]netlink.Route, error) {
		return netlink.RouteListFiltered(unix.AF_INET, &netlink.Route{Table: table, LinkIndex: link.Attrs().Index},
			netlink.RT_FILTER_TABLE|netlink.RT_FILTER_OIF)
	})
	if err != nil {
		errs = append(errs, err)
	}
	for _, r := range routes {
		if err := netlink.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("ENI %s: delete route %s: %w", e.MAC, r, err))
		}
	}
	if e.PrimaryIP.Is4() {
		addrs, _ := dump(func() ([]netlink.Addr, error) { return netlink.AddrList(link, unix.AF_INET) })
		for _, a := range addrs {
			if a.IP.Equal(e.PrimaryIP.AsSlice()) {
				if err := netlink.AddrDel(link, &a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
					errs = append(errs, fmt.Errorf("ENI %s: delete address %s: %w", e.MAC, a.IPNet, err))
				}
			}
		}
	}
	return errors.Join(errs...)
}
