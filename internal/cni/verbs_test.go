package cni_test

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/vishvananda/netlink"
	"github.com/vpcnet/vpcnet/internal/dataplane"
	"github.com/vpcnet/vpcnet/internal/probe"
)

// Every supported spec version through libcni: ADD, CHECK, DEL, DEL again, with the address from
// the real agent, pods that reach each other, and nothing left behind.
func TestVerbsEveryVersion(t *testing.T) {
	c := newCluster(t, clusterOpts{})
	for _, v := range []string{"0.4.0", "1.0.0", "1.1.0"} {
		t.Run(v, func(t *testing.T) {
			list := c.conflist(t, v)
			a, b := newPod(t, "a-"+v), newPod(t, "b-"+v)
			for _, p := range []*pod{a, b} {
				if err := c.addRetry(list, p, 30*time.Second); err != nil {
					t.Fatalf("ADD %s: %v", p.name, err)
				}
				if !c.subnet.Contains(p.ip) || p.ip == c.primaryIP {
					t.Fatalf("ADD %s got %s, want an address of subnet %s", p.name, p.ip, c.subnet)
				}
				if err := c.cni.CheckNetworkList(bg, list, p.rt); err != nil {
					t.Fatalf("CHECK %s: %v", p.name, err)
				}
			}
			if a.ip == b.ip {
				t.Fatalf("two pods got %s", a.ip)
			}
			// The result: host veth, pod eth0 in its sandbox, the /32 on the sandbox interface.
			r := a.res
			if len(r.Interfaces) != 2 || r.Interfaces[1].Sandbox != a.ns.Path() || r.Interfaces[1].Name != "eth0" ||
				r.IPs[0].Interface == nil || *r.IPs[0].Interface != 1 || r.IPs[0].Gateway.String() != dataplane.Gateway.String() {
				t.Errorf("ADD result %s", r)
			}
			if err := probe.WaitPing(a.ns.Path(), b.ip, 30*time.Second); err != nil {
				t.Fatalf("pod %s -> pod %s: %v", a.ip, b.ip, err)
			}
			if n, err := probe.Ping(b.ns.Path(), a.ip, 3, 10*time.Second); err != nil || n != 3 {
				t.Fatalf("ping %s -> %s: %d/3, %v", b.ip, a.ip, n, err)
			}
			if v == "1.1.0" {
				if err := c.cni.GetStatusNetworkList(bg, list); err != nil {
					t.Errorf("STATUS: %v", err)
				}
			}
			for _, p := range []*pod{a, b} {
				for i := 0; i < 2; i++ {
					if err := c.cni.DelNetworkList(bg, list, p.rt); err != nil {
						t.Fatalf("DEL %d of %s: %v", i+1, p.name, err)
					}
				}
			}
			if left := c.leftovers(t); len(left) > 0 {
				t.Fatalf("after DEL: %v", left)
			}
			if st := c.agentStatus(t); st.Assigned != 0 {
				t.Fatalf("agent still holds %d addresses after DEL", st.Assigned)
			}
		})
	}
}

// GC (1.1.0) removes attachments the runtime no longer lists, keeps the valid ones.
func TestGC(t *testing.T) {
	c := newCluster(t, clusterOpts{})
	list := c.conflist(t, "1.1.0")
	keep, drop := newPod(t, "keep"), newPod(t, "drop")
	for _, p := range []*pod{keep, drop} {
		if err := c.addRetry(list, p, 30*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	err := c.cni.GCNetworkList(bg, list, &libcni.GCArgs{ValidAttachments: []typesGCAttachment{{ContainerID: keep.rt.ContainerID, IfName: "eth0"}}})
	if err != nil {
		t.Fatalf("GC: %v", err)
	}
	if err := c.cni.CheckNetworkList(bg, list, keep.rt); err != nil {
		t.Fatalf("CHECK of the kept pod after GC: %v", err)
	}
	if n, _ := probe.Ping(keep.ns.Path(), drop.ip, 1, 300*time.Millisecond); n != 0 {
		t.Fatalf("collected pod %s still answers", drop.ip)
	}
	if st := c.agentStatus(t); st.Assigned != 1 {
		t.Fatalf("agent holds %d addresses after GC, want 1", st.Assigned)
	}
	if err := c.cni.DelNetworkList(bg, list, keep.rt); err != nil {
		t.Fatal(err)
	}
	if left := c.leftovers(t); len(left) > 0 {
		t.Fatalf("after GC and DEL: %v", left)
	}
}

// A pod's packets with a source other than its own address are dropped on the node.
func TestSpoofedSourceDropped(t *testing.T) {
	c := newCluster(t, clusterOpts{})
	list := c.conflist(t, "1.1.0")
	a, b := newPod(t, "spoofer"), newPod(t, "target")
	for _, p := range []*pod{a, b} {
		if err := c.addRetry(list, p, 30*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	// The spoofer takes another VPC address (its neighbour's +1) and sends from it.
	spoofed := b.ip.Next()
	if err := probe.In(a.ns.Path(), func() error { return addAddr("eth0", spoofed) }); err != nil {
		t.Fatal(err)
	}
	conn, err := probe.ListenUDP(b.ns.Path(), netip.AddrPortFrom(b.ip, 9000))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	dst := netip.AddrPortFrom(b.ip, 9000)
	deadline := time.Now().Add(30 * time.Second)
	for { // the genuine path first
		_ = probe.SendUDP(a.ns.Path(), netip.AddrPortFrom(a.ip, 0), dst, []byte("warm-up"))
		if _, _, ok, _ := probe.RecvUDP(conn, 200*time.Millisecond); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("genuine datagrams never arrive")
		}
	}
	for {
		if _, _, ok, _ := probe.RecvUDP(conn, 300*time.Millisecond); !ok {
			break
		}
	}
	for i := 0; i < 3; i++ {
		if err := probe.SendUDP(a.ns.Path(), netip.AddrPortFrom(spoofed, 0), dst, []byte("spoofed")); err != nil {
			t.Fatal(err)
		}
	}
	_ = probe.SendUDP(a.ns.Path(), netip.AddrPortFrom(a.ip, 0), dst, []byte("genuine"))
	var got []string
	for {
		msg, from, ok, _ := probe.RecvUDP(conn, 500*time.Millisecond)
		if !ok {
			break
		}
		got = append(got, string(msg)+" from "+from.Addr().String())
	}
	if len(got) != 1 || got[0] != "genuine from "+a.ip.String() {
		t.Fatalf("target received %q; want only the genuine datagram", got)
	}
	c.do(t, func() error {
		n, err := dataplane.SpoofDrops()
		if err == nil && n < 3 {
			t.Errorf("anti-spoofing dropped %d packets, want >= 3", n)
		}
		return err
	})
	for _, p := range []*pod{a, b} {
		if err := c.cni.DelNetworkList(bg, list, p.rt); err != nil {
			t.Fatal(err)
		}
	}
	if left := c.leftovers(t); len(left) > 0 {
		t.Fatalf("after DEL: %v", left)
	}
}

// CHECK notices when the wiring ADD made is gone, and DEL still cleans up after that.
func TestCheckDetectsBrokenWiring(t *testing.T) {
	c := newCluster(t, clusterOpts{})
	list := c.conflist(t, "1.1.0")
	p := newPod(t, "fragile")
	if err := c.addRetry(list, p, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := c.cni.CheckNetworkList(bg, list, p.rt); err != nil {
		t.Fatalf("CHECK of an intact pod: %v", err)
	}
	c.do(t, func() error { // someone removes the pod's rule 512
		r := netlink.NewRule()
		r.Priority = dataplane.RulePrioToPod
		r.Dst = &net.IPNet{IP: p.ip.AsSlice(), Mask: net.CIDRMask(32, 32)}
		r.Table = 254
		return netlink.RuleDel(r)
	})
	if err := c.cni.CheckNetworkList(bg, list, p.rt); err == nil {
		t.Fatal("CHECK passed with the pod's rule 512 gone")
	} else {
		t.Logf("CHECK: %v", err)
	}
	if err := c.cni.DelNetworkList(bg, list, p.rt); err != nil {
		t.Fatal(err)
	}
	if left := c.leftovers(t); len(left) > 0 {
		t.Fatalf("after DEL: %v", left)
	}
}
