package dataplane_test

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vpcnet/vpcnet/internal/dataplane"
	"github.com/vpcnet/vpcnet/internal/probe"
)

func TestVethName(t *testing.T) {
	a := dataplane.VethName("eni", "default", "web-1")
	if len(a) != 14 || !strings.HasPrefix(a, "eni") || a != dataplane.VethName("eni", "default", "web-1") {
		t.Fatalf("VethName = %q, want eni + 11 hex digits, stable", a)
	}
	if a == dataplane.VethName("eni", "default", "web-2") {
		t.Fatalf("two pods share veth name %q", a)
	}
	if n := dataplane.VethName("podvet", "ns", "p"); len(n) != 15 {
		t.Fatalf("VethName with a 6-char prefix = %q (%d chars), want 15", n, len(n))
	}
	for _, bad := range []string{"", "eth", "toolongpfx", "a b"} {
		if dataplane.ValidVethPrefix(bad) == nil {
			t.Errorf("ValidVethPrefix(%q) = nil, want an error", bad)
		}
	}
}

func TestPodToPodAndTeardown(t *testing.T) {
	tp := newTopo(t)
	a, nsA := tp.addPod(t, "pod-a", netip.MustParseAddr("10.0.1.20"), 0)
	b, nsB := tp.addPod(t, "pod-b", netip.MustParseAddr("10.0.1.21"), 0)

	// Running SetupPod again (a retried ADD) gives the same working pod.
	do(t, tp.node, func() error { _, err := dataplane.SetupPod(a); return err })
	for _, p := range []dataplane.Pod{a, b} {
		do(t, tp.node, func() error { return dataplane.CheckPod(p) })
	}
	if err := probe.WaitPing(nsA.Path(), b.Addr, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if n, err := probe.Ping(nsA.Path(), b.Addr, 3, 10*time.Second); err != nil || n != 3 {
		t.Fatalf("ping %s -> %s: %d/3 replies, %v", a.Addr, b.Addr, n, err)
	}
	if n, err := probe.Ping(nsB.Path(), a.Addr, 1, 10*time.Second); err != nil || n != 1 {
		t.Fatalf("ping %s -> %s: %d/1 replies, %v", b.Addr, a.Addr, n, err)
	}
	// The pod side as DESIGN.md draws it.
	do(t, nsA, func() error {
		l, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		if l.Attrs().MTU != dataplane.DefaultMTU {
			t.Errorf("pod eth0 MTU %d, want %d", l.Attrs().MTU, dataplane.DefaultMTU)
		}
		return nil
	})

	do(t, tp.node, func() error { return dataplane.TeardownPod(a) })
	if left := leftovers(t, tp, a); len(left) > 0 {
		t.Fatalf("after teardown of %s: %v", a.HostVeth, left)
	}
	do(t, tp.node, func() error { return dataplane.TeardownPod(a) }) // again: nothing to do
	do(t, tp.node, func() error { return dataplane.CheckPod(b) })
	if n, _ := probe.Ping(nsB.Path(), a.Addr, 1, 300*time.Millisecond); n != 0 {
		t.Fatalf("pod %s still answers after teardown", a.Addr)
	}
}

func TestTeardownWithoutNetns(t *testing.T) {
	tp := newTopo(t)
	podNS := mustNS(t)
	p := dataplane.Pod{Netns: podNS.path, IfName: "eth0", HostVeth: dataplane.ContainerVethName("eni", "net", "gone", "eth0"),
		Addr: netip.MustParseAddr("10.0.2.40"), Table: 2, Owner: dataplane.OwnerTag("net", "gone", "eth0")}
	do(t, tp.node, func() error { _, err := dataplane.SetupPod(p); return err })
	podNS.remove(t) // the runtime removed the namespace before DEL
	do(t, tp.node, func() error { return dataplane.TeardownPod(p) })
	if left := leftovers(t, tp, p); len(left) > 0 {
		t.Fatalf("after teardown without netns: %v", left)
	}
}

func TestAntiSpoofing(t *testing.T) {
	tp := newTopo(t)
	a, nsA := tp.addPod(t, "spoofer", netip.MustParseAddr("10.0.1.30"), 0)
	b, nsB := tp.addPod(t, "victim", netip.MustParseAddr("10.0.1.31"), 0)
	spoofed := netip.MustParseAddr("10.0.1.99")
	do(t, nsA, func() error {
		l, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		addr, _ := netlink.ParseAddr(spoofed.String() + "/32")
		return netlink.AddrAdd(l, addr)
	})
	c, err := probe.ListenUDP(nsB.Path(), netip.AddrPortFrom(b.Addr, 7000))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dst := netip.AddrPortFrom(b.Addr, 7000)
	send := func(src netip.Addr, msg string) {
		t.Helper()
		if err := probe.SendUDP(nsA.Path(), netip.AddrPortFrom(src, 0), dst, []byte(msg)); err != nil {
			t.Fatal(err)
		}
	}
	// Wait until the genuine path works (adding an address settles for a moment), then mix.
	deadline := time.Now().Add(30 * time.Second)
	for {
		send(a.Addr, "warm-up")
		if _, _, ok, err := probe.RecvUDP(c, 200*time.Millisecond); err != nil || ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("genuine datagrams from %s never reach %s", a.Addr, b.Addr)
		}
	}
	for { // drain late warm-ups
		if _, _, ok, _ := probe.RecvUDP(c, 300*time.Millisecond); !ok {
			break
		}
	}
	for i := 0; i < 3; i++ {
		send(spoofed, "spoofed")
		send(a.Addr, "genuine")
	}
	var got []string
	for {
		msg, from, ok, err := probe.RecvUDP(c, 500*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		got = append(got, string(msg)+" from "+from.Addr().String())
	}
	want := "genuine from " + a.Addr.String()
	if !slices.Equal(got, []string{want, want, want}) {
		t.Fatalf("victim received %q, want only the 3 genuine datagrams", got)
	}
	do(t, tp.node, func() error {
		n, err := dataplane.SpoofDrops()
		if err == nil && n == 0 {
			t.Errorf("the anti-spoofing chain dropped nothing; the spoofed datagram died elsewhere")
		}
		return err
	})
}

// A pod's very first packet goes through: SetupPod returns only once both veth ends are up
// (on a busy host the kernel's link-watch work used to lag and drop the first packets).
func TestFirstPacketOfFreshPods(t *testing.T) {
	tp := newTopo(t)
	for i := 0; i < 10; i++ {
		ip := netip.AddrFrom4([4]byte{10, 0, 1, byte(60 + i)})
		p, podNS := tp.addPod(t, "fresh-"+ip.String(), ip, 0)
		tp.routeToPod(t, p.Addr, nodeIP)
		if n, err := probe.Ping(podNS.Path(), vpcHost, 1, 10*time.Second); err != nil || n != 1 {
			t.Fatalf("first echo from fresh pod %s: %d/1 replies, %v", ip, n, err)
		}
	}
}
