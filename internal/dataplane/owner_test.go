package dataplane_test

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/vishvananda/netlink"
	"github.com/vpcnet/vpcnet/internal/dataplane"
	"github.com/vpcnet/vpcnet/internal/testenv"
)

func TestContainerVethNameAndOwner(t *testing.T) {
	a := dataplane.ContainerVethName("eni", "vpcnet", "sbA", "eth0")
	if len(a) != 14 || !strings.HasPrefix(a, "eni") || a != dataplane.ContainerVethName("eni", "vpcnet", "sbA", "eth0") {
		t.Fatalf("ContainerVethName = %q, want eni + 11 hex digits, stable", a)
	}
	for _, other := range []string{
		dataplane.ContainerVethName("eni", "vpcnet", "sbB", "eth0"),
		dataplane.ContainerVethName("eni", "vpcnet", "sbA", "eth1"),
		dataplane.ContainerVethName("eni", "other", "sbA", "eth0"),
	} {
		if other == a {
			t.Fatalf("two attachments share veth name %q", a)
		}
	}
	if o := dataplane.OwnerTag("vpcnet", "sbA", "eth0"); o != "vpcnet vpcnet sbA eth0" {
		t.Fatalf("OwnerTag = %q", o)
	}
	if o := dataplane.OwnerTag("vpcnet", strings.Repeat("c", 300), "eth0"); len(o) > 255 || !strings.HasPrefix(o, "vpcnet sha256:") {
		t.Fatalf("OwnerTag of a long key = %q (%d bytes)", o, len(o))
	}
}

// Teardown of one attachment leaves alone a veth of the same name that another attachment owns,
// and the rules of an address that is routed to another attachment's veth now.
func TestTeardownRemovesOnlyItsOwn(t *testing.T) {
	tp := newTopo(t)
	ip := netip.MustParseAddr("10.0.1.40")
	nsB := testenv.NewNS(t)
	owner := func(c string) string { return dataplane.OwnerTag("vpcnet", c, "eth0") }
	// sandbox B is wired under a name that (by a hash collision, or an old plugin's pod-name
	// scheme) is also what sandbox A's teardown looks for.
	b := dataplane.Pod{Netns: nsB.Path(), IfName: "eth0", HostVeth: "enishared", Addr: ip, Owner: owner("sbB")}
	do(t, tp.node, func() error { _, err := dataplane.SetupPod(b); return err })

	nsA := testenv.NewNS(t)
	a := b
	a.Netns, a.Owner = nsA.Path(), owner("sbA")
	// A's teardown (same name, same address: the address went from A to B) removes nothing.
	do(t, tp.node, func() error { return dataplane.TeardownPod(a) })
	do(t, tp.node, func() error { return dataplane.CheckPod(b) })
	// A's setup refuses to replace B's veth.
	do(t, tp.node, func() error {
		if _, err := dataplane.SetupPod(a); err == nil || !strings.Contains(err.Error(), "not this attachment's") {
			t.Errorf("SetupPod over another attachment's veth: %v, want a refusal", err)
		}
		return nil
	})
	do(t, tp.node, func() error { return dataplane.CheckPod(b) })
	// Without the alias, the peer in B's namespace proves the veth is B's.
	do(t, tp.node, func() error {
		l, err := netlink.LinkByName(b.HostVeth)
		if err != nil {
			return err
		}
		return netlink.LinkSetAlias(l, "")
	})
	noTag := b
	noTag.Owner = ""
	do(t, tp.node, func() error { return dataplane.TeardownPod(noTag) })
	if left := leftovers(t, tp, b); len(left) > 0 {
		t.Fatalf("after B's teardown: %v", left)
	}
}

// UnwirePod (DEL with the pod's namespace still there) leaves the veth to go with the namespace,
// but nothing of the pod's network: no address in the pod, no host route, no rules. Deleting the
// namespace then takes the veth.
func TestUnwirePodLeavesVethToNamespace(t *testing.T) {
	tp := newTopo(t)
	podNS := mustNS(t)
	p := dataplane.Pod{Netns: podNS.path, IfName: "eth0", HostVeth: dataplane.ContainerVethName("eni", "net", "c1", "eth0"),
		Addr: netip.MustParseAddr("10.0.2.41"), Table: 2, Owner: dataplane.OwnerTag("net", "c1", "eth0")}
	do(t, tp.node, func() error { _, err := dataplane.SetupPod(p); return err })
	do(t, tp.node, func() error { return dataplane.UnwirePod(p) })
	if left := leftovers(t, tp, p); len(left) != 1 || left[0] != "veth "+p.HostVeth {
		t.Fatalf("after UnwirePod: %v, want only the veth", left)
	}
	h, err := ns.GetNS(podNS.path)
	if err != nil {
		t.Fatal(err)
	}
	do(t, h, func() error {
		l, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		addrs, err := netlink.AddrList(l, netlink.FAMILY_V4)
		if len(addrs) != 0 {
			t.Errorf("pod eth0 still has %v after UnwirePod", addrs)
		}
		return err
	})
	h.Close()
	do(t, tp.node, func() error { return dataplane.UnwirePod(p) }) // again: nothing to do
	podNS.remove(t)
	// The kernel dismantles a namespace in a workqueue: seconds on a loaded machine.
	deadline := time.Now().Add(60 * time.Second)
	for len(leftovers(t, tp, p)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("veth %s outlived its pod's namespace: %v", p.HostVeth, leftovers(t, tp, p))
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Without its namespace UnwirePod removes what is left, as TeardownPod does.
	q := p
	q.Addr, q.HostVeth = netip.MustParseAddr("10.0.2.42"), dataplane.ContainerVethName("eni", "net", "c2", "eth0")
	q.Owner = dataplane.OwnerTag("net", "c2", "eth0")
	podNS2 := mustNS(t)
	q.Netns = podNS2.path
	do(t, tp.node, func() error { _, err := dataplane.SetupPod(q); return err })
	q.Netns = "/run/netns/not-this-one"
	do(t, tp.node, func() error { return dataplane.UnwirePod(q) })
	if left := leftovers(t, tp, q); len(left) > 0 {
		t.Fatalf("after UnwirePod without a provable namespace: %v", left)
	}
}
