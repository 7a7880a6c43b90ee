package agent_test

import (
	"fmt"
	"net/netip"
	"strings"
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

// hog takes addresses in the subnet with an ENI of the test's own.
func (x *sim) hog(t *testing.T, primary string, secondary ...string) string {
	t.Helper()
	in := &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(x.subnet)}
	if primary != "" {
		in.PrivateIpAddress = aws.String(primary)
	}
	out, err := x.ec2.CreateNetworkInterface(bg, in)
	if err != nil {
		t.Fatal(err)
	}
	id := *out.NetworkInterface.NetworkInterfaceId
	if len(secondary) == 1 && strings.HasPrefix(secondary[0], "count=") {
		var n int32
		fmt.Sscanf(secondary[0], "count=%d", &n)
		_, err = x.ec2.AssignPrivateIpAddresses(bg, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(id), SecondaryPrivateIpAddressCount: aws.Int32(n)})
	} else if len(secondary) > 0 {
		_, err = x.ec2.AssignPrivateIpAddresses(bg, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(id), PrivateIpAddresses: secondary})
	}
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// exhaustionStyles are the two ways EC2 answers a subnet out of addresses or /28s: its
// documented codes, and InvalidParameterValue "There aren't sufficient free Ipv4 addresses or
// prefixes" (issue 12 item 11), with the code each shows in vpcnet_ec2_errors_total.
var exhaustionStyles = []struct {
	style            string
	subnetFull, cidr string
}{
	{vpcsim.ExhaustionCodes, "InsufficientFreeAddressesInSubnet", "InsufficientCidrBlocks"},
	{vpcsim.ExhaustionInvalidParameter, "InvalidParameterValue", "InvalidParameterValue"},
}

func TestSubnetExhaustionReportedAndRecovers(t *testing.T) {
	for _, ex := range exhaustionStyles {
		t.Run(ex.style, func(t *testing.T) {
			// A /28 has 11 usable addresses; the instance takes one, the hog eight.
			x := newSim(t, vpcsim.Options{ExhaustionError: ex.style}, "10.0.1.0/28", "m5.large")
			hog := x.hog(t, "", "count=7")
			cfg := testConfig(t, x)
			cfg.Pool.WarmIPTarget = 2
			n := startNode(t, x, cfg)
			n.settle("the last two addresses", func(p poolView) bool { return p.total == 2 })
			n.mustAdd("a")
			n.mustAdd("b")
			waitFor(t, 60*time.Second, "status subnet-exhausted", func() bool {
				_, err := n.add("c")
				return status.Code(err) == codes.ResourceExhausted && n.status().Reason == agent.ReasonSubnetExhausted
			}, func() string { return n.get("/v1/status") })
			_, err := n.add("c")
			if !strings.Contains(status.Convert(err).Message(), "subnet") {
				t.Fatalf("ADD error does not name the subnet: %v", err)
			}
			if n.metric("vpcnet_subnet_exhausted_total") < 1 || n.metric(`vpcnet_ec2_errors_total{action="AssignPrivateIpAddresses",code="`+ex.subnetFull+`"}`) < 1 {
				t.Fatal("exhaustion not in the metrics")
			}
			if _, err := x.ec2.DeleteNetworkInterface(bg, &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: aws.String(hog)}); err != nil {
				t.Fatal(err)
			}
			n.mustAdd("c")
			n.settle("back to two warm", func(p poolView) bool { return p.free == 2 && p.assigned == 3 })
			if st := n.status(); !st.Ready {
				t.Fatalf("status %v", st)
			}
		})
	}
}

// TestNewENIComesWithItsAddresses: when the pool needs another ENI, the ENI is created with its
// addresses in one CreateNetworkInterface call, and no assign follows for them.
func TestNewENIComesWithItsAddresses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		edit   func(*agent.Config)
		before int // addresses on the primary ENI before the second is needed
		total  int // addresses once the second ENI is attached
	}{
		{"WARM_ENI_TARGET=1 fills the new ENI", func(*agent.Config) {}, 9, 18},
		{"WARM_IP_TARGET=9 asks for the shortfall", func(c *agent.Config) { c.Pool.WarmIPTarget = 9 }, 9, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := newSim(t, vpcsim.Options{}, "10.0.1.0/24", "m5.large")
			cfg := testConfig(t, x)
			tc.edit(&cfg)
			n := startNode(t, x, cfg)
			n.settle("the primary ENI filled", func(p poolView) bool { return p.total == tc.before && p.enis == 1 })
			assigns := n.metric(`vpcnet_ec2_calls_total{action="AssignPrivateIpAddresses"}`)
			n.mustAdd("pod0") // one free short of the target: a second ENI
			n.settle("a second ENI with its addresses", func(p poolView) bool { return p.total == tc.total && p.enis == 2 })
			if got := n.metric(`vpcnet_ec2_calls_total{action="CreateNetworkInterface"}`); got != 1 {
				t.Errorf("%v CreateNetworkInterface calls, want 1", got)
			}
			if got := n.metric(`vpcnet_ec2_calls_total{action="AssignPrivateIpAddresses"}`) - assigns; got != 0 {
				t.Errorf("%v assigns after the ENI was created with its addresses", got)
			}
			// The new ENI's addresses reach pods once the primary's are taken.
			on := map[netip.Addr]bool{}
			out, err := x.ec2.DescribeNetworkInterfaces(bg, &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{{Name: aws.String("attachment.device-index"), Values: []string{"1"}}}})
			if err != nil || len(out.NetworkInterfaces) != 1 {
				t.Fatalf("the second ENI: %v %v", out, err)
			}
			for _, a := range out.NetworkInterfaces[0].PrivateIpAddresses {
				if !aws.ToBool(a.Primary) {
					on[netip.MustParseAddr(aws.ToString(a.PrivateIpAddress))] = true
				}
			}
			for i := 1; i < tc.before; i++ {
				n.mustAdd(fmt.Sprint("pod", i))
			}
			if ip := n.mustAdd("pod-on-eni1"); !on[ip] {
				t.Fatalf("pod %d got %s, not one of the second ENI's %v", tc.before+1, ip, on)
			}
		})
	}
}

// TestShortSubnetRequestRetriedSmaller: another node takes addresses after the agent counted
// the subnet's free ones, so the agent's one-call fill of a new ENI finds the subnet short. The
// create is retried with what EC2 now says is left, and the subnet's last address reaches a pod
// without a back-off.
func TestShortSubnetRequestRetriedSmaller(t *testing.T) {
	// A /27 has 27 usable addresses: the instance takes one and the primary ENI's fill nine.
	x := newSim(t, vpcsim.Options{}, "10.0.1.0/27", "m5.large")
	cfg := testConfig(t, x)
	cfg.Resync = time.Minute // the count the agent took at start stays its only one
	n := startNode(t, x, cfg)
	n.settle("the primary ENI filled", func(p poolView) bool { return p.total == 9 && p.enis == 1 })
	// 15 more gone: 2 left, while the agent still counts 17.
	x.hog(t, "", "count=14")
	n.mustAdd("pod0") // 8 free of the 9 wanted: a second ENI, filled
	// The second ENI's create with nine addresses failed and the retry got the last two: its
	// primary and one for pods. With 9 free the pool is at its target again.
	n.settle("the subnet's last address on a second ENI", func(p poolView) bool { return p.total == 10 && p.enis == 2 && p.free == 9 })
	if got := n.metric(`vpcnet_ec2_errors_total{action="CreateNetworkInterface",code="InsufficientFreeAddressesInSubnet"}`); got != 1 {
		t.Errorf("%v refused creates, want the one with the fill", got)
	}
	if got := n.metric(`vpcnet_ec2_calls_total{action="AssignPrivateIpAddresses"}`); got != 1 {
		t.Errorf("%v assigns, want only the primary ENI's fill", got)
	}
	if got := n.metric("vpcnet_subnet_exhausted_total"); got != 0 {
		t.Errorf("%v exhaustions recorded: the smaller retry should have served", got)
	}
	seen := map[netip.Addr]bool{}
	for i := 1; i < 10; i++ {
		ip := n.mustAdd(fmt.Sprint("pod", i))
		if seen[ip] {
			t.Fatalf("%s handed out twice", ip)
		}
		seen[ip] = true
	}
	out, err := x.ec2.DescribeSubnets(bg, &ec2.DescribeSubnetsInput{SubnetIds: []string{x.subnet}})
	if err != nil || aws.ToInt32(out.Subnets[0].AvailableIpAddressCount) != 0 {
		t.Fatalf("subnet: %v %v, want no address left", out, err)
	}
	if got := n.metric("vpcnet_subnet_free_addresses "); got != 0 {
		t.Errorf("the agent counts %v free addresses in an empty subnet", got)
	}
	if _, err := n.add("pod10"); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("eleventh ADD in an empty subnet: %v", err)
	}
}

func TestPrefixFallbackOnFragmentedSubnet(t *testing.T) {
	for _, ex := range exhaustionStyles {
		t.Run(ex.style, func(t *testing.T) {
			// 10.0.1.0/26 holds four /28s: the first has the reserved addresses and the instance,
			// the last the broadcast address, and the hog takes one address in each of the others.
			x := newSim(t, vpcsim.Options{ExhaustionError: ex.style}, "10.0.1.0/26", "m5.xlarge")
			x.hog(t, "10.0.1.20", "10.0.1.40")
			cfg := testConfig(t, x)
			cfg.Pool.PrefixDelegation, cfg.Pool.WarmPrefixTarget = true, 1
			n := startNode(t, x, cfg)
			n.settle("16 single addresses instead of a prefix", func(p poolView) bool { return p.total == 16 && p.free == 16 })
			if got := n.metric("vpcnet_prefixes "); got != 0 {
				t.Fatalf("prefixes %v", got)
			}
			n.mustAdd("a")
			if n.metric(`vpcnet_ec2_errors_total{action="AssignPrivateIpAddresses",code="`+ex.cidr+`"}`) < 1 {
				t.Fatalf("%s never seen", ex.cidr)
			}
		})
	}
}

func TestFlakyCloudConverges(t *testing.T) {
	for _, tc := range []struct {
		name string
		knob func(*vpcsim.Server)
	}{
		{"30% of calls fail", func(s *vpcsim.Server) { s.SetFailRate("*", 0.3) }},
		{"throttled", func(s *vpcsim.Server) { s.SetThrottle("*", vpcsim.Rate{PerSecond: 10, Burst: 3}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := newSim(t, vpcsim.Options{Seed: 7}, "10.0.1.0/24", "m5.large")
			tc.knob(x.s)
			cfg := testConfig(t, x)
			cfg.Pool.WarmIPTarget = 20
			cfg.Cloud.RatePerSec, cfg.Cloud.Burst = 20, 10 // twice what the throttled server allows
			n := startNode(t, x, cfg)
			for i := range 5 {
				n.mustAdd(fmt.Sprint("pod", i))
			}
			// Watch the agent's own view first: the test's Describe polling would eat the
			// throttled server's budget.
			waitFor(t, 60*time.Second, "20 free and 5 assigned", func() bool { st := n.status(); return st.Free == 20 && st.Assigned == 5 })
			attempts, calls := n.metric("vpcnet_ec2_attempts_total"), n.metric("vpcnet_ec2_calls_total")
			p := n.settle("25 addresses on three ENIs", func(p poolView) bool { return p.total == 25 && p.enis == 3 && p.assigned == 5 })
			t.Logf("pool %+v after %v EC2 attempts in %v calls", p, attempts, calls)
			if attempts > 60 {
				t.Fatalf("%v EC2 attempts to converge", attempts)
			}
		})
	}
}

// TestCloudFailureReported: a failing cloud is cloud-unreachable, a refused permission is
// cloud-unauthorized naming the IAM permission (issue 12 item 10); both back off and recover.
func TestCloudFailureReported(t *testing.T) {
	for _, tc := range []struct {
		name   string
		knob   func(s *vpcsim.Server, on bool)
		reason string
		says   string // in the status message and the ADD error
	}{
		{"denied", func(s *vpcsim.Server, on bool) { s.SetDeny("*", on) }, agent.ReasonCloudUnauthorized, "ec2:AssignPrivateIpAddresses"},
		{"failing", func(s *vpcsim.Server, on bool) { s.SetFailRate("*", map[bool]float64{true: 1}[on]) }, agent.ReasonCloudUnreachable, "InternalError"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := newSim(t, vpcsim.Options{}, "10.0.1.0/24", "m5.large")
			cfg := testConfig(t, x)
			cfg.Pool.WarmIPTarget = 1
			cfg.Cloud.MaxAttempts = 2
			n := startNode(t, x, cfg)
			n.settle("one warm", func(p poolView) bool { return p.total == 1 })
			tc.knob(x.s, true)
			n.mustAdd("a")
			waitFor(t, 60*time.Second, "status "+tc.reason, func() bool { return n.status().Reason == tc.reason }, func() string { return n.get("/v1/status") })
			if st := n.status(); !strings.Contains(st.Message, tc.says) {
				t.Errorf("status message %q does not say %s", st.Message, tc.says)
			}
			if _, err := n.add("b"); status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("ADD: %v", err)
			}
			before := n.metric(`vpcnet_ec2_calls_total{action="AssignPrivateIpAddresses"}`)
			time.Sleep(2 * time.Second) // a window to count calls in, not a wait for a condition
			if calls := n.metric(`vpcnet_ec2_calls_total{action="AssignPrivateIpAddresses"}`) - before; calls > 6 {
				t.Errorf("%v calls in 2s to a failing cloud: no back-off", calls)
			}
			tc.knob(x.s, false)
			n.mustAdd("b")
		})
	}
}

// TestUnauthorizedAtStart: a node whose role may not describe its ENIs says so while starting,
// naming the permission, not that the cloud is unreachable.
func TestUnauthorizedAtStart(t *testing.T) {
	x := newSim(t, vpcsim.Options{}, "10.0.1.0/24", "m5.large")
	x.s.SetDeny("DescribeNetworkInterfaces", true)
	n := startNode(t, x, testConfig(t, x))
	st := n.status()
	if st.Reason != agent.ReasonCloudUnauthorized || !strings.Contains(st.Message, "ec2:DescribeNetworkInterfaces") {
		t.Fatalf("status %v", st)
	}
	x.s.SetDeny("DescribeNetworkInterfaces", false)
	waitFor(t, 60*time.Second, "ready once allowed", func() bool { return n.status().Ready }, func() string { return n.get("/v1/status") })
	n.mustAdd("a")
}
