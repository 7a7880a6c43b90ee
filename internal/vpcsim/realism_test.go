package vpcsim_test

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/vpcnet/vpcnet/internal/vpcsim"
)

// Issue 12 item 11: the exhaustion knob answers a full subnet either with EC2's documented
// codes or with InvalidParameterValue "There aren't sufficient free Ipv4 addresses or
// prefixes", on create and assign, and can be switched while serving.
func TestExhaustionErrorKnob(t *testing.T) {
	f := newFixture(t, vpcsim.Options{ExhaustionError: vpcsim.ExhaustionInvalidParameter}, "10.0.0.0/16", "10.0.1.0/27")
	c := f.c
	inst := f.run(t, "m5.large") // takes .4
	eni := *inst.NetworkInterfaces[0].NetworkInterfaceId
	// Break every /28: one address in the second block, then take all single addresses left.
	must[*ec2.CreateNetworkInterfaceOutput](t)(c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(f.subnet),
		PrivateIpAddress: aws.String("10.0.1.20")}))
	must[*ec2.CreateNetworkInterfaceOutput](t)(c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(f.subnet),
		SecondaryPrivateIpAddressCount: aws.Int32(9)}))
	// 27 usable, 1+1+10 taken: 15 single addresses remain, but no free /28.
	_, err := c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: &eni, Ipv4PrefixCount: aws.Int32(1)})
	wantCode(t, err, "InvalidParameterValue")
	wantMessage(t, err, vpcsim.ExhaustionMessage)
	_, err = c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(f.subnet), Ipv4PrefixCount: aws.Int32(1)})
	wantCode(t, err, "InvalidParameterValue")
	wantMessage(t, err, vpcsim.ExhaustionMessage)
	_, err = c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(f.subnet), SecondaryPrivateIpAddressCount: aws.Int32(16)})
	wantCode(t, err, "InvalidParameterValue")
	wantMessage(t, err, vpcsim.ExhaustionMessage)

	if err := f.s.SetExhaustionError("sometimes"); err == nil {
		t.Fatal("an unknown exhaustion style was accepted")
	}
	if err := f.s.SetExhaustionError(vpcsim.ExhaustionCodes); err != nil {
		t.Fatal(err)
	}
	_, err = c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: &eni, Ipv4PrefixCount: aws.Int32(1)})
	wantCode(t, err, "InsufficientCidrBlocks")
	_, err = c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(f.subnet), SecondaryPrivateIpAddressCount: aws.Int32(16)})
	wantCode(t, err, "InsufficientFreeAddressesInSubnet")
	// Other errors are not rewritten: a limit is still a limit.
	f.s.SetExhaustionError(vpcsim.ExhaustionInvalidParameter)
	_, err = c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: &eni, SecondaryPrivateIpAddressCount: aws.Int32(40)})
	wantCode(t, err, "PrivateIpAddressLimitExceeded")
	if _, err := vpcsim.Start("127.0.0.1:0", vpcsim.Options{ExhaustionError: "nope"}); err == nil {
		t.Fatal("Start accepted an unknown exhaustion style")
	}
}

// Issue 12 item 11: IMDS lists network-card per MAC (the ENI's network card index).
func TestIMDSNetworkCard(t *testing.T) {
	f := newFixture(t, vpcsim.Options{}, "10.0.0.0/16", "10.0.1.0/24")
	inst := f.run(t, "m5.large")
	md := imdsClient(t, f.s, *inst.InstanceId)
	mac := *inst.NetworkInterfaces[0].MacAddress
	if got := imdsGet(t, md, "network/interfaces/macs/"+mac+"/network-card"); got != "0" {
		t.Fatalf("network-card %q, want 0", got)
	}
	if got := imdsGet(t, md, "network/interfaces/macs/"+mac+"/"); !strings.Contains(got, "network-card\n") {
		t.Fatalf("per-MAC listing lacks network-card: %q", got)
	}
}

// Issue 12 item 11: bad counts, over-long descriptions, reserved tag keys and too many security
// groups get EC2's codes, and change nothing.
func TestInputBounds(t *testing.T) {
	f := newFixture(t, vpcsim.Options{}, "10.0.0.0/16", "10.0.1.0/24")
	c := f.c
	run := func(in *ec2.RunInstancesInput) error {
		in.ImageId, in.InstanceType = aws.String("ami-1"), "m5.large"
		if in.MinCount == nil {
			in.MinCount, in.MaxCount = aws.Int32(1), aws.Int32(1)
		}
		_, err := c.RunInstances(ctx, in)
		return err
	}
	// A negative address count on the launch interface once divided by zero (InternalError).
	wantCode(t, run(&ec2.RunInstancesInput{NetworkInterfaces: []types.InstanceNetworkInterfaceSpecification{{DeviceIndex: aws.Int32(0),
		SubnetId: aws.String(f.subnet), SecondaryPrivateIpAddressCount: aws.Int32(-1)}}}), "InvalidParameterValue")
	wantCode(t, run(&ec2.RunInstancesInput{NetworkInterfaces: []types.InstanceNetworkInterfaceSpecification{{DeviceIndex: aws.Int32(0),
		SubnetId: aws.String(f.subnet), Ipv4PrefixCount: aws.Int32(-2)}}}), "InvalidParameterValue")
	wantCode(t, run(&ec2.RunInstancesInput{SubnetId: aws.String(f.subnet), MinCount: aws.Int32(-1), MaxCount: aws.Int32(1)}), "InvalidParameterValue")
	wantCode(t, run(&ec2.RunInstancesInput{SubnetId: aws.String(f.subnet), SecurityGroupIds: []string{"sg-1", "sg-2", "sg-3", "sg-4", "sg-5", "sg-6"}}),
		"SecurityGroupsPerInterfaceLimitExceeded")

	long := strings.Repeat("d", 256)
	_, err := c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(f.subnet), Description: aws.String(long)})
	wantCode(t, err, "InvalidParameterValue")
	_, err = c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(f.subnet), Groups: []string{"sg-1", "sg-2", "sg-3", "sg-4", "sg-5", "sg-6"}})
	wantCode(t, err, "SecurityGroupsPerInterfaceLimitExceeded")
	_, err = c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(f.subnet), Groups: []string{"default"}})
	wantCode(t, err, "InvalidGroupId.Malformed")
	_, err = c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(f.subnet),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeNetworkInterface, Tags: []types.Tag{{Key: aws.String("aws:cloudformation:stack-name"), Value: aws.String("x")}}}}})
	wantCode(t, err, "InvalidParameterValue")
	if n := len(must[*ec2.DescribeNetworkInterfacesOutput](t)(c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{})).NetworkInterfaces); n != 0 {
		t.Fatalf("refused calls made %d ENIs", n)
	}

	e := must[*ec2.CreateNetworkInterfaceOutput](t)(c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(f.subnet),
		Description: aws.String(long[:255]), Groups: []string{"sg-1", "sg-2", "sg-3", "sg-4", "sg-5"}})).NetworkInterface
	id := e.NetworkInterfaceId
	_, err = c.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{NetworkInterfaceId: id, Description: &types.AttributeValue{Value: aws.String(long)}})
	wantCode(t, err, "InvalidParameterValue")
	_, err = c.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{NetworkInterfaceId: id, Groups: []string{"sg-1", "sg-2", "sg-3", "sg-4", "sg-5", "sg-6"}})
	wantCode(t, err, "SecurityGroupsPerInterfaceLimitExceeded")
	_, err = c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{*id}, Tags: []types.Tag{{Key: aws.String("AWS:owner"), Value: aws.String("me")}}})
	wantCode(t, err, "InvalidParameterValue")
	wantMessage(t, err, "reserved")
	_, err = c.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: []string{*id}, Tags: []types.Tag{{Key: aws.String("aws:owner")}}})
	wantCode(t, err, "InvalidParameterValue")
	got := f.describeENI(t, *id)
	if len(*got.Description) != 255 || len(got.Groups) != 5 || len(got.TagSet) != 0 {
		t.Fatalf("a refused change altered the ENI: %d-character description, %d groups, %d tags", len(*got.Description), len(got.Groups), len(got.TagSet))
	}
}
