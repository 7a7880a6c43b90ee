package agent_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/vpcnet/vpcnet/internal/agentapi"
	"github.com/vpcnet/vpcnet/internal/dataplane"
	"github.com/vpcnet/vpcnet/internal/ipam/store"
	"github.com/vpcnet/vpcnet/internal/netnsx"
	"github.com/vpcnet/vpcnet/internal/testenv"
	"github.com/vpcnet/vpcnet/internal/vpcsim"
)

// ReleaseGone (the agent's side of the GC from the API server's pods) never takes the address
// of a sandbox whose network is alive: in a node namespace where the attachment's host veth
// exists (its peer in the pod's namespace), it keeps the allocation; once the pod's namespace
// is deleted the kernel removes the veth, and the same call releases the address through the
// plugin's own DEL, run in process, so the agent no longer holds it. Allocations changed since
// the caller read them, quarantined ones and ones without a pod name are never released.
func TestReleaseGoneKeepsALiveSandboxAndReleasesAGoneOne(t *testing.T) {
	testenv.RequireNetns(t)
	nodeNS := testenv.NewNS(t)
	x := newSim(t, vpcsim.Options{}, "10.0.1.0/24", "m5.large")
	cfg := testConfig(t, x)
	n := startNode(t, x, cfg)
	ip := n.mustAdd("sandbox-1")
	other := n.mustAdd("sandbox-2")
	held := func(id string) (store.Alloc, bool) {
		return n.store.Get(store.Key{Network: "vpcnet", ContainerID: id, IfName: "eth0"})
	}
	al, ok := held("sandbox-1")
	if !ok || al.Addr != ip || al.PodName != "sandbox-1" {
		t.Fatalf("allocation %+v", al)
	}

	// The sandbox: a pod namespace with the attachment's veth, host end in the node namespace
	// named and tagged as the plugin does.
	podName := testenv.NSName("pod")
	podNS, err := netnsx.Create(podName)
	if err != nil {
		t.Fatal(err)
	}
	podDeleted := false
	t.Cleanup(func() {
		podNS.Close()
		if !podDeleted {
			_ = netnsx.Delete(podName)
		}
	})
	host := dataplane.ContainerVethName(cfg.VethPrefix, "vpcnet", "sandbox-1", "eth0")
	err = nodeNS.Do(func(ns.NetNS) error {
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: host}, PeerName: "gc-peer"}); err != nil {
			return err
		}
		l, err := netlink.LinkByName(host)
		if err != nil {
			return err
		}
		if err := netlink.LinkSetAlias(l, dataplane.OwnerTag("vpcnet", "sandbox-1", "eth0")); err != nil {
			return err
		}
		peer, err := netlink.LinkByName("gc-peer")
		if err != nil {
			return err
		}
		return netlink.LinkSetNsFd(peer, int(podNS.Fd()))
	})
	if err != nil {
		t.Fatal(err)
	}
	release := func(al store.Alloc) bool {
		t.Helper()
		var released bool
		err := nodeNS.Do(func(ns.NetNS) error {
			var err error
			released, err = n.a.ReleaseGone(al)
			return err
		})
		if err != nil {
			t.Fatalf("ReleaseGone(%s): %v", al.Key, err)
		}
		return released
	}
	if release(al) {
		t.Fatal("released the address of a sandbox whose veth exists")
	}
	if _, ok := held("sandbox-1"); !ok {
		t.Fatal("the live sandbox's allocation is gone")
	}

	// Allocations the caller read wrong, quarantined or made outside Kubernetes: never.
	stale := al
	stale.Addr = netip.MustParseAddr("10.0.1.250")
	q := al
	q.Key.ContainerID = store.QuarantinePrefix + "sandbox-2"
	bare, _ := held("sandbox-2")
	bare.PodName = ""
	for _, a := range []store.Alloc{stale, q, bare} {
		if release(a) {
			t.Errorf("released %+v", a)
		}
	}

	// The runtime lost the sandbox: its namespace goes, and the kernel takes the veth with it.
	podNS.Close()
	if err := netnsx.Delete(podName); err != nil {
		t.Fatal(err)
	}
	podDeleted = true
	vethGone := func() bool {
		gone := false
		_ = nodeNS.Do(func(ns.NetNS) error {
			_, err := netlink.LinkByName(host)
			gone = err != nil
			return nil
		})
		return gone
	}
	// The kernel destroys a namespace in a workqueue that a loaded machine tearing down many
	// namespaces at once can hold back for minutes (CI saw over 10 s here and over 2 min in the
	// lab's GC phase). The agent's GC, tested here, keys on the veth: after 30 s the test
	// removes it itself, as the kernel would have.
	for deadline := time.Now().Add(30 * time.Second); !vethGone(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Logf("%s still there 30 s after its namespace was deleted (the kernel's namespace cleanup is slow); deleting it", host)
			_ = nodeNS.Do(func(ns.NetNS) error {
				if l, err := netlink.LinkByName(host); err == nil {
					return netlink.LinkDel(l)
				}
				return nil
			})
			break
		}
	}
	waitFor(t, 30*time.Second, "the veth to go", vethGone, func() string { return host })
	if !release(al) {
		t.Fatal("did not release the address of a sandbox that is gone")
	}
	if _, ok := held("sandbox-1"); ok {
		t.Fatal("the agent still holds the released allocation")
	}
	if al2, ok := held("sandbox-2"); !ok || al2.Addr != other {
		t.Fatalf("the other pod's allocation changed: %+v", al2)
	}
	// The released address rests (IP_COOLDOWN_PERIOD) and is never given to two pods.
	if got := n.mustAdd("sandbox-3"); got == other {
		t.Fatalf("a new pod got %s, which sandbox-2 holds", got)
	}
	if _, err := n.client.Check(bg, &agentapi.CheckRequest{Version: agentapi.Version, Key: key("sandbox-1")}); err == nil {
		t.Fatal("CHECK of the released attachment succeeds")
	}
}
