package cni_test

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// 100 pods added at once on one node, then deleted at once: every pod gets its own address and
// nothing is left afterwards, neither on the node nor in the agent.
func TestConcurrentAddDel100(t *testing.T) {
	const n = 100
	c := newCluster(t, clusterOpts{instanceType: "m5.4xlarge", env: []string{"MINIMUM_IP_TARGET=100", "WARM_IP_TARGET=5"},
		hostNetworking: true}) // the agent sets up the ENI tables CHECK verifies
	list := c.conflist(t, "1.1.0")
	pods := make([]*pod, n)
	for i := range pods {
		pods[i] = newPod(t, fmt.Sprintf("many-%03d", i))
	}
	run := func(verb string, f func(p *pod) error) {
		t.Helper()
		start := time.Now()
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i, p := range pods {
			wg.Add(1)
			go func() { defer wg.Done(); errs[i] = f(p) }()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("%s %s: %v", verb, pods[i].name, err)
			}
		}
		t.Logf("%d concurrent %s in %v", n, verb, time.Since(start).Round(time.Millisecond))
	}
	run("ADD", func(p *pod) error { return c.addRetry(list, p, 2*time.Minute) })
	seen := map[netip.Addr]string{}
	for _, p := range pods {
		if other, dup := seen[p.ip]; dup {
			t.Fatalf("%s and %s both got %s", other, p.name, p.ip)
		}
		seen[p.ip] = p.name
	}
	if st := c.agentStatus(t); st.Assigned != n {
		t.Errorf("agent holds %d addresses for %d pods", st.Assigned, n)
	}
	run("CHECK", func(p *pod) error { return c.cni.CheckNetworkList(bg, list, p.rt) })
	run("DEL", func(p *pod) error { return c.cni.DelNetworkList(bg, list, p.rt) })
	if left := c.leftovers(t); len(left) > 0 {
		t.Fatalf("after %d DELs: %d things left, e.g. %v", n, len(left), left[:min(5, len(left))])
	}
	if st := c.agentStatus(t); st.Assigned != 0 {
		t.Fatalf("agent holds %d addresses after every DEL", st.Assigned)
	}
}
