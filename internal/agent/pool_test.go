package agent_test

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vpcnet/vpcnet/internal/agent"
	"github.com/vpcnet/vpcnet/internal/vpcsim"
)

// m5.large: 3 ENIs of 10 addresses, so 9 pod addresses per ENI.

func TestWarmENITarget(t *testing.T) {
	x := newSim(t, vpcsim.Options{}, "10.0.1.0/24", "m5.large")
	cfg := testConfig(t, x)
	cfg.Pool.WarmENIReleaseDelay = 2 * time.Second // VPCNET_WARM_ENI_RELEASE_DELAY: WARM_ENI_TARGET's own
	n := startNode(t, x, cfg)
	n.settle("one ENI's worth of free addresses", func(p poolView) bool { return p.total == 9 && p.enis == 1 && p.free == 9 })
	conf, err := os.ReadFile(filepath.Join(cfg.CNIConfDir, cfg.CNIConfName))
	if err != nil {
		t.Fatalf("CNI config not written once ready: %v", err)
	}
	var parsed map[string]any
	if err := json.Unmarshal(conf, &parsed); err != nil || parsed["cniVersion"] != agent.ConfCNIVersion || parsed["cniVersions"] == nil {
		t.Fatalf("CNI config: %v %s", err, conf)
	}
	for i := range 3 {
		n.mustAdd(fmt.Sprint("pod", i))
	}
	// The new ENI is filled in its create call: the subnet has the room.
	n.settle("a second ENI, filled", func(p poolView) bool { return p.total == 18 && p.enis == 2 && p.free == 15 && p.assigned == 3 })
	if got := n.metric(`vpcnet_ec2_calls_total{action="AssignPrivateIpAddresses"}`); got != 1 {
		t.Errorf("%v AssignPrivateIpAddresses calls for two filled ENIs, want 1 (the second comes filled)", got)
	}
	// Timed from before the first DEL: the agent's clocks start no earlier, however slowly the
	// DELs run on a loaded machine.
	gone := time.Now()
	for i := range 3 {
		n.del(fmt.Sprint("pod", i))
	}
	// The cooldown ends after 300 ms; the ENI is then held for the 2 s release delay. The check
	// is on the time the release was seen, never before it happened, so a slow machine cannot
	// fail it (a fixed sleep followed by a look at the pool could oversleep the delay).
	n.settle("the second ENI freed after cooldown and release delay", func(p poolView) bool { return p.total == 9 && p.enis == 1 && p.free == 9 })
	if took := time.Since(gone); took < cfg.Pool.Cooldown+cfg.Pool.WarmENIReleaseDelay {
		t.Fatalf("freed %v after the pods left", took)
	}
	if st := n.status(); !st.Ready || st.Reason != "" {
		t.Fatalf("status %v", st)
	}
}

func TestWarmIPTargetScaleDownKeepsAssigned(t *testing.T) {
	x := newSim(t, vpcsim.Options{}, "10.0.1.0/24", "m5.large")
	cfg := testConfig(t, x)
	cfg.Pool.WarmIPTarget = 5
	n := startNode(t, x, cfg)
	n.settle("5 warm", func(p poolView) bool { return p.total == 5 && p.enis == 1 })
	var kept []netip.Addr
	for i := range 12 {
		ip := n.mustAdd(fmt.Sprint("pod", i))
		if i < 2 {
			kept = append(kept, ip)
		}
	}
	n.settle("12 assigned + 5 warm on two ENIs", func(p poolView) bool { return p.total == 17 && p.enis == 2 && p.assigned == 12 })
	for i := 2; i < 12; i++ {
		n.del(fmt.Sprint("pod", i))
	}
	n.settle("2 assigned + 5 warm, kept pods untouched", func(p poolView) bool {
		addrs, _ := x.cloudAddrs(t)
		for _, ip := range kept {
			if _, ok := addrs[ip]; !ok {
				t.Fatalf("assigned %s was released", ip)
			}
		}
		return p.total == 7 && p.assigned == 2 && p.enis == 1
	})
}

func TestMinimumIPTarget(t *testing.T) {
	x := newSim(t, vpcsim.Options{}, "10.0.1.0/24", "m5.large")
	cfg := testConfig(t, x)
	cfg.Pool.MinimumIPTarget, cfg.Pool.WarmIPTarget = 12, 2
	n := startNode(t, x, cfg)
	n.settle("12 held on two ENIs", func(p poolView) bool { return p.total == 12 && p.enis == 2 })
	for i := range 11 {
		n.mustAdd(fmt.Sprint("pod", i))
	}
	n.settle("11 assigned + 2 warm", func(p poolView) bool { return p.total == 13 && p.assigned == 11 })
}

func TestWarmPrefixTarget(t *testing.T) {
	x := newSim(t, vpcsim.Options{}, "10.0.1.0/24", "m5.large")
	cfg := testConfig(t, x)
	cfg.Pool.PrefixDelegation, cfg.Pool.WarmPrefixTarget = true, 1
	n := startNode(t, x, cfg)
	n.settle("one free prefix", func(p poolView) bool { return p.total == 16 && p.enis == 1 })
	a := n.mustAdd("pod0")
	if !netip.MustParsePrefix("10.0.1.0/24").Contains(a) {
		t.Fatalf("address %s", a)
	}
	n.settle("a second prefix once the first is in use", func(p poolView) bool { return p.total == 32 && p.assigned == 1 })
	if got := n.metric("vpcnet_prefixes "); got != 2 {
		t.Fatalf("vpcnet_prefixes %v", got)
	}
	n.del("pod0")
	n.settle("back to one prefix after the cooldown", func(p poolView) bool { return p.total == 16 })
}

func TestMaxENI(t *testing.T) {
	x := newSim(t, vpcsim.Options{}, "10.0.1.0/24", "m5.large")
	cfg := testConfig(t, x)
	cfg.Pool.WarmIPTarget, cfg.Pool.MaxENI = 20, 1
	n := startNode(t, x, cfg)
	n.settle("the primary ENI full, no other", func(p poolView) bool { return p.total == 9 && p.enis == 1 })
}

func TestMaxPods(t *testing.T) {
	x := newSim(t, vpcsim.Options{}, "10.0.1.0/24", "m5.large")
	cfg := testConfig(t, x)
	cfg.Pool.WarmIPTarget, cfg.Pool.MaxPods = 10, 5
	n := startNode(t, x, cfg)
	n.settle("capped at 5", func(p poolView) bool { return p.total == 5 })
	for i := range 5 {
		n.mustAdd(fmt.Sprint("pod", i))
	}
	_, err := n.add("pod5")
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("sixth ADD: %v, want RESOURCE_EXHAUSTED", err)
	}
	if st := n.status(); !st.Ready || st.Reason != agent.ReasonMaxPods || st.MaxPods != 5 {
		t.Fatalf("status %v", st)
	}
	n.settle("still 5", func(p poolView) bool { return p.total == 5 })
}

func TestCooldown(t *testing.T) {
	x := newSim(t, vpcsim.Options{}, "10.0.1.0/24", "m5.large")
	cfg := testConfig(t, x)
	cfg.Pool.Cooldown = 5 * time.Second // wide enough to see the third address on a loaded machine
	cfg.Pool.MinimumIPTarget, cfg.Pool.WarmIPTarget = 2, 1
	n := startNode(t, x, cfg)
	n.settle("2 held", func(p poolView) bool { return p.total == 2 })
	a := n.mustAdd("a")
	n.del("a")
	if got := n.metric("vpcnet_addresses_cooldown "); got != 1 {
		t.Fatalf("vpcnet_addresses_cooldown %v", got)
	}
	b := n.mustAdd("b")
	if a == b {
		t.Fatalf("address %s handed out again within its cooldown", a)
	}
	n.settle("a third address: the resting one is not available", func(p poolView) bool { return p.total == 3 })
	n.del("b")
	n.settle("back to 2 once both rested", func(p poolView) bool { return p.total == 2 && p.free == 2 })
}

// TestSlowAttachDoesNotBlockAdd: while an ENI takes 10 s to attach, ADD goes on from the primary
// ENI's addresses, which keep being assigned. The ADDs are shown to finish while the attach is
// still pending in the cloud: a condition, not a duration of the ADDs.
func TestSlowAttachDoesNotBlockAdd(t *testing.T) {
	const attach = 10 * time.Second
	x := newSim(t, vpcsim.Options{Latency: map[string]time.Duration{"AttachNetworkInterface": attach}}, "10.0.1.0/24", "m5.large")
	cfg := testConfig(t, x)
	cfg.Pool.WarmIPTarget = 4
	n := startNode(t, x, cfg)
	n.settle("4 warm", func(p poolView) bool { return p.total == 4 && p.enis == 1 })
	attaching := func() int {
		out, err := x.ec2.DescribeNetworkInterfaces(bg, &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{{Name: aws.String("attachment.instance-id"), Values: []string{x.instance}}}})
		if err != nil {
			t.Fatal(err)
		}
		k := 0
		for _, ni := range out.NetworkInterfaces {
			if ni.Attachment != nil && ni.Attachment.Status == types.AttachmentStatusAttaching {
				k++
			}
		}
		return k
	}
	for i := range 6 { // 6 assigned and 3 free fill the primary's 9 slots: an ENI attach starts
		n.mustAdd(fmt.Sprint("pod", i))
	}
	waitFor(t, 60*time.Second, "an ENI attaching", func() bool { return attaching() == 1 }, func() string { return n.get("/v1/status") })
	start := time.Now()
	for i := 6; i < 8; i++ {
		n.mustAdd(fmt.Sprint("pod", i))
	}
	if attaching() != 1 {
		t.Fatalf("the ENI attach (%v) completed before two ADDs from the primary's free addresses did (%v): ADD waited for it", attach, time.Since(start))
	}
	t.Logf("2 ADDs in %v while an ENI attach takes %v", time.Since(start), attach)
	waitFor(t, attach+60*time.Second, "the attach to complete", func() bool { return attaching() == 0 })
	n.settle("12 on two ENIs once the attach completes", func(p poolView) bool { return p.total == 12 && p.enis == 2 })
}
