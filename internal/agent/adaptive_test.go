package agent_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/vpcnet/vpcnet/internal/agent"
	"github.com/vpcnet/vpcnet/internal/ipam"
	"github.com/vpcnet/vpcnet/internal/vpcsim"
)

// TestAdaptivePool (issue 16 item 3): with VPCNET_WARM_POOL=adaptive the agent sizes the pool
// from the pod starts it sees and the grows it measures, says so in /v1/status and the metrics,
// and tops up in batches: 20 pods started one after another cost far fewer assigns than pods.
func TestAdaptivePool(t *testing.T) {
	x := newSim(t, vpcsim.Options{}, "10.0.16.0/20", "m5.xlarge") // 4 ENIs of 14 pod addresses
	cfg := testConfig(t, x)
	cfg.Pool.Adaptive, cfg.Pool.WarmENITarget, cfg.Pool.ReleaseDelay = true, 0, 20*time.Second
	cfg.AddWait = 5 * time.Second
	n := startNode(t, x, cfg)
	var st agent.Status
	status := func() agent.Status {
		var s agent.Status
		if err := json.Unmarshal([]byte(n.get("/v1/status")), &s); err != nil {
			t.Fatalf("/v1/status: %v", err)
		}
		return s
	}
	waitFor(t, 60*time.Second, "two free addresses with nothing seen", func() bool { st = status(); return st.Free >= ipam.NothingSeenTarget })
	if st.Pool == nil || st.Pool.Mode != "adaptive" || st.Pool.TargetFree != ipam.NothingSeenTarget || st.Pool.Batch != 0 {
		t.Fatalf("status pool before any pod: %+v, want adaptive, %d free kept, no batch", st.Pool, ipam.NothingSeenTarget)
	}
	calls := func() float64 {
		return n.metric(`vpcnet_ec2_calls_total{action="AssignPrivateIpAddresses"}`) + n.metric(`vpcnet_ec2_calls_total{action="CreateNetworkInterface"}`)
	}
	before := calls()
	const pods = 20
	for i := range pods {
		n.mustAdd(fmt.Sprint("p", i))
	}
	grows := calls() - before
	st = status()
	if st.Pool == nil || st.Pool.StartRate <= 0 || st.Pool.ReplenishSeconds <= 0 || st.Pool.Batch < 2 || st.Pool.TargetFree < 1 {
		t.Fatalf("status pool after %d starts: %+v, want a start rate, a measured replenish and a batch", pods, st.Pool)
	}
	if grows > pods/3 {
		t.Errorf("%d pods cost %v assigns and ENI creates; batches sized from the start rate should need at most %d (%s)", pods, grows, pods/3, st.Pool.Reason)
	}
	if v := n.metric("vpcnet_pod_start_rate"); v <= 0 {
		t.Errorf("vpcnet_pod_start_rate = %v after %d starts", v, pods)
	}
	if v := n.metric("vpcnet_pool_target_free"); v < 1 {
		t.Errorf("vpcnet_pool_target_free = %v", v)
	}
	if v := n.metric("vpcnet_replenish_latency_seconds"); v <= 0 {
		t.Errorf("vpcnet_replenish_latency_seconds = %v after grows", v)
	}
	t.Logf("%d pods, %v grows; %s", pods, grows, st.Pool.Reason)
}
