package dataplane_test

import (
	"net/netip"
	"strings"
	"testing"

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
