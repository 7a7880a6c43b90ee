package vpcsim_test

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/vpcnet/vpcnet/internal/vpcsim"
)

func TestNetworkInterfaceLifecycle(t *testing.T) {
	f := newFixture(t, vpcsim.Options{}, "10.0.0.0/16", "10.0.1.0/24")
	c := f.c
	inst := f.run(t, "m5.large")
	cr := must[*ec2.CreateNetworkInterfaceOutput](t)(c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{
		SubnetId: aws.String(f.subnet), Description: aws.String("aws-K8S-i-1"), Groups: []string{"sg-0123", "sg-0456"},
		SecondaryPrivateIpAddressCount: aws.Int32(2),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeNetworkInterface,
			Tags: []types.Tag{{Key: aws.String("cluster.k8s.amazonaws.com/name"), Value: aws.String("lab")}}}},
	}))
	e := cr.NetworkInterface
	if e.Status != types.NetworkInterfaceStatusAvailable || *e.Description != "aws-K8S-i-1" || len(e.Groups) != 2 ||
		len(e.PrivateIpAddresses) != 3 || !*e.PrivateIpAddresses[0].Primary || *e.PrivateIpAddresses[0].PrivateIpAddress != *e.PrivateIpAddress ||
		len(e.TagSet) != 1 || *e.SubnetId != f.subnet || *e.VpcId != f.vpc || *e.AvailabilityZone != "us-east-1a" || len(*e.MacAddress) != 17 {
		t.Fatalf("created %+v", e)
	}
	// Explicit addresses (the first is the primary) and prefixes.
	cr2 := must[*ec2.CreateNetworkInterfaceOutput](t)(c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{
		SubnetId: aws.String(f.subnet),
		PrivateIpAddresses: []types.PrivateIpAddressSpecification{
			{PrivateIpAddress: aws.String("10.0.1.100"), Primary: aws.Bool(true)}, {PrivateIpAddress: aws.String("10.0.1.101")}},
	}))
	if *cr2.NetworkInterface.PrivateIpAddress != "10.0.1.100" || len(cr2.NetworkInterface.PrivateIpAddresses) != 2 {
		t.Fatalf("explicit %+v", cr2.NetworkInterface)
	}
	cr3 := must[*ec2.CreateNetworkInterfaceOutput](t)(c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(f.subnet), Ipv4PrefixCount: aws.Int32(2)}))
	if len(cr3.NetworkInterface.Ipv4Prefixes) != 2 {
		t.Fatalf("prefix ENI %+v", cr3.NetworkInterface)
	}
	cr4 := must[*ec2.CreateNetworkInterfaceOutput](t)(c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(f.subnet),
		Ipv4Prefixes: []types.Ipv4PrefixSpecificationRequest{{Ipv4Prefix: aws.String("10.0.1.208/28")}}}))
	if len(cr4.NetworkInterface.Ipv4Prefixes) != 1 || *cr4.NetworkInterface.Ipv4Prefixes[0].Ipv4Prefix != "10.0.1.208/28" {
		t.Fatalf("explicit prefix ENI %+v", cr4.NetworkInterface)
	}

	att := must[*ec2.AttachNetworkInterfaceOutput](t)(c.AttachNetworkInterface(ctx, &ec2.AttachNetworkInterfaceInput{
		NetworkInterfaceId: e.NetworkInterfaceId, InstanceId: inst.InstanceId, DeviceIndex: aws.Int32(1)}))
	got := f.describeENI(t, *e.NetworkInterfaceId)
	if got.Status != types.NetworkInterfaceStatusInUse || got.Attachment.Status != types.AttachmentStatusAttached ||
		*got.Attachment.InstanceId != *inst.InstanceId || *got.Attachment.DeviceIndex != 1 || *got.Attachment.AttachmentId != *att.AttachmentId ||
		*got.Attachment.DeleteOnTermination {
		t.Fatalf("attached %+v", got.Attachment)
	}

	// ModifyNetworkInterfaceAttribute: DeleteOnTermination, description, groups.
	must[*ec2.ModifyNetworkInterfaceAttributeOutput](t)(c.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
		NetworkInterfaceId: e.NetworkInterfaceId, Attachment: &types.NetworkInterfaceAttachmentChanges{AttachmentId: att.AttachmentId, DeleteOnTermination: aws.Bool(true)}}))
	must[*ec2.ModifyNetworkInterfaceAttributeOutput](t)(c.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
		NetworkInterfaceId: e.NetworkInterfaceId, Description: &types.AttributeValue{Value: aws.String("changed")}}))
	must[*ec2.ModifyNetworkInterfaceAttributeOutput](t)(c.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
		NetworkInterfaceId: e.NetworkInterfaceId, Groups: []string{"sg-0789"}}))
	got = f.describeENI(t, *e.NetworkInterfaceId)
	if !*got.Attachment.DeleteOnTermination || *got.Description != "changed" || len(got.Groups) != 1 || *got.Groups[0].GroupId != "sg-0789" {
		t.Fatalf("modified %+v", got)
	}
	_, err := c.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{NetworkInterfaceId: e.NetworkInterfaceId,
		Description: &types.AttributeValue{Value: aws.String("x")}, Groups: []string{"sg-1"}})
	wantCode(t, err, "InvalidParameterCombination")
	_, err = c.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{NetworkInterfaceId: e.NetworkInterfaceId})
	wantCode(t, err, "MissingParameter")

	// Errors around attachments.
	_, err = c.DeleteNetworkInterface(ctx, &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: e.NetworkInterfaceId})
	wantCode(t, err, "InvalidParameterValue")
	wantMessage(t, err, "currently in use")
	_, err = c.AttachNetworkInterface(ctx, &ec2.AttachNetworkInterfaceInput{NetworkInterfaceId: cr2.NetworkInterface.NetworkInterfaceId, InstanceId: inst.InstanceId, DeviceIndex: aws.Int32(1)})
	wantCode(t, err, "InvalidParameterValue")
	wantMessage(t, err, "already has an interface attached at device index '1'")
	_, err = c.DetachNetworkInterface(ctx, &ec2.DetachNetworkInterfaceInput{AttachmentId: inst.NetworkInterfaces[0].Attachment.AttachmentId})
	wantCode(t, err, "OperationNotPermitted")
	_, err = c.DetachNetworkInterface(ctx, &ec2.DetachNetworkInterfaceInput{AttachmentId: aws.String("eni-attach-0abc")})
	wantCode(t, err, "InvalidAttachmentID.NotFound")

	must[*ec2.DetachNetworkInterfaceOutput](t)(c.DetachNetworkInterface(ctx, &ec2.DetachNetworkInterfaceInput{AttachmentId: att.AttachmentId}))
	if got := f.describeENI(t, *e.NetworkInterfaceId); got.Status != types.NetworkInterfaceStatusAvailable || got.Attachment != nil {
		t.Fatalf("detached %+v", got)
	}
	must[*ec2.DeleteNetworkInterfaceOutput](t)(c.DeleteNetworkInterface(ctx, &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: e.NetworkInterfaceId}))
	_, err = c.DeleteNetworkInterface(ctx, &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: e.NetworkInterfaceId})
	wantCode(t, err, "InvalidNetworkInterfaceID.NotFound")
	wantMessage(t, err, fmt.Sprintf("The networkInterface ID '%s' does not exist", *e.NetworkInterfaceId))

	for _, tc := range []struct {
		name string
		err  error
		code string
	}{
		{"create unknown subnet", second(c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String("subnet-0abc")})), "InvalidSubnetID.NotFound"},
		{"create address outside subnet", second(c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(f.subnet), PrivateIpAddress: aws.String("10.0.2.5")})), "InvalidParameterValue"},
		{"create address in use", second(c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(f.subnet), PrivateIpAddress: aws.String("10.0.1.100")})), "InvalidIPAddress.InUse"},
		{"create bad address", second(c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(f.subnet), PrivateIpAddress: aws.String("10.0.1.999")})), "InvalidParameterValue"},
		{"create count and prefixes", second(c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(f.subnet), SecondaryPrivateIpAddressCount: aws.Int32(1), Ipv4PrefixCount: aws.Int32(1)})), "InvalidParameterCombination"},
		{"create too many", second(c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(f.subnet), SecondaryPrivateIpAddressCount: aws.Int32(60)})), "PrivateIpAddressLimitExceeded"},
		{"create bad tag type", second(c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(f.subnet), TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeVpc, Tags: []types.Tag{{Key: aws.String("a"), Value: aws.String("b")}}}}})), "InvalidParameterValue"},
		{"attach unknown eni", second(c.AttachNetworkInterface(ctx, &ec2.AttachNetworkInterfaceInput{NetworkInterfaceId: aws.String("eni-0abc"), InstanceId: inst.InstanceId, DeviceIndex: aws.Int32(2)})), "InvalidNetworkInterfaceID.NotFound"},
		{"attach unknown instance", second(c.AttachNetworkInterface(ctx, &ec2.AttachNetworkInterfaceInput{NetworkInterfaceId: cr2.NetworkInterface.NetworkInterfaceId, InstanceId: aws.String("i-0abc"), DeviceIndex: aws.Int32(2)})), "InvalidInstanceID.NotFound"},
		{"attach bad card", second(c.AttachNetworkInterface(ctx, &ec2.AttachNetworkInterfaceInput{NetworkInterfaceId: cr2.NetworkInterface.NetworkInterfaceId, InstanceId: inst.InstanceId, DeviceIndex: aws.Int32(2), NetworkCardIndex: aws.Int32(3)})), "InvalidParameterValue"},
		{"malformed eni id", second(c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{"nic-1"}})), "InvalidNetworkInterfaceID.Malformed"},
		{"ids with MaxResults", second(c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{*cr2.NetworkInterface.NetworkInterfaceId}, MaxResults: aws.Int32(5)})), "InvalidParameterCombination"},
		{"MaxResults too small", second(c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{MaxResults: aws.Int32(2)})), "InvalidParameterValue"},
		{"bad NextToken", second(c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{MaxResults: aws.Int32(5), NextToken: aws.String("@@@")})), "InvalidPaginationToken"},
	} {
		t.Run(tc.name, func(t *testing.T) { wantCode(t, tc.err, tc.code) })
	}
}

func TestAttachmentLimit(t *testing.T) {
	f := newFixture(t, vpcsim.Options{}, "10.0.0.0/16", "10.0.1.0/24")
	inst := f.run(t, "t3.medium") // 3 ENIs
	for dev := int32(1); dev <= 2; dev++ {
		e := f.eni(t)
		must[*ec2.AttachNetworkInterfaceOutput](t)(f.c.AttachNetworkInterface(ctx, &ec2.AttachNetworkInterfaceInput{NetworkInterfaceId: e.NetworkInterfaceId, InstanceId: inst.InstanceId, DeviceIndex: aws.Int32(dev)}))
	}
	e := f.eni(t)
	_, err := f.c.AttachNetworkInterface(ctx, &ec2.AttachNetworkInterfaceInput{NetworkInterfaceId: e.NetworkInterfaceId, InstanceId: inst.InstanceId, DeviceIndex: aws.Int32(3)})
	wantCode(t, err, "AttachmentLimitExceeded")
	wantMessage(t, err, "t3.medium")
	// An ENI holding more addresses than the type allows per ENI cannot attach.
	big := must[*ec2.CreateNetworkInterfaceOutput](t)(f.c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(f.subnet), SecondaryPrivateIpAddressCount: aws.Int32(9)}))
	small := f.run(t, "t3.medium")
	_, err = f.c.AttachNetworkInterface(ctx, &ec2.AttachNetworkInterfaceInput{NetworkInterfaceId: big.NetworkInterface.NetworkInterfaceId, InstanceId: small.InstanceId, DeviceIndex: aws.Int32(1)})
	wantCode(t, err, "PrivateIpAddressLimitExceeded")
}

func TestAssignLimitsPerInstanceType(t *testing.T) {
	f := newFixture(t, vpcsim.Options{}, "10.0.0.0/16", "10.0.0.0/20")
	for _, tc := range []struct {
		typ  string
		ipv4 int32
	}{{"t3.nano", 2}, {"t3.medium", 6}, {"m5.large", 10}, {"c5.4xlarge", 30}, {"m5.24xlarge", 50}} {
		t.Run(tc.typ, func(t *testing.T) {
			inst := f.run(t, tc.typ)
			eni := inst.NetworkInterfaces[0].NetworkInterfaceId
			out := must[*ec2.AssignPrivateIpAddressesOutput](t)(f.c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: eni, SecondaryPrivateIpAddressCount: aws.Int32(tc.ipv4 - 1)}))
			if len(out.AssignedPrivateIpAddresses) != int(tc.ipv4-1) || *out.NetworkInterfaceId != *eni {
				t.Fatalf("assigned %d", len(out.AssignedPrivateIpAddresses))
			}
			_, err := f.c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: eni, SecondaryPrivateIpAddressCount: aws.Int32(1)})
			wantCode(t, err, "PrivateIpAddressLimitExceeded")
			_, err = f.c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: eni, Ipv4PrefixCount: aws.Int32(1)})
			wantCode(t, err, "PrivateIpAddressLimitExceeded")
		})
	}
	t.Run("prefixes share slots", func(t *testing.T) {
		inst := f.run(t, "t3.medium")
		eni := inst.NetworkInterfaces[0].NetworkInterfaceId
		must[*ec2.AssignPrivateIpAddressesOutput](t)(f.c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: eni, SecondaryPrivateIpAddressCount: aws.Int32(2)}))
		out := must[*ec2.AssignPrivateIpAddressesOutput](t)(f.c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: eni, Ipv4PrefixCount: aws.Int32(3)}))
		if len(out.AssignedIpv4Prefixes) != 3 {
			t.Fatalf("prefixes %+v", out.AssignedIpv4Prefixes)
		}
		_, err := f.c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: eni, Ipv4PrefixCount: aws.Int32(1)})
		wantCode(t, err, "PrivateIpAddressLimitExceeded")
	})
	t.Run("xen type takes no prefixes", func(t *testing.T) {
		inst := f.run(t, "t2.micro")
		_, err := f.c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: inst.NetworkInterfaces[0].NetworkInterfaceId, Ipv4PrefixCount: aws.Int32(1)})
		wantCode(t, err, "InvalidParameterCombination")
	})
}

func TestAssignAndUnassign(t *testing.T) {
	f := newFixture(t, vpcsim.Options{}, "10.0.0.0/16", "10.0.1.0/24")
	c := f.c
	inst := f.run(t, "m5.large")
	eni := inst.NetworkInterfaces[0].NetworkInterfaceId
	out := must[*ec2.AssignPrivateIpAddressesOutput](t)(c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: eni, PrivateIpAddresses: []string{"10.0.1.50", "10.0.1.51"}}))
	if len(out.AssignedPrivateIpAddresses) != 2 || *out.AssignedPrivateIpAddresses[0].PrivateIpAddress != "10.0.1.50" {
		t.Fatalf("explicit %+v", out.AssignedPrivateIpAddresses)
	}
	pf := must[*ec2.AssignPrivateIpAddressesOutput](t)(c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: eni, Ipv4Prefixes: []string{"10.0.1.128/28"}}))
	if len(pf.AssignedIpv4Prefixes) != 1 || *pf.AssignedIpv4Prefixes[0].Ipv4Prefix != "10.0.1.128/28" {
		t.Fatalf("explicit prefix %+v", pf.AssignedIpv4Prefixes)
	}
	got := f.describeENI(t, *eni)
	if len(got.PrivateIpAddresses) != 3 || len(got.Ipv4Prefixes) != 1 {
		t.Fatalf("eni %+v", got)
	}
	for _, tc := range []struct {
		name string
		in   *ec2.AssignPrivateIpAddressesInput
		code string
	}{
		{"nothing asked", &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: eni}, "MissingParameter"},
		{"count and list", &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: eni, SecondaryPrivateIpAddressCount: aws.Int32(1), PrivateIpAddresses: []string{"10.0.1.60"}}, "InvalidParameterCombination"},
		{"ips and prefixes", &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: eni, SecondaryPrivateIpAddressCount: aws.Int32(1), Ipv4PrefixCount: aws.Int32(1)}, "InvalidParameterCombination"},
		{"in use", &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: eni, PrivateIpAddresses: []string{"10.0.1.50"}}, "InvalidIPAddress.InUse"},
		{"inside a prefix", &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: eni, PrivateIpAddresses: []string{"10.0.1.130"}}, "InvalidIPAddress.InUse"},
		{"reserved", &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: eni, PrivateIpAddresses: []string{"10.0.1.255"}}, "InvalidParameterValue"},
		{"not an address", &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: eni, PrivateIpAddresses: []string{"fe80::1"}}, "InvalidParameterValue"},
		{"misaligned prefix", &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: eni, Ipv4Prefixes: []string{"10.0.1.72/28"}}, "InvalidParameterValue"},
		{"negative count", &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: eni, SecondaryPrivateIpAddressCount: aws.Int32(-1)}, "InvalidParameterValue"},
		{"unknown eni", &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String("eni-0abc"), SecondaryPrivateIpAddressCount: aws.Int32(1)}, "InvalidNetworkInterfaceID.NotFound"},
	} {
		t.Run(tc.name, func(t *testing.T) { wantCode(t, second(c.AssignPrivateIpAddresses(ctx, tc.in)), tc.code) })
	}
	// Unassign: all or nothing; never the primary.
	_, err := c.UnassignPrivateIpAddresses(ctx, &ec2.UnassignPrivateIpAddressesInput{NetworkInterfaceId: eni, PrivateIpAddresses: []string{"10.0.1.50", "10.0.1.77"}})
	wantCode(t, err, "InvalidParameterValue")
	_, err = c.UnassignPrivateIpAddresses(ctx, &ec2.UnassignPrivateIpAddressesInput{NetworkInterfaceId: eni, PrivateIpAddresses: []string{*inst.PrivateIpAddress}})
	wantCode(t, err, "InvalidParameterValue")
	_, err = c.UnassignPrivateIpAddresses(ctx, &ec2.UnassignPrivateIpAddressesInput{NetworkInterfaceId: eni})
	wantCode(t, err, "MissingParameter")
	_, err = c.UnassignPrivateIpAddresses(ctx, &ec2.UnassignPrivateIpAddressesInput{NetworkInterfaceId: eni, Ipv4Prefixes: []string{"10.0.1.144/28"}})
	wantCode(t, err, "InvalidParameterValue")
	must[*ec2.UnassignPrivateIpAddressesOutput](t)(c.UnassignPrivateIpAddresses(ctx, &ec2.UnassignPrivateIpAddressesInput{NetworkInterfaceId: eni, PrivateIpAddresses: []string{"10.0.1.50", "10.0.1.51"}}))
	must[*ec2.UnassignPrivateIpAddressesOutput](t)(c.UnassignPrivateIpAddresses(ctx, &ec2.UnassignPrivateIpAddressesInput{NetworkInterfaceId: eni, Ipv4Prefixes: []string{"10.0.1.128/28"}}))
	got = f.describeENI(t, *eni)
	if len(got.PrivateIpAddresses) != 1 || len(got.Ipv4Prefixes) != 0 {
		t.Fatalf("after unassign %+v", got)
	}
	// Reassignment moves a secondary address between ENIs in the subnet.
	other := f.eni(t)
	must[*ec2.AssignPrivateIpAddressesOutput](t)(c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: other.NetworkInterfaceId, PrivateIpAddresses: []string{"10.0.1.90"}}))
	must[*ec2.AssignPrivateIpAddressesOutput](t)(c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: eni, PrivateIpAddresses: []string{"10.0.1.90"}, AllowReassignment: aws.Bool(true)}))
	if got := f.describeENI(t, *other.NetworkInterfaceId); len(got.PrivateIpAddresses) != 1 {
		t.Fatalf("address not moved: %+v", got.PrivateIpAddresses)
	}
}

func TestSubnetExhaustion(t *testing.T) {
	f := newFixture(t, vpcsim.Options{}, "10.0.0.0/16", "10.0.7.0/28") // 11 usable
	inst := f.run(t, "m5.large")
	eni := inst.NetworkInterfaces[0].NetworkInterfaceId
	must[*ec2.AssignPrivateIpAddressesOutput](t)(f.c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: eni, SecondaryPrivateIpAddressCount: aws.Int32(5)}))
	other := f.eni(t) // 7 used
	_, err := f.c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: other.NetworkInterfaceId, SecondaryPrivateIpAddressCount: aws.Int32(5)})
	wantCode(t, err, "InsufficientFreeAddressesInSubnet")
	wantMessage(t, err, f.subnet)
	must[*ec2.AssignPrivateIpAddressesOutput](t)(f.c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: other.NetworkInterfaceId, SecondaryPrivateIpAddressCount: aws.Int32(4)}))
	ss := must[*ec2.DescribeSubnetsOutput](t)(f.c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{f.subnet}}))
	if *ss.Subnets[0].AvailableIpAddressCount != 0 {
		t.Fatalf("available %d", *ss.Subnets[0].AvailableIpAddressCount)
	}
	_, err = f.c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(f.subnet)})
	wantCode(t, err, "InsufficientFreeAddressesInSubnet")
	// A /28 subnet has no whole free aligned /28 at all.
	_, err = f.c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: eni, Ipv4PrefixCount: aws.Int32(1)})
	wantCode(t, err, "InsufficientCidrBlocks")
}

func TestPrefixFragmentation(t *testing.T) {
	f := newFixture(t, vpcsim.Options{}, "10.0.0.0/16", "10.0.1.0/24")
	inst := f.run(t, "m5.24xlarge")
	eni := inst.NetworkInterfaces[0].NetworkInterfaceId
	// One address in every /28 from .16 up: 14 blocks, none whole.
	var addrs []string
	for b := 16; b < 240; b += 16 {
		addrs = append(addrs, fmt.Sprintf("10.0.1.%d", b+7))
	}
	other := f.eni(t)
	must[*ec2.AssignPrivateIpAddressesOutput](t)(f.c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: other.NetworkInterfaceId, PrivateIpAddresses: addrs}))
	_, err := f.c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: eni, Ipv4PrefixCount: aws.Int32(1)})
	wantCode(t, err, "InsufficientCidrBlocks")
	ss := must[*ec2.DescribeSubnetsOutput](t)(f.c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{f.subnet}}))
	if n := *ss.Subnets[0].AvailableIpAddressCount; n < 200 {
		t.Fatalf("fragmented subnet should still have many free addresses, has %d", n)
	}
	// Freeing one block's address makes that aligned block available, and exactly it.
	must[*ec2.UnassignPrivateIpAddressesOutput](t)(f.c.UnassignPrivateIpAddresses(ctx, &ec2.UnassignPrivateIpAddressesInput{NetworkInterfaceId: other.NetworkInterfaceId, PrivateIpAddresses: []string{"10.0.1.87"}}))
	out := must[*ec2.AssignPrivateIpAddressesOutput](t)(f.c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: eni, Ipv4PrefixCount: aws.Int32(1)}))
	if p := *out.AssignedIpv4Prefixes[0].Ipv4Prefix; p != "10.0.1.80/28" {
		t.Fatalf("got prefix %s, want 10.0.1.80/28", p)
	}
	pfx := netip.MustParsePrefix(*out.AssignedIpv4Prefixes[0].Ipv4Prefix)
	if pfx.Masked() != pfx || pfx.Bits() != 28 {
		t.Fatalf("prefix %s not aligned", pfx)
	}
}

func TestDescribeNetworkInterfacesFiltersAndPaging(t *testing.T) {
	f := newFixture(t, vpcsim.Options{}, "10.0.0.0/16", "10.0.1.0/24")
	c := f.c
	inst := f.run(t, "m5.large")
	sn2 := must[*ec2.CreateSubnetOutput](t)(c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: aws.String(f.vpc), CidrBlock: aws.String("10.0.2.0/24")}))
	var ids []string
	for i := 0; i < 23; i++ {
		subnet := f.subnet
		if i%4 == 0 {
			subnet = *sn2.Subnet.SubnetId
		}
		tags := []types.Tag{{Key: aws.String("node.k8s.amazonaws.com/instance_id"), Value: aws.String(fmt.Sprintf("i-%d", i%2))}}
		out := must[*ec2.CreateNetworkInterfaceOutput](t)(c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(subnet),
			Description:       aws.String(fmt.Sprintf("aws-K8S-%d", i%3)),
			TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeNetworkInterface, Tags: tags}}}))
		ids = append(ids, *out.NetworkInterface.NetworkInterfaceId)
	}
	filter := func(name string, values ...string) types.Filter {
		return types.Filter{Name: aws.String(name), Values: values}
	}
	count := func(fs ...types.Filter) int {
		p := ec2.NewDescribeNetworkInterfacesPaginator(c, &ec2.DescribeNetworkInterfacesInput{Filters: fs, MaxResults: aws.Int32(5)})
		n := 0
		for p.HasMorePages() {
			n += len(must[*ec2.DescribeNetworkInterfacesOutput](t)(p.NextPage(ctx)).NetworkInterfaces)
		}
		return n
	}
	for _, tc := range []struct {
		f    []types.Filter
		want int
	}{
		{nil, 24},
		{[]types.Filter{filter("vpc-id", f.vpc)}, 24},
		{[]types.Filter{filter("subnet-id", *sn2.Subnet.SubnetId)}, 6},
		{[]types.Filter{filter("status", "available")}, 23},
		{[]types.Filter{filter("status", "in-use")}, 1},
		{[]types.Filter{filter("attachment.instance-id", *inst.InstanceId)}, 1},
		{[]types.Filter{filter("private-ip-address", *inst.PrivateIpAddress)}, 1},
		{[]types.Filter{filter("tag:node.k8s.amazonaws.com/instance_id", "i-1")}, 11},
		{[]types.Filter{filter("tag-key", "node.k8s.amazonaws.com/instance_id")}, 23},
		{[]types.Filter{filter("description", "aws-K8S-0")}, 8},
		{[]types.Filter{filter("description", "aws-K8S-*")}, 23},
		{[]types.Filter{filter("description", "aws-K8S-0", "aws-K8S-1"), filter("subnet-id", f.subnet)}, 12},
	} {
		if got := count(tc.f...); got != tc.want {
			t.Errorf("filters %v: %d, want %d", describeFilters(tc.f), got, tc.want)
		}
	}
	out := must[*ec2.DescribeNetworkInterfacesOutput](t)(c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: ids[:3]}))
	if len(out.NetworkInterfaces) != 3 {
		t.Fatalf("by ids: %d", len(out.NetworkInterfaces))
	}
	_, err := c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{ids[0], "eni-0abc"}})
	wantCode(t, err, "InvalidNetworkInterfaceID.NotFound")
	wantMessage(t, err, "The networkInterface ID 'eni-0abc' does not exist")
	page := must[*ec2.DescribeNetworkInterfacesOutput](t)(c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{MaxResults: aws.Int32(10)}))
	if len(page.NetworkInterfaces) != 10 || page.NextToken == nil {
		t.Fatalf("first page %d, token %v", len(page.NetworkInterfaces), page.NextToken)
	}
}

func describeFilters(fs []types.Filter) []string {
	var out []string
	for _, f := range fs {
		out = append(out, *f.Name+"="+fmt.Sprint(f.Values))
	}
	return out
}

func TestTags(t *testing.T) {
	f := newFixture(t, vpcsim.Options{}, "10.0.0.0/16", "10.0.1.0/24")
	c := f.c
	inst := f.run(t, "m5.large")
	e := f.eni(t)
	ids := []string{f.vpc, f.subnet, *inst.InstanceId, *e.NetworkInterfaceId}
	must[*ec2.CreateTagsOutput](t)(c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: ids, Tags: []types.Tag{
		{Key: aws.String("a"), Value: aws.String("1")}, {Key: aws.String("b"), Value: aws.String("2")}}}))
	got := f.describeENI(t, *e.NetworkInterfaceId)
	if len(got.TagSet) != 2 {
		t.Fatalf("tags %+v", got.TagSet)
	}
	n := must[*ec2.DescribeNetworkInterfacesOutput](t)(c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{{Name: aws.String("tag:a"), Values: []string{"1"}}}}))
	if len(n.NetworkInterfaces) != 1 {
		t.Fatalf("tag filter %d", len(n.NetworkInterfaces))
	}
	// DeleteTags with a different value keeps the tag; with no value removes it.
	must[*ec2.DeleteTagsOutput](t)(c.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: ids, Tags: []types.Tag{{Key: aws.String("a"), Value: aws.String("other")}, {Key: aws.String("b")}}}))
	got = f.describeENI(t, *e.NetworkInterfaceId)
	if len(got.TagSet) != 1 || *got.TagSet[0].Key != "a" {
		t.Fatalf("after delete %+v", got.TagSet)
	}
	vs := must[*ec2.DescribeVpcsOutput](t)(c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{VpcIds: []string{f.vpc}}))
	is := must[*ec2.DescribeInstancesOutput](t)(c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{*inst.InstanceId}}))
	if len(vs.Vpcs[0].Tags) != 1 || len(is.Reservations[0].Instances[0].Tags) != 1 {
		t.Fatalf("vpc or instance tags wrong")
	}
	_, err := c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{"eni-0abc"}, Tags: []types.Tag{{Key: aws.String("a"), Value: aws.String("1")}}})
	wantCode(t, err, "InvalidNetworkInterfaceID.NotFound")
	_, err = c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{f.vpc}, Tags: []types.Tag{{Key: aws.String(""), Value: aws.String("1")}}})
	wantCode(t, err, "InvalidParameterValue")
	var many []types.Tag
	for i := 0; i < 51; i++ {
		many = append(many, types.Tag{Key: aws.String(fmt.Sprint("k", i)), Value: aws.String("v")})
	}
	_, err = c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{f.vpc}, Tags: many})
	wantCode(t, err, "TagLimitExceeded")
	_, err = c.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: []string{"subnet-0abc"}})
	wantCode(t, err, "InvalidSubnetID.NotFound")
	_, err = c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{"i-0abc"}, Tags: []types.Tag{{Key: aws.String("a"), Value: aws.String("1")}}})
	wantCode(t, err, "InvalidInstanceID.NotFound")
	if !slices.Contains(ids, f.vpc) {
		t.Fatal("unreachable")
	}
}

// Issue 11 fault 7: an ENI whose attachment has DeleteOnTermination (set after attach, as the
// agent does) is deleted with its instance and its addresses go back to the subnet; one without
// it is detached to "available" with its addresses kept.
func TestTerminateHonoursDeleteOnTermination(t *testing.T) {
	f := newFixture(t, vpcsim.Options{}, "10.0.0.0/16", "10.0.1.0/24")
	c := f.c
	free := func() int32 {
		out := must[*ec2.DescribeSubnetsOutput](t)(c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{f.subnet}}))
		return *out.Subnets[0].AvailableIpAddressCount
	}
	before := free()
	inst := f.run(t, "m5.large")
	attach := func(dev int32) (string, string) {
		e := f.eni(t)
		must[*ec2.AssignPrivateIpAddressesOutput](t)(c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{
			NetworkInterfaceId: e.NetworkInterfaceId, SecondaryPrivateIpAddressCount: aws.Int32(3)}))
		att := must[*ec2.AttachNetworkInterfaceOutput](t)(c.AttachNetworkInterface(ctx, &ec2.AttachNetworkInterfaceInput{
			NetworkInterfaceId: e.NetworkInterfaceId, InstanceId: inst.InstanceId, DeviceIndex: aws.Int32(dev)}))
		if got := f.describeENI(t, *e.NetworkInterfaceId); got.Attachment.DeleteOnTermination == nil || *got.Attachment.DeleteOnTermination {
			t.Fatalf("a newly attached ENI shows DeleteOnTermination %v, want false", got.Attachment.DeleteOnTermination)
		}
		return *e.NetworkInterfaceId, *att.AttachmentId
	}
	deleted, delAtt := attach(1)
	kept, keptAtt := attach(2)

	// Bad attachment IDs change nothing.
	for _, tc := range []struct{ id, code string }{
		{"attach-1", "InvalidNetworkInterfaceAttachmentId.Malformed"},
		{"eni-attach-0000000000000000f", "InvalidAttachmentID.NotFound"},
		{keptAtt, "InvalidAttachmentID.NotFound"}, // another ENI's attachment
	} {
		_, err := c.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{NetworkInterfaceId: &deleted,
			Attachment: &types.NetworkInterfaceAttachmentChanges{AttachmentId: aws.String(tc.id), DeleteOnTermination: aws.Bool(true)}})
		wantCode(t, err, tc.code)
	}
	_, err := c.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{NetworkInterfaceId: &deleted,
		Attachment: &types.NetworkInterfaceAttachmentChanges{DeleteOnTermination: aws.Bool(true)}})
	wantCode(t, err, "MissingParameter")
	if got := f.describeENI(t, kept); *got.Attachment.DeleteOnTermination {
		t.Fatalf("a refused modify changed %s", kept)
	}

	must[*ec2.ModifyNetworkInterfaceAttributeOutput](t)(c.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
		NetworkInterfaceId: &deleted, Attachment: &types.NetworkInterfaceAttachmentChanges{AttachmentId: &delAtt, DeleteOnTermination: aws.Bool(true)}}))
	if got := f.describeENI(t, deleted); !*got.Attachment.DeleteOnTermination {
		t.Fatalf("DeleteOnTermination not shown after modify: %+v", got.Attachment)
	}
	byFilter := must[*ec2.DescribeNetworkInterfacesOutput](t)(c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{
		Filters: []types.Filter{{Name: aws.String("attachment.delete-on-termination"), Values: []string{"true"}},
			{Name: aws.String("attachment.instance-id"), Values: []string{*inst.InstanceId}}}}))
	if len(byFilter.NetworkInterfaces) != 2 { // the primary and the modified one
		t.Fatalf("delete-on-termination filter found %d ENIs, want 2", len(byFilter.NetworkInterfaces))
	}
	keptIPs := f.describeENI(t, kept).PrivateIpAddresses

	must[*ec2.TerminateInstancesOutput](t)(c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{*inst.InstanceId}}))
	_, err = c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{deleted}})
	wantCode(t, err, "InvalidNetworkInterfaceID.NotFound")
	got := f.describeENI(t, kept)
	if got.Status != types.NetworkInterfaceStatusAvailable || got.Attachment != nil || len(got.PrivateIpAddresses) != len(keptIPs) {
		t.Fatalf("ENI without DeleteOnTermination after terminate: %+v", got)
	}
	// Only the kept ENI's 4 addresses are still taken: the primary ENI's and the deleted one's are free.
	if after := free(); after != before-4 {
		t.Fatalf("subnet has %d free addresses after terminate, want %d", after, before-4)
	}
}
