package vpcsim_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/vpcnet/vpcnet/internal/vpcsim"
)

func TestVpcsAndSubnets(t *testing.T) {
	_, c := start(t, vpcsim.Options{Region: "eu-west-1"})
	vpc := must[*ec2.CreateVpcOutput](t)(c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.20.0.0/16"),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeVpc, Tags: []types.Tag{{Key: aws.String("Name"), Value: aws.String("lab")}}}}}))
	if *vpc.Vpc.CidrBlock != "10.20.0.0/16" || vpc.Vpc.State != types.VpcStateAvailable || len(vpc.Vpc.Tags) != 1 {
		t.Fatalf("vpc %+v", vpc.Vpc)
	}
	vpcID := vpc.Vpc.VpcId
	sn := must[*ec2.CreateSubnetOutput](t)(c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpcID, CidrBlock: aws.String("10.20.1.0/24"), AvailabilityZone: aws.String("eu-west-1b")}))
	if *sn.Subnet.AvailableIpAddressCount != 251 || *sn.Subnet.AvailabilityZone != "eu-west-1b" || *sn.Subnet.VpcId != *vpcID {
		t.Fatalf("subnet %+v", sn.Subnet)
	}
	must[*ec2.CreateSubnetOutput](t)(c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpcID, CidrBlock: aws.String("10.20.2.0/28")}))

	vs := must[*ec2.DescribeVpcsOutput](t)(c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{}))
	if len(vs.Vpcs) != 1 || *vs.Vpcs[0].VpcId != *vpcID {
		t.Fatalf("vpcs %+v", vs.Vpcs)
	}
	vs = must[*ec2.DescribeVpcsOutput](t)(c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{Filters: []types.Filter{{Name: aws.String("tag:Name"), Values: []string{"lab"}}}}))
	if len(vs.Vpcs) != 1 {
		t.Fatalf("vpcs by tag %+v", vs.Vpcs)
	}
	ss := must[*ec2.DescribeSubnetsOutput](t)(c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []types.Filter{{Name: aws.String("vpc-id"), Values: []string{*vpcID}}}}))
	if len(ss.Subnets) != 2 {
		t.Fatalf("subnets %d", len(ss.Subnets))
	}
	ss = must[*ec2.DescribeSubnetsOutput](t)(c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{*sn.Subnet.SubnetId}}))
	if len(ss.Subnets) != 1 || *ss.Subnets[0].AvailableIpAddressCount != 251 {
		t.Fatalf("subnet by id %+v", ss.Subnets)
	}

	for _, tc := range []struct {
		name string
		err  error
		code string
		msg  string
	}{
		{"vpc /8", second(c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/8")})), "InvalidVpc.Range", "The CIDR '10.0.0.0/8' is invalid."},
		{"vpc garbage cidr", second(c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0/16")})), "InvalidParameterValue", "10.0.0/16"},
		{"vpc no cidr", second(c.CreateVpc(ctx, &ec2.CreateVpcInput{})), "MissingParameter", "CidrBlock"},
		{"subnet conflict", second(c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpcID, CidrBlock: aws.String("10.20.1.64/26")})), "InvalidSubnet.Conflict", "conflicts with another subnet"},
		{"subnet range", second(c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpcID, CidrBlock: aws.String("10.21.0.0/24")})), "InvalidSubnet.Range", "The CIDR '10.21.0.0/24' is invalid."},
		{"subnet too small", second(c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpcID, CidrBlock: aws.String("10.20.9.0/29")})), "InvalidSubnet.Range", ""},
		{"subnet unknown vpc", second(c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: aws.String("vpc-0abc"), CidrBlock: aws.String("10.20.3.0/24")})), "InvalidVpcID.NotFound", "The vpc ID 'vpc-0abc' does not exist"},
		{"subnet bad az", second(c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpcID, CidrBlock: aws.String("10.20.3.0/24"), AvailabilityZone: aws.String("us-east-1a")})), "InvalidParameterValue", "availabilityZone"},
		{"describe unknown subnet", second(c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{"subnet-0abc"}})), "InvalidSubnetID.NotFound", "The subnet ID 'subnet-0abc' does not exist"},
		{"describe malformed subnet", second(c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{"sub-1"}})), "InvalidSubnetID.Malformed", ""},
		{"describe unknown vpc", second(c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{VpcIds: []string{"vpc-0def"}})), "InvalidVpcID.NotFound", "The vpc ID 'vpc-0def' does not exist"},
		{"bad filter", second(c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []types.Filter{{Name: aws.String("colour"), Values: []string{"x"}}}})), "InvalidParameterValue", "The filter 'colour' is invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, tc.err, tc.code)
			if tc.msg != "" {
				wantMessage(t, tc.err, tc.msg)
			}
			if httpStatus(tc.err) != 400 {
				t.Errorf("HTTP %d, want 400", httpStatus(tc.err))
			}
		})
	}
}

func second[A any](_ A, err error) error { return err }

func TestDescribeInstanceTypes(t *testing.T) {
	_, c := start(t, vpcsim.Options{})
	out := must[*ec2.DescribeInstanceTypesOutput](t)(c.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{
		InstanceTypes: []types.InstanceType{"m5.large", "t2.micro", "m5.24xlarge"}}))
	got := map[string]types.InstanceTypeInfo{}
	for _, it := range out.InstanceTypes {
		got[string(it.InstanceType)] = it
	}
	for _, tc := range []struct {
		name       string
		enis, ipv4 int32
		hyp        types.InstanceTypeHypervisor
	}{{"m5.large", 3, 10, "nitro"}, {"t2.micro", 2, 2, "xen"}, {"m5.24xlarge", 15, 50, "nitro"}} {
		it, ok := got[tc.name]
		if !ok {
			t.Fatalf("%s missing", tc.name)
		}
		ni := it.NetworkInfo
		if *ni.MaximumNetworkInterfaces != tc.enis || *ni.Ipv4AddressesPerInterface != tc.ipv4 || it.Hypervisor != tc.hyp ||
			len(ni.NetworkCards) != 1 || *ni.NetworkCards[0].MaximumNetworkInterfaces != tc.enis || *ni.NetworkCards[0].NetworkCardIndex != 0 ||
			*ni.DefaultNetworkCardIndex != 0 || *ni.MaximumNetworkCards != 1 {
			t.Errorf("%s: %+v hypervisor %q", tc.name, ni, it.Hypervisor)
		}
	}
	// Paging walks the whole catalog.
	p := ec2.NewDescribeInstanceTypesPaginator(c, &ec2.DescribeInstanceTypesInput{MaxResults: aws.Int32(5)})
	n, pages := 0, 0
	for p.HasMorePages() {
		pg := must[*ec2.DescribeInstanceTypesOutput](t)(p.NextPage(ctx))
		n += len(pg.InstanceTypes)
		pages++
	}
	if n != 20 || pages != 4 {
		t.Errorf("paged %d types in %d pages, want 20 in 4", n, pages)
	}
	_, err := c.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{InstanceTypes: []types.InstanceType{"m9.huge"}})
	wantCode(t, err, "InvalidInstanceType")
	_, err = c.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{MaxResults: aws.Int32(500)})
	wantCode(t, err, "InvalidParameterValue")
}

func TestInstances(t *testing.T) {
	f := newFixture(t, vpcsim.Options{}, "10.0.0.0/16", "10.0.1.0/24")
	c := f.c
	out := must[*ec2.RunInstancesOutput](t)(c.RunInstances(ctx, &ec2.RunInstancesInput{InstanceType: "t3.medium", SubnetId: aws.String(f.subnet),
		MinCount: aws.Int32(3), MaxCount: aws.Int32(3), ImageId: aws.String("ami-1"),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: []types.Tag{{Key: aws.String("role"), Value: aws.String("node")}}}}}))
	if len(out.Instances) != 3 || out.ReservationId == nil {
		t.Fatalf("run: %+v", out)
	}
	seen := map[string]bool{}
	for _, in := range out.Instances {
		if in.State.Name != types.InstanceStateNameRunning || in.InstanceType != "t3.medium" || *in.SubnetId != f.subnet || *in.VpcId != f.vpc {
			t.Errorf("instance %+v", in)
		}
		if len(in.NetworkInterfaces) != 1 {
			t.Fatalf("instance has %d ENIs", len(in.NetworkInterfaces))
		}
		ni := in.NetworkInterfaces[0]
		if *ni.Attachment.DeviceIndex != 0 || !*ni.Attachment.DeleteOnTermination || ni.Attachment.Status != types.AttachmentStatusAttached ||
			*ni.PrivateIpAddress != *in.PrivateIpAddress || seen[*in.PrivateIpAddress] || *in.Placement.AvailabilityZone != "us-east-1a" {
			t.Errorf("primary ENI %+v", ni)
		}
		seen[*in.PrivateIpAddress] = true
	}
	id := *out.Instances[0].InstanceId
	d := must[*ec2.DescribeInstancesOutput](t)(c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}}))
	if len(d.Reservations) != 1 || len(d.Reservations[0].Instances) != 1 || *d.Reservations[0].Instances[0].InstanceId != id {
		t.Fatalf("describe %+v", d)
	}
	d = must[*ec2.DescribeInstancesOutput](t)(c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []types.Filter{{Name: aws.String("tag:role"), Values: []string{"node"}}}}))
	if len(d.Reservations) != 1 || len(d.Reservations[0].Instances) != 3 {
		t.Fatalf("describe by tag %+v", d)
	}

	// A second ENI without DeleteOnTermination survives termination; the primary goes.
	e := f.eni(t)
	must[*ec2.AttachNetworkInterfaceOutput](t)(c.AttachNetworkInterface(ctx, &ec2.AttachNetworkInterfaceInput{NetworkInterfaceId: e.NetworkInterfaceId, InstanceId: &id, DeviceIndex: aws.Int32(1)}))
	term := must[*ec2.TerminateInstancesOutput](t)(c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}}))
	if len(term.TerminatingInstances) != 1 || term.TerminatingInstances[0].CurrentState.Name != types.InstanceStateNameTerminated ||
		term.TerminatingInstances[0].PreviousState.Name != types.InstanceStateNameRunning {
		t.Fatalf("terminate %+v", term)
	}
	if got := f.describeENI(t, *e.NetworkInterfaceId); got.Status != types.NetworkInterfaceStatusAvailable || got.Attachment != nil {
		t.Errorf("secondary ENI after terminate: %+v", got)
	}
	_, err := c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{*out.Instances[0].NetworkInterfaces[0].NetworkInterfaceId}})
	wantCode(t, err, "InvalidNetworkInterfaceID.NotFound")
	d = must[*ec2.DescribeInstancesOutput](t)(c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}}))
	if d.Reservations[0].Instances[0].State.Name != types.InstanceStateNameTerminated {
		t.Errorf("terminated instance shows %v", d.Reservations[0].Instances[0].State.Name)
	}

	for _, tc := range []struct {
		name string
		err  error
		code string
		msg  string
	}{
		{"unknown type", second(c.RunInstances(ctx, &ec2.RunInstancesInput{InstanceType: "m9.huge", SubnetId: aws.String(f.subnet), MinCount: aws.Int32(1), MaxCount: aws.Int32(1)})), "InvalidParameterValue", "m9.huge"},
		{"unknown subnet", second(c.RunInstances(ctx, &ec2.RunInstancesInput{InstanceType: "m5.large", SubnetId: aws.String("subnet-0abc"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1)})), "InvalidSubnetID.NotFound", "The subnet ID 'subnet-0abc' does not exist"},
		{"no subnet", second(c.RunInstances(ctx, &ec2.RunInstancesInput{InstanceType: "m5.large", MinCount: aws.Int32(1), MaxCount: aws.Int32(1)})), "MissingParameter", "SubnetId"},
		{"max < min", second(c.RunInstances(ctx, &ec2.RunInstancesInput{InstanceType: "m5.large", SubnetId: aws.String(f.subnet), MinCount: aws.Int32(2), MaxCount: aws.Int32(1)})), "InvalidParameterValue", "MaxCount"},
		{"ip with count", second(c.RunInstances(ctx, &ec2.RunInstancesInput{InstanceType: "m5.large", SubnetId: aws.String(f.subnet), MinCount: aws.Int32(1), MaxCount: aws.Int32(2), PrivateIpAddress: aws.String("10.0.1.100")})), "InvalidParameterCombination", ""},
		{"terminate unknown", second(c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{"i-0abc"}})), "InvalidInstanceID.NotFound", "The instance ID 'i-0abc' does not exist"},
		{"describe unknown", second(c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{"i-0abc"}})), "InvalidInstanceID.NotFound", "The instance ID 'i-0abc' does not exist"},
		{"describe malformed", second(c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{"instance-1"}})), "InvalidInstanceID.Malformed", ""},
		{"attach to terminated", second(c.AttachNetworkInterface(ctx, &ec2.AttachNetworkInterfaceInput{NetworkInterfaceId: e.NetworkInterfaceId, InstanceId: &id, DeviceIndex: aws.Int32(1)})), "IncorrectInstanceState", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, tc.err, tc.code)
			if tc.msg != "" {
				wantMessage(t, tc.err, tc.msg)
			}
		})
	}
}

func TestRunInstancesExhaustsSubnet(t *testing.T) {
	f := newFixture(t, vpcsim.Options{}, "10.0.0.0/16", "10.0.9.0/28") // 11 usable
	// MaxCount beyond what fits launches what fits, if at least MinCount.
	out := must[*ec2.RunInstancesOutput](t)(f.c.RunInstances(ctx, &ec2.RunInstancesInput{InstanceType: "t3.nano", SubnetId: aws.String(f.subnet), MinCount: aws.Int32(2), MaxCount: aws.Int32(50)}))
	if len(out.Instances) != 11 {
		t.Fatalf("launched %d, want 11", len(out.Instances))
	}
	_, err := f.c.RunInstances(ctx, &ec2.RunInstancesInput{InstanceType: "t3.nano", SubnetId: aws.String(f.subnet), MinCount: aws.Int32(1), MaxCount: aws.Int32(1)})
	wantCode(t, err, "InsufficientFreeAddressesInSubnet")
	wantMessage(t, err, f.subnet)
}
