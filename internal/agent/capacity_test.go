package agent_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vpcnet/vpcnet/internal/agent"
	"github.com/vpcnet/vpcnet/internal/catalog"
	"github.com/vpcnet/vpcnet/internal/ipam"
	"github.com/vpcnet/vpcnet/internal/plan"
	"github.com/vpcnet/vpcnet/internal/vpcsim"
)

// waitReady waits until the agent says its pod network works and has written the CNI config.
func (n *node) waitReady() {
	n.t.Helper()
	conf := filepath.Join(n.cfg.CNIConfDir, n.cfg.CNIConfName)
	waitFor(n.t, 60*time.Second, "a ready node with its CNI config", func() bool {
		_, err := os.Stat(conf)
		return err == nil && n.status().Ready
	}, func() string { return n.get("/v1/status") })
}

// TestEverySettingReachesReady: any valid combination of pool settings gives a ready node with
// its CNI config, and a first ADD then gets an address, growing the pool if it holds none
// (issue 12 item 1: WARM_ENI_TARGET=0 never became ready).
func TestEverySettingReachesReady(t *testing.T) {
	cases := []struct {
		name   string
		typ    string
		subnet string
		pool   ipam.Settings
	}{
		{"WARM_ENI_TARGET=0", "t3.medium", "10.0.1.0/24", ipam.Settings{}},
		{"WARM_ENI_TARGET=1", "t3.medium", "10.0.1.0/24", ipam.Settings{WarmENITarget: 1}},
		{"WARM_ENI_TARGET=2 MAX_ENI=1", "m5.large", "10.0.1.0/24", ipam.Settings{WarmENITarget: 2, MaxENI: 1}},
		{"WARM_ENI_TARGET=0 MAX_PODS=1", "m5.large", "10.0.1.0/24", ipam.Settings{MaxPods: 1}},
		{"WARM_IP_TARGET=1", "m5.large", "10.0.1.0/24", ipam.Settings{WarmIPTarget: 1}},
		{"MINIMUM_IP_TARGET=3 alone", "m5.large", "10.0.1.0/24", ipam.Settings{MinimumIPTarget: 3}},
		{"WARM_IP_TARGET=2 MINIMUM_IP_TARGET=12", "m5.large", "10.0.1.0/24", ipam.Settings{WarmIPTarget: 2, MinimumIPTarget: 12}},
		{"prefix WARM_PREFIX_TARGET=0", "m5.large", "10.0.1.0/24", ipam.Settings{PrefixDelegation: true}},
		{"prefix WARM_PREFIX_TARGET=1", "m5.large", "10.0.1.0/24", ipam.Settings{PrefixDelegation: true, WarmPrefixTarget: 1}},
		{"prefix MINIMUM_IP_TARGET=20", "m5.large", "10.0.1.0/24", ipam.Settings{PrefixDelegation: true, MinimumIPTarget: 20}},
		{"WARM_ENI_TARGET=1 on a /28 the primary nearly fills", "m5.large", "10.0.1.0/28", ipam.Settings{WarmENITarget: 1}},
		{"WARM_IP_TARGET=30 beyond what the /28 has", "m5.large", "10.0.1.0/28", ipam.Settings{WarmIPTarget: 30}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			x := newSim(t, vpcsim.Options{}, c.subnet, c.typ)
			cfg := testConfig(t, x)
			p := c.pool
			p.Cooldown, p.Backoff, p.BackoffMax, p.PrefixFallback = cfg.Pool.Cooldown, cfg.Pool.Backoff, cfg.Pool.BackoffMax, cfg.Pool.PrefixFallback
			cfg.Pool = p
			n := startNode(t, x, cfg)
			n.waitReady()
			n.mustAdd("first")
			if st := n.status(); !st.Ready || st.Assigned != 1 {
				t.Fatalf("after the first ADD: %v", st)
			}
		})
	}
}

// TestTargetZeroSaysAtTarget: with WARM_ENI_TARGET=0 the pool holds nothing and status says it is
// at its target, not that it is growing (issue 12 item 10).
func TestTargetZeroSaysAtTarget(t *testing.T) {
	x := newSim(t, vpcsim.Options{}, "10.0.1.0/24", "t3.medium")
	cfg := testConfig(t, x)
	cfg.Pool.WarmENITarget = 0
	n := startNode(t, x, cfg)
	n.waitReady()
	p := n.settle("an empty pool", func(p poolView) bool { return p.total == 0 })
	st := n.status()
	if !st.Ready || st.Reason != agent.ReasonNoAddresses || strings.Contains(st.Message, "growing") || !strings.Contains(st.Message, "at its target") {
		t.Fatalf("pool %+v, status %v", p, st)
	}
	n.mustAdd("a")
}

// attachNoManage puts an ENI tagged node.k8s.amazonaws.com/no_manage=true with extra secondary
// addresses at device 1 of the sim's instance, as another tool would.
func (x *sim) attachNoManage(t *testing.T, secondary int32) string {
	t.Helper()
	eni, err := x.ec2.CreateNetworkInterface(bg, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(x.subnet),
		SecondaryPrivateIpAddressCount: aws.Int32(secondary),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeNetworkInterface,
			Tags: []types.Tag{{Key: aws.String("node.k8s.amazonaws.com/no_manage"), Value: aws.String("true")}}}}})
	if err != nil {
		t.Fatal(err)
	}
	id := *eni.NetworkInterface.NetworkInterfaceId
	if _, err := x.ec2.AttachNetworkInterface(bg, &ec2.AttachNetworkInterfaceInput{NetworkInterfaceId: aws.String(id),
		InstanceId: aws.String(x.instance), DeviceIndex: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	return id
}

// TestNoManageENICapacity: a t3.medium (3 ENIs x 5 slots) whose device 1 holds a no_manage ENI
// can hold 10 pods, not 15: status, metric and /v1/enis say so, and pod 11 gets the max-pods
// error, not "the pool is growing" (issue 12 item 2).
func TestNoManageENICapacity(t *testing.T) {
	x := newSim(t, vpcsim.Options{}, "10.0.1.0/24", "t3.medium")
	other := x.attachNoManage(t, 3)
	cfg := testConfig(t, x)
	n := startNode(t, x, cfg)
	n.waitReady()
	if st := n.status(); st.MaxPods != 10 {
		t.Fatalf("maxPods %d, want 10: %v", st.MaxPods, st)
	}
	if got := n.metric("vpcnet_max_pods "); got != 10 {
		t.Fatalf("vpcnet_max_pods %v, want 10", got)
	}
	for i := range 10 {
		n.mustAdd(fmt.Sprint("pod", i))
	}
	_, err := n.add("pod10")
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "full") || strings.Contains(err.Error(), "growing") {
		t.Fatalf("ADD of pod 11: %v, want the max-pods error", err)
	}
	st := n.status()
	if !st.Ready || st.Reason != agent.ReasonMaxPods || st.Assigned != 10 || !strings.Contains(st.Message, "no_manage") {
		t.Fatalf("status at 10 pods: %v", st)
	}
	for a, state := range enisOf(t, n.http.URL, other) {
		if state != "no_manage" {
			t.Errorf("the no_manage ENI's address %s is listed as %q", a, state)
		}
	}
	addrs, _ := x.cloudAddrs(t)
	if owned := countOn(addrs, other); owned != 3 {
		t.Fatalf("the no_manage ENI holds %d secondary addresses, want its 3 untouched", owned)
	}
}

// TestLoweredMaxPodsAtAdd: restarted with MAX_PODS=2 on a pool of 15, the third ADD fails with
// the max-pods error at once, though the pool keeps its addresses for the release delay
// (issue 12 item 3).
func TestLoweredMaxPodsAtAdd(t *testing.T) {
	x := newSim(t, vpcsim.Options{}, "10.0.1.0/24", "m5.large")
	cfg := testConfig(t, x)
	cfg.Pool.WarmENITarget, cfg.Pool.WarmIPTarget = 0, 15
	n := startNode(t, x, cfg)
	n.settle("15 held", func(p poolView) bool { return p.total == 15 })
	n.stop()
	cfg.Pool.MaxPods, cfg.Pool.ReleaseDelay = 2, time.Hour
	n = startNode(t, x, cfg)
	n.waitReady()
	n.mustAdd("a")
	n.mustAdd("b")
	_, err := n.add("c")
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "MAX_PODS=2") {
		t.Fatalf("third ADD under MAX_PODS=2: %v", err)
	}
	if st := n.status(); st.Reason != agent.ReasonMaxPods || st.MaxPods != 2 {
		t.Fatalf("status %v", st)
	}
	if p := n.pool(); p.total != 15 {
		t.Fatalf("the pool released before its delay: %+v (the test relies on the addresses still being held)", p)
	}
}

func enisView(t *testing.T, base string) []agent.ENIView {
	t.Helper()
	r, err := http.Get(base + "/v1/enis")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var enis []agent.ENIView
	if err := json.NewDecoder(r.Body).Decode(&enis); err != nil {
		t.Fatal(err)
	}
	return enis
}

func enisOf(t *testing.T, base, id string) map[string]string {
	t.Helper()
	for _, e := range enisView(t, base) {
		if e.ID == id {
			return e.Addresses
		}
	}
	t.Fatalf("/v1/enis does not list %s", id)
	return nil
}

func countOn(addrs map[netip.Addr]string, eni string) int {
	n := 0
	for _, e := range addrs {
		if e == eni {
			n++
		}
	}
	return n
}

// TestSubnetExhaustedAdvice: on a full subnet the status says what helps and does not advise
// prefix mode, which needs 16 free aligned addresses (issue 12 item 10).
func TestSubnetExhaustedAdvice(t *testing.T) {
	x := newSim(t, vpcsim.Options{}, "10.0.1.0/28", "m5.large") // 11 usable, the primary takes one
	cfg := testConfig(t, x)
	cfg.Pool.WarmENITarget, cfg.Pool.WarmIPTarget = 0, 30
	n := startNode(t, x, cfg)
	n.waitReady()
	for i := range 9 { // the primary ENI's 9 slots; a second ENI takes the last address as its primary
		n.mustAdd(fmt.Sprint("pod", i))
	}
	var st string
	waitFor(t, 60*time.Second, "subnet-exhausted", func() bool {
		_, err := n.add("pod9")
		st = n.get("/v1/status")
		return err != nil && strings.Contains(st, agent.ReasonSubnetExhausted)
	}, func() string { return st })
	if strings.Contains(st, "prefix") || !strings.Contains(st, "bigger or an extra subnet") {
		t.Fatalf("advice: %s", st)
	}
}

// TestStatusMaxPodsIsPlanMaxPods: the agent's pod-address capacity on a fresh node plus the
// host-network pods is what `vpcnet plan max-pods` prints for kubelet: one number from one
// capacity function (issue 14 item 3).
func TestStatusMaxPodsIsPlanMaxPods(t *testing.T) {
	for _, c := range []struct {
		typ  string
		pool ipam.Settings
	}{
		{"t3.medium", ipam.Settings{WarmENITarget: 1}},
		{"m5.large", ipam.Settings{PrefixDelegation: true, WarmPrefixTarget: 1}},
	} {
		x := newSim(t, vpcsim.Options{}, "10.0.0.0/20", c.typ)
		cfg := testConfig(t, x)
		p := c.pool
		p.Cooldown, p.Backoff, p.BackoffMax, p.PrefixFallback = cfg.Pool.Cooldown, cfg.Pool.Backoff, cfg.Pool.BackoffMax, cfg.Pool.PrefixFallback
		cfg.Pool = p
		n := startNode(t, x, cfg)
		n.waitReady()
		it, err := catalog.Builtin().Lookup(c.typ)
		if err != nil {
			t.Fatal(err)
		}
		kubelet := plan.KubeletMaxPods(it, c.pool, false, plan.HostNetworkPods)
		if st := n.status(); int(st.MaxPods)+plan.HostNetworkPods != kubelet {
			t.Errorf("%s: agent maxPods %d + %d host-network pods, plan max-pods %d", c.typ, st.MaxPods, plan.HostNetworkPods, kubelet)
		}
		n.stop()
	}
}
