package agent_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vpcnet/vpcnet/internal/agentapi"
	"github.com/vpcnet/vpcnet/internal/cloud"
	"github.com/vpcnet/vpcnet/internal/vpcsim"
)

func TestAPIContract(t *testing.T) {
	x := newSim(t, vpcsim.Options{}, "10.0.1.0/24", "m5.large")
	cfg := testConfig(t, x)
	cfg.Pool.WarmIPTarget = 2
	n := startNode(t, x, cfg)

	for path, mode := range map[string]os.FileMode{cfg.Socket: 0o600, filepath.Dir(cfg.Socket): 0o700} {
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v (%v), want %v", path, fi.Mode().Perm(), err, mode)
		}
	}
	_, err := n.client.Add(bg, &agentapi.AddRequest{Version: 99, Key: key("a")})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("wrong version: %v", err)
	}
	_, err = n.client.Add(bg, &agentapi.AddRequest{Version: agentapi.Version, Key: &agentapi.Key{Network: "vpcnet"}})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("empty key: %v", err)
	}
	a := n.mustAdd("a")
	if again := n.mustAdd("a"); again != a {
		t.Errorf("ADD is not idempotent: %s then %s", a, again)
	}
	al, err := n.add("a")
	if err != nil || al.SubnetCidr != "10.0.1.0/24" || al.SubnetGateway != "10.0.1.1" || al.EniId == "" || al.EniMac == "" || len(al.VpcCidrs) != 1 || al.PodName != "a" {
		t.Errorf("allocation %v: %v", al, err)
	}
	if _, err := n.client.Check(bg, &agentapi.CheckRequest{Version: agentapi.Version, Key: key("a"), Ip: a.String()}); err != nil {
		t.Errorf("CHECK: %v", err)
	}
	// The pod's UID (K8S_POD_UID) is kept with the allocation and answered with it, also to a
	// repeated ADD that names none.
	rep, err := n.client.Add(bg, &agentapi.AddRequest{Version: agentapi.Version, Key: key("u"), PodNamespace: "default", PodName: "db-0", PodUid: "uid-db-0"})
	if err != nil || rep.GetAllocation().GetPodUid() != "uid-db-0" || rep.GetAllocation().GetPodName() != "db-0" {
		t.Errorf("ADD with a pod UID: %v, %v", rep, err)
	}
	if rep, err := n.client.Add(bg, &agentapi.AddRequest{Version: agentapi.Version, Key: key("u"), PodNamespace: "default", PodName: "db-0"}); err != nil || rep.GetAllocation().GetPodUid() != "uid-db-0" {
		t.Errorf("repeated ADD: %v, %v", rep, err)
	}
	n.del("u")
	if _, err := n.client.Check(bg, &agentapi.CheckRequest{Version: agentapi.Version, Key: key("a"), Ip: "10.9.9.9"}); status.Code(err) != codes.NotFound {
		t.Errorf("CHECK of another address: %v", err)
	}
	n.del("a")
	n.del("a") // idempotent
	if _, err := n.client.Check(bg, &agentapi.CheckRequest{Version: agentapi.Version, Key: key("a")}); status.Code(err) != codes.NotFound {
		t.Errorf("CHECK after DEL: %v", err)
	}
	for _, path := range []string{"/healthz", "/v1/enis", "/v1/pods", "/v1/config", "/v1/status"} {
		if body := n.get(path); body == "" || body[0] == '4' || body[0] == '5' {
			t.Errorf("%s: %q", path, body)
		}
	}
	for _, m := range []string{"vpcnet_enis", "vpcnet_addresses", "vpcnet_addresses_assigned", "vpcnet_addresses_warm", "vpcnet_addresses_cooldown",
		"vpcnet_prefixes", "vpcnet_max_pods", "vpcnet_subnet_free_addresses", "vpcnet_ec2_calls_total", "vpcnet_ec2_call_duration_seconds_count",
		"vpcnet_cni_requests_total", "vpcnet_cni_request_duration_seconds_count", "vpcnet_ready", "vpcnet_status"} {
		if n.metric(m) == 0 && m != "vpcnet_addresses_assigned" && m != "vpcnet_prefixes" {
			t.Errorf("metric %s missing or zero", m)
		}
	}
}

func TestRestartRestoresAllocations(t *testing.T) {
	x := newSim(t, vpcsim.Options{}, "10.0.1.0/24", "m5.large")
	cfg := testConfig(t, x)
	cfg.Pool.WarmIPTarget, cfg.Pool.Cooldown = 3, 5*time.Second
	n := startNode(t, x, cfg)
	a, b, gone := n.mustAdd("a"), n.mustAdd("b"), n.mustAdd("gone")
	n.del("gone")
	n.stop()
	n = startNode(t, x, cfg)
	if got := n.mustAdd("a"); got != a {
		t.Fatalf("after restart a holds %s, had %s", got, a)
	}
	for _, id := range []string{"c", "d", "e"} {
		if c := n.mustAdd(id); c == a || c == b || c == gone {
			t.Fatalf("new pod got %s, held by another or released just before the restart", c)
		}
	}
	rep, err := n.client.GC(bg, &agentapi.GCRequest{Version: agentapi.Version, Network: "vpcnet", Valid: []*agentapi.Key{key("a")}})
	if err != nil || len(rep.Released) != 4 {
		t.Fatalf("GC: %v %v", rep, err)
	}
	n.settle("3 warm + a once the cooldowns end", func(p poolView) bool { return p.assigned == 1 && p.total == 4 })
}

func TestUnmanagedENILeftAloneAndDetachedCleanedUp(t *testing.T) {
	x := newSim(t, vpcsim.Options{}, "10.0.1.0/24", "m5.large")
	// An ENI someone else manages, attached at device 1, with addresses of its own.
	other := x.hog(t, "", "count=3")
	if _, err := x.ec2.CreateTags(bg, &ec2.CreateTagsInput{Resources: []string{other}, Tags: []types.Tag{{Key: aws.String(cloud.TagNoManage), Value: aws.String("true")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := x.ec2.AttachNetworkInterface(bg, &ec2.AttachNetworkInterfaceInput{NetworkInterfaceId: aws.String(other), InstanceId: aws.String(x.instance), DeviceIndex: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	// A detached ENI of ours, created long ago (a crash between create and attach).
	old, err := x.ec2.CreateNetworkInterface(bg, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(x.subnet), TagSpecifications: []types.TagSpecification{{
		ResourceType: types.ResourceTypeNetworkInterface, Tags: []types.Tag{
			{Key: aws.String(cloud.TagCluster), Value: aws.String("test")},
			{Key: aws.String(cloud.TagCreatedAt), Value: aws.String(time.Now().Add(-time.Hour).UTC().Format(time.RFC3339))}}}}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, x)
	cfg.Pool.WarmIPTarget, cfg.Pool.MinimumIPTarget = 12, 12
	n := startNode(t, x, cfg)
	// 12 addresses take the primary and one more ENI: device 2, as device 1 is taken; the
	// unmanaged ENI's 3 addresses are neither counted nor handed out.
	p := n.settle("12 of our own addresses", func(p poolView) bool { return p.total == 12+3 && p.enis == 3 && p.free == 12 })
	t.Logf("pool %+v", p)
	for ip, state := range enisFromAgent(t, n.http.URL) {
		if state == "assigned" {
			t.Fatalf("%s assigned", ip)
		}
	}
	waitFor(t, 60*time.Second, "the detached ENI of ours deleted", func() bool {
		out, err := x.ec2.DescribeNetworkInterfaces(bg, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{*old.NetworkInterface.NetworkInterfaceId}})
		return err != nil || len(out.NetworkInterfaces) == 0
	})
	addrs, _ := x.cloudAddrs(t)
	mine := 0
	for _, eni := range addrs {
		if eni == other {
			mine++
		}
	}
	if mine != 3 {
		t.Fatalf("the unmanaged ENI holds %d addresses, had 3", mine)
	}
}

// TestAddLatency reports how long ADD takes from a warm pool, the store's fsync included.
func TestAddLatency(t *testing.T) {
	x := newSim(t, vpcsim.Options{}, "10.0.16.0/20", "m5.4xlarge")
	cfg := testConfig(t, x)
	cfg.Pool.MinimumIPTarget, cfg.Pool.WarmIPTarget = 200, 10
	n := startNode(t, x, cfg)
	n.settle("200 warm", func(p poolView) bool { return p.total == 200 })
	var took []time.Duration
	for i := range 100 {
		start := time.Now()
		if _, err := n.add(fmt.Sprint("seq", i)); err != nil {
			t.Fatal(err)
		}
		took = append(took, time.Since(start))
	}
	start := time.Now()
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() {
			if _, err := n.add(fmt.Sprint("par", i)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	par := time.Since(start)
	slices.Sort(took)
	t.Logf("ADD from a warm pool: p50 %v, p99 %v sequential; 100 concurrent ADDs in %v", took[50], took[98], par)
}
