package agent_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/vpcnet/vpcnet/internal/vpcsim"
)

// ec2Calls sums vpcnet_ec2_calls_total by action, IMDS reads left out (they are local to the
// instance and outside EC2's limits).
func (d *nodeAgent) ec2Calls() (total float64, by map[string]float64) {
	by = map[string]float64{}
	for _, l := range strings.Split(d.get("/metrics"), "\n") {
		if !strings.HasPrefix(l, `vpcnet_ec2_calls_total{action="`) {
			continue
		}
		action := strings.TrimPrefix(l, `vpcnet_ec2_calls_total{action="`)
		action = action[:strings.IndexByte(action, '"')]
		var v float64
		fmt.Sscanf(l[strings.LastIndexByte(l, ' ')+1:], "%g", &v)
		if action != "IMDS" {
			by[action] = v
			total += v
		}
	}
	return total, by
}

// waitIMDSReads waits until the agent has compared its view with IMDS n more times (one read
// a second): the window over which a node at rest is watched, timed by the agent's own loop.
func (d *nodeAgent) waitIMDSReads(n float64) {
	d.t.Helper()
	start := d.metric(`vpcnet_ec2_calls_total{action="IMDS"}`)
	waitFor(d.t, time.Duration(n)*5*time.Second, fmt.Sprintf("%v IMDS comparisons", n), func() bool {
		return d.metric(`vpcnet_ec2_calls_total{action="IMDS"}`) >= start+n
	}, func() string { return tail(d.log) })
}

// waitQuiet waits (up to 20 s) until the agent makes no EC2 call between two of its IMDS
// comparisons, so a call that was already on its way is not counted against the node at rest.
func (d *nodeAgent) waitQuiet(t *testing.T) {
	t.Helper()
	prev, _ := d.ec2Calls()
	waitFor(t, 20*time.Second, "no call between two IMDS comparisons", func() bool {
		d.waitIMDSReads(2)
		now, _ := d.ec2Calls()
		ok := now == prev
		prev = now
		return ok
	}, func() string { return tail(d.log) })
}

// A node whose pods do not change makes no EC2 call (issue 16 item 2): over ten resync periods
// (VPCNET_RESYNC_PERIOD=1s) neither DescribeNetworkInterfaces nor DescribeSubnets nor anything
// else is called. At 1ca4798 each period cost a DescribeNetworkInterfaces and a DescribeSubnets.
// A change behind the agent is still seen through IMDS (an address assigned to its ENI
// outside vpcnet: one Describe, then rest again), so issue 11's detection does not rest on polling.
func TestSteadyNodeMakesNoEC2Call(t *testing.T) {
	x := newSim(t, vpcsim.Options{}, "10.0.1.0/24", "m5.large")
	// A sweep period far beyond the test, so that its one Describe cannot fall in the window.
	// MINIMUM_IP_TARGET=8 and three pods: the pool holds eight addresses on the primary ENI
	// (room for one more) from the start, so it settles as soon as the pods are in.
	a := startVpcnetd(t, x, x.instance, x.imds, "rest", "MINIMUM_IP_TARGET=8", "VPCNET_POOL_RELEASE_DELAY=1s", "VPCNET_DETACHED_ENI_SWEEP=100000h")
	for i := range 3 {
		a.mustAdd(fmt.Sprint("pod", i))
	}
	// Settled: the pods' addresses, the rest of the eight free, none cooling down.
	settled := func() bool {
		return a.metric("vpcnet_addresses_assigned") == 3 && a.metric("vpcnet_addresses_warm") >= 5 &&
			a.metric("vpcnet_addresses_cooldown") == 0
	}
	waitFor(t, 20*time.Second, "the pool at its target", settled, func() string { return a.get("/v1/enis") + tail(a.log) })
	// The pool may still be finishing the call that settled it: wait for two reads with no call.
	a.waitQuiet(t)

	before, by0 := a.ec2Calls()
	a.waitIMDSReads(10) // ten resync periods
	after, by1 := a.ec2Calls()
	held := a.metric("vpcnet_addresses ")
	if after != before {
		t.Fatalf("a node at rest made %v EC2 calls over ten resync periods: before %v, after %v\n%s", after-before, by0, by1, tail(a.log))
	}
	if !settled() || a.metric("vpcnet_addresses ") != held {
		t.Fatalf("the pool moved while at rest: %s", a.get("/v1/enis"))
	}

	// Behind the agent: an address assigned to one of its ENIs through the EC2 API. IMDS lists
	// it, the agent asks EC2 once and holds it (the pool may give it back as surplus).
	roomy := x.eniWithRoom(t, 10)
	out, err := x.ec2.AssignPrivateIpAddresses(bg, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(roomy), SecondaryPrivateIpAddressCount: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	extra := aws.ToString(out.AssignedPrivateIpAddresses[0].PrivateIpAddress)
	waitFor(t, 10*time.Second, "the address seen through IMDS, described and held", func() bool {
		_, by := a.ec2Calls()
		return by["DescribeNetworkInterfaces"] > by1["DescribeNetworkInterfaces"] && strings.Contains(a.get("/v1/enis"), `"`+extra+`"`)
	}, func() string { return a.get("/v1/enis") + tail(a.log) })
	waitFor(t, 20*time.Second, "the pool settled", settled, func() string { return a.get("/v1/enis") + tail(a.log) })
	if logged, _ := os.ReadFile(a.log); !strings.Contains(string(logged), "IMDS lists an address the agent does not hold") {
		t.Errorf("the log does not say what IMDS showed:\n%s", tail(a.log))
	}
	a.waitQuiet(t)
	before, by0 = a.ec2Calls()
	a.waitIMDSReads(5)
	if after, by1 := a.ec2Calls(); after != before {
		t.Fatalf("at rest again, %v EC2 calls over five resync periods: before %v, after %v", after-before, by0, by1)
	}
}

// eniWithRoom is the ID of an ENI attached to the instance holding fewer than perENI addresses.
func (x *sim) eniWithRoom(t *testing.T, perENI int) string {
	t.Helper()
	out, err := x.ec2.DescribeNetworkInterfaces(bg, &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{
		{Name: aws.String("attachment.instance-id"), Values: []string{x.instance}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, ni := range out.NetworkInterfaces {
		if len(ni.PrivateIpAddresses) < perENI {
			return aws.ToString(ni.NetworkInterfaceId)
		}
	}
	t.Fatalf("no ENI of %s has room", x.instance)
	return ""
}
