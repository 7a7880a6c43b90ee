package fabric_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vpcnet/vpcnet/internal/lab/fabric"
	"github.com/vpcnet/vpcnet/internal/netnsx"
	"github.com/vpcnet/vpcnet/internal/probe"
	"github.com/vpcnet/vpcnet/internal/testenv"
)

// newNS creates a named namespace removed at the end of the test.
func newNS(t *testing.T, tag string) string {
	t.Helper()
	name := testenv.NSName(tag)
	h, err := netnsx.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	h.Close()
	t.Cleanup(func() { _ = netnsx.Delete(name) })
	return name
}

// addAddr puts an address on a node's device, as the agent does for pods' addresses in tests.
func addAddr(t *testing.T, ns, dev string, p netip.Prefix) {
	t.Helper()
	err := probe.In(ns, func() error {
		l, err := netlink.LinkByName(dev)
		if err != nil {
			return err
		}
		if err := netlink.LinkSetUp(l); err != nil {
			return err
		}
		addr, _ := netlink.ParseAddr(p.String())
		return netlink.AddrAdd(l, addr)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestFabricInNamespaces(t *testing.T) {
	testenv.RequireNetns(t)
	router := newNS(t, "router")
	inet := testenv.NSName("inet")
	t.Cleanup(func() { _ = netnsx.Delete(inet) })
	if err := fabric.SetupRouter(router, inet); err != nil {
		t.Fatal(err)
	}
	f := fabric.New(router, t.Logf)
	subnet := netip.MustParsePrefix("10.10.1.0/24")
	node1, node2 := newNS(t, "node1"), newNS(t, "node2")
	ip1, ip2 := netip.MustParseAddr("10.10.1.10"), netip.MustParseAddr("10.10.1.20")
	f.Handle(fabric.Event{Kind: fabric.ENIAttached, InstanceID: "i-1", ENIID: "eni-1", MAC: "02:aa:00:00:00:01", Subnet: subnet, Addrs: []netip.Addr{ip1}})
	f.Handle(fabric.Event{Kind: fabric.ENIAttached, InstanceID: "i-2", ENIID: "eni-2", MAC: "02:aa:00:00:00:02", Subnet: subnet, Addrs: []netip.Addr{ip2}})
	if err := f.Bind("i-1", fabric.Node{Index: 1, NS: node1}); err != nil {
		t.Fatal(err)
	}
	if err := f.Bind("i-2", fabric.Node{Index: 2, NS: node2}); err != nil {
		t.Fatal(err)
	}
	// The ENI's MAC is on the node's eth0.
	_ = probe.In(node1, func() error {
		l, err := netlink.LinkByName("eth0")
		if err != nil || l.Attrs().HardwareAddr.String() != "02:aa:00:00:00:01" {
			t.Errorf("node1 eth0 = %v, %v; want MAC 02:aa:00:00:00:01", l, err)
		}
		return nil
	})
	const wait = 3 * time.Second
	mustPing := func(ns string, src, dst netip.Addr) {
		t.Helper()
		if _, err := probe.Echo(ns, src, dst, wait); err != nil {
			t.Error(err)
		}
	}
	mustNotPing := func(ns string, src, dst netip.Addr) {
		t.Helper()
		if _, err := probe.Echo(ns, src, dst, time.Second); err == nil {
			t.Errorf("ping %s -> %s from %s answered; want it dropped", src, dst, ns)
		}
	}
	mustPing(node1, netip.Addr{}, fabric.Gateway(subnet))
	mustPing(node1, netip.Addr{}, fabric.IMDSAddr)
	mustPing(node1, netip.Addr{}, ip2)
	mustPing(node1, netip.Addr{}, fabric.InternetHost)
	if tr, err := probe.TCPTransfer(node2, ip2, node1, 1<<20, wait); err != nil {
		t.Error(err)
	} else if tr.Source.Addr() != ip1 {
		t.Errorf("node2 saw the transfer from %s, want %s", tr.Source, ip1)
	}

	// A secondary address is routed once assigned, not before, and not after it is unassigned.
	sec := netip.MustParseAddr("10.10.1.21")
	addAddr(t, node2, "eth0", netip.PrefixFrom(sec, 32))
	mustNotPing(node1, netip.Addr{}, sec)
	f.Handle(fabric.Event{Kind: fabric.AddressAssigned, InstanceID: "i-2", ENIID: "eni-2", Addr: sec})
	mustPing(node1, netip.Addr{}, sec)
	// ...but only primary addresses reach the internet.
	mustNotPing(node2, sec, fabric.InternetHost)
	f.Handle(fabric.Event{Kind: fabric.AddressUnassigned, InstanceID: "i-2", ENIID: "eni-2", Addr: sec})
	mustNotPing(node1, netip.Addr{}, sec)

	// Source/dest check: a source not assigned to the ENI is dropped.
	spoof := netip.MustParseAddr("10.10.1.99")
	addAddr(t, node1, "eth0", netip.PrefixFrom(spoof, 32))
	mustNotPing(node1, spoof, ip2)
	f.Handle(fabric.Event{Kind: fabric.AddressAssigned, InstanceID: "i-1", ENIID: "eni-1", Addr: spoof})
	mustPing(node1, spoof, ip2)

	// A secondary ENI shows up as eth1 with its MAC, down, for the agent to configure.
	f.Handle(fabric.Event{Kind: fabric.ENIAttached, InstanceID: "i-1", ENIID: "eni-3", MAC: "02:aa:00:00:00:03", DeviceIndex: 1,
		Subnet: subnet, Addrs: []netip.Addr{netip.MustParseAddr("10.10.1.30")}})
	_ = probe.In(node1, func() error {
		l, err := netlink.LinkByName("eth1")
		if err != nil || l.Attrs().HardwareAddr.String() != "02:aa:00:00:00:03" {
			t.Errorf("node1 eth1 = %v, %v; want MAC 02:aa:00:00:00:03", l, err)
		}
		return nil
	})
	f.Handle(fabric.Event{Kind: fabric.ENIDetached, InstanceID: "i-1", ENIID: "eni-3", MAC: "02:aa:00:00:00:03", DeviceIndex: 1,
		Subnet: subnet, Addrs: []netip.Addr{netip.MustParseAddr("10.10.1.30")}})
	_ = probe.In(node1, func() error {
		if _, err := netlink.LinkByName("eth1"); err == nil {
			t.Errorf("node1 eth1 still there after detach")
		}
		return nil
	})
	for _, ns := range []string{router, node1, node2, inet} {
		links, err := probe.Links(ns)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range links {
			if probe.IsTunnel(l.Type) {
				t.Errorf("%s has tunnel device %s (%s)", ns, l.Name, l.Type)
			}
		}
	}
}
