package agent_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/vpcnet/vpcnet/internal/cloud"
	"github.com/vpcnet/vpcnet/internal/vpcsim"
)

// subnetFree is EC2's AvailableIpAddressCount of the sim's subnet.
func (x *sim) subnetFree(t *testing.T) int {
	t.Helper()
	out, err := x.ec2.DescribeSubnets(bg, &ec2.DescribeSubnetsInput{SubnetIds: []string{x.subnet}})
	if err != nil {
		t.Fatal(err)
	}
	return int(aws.ToInt32(out.Subnets[0].AvailableIpAddressCount))
}

// TestENIsGoWithTheirInstance (issue 11 fault 7): vpcnetd sets DeleteOnTermination on every ENI
// it attaches, so terminating the node's instance deletes them and frees their addresses at
// once, with no agent or cleanup left to do it.
func TestENIsGoWithTheirInstance(t *testing.T) {
	if testing.Short() {
		t.Skip("runs vpcnetd")
	}
	x := newSim(t, vpcsim.Options{}, "10.0.1.0/24", "m5.large")
	id, imds := x.launch(t, "m5.large")
	before := x.subnetFree(t)
	a := startVpcnetd(t, x, id, imds, "a", "WARM_IP_TARGET=5")
	for i := range 14 { // 9 on the primary ENI, the rest on a second
		a.mustAdd(fmt.Sprint("pod", i))
	}
	ours := func() []types.NetworkInterface {
		out, err := x.ec2.DescribeNetworkInterfaces(bg, &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{
			{Name: aws.String("tag:" + cloud.TagInstanceID), Values: []string{id}}}})
		if err != nil {
			t.Fatal(err)
		}
		return out.NetworkInterfaces
	}
	// Wait for the pool to reach its target (14 assigned, 5 warm: no ENI still being made) with
	// every ENI attached with DeleteOnTermination. Waiting for the first ENI only let an ENI the
	// agent was still creating on a loaded machine outlive the instance.
	waitFor(t, 60*time.Second, "the pool at its target and the agent's ENIs attached with DeleteOnTermination", func() bool {
		if st := a.status(); st.Assigned != 14 || st.Free < 5 {
			return false
		}
		enis := ours()
		for _, ni := range enis {
			if ni.Attachment == nil || !aws.ToBool(ni.Attachment.DeleteOnTermination) {
				return false
			}
		}
		return len(enis) >= 1
	}, func() string { return a.get("/v1/status") })
	// The agent goes with its node: stopped first, it cannot start an ENI for the instance
	// after the termination (as it could, repairing what it sees vanish, on a slow machine).
	_ = a.cmd.Process.Kill()
	_ = a.cmd.Wait()
	if x.subnetFree(t) >= before {
		t.Fatalf("the agent took no addresses (%d free, %d before)", x.subnetFree(t), before)
	}
	if _, err := x.ec2.TerminateInstances(bg, &ec2.TerminateInstancesInput{InstanceIds: []string{id}}); err != nil {
		t.Fatal(err)
	}
	if left := ours(); len(left) != 0 {
		t.Fatalf("%d ENIs of the terminated instance left, the first %s", len(left), aws.ToString(left[0].NetworkInterfaceId))
	}
	// The instance's own primary ENI goes too (EC2's default for it): every address is back.
	if got := x.subnetFree(t); got != before+1 {
		t.Fatalf("%d addresses free after the termination, want %d (%d before the agent, and the instance's own)", got, before+1, before)
	}
}
