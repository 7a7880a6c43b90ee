package lab_test

import (
	"strings"
	"testing"
)

// TestUpWithEmptyWarmPool: `vpcnet lab up --nodes 1 --warm-eni-target 0` reaches a ready node
// though its pool holds no address, and a pod then gets one: the ADD grows the pool and is
// retried while the agent says no-addresses (issue 12 item 1; at 1ca4798 the lab gave up after
// 90 s). `lab describe node` shows the agent's capacity: a t3.medium with MAX_ENI=2 holds 10
// pods, not the instance type's 15 (issue 12 item 2).
func TestUpWithEmptyWarmPool(t *testing.T) {
	l := newLab(t, "--nodes", "1", "--warm-eni-target", "0", "--max-eni", "2")
	st := l.status()
	if len(st.Nodes) != 1 || !st.Nodes[0].Agent.Ready || st.Nodes[0].Agent.Free != 0 {
		t.Fatalf("after lab up: %+v", st.Nodes)
	}
	if a := st.Nodes[0].Agent; strings.Contains(a.Message, "growing") || !strings.Contains(a.Message, "at its target") {
		t.Errorf("an empty pool at target WARM_ENI_TARGET=0 says %q", a.Message)
	}
	l.must("pod", "run", "a")
	st = l.status()
	if p := l.pod(st, "a"); !p.IP.IsValid() {
		t.Fatalf("pod a has no address: %+v", p)
	}
	out := l.must("describe", "node", st.Nodes[0].Name)
	for _, want := range []string{"Max pods:          10 (pod addresses", "1 running, 9 more fit", "of 2 attached"} {
		if !strings.Contains(out, want) {
			t.Errorf("describe node lacks %q:\n%s", want, out)
		}
	}
}
