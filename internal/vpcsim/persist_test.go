package vpcsim_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/vpcnet/vpcnet/internal/vpcsim"
)

// TestPersistenceAcrossRestart closes the server and starts another on the same state
// directory: everything is still there and new allocations do not collide with old ones.
func TestPersistenceAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	s1, err := vpcsim.Start("127.0.0.1:0", vpcsim.Options{StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{s: s1, c: client(s1, nil)}
	f.network(t, "10.0.0.0/16", "10.0.1.0/24")
	inst := f.run(t, "m5.large")
	e := f.eni(t)
	must[*ec2.AttachNetworkInterfaceOutput](t)(f.c.AttachNetworkInterface(ctx, &ec2.AttachNetworkInterfaceInput{NetworkInterfaceId: e.NetworkInterfaceId, InstanceId: inst.InstanceId, DeviceIndex: aws.Int32(1)}))
	must[*ec2.AssignPrivateIpAddressesOutput](t)(f.c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: e.NetworkInterfaceId, SecondaryPrivateIpAddressCount: aws.Int32(3)}))
	must[*ec2.AssignPrivateIpAddressesOutput](t)(f.c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: e.NetworkInterfaceId, Ipv4PrefixCount: aws.Int32(1)}))
	must[*ec2.CreateTagsOutput](t)(f.c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{*e.NetworkInterfaceId}, Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}}))
	before := f.describeENI(t, *e.NetworkInterfaceId)
	subnetBefore := must[*ec2.DescribeSubnetsOutput](t)(f.c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{})).Subnets[0]
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}

	// Restart (twice: once from the snapshot written at Close, once after journal-only changes).
	for round := 0; round < 2; round++ {
		s2, err := vpcsim.Start("127.0.0.1:0", vpcsim.Options{StateDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		c := client(s2, nil)
		after := must[*ec2.DescribeNetworkInterfacesOutput](t)(c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{*e.NetworkInterfaceId}})).NetworkInterfaces[0]
		if *after.MacAddress != *before.MacAddress || len(after.PrivateIpAddresses) != len(before.PrivateIpAddresses) ||
			len(after.Ipv4Prefixes) != 1 || *after.Attachment.AttachmentId != *before.Attachment.AttachmentId || len(after.TagSet) != 1 {
			t.Fatalf("round %d: ENI changed across restart:\nbefore %+v\nafter  %+v", round, before, after)
		}
		sn := must[*ec2.DescribeSubnetsOutput](t)(c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{})).Subnets[0]
		wantAvail := *subnetBefore.AvailableIpAddressCount - int32(round)
		if *sn.AvailableIpAddressCount != wantAvail {
			t.Fatalf("round %d: available %d, want %d", round, *sn.AvailableIpAddressCount, wantAvail)
		}
		is := must[*ec2.DescribeInstancesOutput](t)(c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{}))
		if len(is.Reservations) != 1 || is.Reservations[0].Instances[0].State.Name != types.InstanceStateNameRunning {
			t.Fatalf("instances %+v", is.Reservations)
		}
		// A new address must not collide with a restored one.
		out := must[*ec2.AssignPrivateIpAddressesOutput](t)(c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: inst.NetworkInterfaces[0].NetworkInterfaceId, SecondaryPrivateIpAddressCount: aws.Int32(1)}))
		for _, p := range after.PrivateIpAddresses {
			if *p.PrivateIpAddress == *out.AssignedPrivateIpAddresses[0].PrivateIpAddress {
				t.Fatalf("address %s handed out twice", *p.PrivateIpAddress)
			}
		}
		// IMDS answers from the restored state.
		if got := imdsGet(t, imdsClient(t, s2, *inst.InstanceId), "network/interfaces/macs/"); got != *inst.NetworkInterfaces[0].MacAddress+"/\n"+*e.MacAddress+"/" {
			t.Fatalf("IMDS after restart: %q", got)
		}
		if round == 0 {
			// Leave the next round only the journal: simulate a crash (no Close snapshot) by
			// copying the directory while the server runs.
			crash := t.TempDir()
			copyDir(t, dir, crash)
			s2.Close()
			dir = crash
			continue
		}
		s2.Close()
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	ents, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPendingAttachCompletesAfterRestart(t *testing.T) {
	dir := t.TempDir()
	opts := vpcsim.Options{StateDir: dir, Latency: map[string]time.Duration{"AttachNetworkInterface": time.Hour}}
	s1, err := vpcsim.Start("127.0.0.1:0", opts)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{s: s1, c: client(s1, nil)}
	f.network(t, "10.0.0.0/16", "10.0.1.0/24")
	inst := f.run(t, "m5.large")
	e := f.eni(t)
	must[*ec2.AttachNetworkInterfaceOutput](t)(f.c.AttachNetworkInterface(ctx, &ec2.AttachNetworkInterfaceInput{NetworkInterfaceId: e.NetworkInterfaceId, InstanceId: inst.InstanceId, DeviceIndex: aws.Int32(1)}))
	s1.Close()
	var events []vpcsim.Event
	opts.Latency = map[string]time.Duration{"AttachNetworkInterface": 50 * time.Millisecond}
	opts.Hook = func(e vpcsim.Event) { events = append(events, e) }
	s2, err := vpcsim.Start("127.0.0.1:0", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if len(events) != 1 || events[0].DeviceIndex != 0 {
		t.Fatalf("replayed events %+v: want the primary ENI's attachment", events)
	}
	c := client(s2, nil)
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := must[*ec2.DescribeNetworkInterfacesOutput](t)(c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{*e.NetworkInterfaceId}})).NetworkInterfaces[0]
		if got.Attachment.Status == types.AttachmentStatusAttached {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("pending attach never completed after restart")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestStateDirLocked(t *testing.T) {
	dir := t.TempDir()
	s1, err := vpcsim.Start("127.0.0.1:0", vpcsim.Options{StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s1.Close()
	if s2, err := vpcsim.Start("127.0.0.1:0", vpcsim.Options{StateDir: dir}); err == nil {
		s2.Close()
		t.Fatal("two servers on one state directory")
	}
}
