package cni_test

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"github.com/vpcnet/vpcnet/internal/vpcsim"
)

// fabric follows vpcsim like the lab's fabric: an ENI attached to the instance appears in the node
// as eth<device index> with the ENI's MAC, its far end in the router. It runs under vpcsim's lock
// and must not call back into vpcsim.
func (c *cluster) fabric(e vpcsim.Event) {
	if e.Kind != "eni-attached" || e.DeviceIndex == 0 || len(e.Addrs) == 0 {
		return
	}
	dev, far := fmt.Sprintf("eth%d", e.DeviceIndex), fmt.Sprintf("fabric%d", e.DeviceIndex)
	err := c.node.Do(func(ns.NetNS) error {
		if old, err := netlink.LinkByName(dev); err == nil {
			_ = netlink.LinkDel(old)
		}
		hw, err := net.ParseMAC(e.MAC)
		if err != nil {
			return err
		}
		return netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: dev, HardwareAddr: hw},
			PeerName: far, PeerNamespace: netlink.NsFd(int(c.router.Fd()))})
	})
	if err == nil {
		err = c.wireFabricErr(far, e.Addrs[0])
	}
	c.fabricMu.Lock()
	defer c.fabricMu.Unlock()
	c.eniPrimaries[e.Addrs[0]] = true
	if err != nil && c.fabricErr == nil {
		c.fabricErr = fmt.Errorf("fabric for %s (%s): %w", e.ENIID, dev, err)
	}
}

// wireFabric brings the router's end of an ENI up: the subnet router's address on it (as /32;
// every ENI link has one) and a route to the ENI's primary address through it.
func (c *cluster) wireFabric(t testing.TB, far string, primary netip.Addr) {
	t.Helper()
	if err := c.wireFabricErr(far, primary); err != nil {
		t.Fatal(err)
	}
}

func (c *cluster) wireFabricErr(far string, primary netip.Addr) error {
	return c.router.Do(func(ns.NetNS) error {
		l, err := netlink.LinkByName(far)
		if err != nil {
			return err
		}
		if err := netlink.LinkSetUp(l); err != nil {
			return err
		}
		gw := c.subnet.Addr().Next()
		if err := netlink.AddrReplace(l, &netlink.Addr{IPNet: &net.IPNet{IP: gw.AsSlice(), Mask: net.CIDRMask(32, 32)}}); err != nil {
			return err
		}
		return netlink.RouteReplace(&netlink.Route{LinkIndex: l.Attrs().Index, Dst: &net.IPNet{IP: primary.AsSlice(), Mask: net.CIDRMask(32, 32)}, Scope: netlink.SCOPE_LINK})
	})
}

// routeToPod makes the router deliver a pod's address through the ENI whose primary is via.
func (c *cluster) routeToPod(t testing.TB, pod, via netip.Addr) {
	t.Helper()
	if err := c.router.Do(func(ns.NetNS) error {
		return netlink.RouteReplace(&netlink.Route{Dst: &net.IPNet{IP: pod.AsSlice(), Mask: net.CIDRMask(32, 32)}, Gw: via.AsSlice()})
	}); err != nil {
		t.Fatal(err)
	}
}

// proxyInto listens on 127.0.0.1 inside h and forwards every connection to target (an
// http://127.0.0.1:port URL in the test's own namespace). It returns the URL to use inside h.
func proxyInto(t testing.TB, h ns.NetNS, target string) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	var ln net.Listener
	if err := h.Do(func(ns.NetNS) error {
		var err error
		ln, err = net.Listen("tcp4", "127.0.0.1:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer in.Close()
				out, err := net.Dial("tcp4", u.Host) // from a thread of the test's namespace
				if err != nil {
					return
				}
				defer out.Close()
				go func() { _, _ = io.Copy(out, in); out.(*net.TCPConn).CloseWrite() }()
				_, _ = io.Copy(in, out)
			}()
		}
	}()
	return "http://" + ln.Addr().String() + u.Path
}
