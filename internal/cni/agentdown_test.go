package cni_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
)

// DEL while the agent is down still unwires the pod (and works after the pod's namespace is
// gone); the release waits in the state dir and reaches the agent with the next call.
func TestDelWhileAgentDown(t *testing.T) {
	c := newCluster(t, clusterOpts{})
	list := c.conflist(t, "1.1.0")
	p := newPod(t, "orphan")
	if err := c.addRetry(list, p, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	c.stopAgent(t)
	// A short outage of an agent that worked (a restart, a rollout) does not fail STATUS.
	if err := c.cni.GetStatusNetworkList(bg, list); err != nil {
		t.Errorf("STATUS right after the agent went down: %v, want ready within statusGracePeriod", err)
	}
	p.rt.NetNS = "/run/netns/already-gone" // the runtime removed the sandbox first
	for i := 0; i < 2; i++ {
		if err := c.cni.DelNetworkList(bg, list, p.rt); err != nil {
			t.Fatalf("DEL %d with the agent down: %v", i+1, err)
		}
	}
	if left := c.leftovers(t); len(left) > 0 {
		t.Fatalf("after DEL with the agent down: %v", left)
	}
	queued := filepath.Join(c.stateDir, "vpcnet", "pending", "*.json")
	if q, _ := filepath.Glob(queued); len(q) != 1 {
		t.Fatalf("queued releases: %v, want 1", q)
	}
	c.startAgent(t)
	if st := c.agentStatus(t); st.Assigned != 1 {
		t.Fatalf("restarted agent holds %d addresses, want the orphan's 1", st.Assigned)
	}
	if err := c.cni.GetStatusNetworkList(bg, list); err != nil { // reaches the agent: flushes
		t.Fatalf("STATUS: %v", err)
	}
	if q, _ := filepath.Glob(queued); len(q) != 0 {
		t.Fatalf("queued releases after STATUS: %v", q)
	}
	if st := c.agentStatus(t); st.Assigned != 0 {
		t.Fatalf("agent holds %d addresses after the queued release", st.Assigned)
	}
}

// When the node has no address to give (here MAX_PODS), ADD answers 11: try again later, and
// STATUS still says the node's network works (a full node must not go NotReady, issue 14).
func TestNoFreeAddressIsTryAgainLater(t *testing.T) {
	c := newCluster(t, clusterOpts{env: []string{"MAX_PODS=1"}})
	list := c.conflist(t, "1.1.0")
	first, second := newPod(t, "first"), newPod(t, "second")
	if err := c.addRetry(list, first, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	err := c.add(list, second)
	if cniCode(err) != types.ErrTryAgainLater {
		t.Fatalf("ADD beyond MAX_PODS: %v, want code 11", err)
	}
	if st := c.agentStatus(t); st.Reason != "max-pods" {
		t.Fatalf("agent status at MAX_PODS=1 with one pod: reason %q, want max-pods", st.Reason)
	}
	if err := c.cni.GetStatusNetworkList(bg, list); err != nil {
		t.Errorf("STATUS at max-pods: %v, want success (the node's network works)", err)
	}
	// The failed ADD left nothing, and the runtime's DEL for it is fine.
	if err := c.cni.DelNetworkList(bg, list, second.rt); err != nil {
		t.Fatal(err)
	}
	if err := c.cni.DelNetworkList(bg, list, first.rt); err != nil {
		t.Fatal(err)
	}
	if left := c.leftovers(t); len(left) > 0 {
		t.Fatalf("after DEL: %v", left)
	}
}
