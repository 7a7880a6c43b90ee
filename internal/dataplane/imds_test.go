package dataplane_test

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/vpcnet/vpcnet/internal/dataplane"
	"github.com/vpcnet/vpcnet/internal/probe"
)

// TestBlockPodIMDS (issue 11 fault 9): with the block on, a pod's datagrams to IMDS are dropped
// in the node namespace while the node's own still arrive; off again, the pod reaches it.
func TestBlockPodIMDS(t *testing.T) {
	tp := newTopo(t)
	// IMDS lives on the router, as in the lab (and as a link-local service beyond eth0 on AWS).
	do(t, tp.router, func() error {
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		return netlink.AddrAdd(lo, &netlink.Addr{IPNet: &net.IPNet{IP: dataplane.IMDSAddr.AsSlice(), Mask: net.CIDRMask(32, 32)}})
	})
	p, podNS := tp.addPod(t, "imds", netip.MustParseAddr("10.0.1.60"), 0)
	tp.routeToPod(t, p.Addr, nodeIP)
	port := uint16(8080)
	reaches := func(nsPath string) bool {
		c, err := probe.ListenUDP(tp.router.Path(), netip.AddrPortFrom(dataplane.IMDSAddr, port))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		port++
		for range 5 {
			if err := probe.SendUDP(nsPath, netip.AddrPort{}, netip.AddrPortFrom(dataplane.IMDSAddr, port-1), []byte("GET /latest/meta-data/")); err != nil {
				t.Fatal(err)
			}
			if _, _, ok, err := probe.RecvUDP(c, 200*time.Millisecond); err != nil || ok {
				return ok
			}
		}
		return false
	}
	if !reaches(podNS.Path()) || !reaches(tp.node.Path()) {
		t.Fatal("IMDS unreachable before the block: the topology is broken")
	}
	for range 2 { // idempotent
		do(t, tp.node, func() error { return dataplane.BlockPodIMDS("eni", true) })
	}
	if reaches(podNS.Path()) {
		t.Error("the pod reaches IMDS with the block on")
	}
	if !reaches(tp.node.Path()) {
		t.Error("the node does not reach IMDS with the block on")
	}
	// Another pod address on the same node: blocked as well (the rule matches the veth, not
	// an address).
	_, other := tp.addPod(t, "imds-2", netip.MustParseAddr("10.0.1.61"), 0)
	tp.routeToPod(t, netip.MustParseAddr("10.0.1.61"), nodeIP)
	if reaches(other.Path()) {
		t.Error("a second pod reaches IMDS with the block on")
	}
	do(t, tp.node, func() error { return dataplane.BlockPodIMDS("eni", false) })
	if !reaches(podNS.Path()) {
		t.Error("the pod does not reach IMDS once the block is off")
	}
	do(t, tp.node, func() error { return dataplane.BlockPodIMDS("eni", false) }) // absent: fine
}
