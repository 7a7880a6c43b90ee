package cni_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vpcnet/vpcnet/internal/invariant"
	"github.com/vpcnet/vpcnet/internal/ipam/store"
	"github.com/vpcnet/vpcnet/internal/probe"
)

// agentAllocs reads the agent's allocations from its introspection endpoint /v1/pods.
func (c *cluster) agentAllocs(t testing.TB) []invariant.Allocation {
	t.Helper()
	if c.hostNetworking {
		t.Fatal("agentAllocs: the agent's introspection address is inside the node namespace")
	}
	cl := http.Client{Timeout: 5 * time.Second}
	resp, err := cl.Get("http://" + c.metrics + "/v1/pods")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var as []store.Alloc
	if err := json.NewDecoder(resp.Body).Decode(&as); err != nil {
		t.Fatalf("/v1/pods: %v", err)
	}
	return invariant.FromStore(as)
}

// invariantViolations collects the node and checks the invariant; pods are the sandboxes that
// still exist (whatever the records say).
func (c *cluster) invariantViolations(t testing.TB, pods ...*pod) []invariant.Violation {
	t.Helper()
	src := invariant.Source{NodeNetns: c.node.Path(), StateDir: c.stateDir, Allocations: c.agentAllocs(t)}
	for _, p := range pods {
		src.PodNetns = append(src.PodNetns, p.ns.Path())
	}
	s, err := invariant.Collect(src)
	if err != nil {
		t.Fatal(err)
	}
	return invariant.Check(s)
}

// assertInvariant fails the test when the node breaks the invariant.
func (c *cluster) assertInvariant(t testing.TB, pods ...*pod) {
	t.Helper()
	if err := invariant.Err(c.invariantViolations(t, pods...)); err != nil {
		t.Fatal(err)
	}
}

// The invariant checker on a real node: it holds with pods wired by the plugin, and it names a
// pod that lost its address.
func TestInvariantOnRealNode(t *testing.T) {
	c := newCluster(t, clusterOpts{})
	list := c.conflist(t, "1.1.0")
	a, b := newPod(t, "inv-a"), newPod(t, "inv-b")
	c.assertInvariant(t, a, b)
	for _, p := range []*pod{a, b} {
		if err := c.addRetry(list, p, 30*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	c.assertInvariant(t, a, b)
	if err := probe.In(a.ns.Path(), func() error {
		l, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		return netlink.LinkSetDown(l)
	}); err != nil {
		t.Fatal(err)
	}
	vs := c.invariantViolations(t, a, b)
	if len(vs) != 1 || vs[0].Rule != invariant.RulePodWithoutNetwork {
		t.Fatalf("violations with pod a's eth0 down: %v, want one %s", vs, invariant.RulePodWithoutNetwork)
	}
	for _, p := range []*pod{a, b} {
		if err := c.cni.DelNetworkList(bg, list, p.rt); err != nil {
			t.Fatal(err)
		}
	}
	c.assertInvariant(t, a, b)
}
