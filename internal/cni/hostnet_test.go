package cni_test

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"github.com/vpcnet/vpcnet/internal/dataplane"
	"github.com/vpcnet/vpcnet/internal/probe"
)

// The whole node: vpcnetd inside the node namespace with VPCNET_HOST_NETWORKING=true sets up the
// ENIs it attaches (tables, rules) and SNAT through internal/dataplane; the plugin wires pods;
// a pod on a secondary ENI reaches another VPC host through its ENI, and a host outside the VPC
// sees its traffic from the node's primary IP.
func TestAgentHostNetworking(t *testing.T) {
	c := newCluster(t, clusterOpts{hostNetworking: true})
	vpcHost, inetHost := netip.MustParseAddr("10.10.200.1"), netip.MustParseAddr("203.0.113.1")
	if err := c.router.Do(func(ns.NetNS) error {
		for _, a := range []netip.Addr{vpcHost, inetHost} {
			if err := addAddr("lo", a); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// The agent's SNAT: rule 1024 appears in the node.
	waitFor(t, 60*time.Second, "the agent's SNAT rule 1024", func() bool {
		found := false
		c.do(t, func() error {
			rules, err := netlink.RuleList(netlink.FAMILY_V4)
			for _, r := range rules {
				found = found || r.Priority == dataplane.RulePrioSNATMark
			}
			return err
		})
		return found
	})

	list := c.conflist(t, "1.1.0")
	pods, onENI, rec := c.podsUntilSecondaryENI(t, list, "hn")
	c.fabricMu.Lock()
	ferr := c.fabricErr
	var eniPrimary netip.Addr
	c.fabricMu.Unlock()
	if ferr != nil {
		t.Fatal(ferr)
	}
	// The agent filled the ENI's table: default via the subnet router.
	dev := fmt.Sprintf("eth%d", rec.Table-1)
	waitFor(t, 60*time.Second, "the agent's table "+fmt.Sprint(rec.Table), func() bool {
		ok := false
		c.do(t, func() error {
			routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: rec.Table}, netlink.RT_FILTER_TABLE)
			for _, r := range routes {
				ok = ok || r.Dst == nil || r.Dst.IP.IsUnspecified()
			}
			l, lerr := netlink.LinkByName(dev)
			if lerr == nil {
				addrs, _ := netlink.AddrList(l, netlink.FAMILY_V4)
				if len(addrs) > 0 {
					eniPrimary, _ = netip.AddrFromSlice(addrs[0].IP.To4())
				}
			}
			return err
		})
		return ok && eniPrimary.IsValid()
	})
	c.routeToPod(t, onENI.ip, eniPrimary)
	for _, p := range pods {
		if p != onENI && p.ip.IsValid() {
			c.routeToPod(t, p.ip, c.primaryIP)
		}
	}
	if err := probe.WaitPing(onENI.ns.Path(), vpcHost, 30*time.Second); err != nil {
		t.Fatalf("pod %s on %s -> VPC host %s: %v", onENI.ip, dev, vpcHost, err)
	}
	if err := probe.WaitPing(pods[0].ns.Path(), vpcHost, 30*time.Second); err != nil {
		t.Errorf("pod %s on eth0 -> VPC host %s: %v", pods[0].ip, vpcHost, err)
	}
	// Outside the VPC: SNAT to the node's primary IP, out of eth0 even from a secondary ENI's pod.
	conn, err := probe.ListenUDP(c.router.Path(), netip.AddrPortFrom(inetHost, 53))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, p := range []*pod{pods[0], onENI} {
		var from netip.AddrPort
		ok := false
		for i := 0; i < 10 && !ok; i++ {
			if err := probe.SendUDP(p.ns.Path(), netip.AddrPort{}, netip.AddrPortFrom(inetHost, 53), []byte("q")); err != nil {
				t.Fatal(err)
			}
			_, from, ok, _ = probe.RecvUDP(conn, 300*time.Millisecond)
		}
		if !ok || from.Addr() != c.primaryIP {
			t.Errorf("pod %s -> %s arrived %v from %v, want from the node's %s", p.ip, inetHost, ok, from, c.primaryIP)
		}
	}
	c.delPods(t, list, pods)
	if left := c.leftovers(t); len(left) > 0 {
		t.Fatalf("after DEL: %v", left)
	}
}

func waitFor(t testing.TB, d time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %s", what, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
