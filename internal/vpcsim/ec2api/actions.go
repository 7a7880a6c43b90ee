package ec2api

import (
	"context"

	"github.com/vpcnet/vpcnet/internal/vpcsim/model"
)

var actions map[string]action

func init() {
	actions = map[string]action{
		"CreateVpc":                       createVpc,
		"DescribeVpcs":                    describeVpcs,
		"CreateSubnet":                    createSubnet,
		"DescribeSubnets":                 describeSubnets,
		"RunInstances":                    runInstances,
		"DescribeInstances":               describeInstances,
		"TerminateInstances":              terminateInstances,
		"DescribeInstanceTypes":           describeInstanceTypes,
		"CreateNetworkInterface":          createNetworkInterface,
		"DeleteNetworkInterface":          deleteNetworkInterface,
		"AttachNetworkInterface":          attachNetworkInterface,
		"DetachNetworkInterface":          detachNetworkInterface,
		"DescribeNetworkInterfaces":       describeNetworkInterfaces,
		"ModifyNetworkInterfaceAttribute": modifyNetworkInterfaceAttribute,
		"AssignPrivateIpAddresses":        assignPrivateIPAddresses,
		"UnassignPrivateIpAddresses":      unassignPrivateIPAddresses,
		"CreateTags":                      createTags,
		"DeleteTags":                      deleteTags,
	}
}

type createVpcReply struct {
	Meta
	Vpc xVpc `xml:"vpc"`
}

func createVpc(ctx context.Context, b Backend, p params) (reply, error) {
	cidr, err := p.required("CidrBlock")
	if err != nil {
		return nil, err
	}
	pf, err := parsePrefix("cidrBlock", cidr)
	if err != nil {
		return nil, err
	}
	in := model.CreateVpcInput{CIDR: pf}
	if in.TagSpecs, err = p.tagSpecs(); err != nil {
		return nil, err
	}
	out, err := b.Mutate(ctx, &in)
	if err != nil {
		return nil, err
	}
	return &createVpcReply{Vpc: toVpc(out.(*model.VPC))}, nil
}

type describeVpcsReply struct {
	Meta
	Vpcs      []xVpc `xml:"vpcSet>item"`
	NextToken string `xml:"nextToken,omitempty"`
}

func describeVpcs(ctx context.Context, b Backend, p params) (reply, error) {
	in, err := p.describe("VpcId")
	if err != nil {
		return nil, err
	}
	rep := &describeVpcsReply{Vpcs: []xVpc{}}
	err = b.Read(func(m *model.Model) error {
		vs, next, err := m.DescribeVpcs(in)
		for _, v := range vs {
			rep.Vpcs = append(rep.Vpcs, toVpc(v))
		}
		rep.NextToken = next
		return err
	})
	return rep, err
}

type createSubnetReply struct {
	Meta
	Subnet xSubnet `xml:"subnet"`
}

func createSubnet(ctx context.Context, b Backend, p params) (reply, error) {
	vpcID, err := p.required("VpcId")
	if err != nil {
		return nil, err
	}
	cidr, err := p.required("CidrBlock")
	if err != nil {
		return nil, err
	}
	pf, err := parsePrefix("cidrBlock", cidr)
	if err != nil {
		return nil, err
	}
	in := model.CreateSubnetInput{VPCID: vpcID, CIDR: pf, AZ: p.str("AvailabilityZone")}
	if in.TagSpecs, err = p.tagSpecs(); err != nil {
		return nil, err
	}
	out, err := b.Mutate(ctx, &in)
	if err != nil {
		return nil, err
	}
	return &createSubnetReply{Subnet: toSubnet(out.(*model.SubnetView))}, nil
}

type describeSubnetsReply struct {
	Meta
	Subnets   []xSubnet `xml:"subnetSet>item"`
	NextToken string    `xml:"nextToken,omitempty"`
}

func describeSubnets(ctx context.Context, b Backend, p params) (reply, error) {
	in, err := p.describe("SubnetId")
	if err != nil {
		return nil, err
	}
	rep := &describeSubnetsReply{Subnets: []xSubnet{}}
	err = b.Read(func(m *model.Model) error {
		ss, next, err := m.DescribeSubnets(in)
		for _, s := range ss {
			rep.Subnets = append(rep.Subnets, toSubnet(s))
		}
		rep.NextToken = next
		return err
	})
	return rep, err
}

type runInstancesReply struct {
	Meta
	ReservationID string      `xml:"reservationId"`
	OwnerID       string      `xml:"ownerId"`
	Groups        []xGroup    `xml:"groupSet>item"`
	Instances     []xInstance `xml:"instancesSet>item"`
}

func runInstances(ctx context.Context, b Backend, p params) (reply, error) {
	var in model.RunInstancesInput
	var err error
	if in.MinCount, err = requiredInt(p, "MinCount"); err != nil {
		return nil, err
	}
	if in.MaxCount, err = requiredInt(p, "MaxCount"); err != nil {
		return nil, err
	}
	in.ImageID = p.str("ImageId")
	in.InstanceType = p.str("InstanceType")
	in.SubnetID = p.str("SubnetId")
	if in.PrivateIP, err = p.addr("PrivateIpAddress"); err != nil {
		return nil, err
	}
	if in.SecurityGroups, err = p.list("SecurityGroupId"); err != nil {
		return nil, err
	}
	if in.TagSpecs, err = p.tagSpecs(); err != nil {
		return nil, err
	}
	nis, err := p.objects("NetworkInterface")
	if err != nil {
		return nil, err
	}
	if len(nis) > 1 {
		return nil, model.Errf(model.CodeInvalidParameterValue, "vpcsim launches instances with one network interface; attach more with AttachNetworkInterface.")
	}
	if len(nis) == 1 {
		ni := nis[0]
		if dev := ni.str("DeviceIndex"); dev != "" && dev != "0" {
			return nil, model.InvalidValue("NetworkInterface.1.DeviceIndex", dev)
		}
		if in.SubnetID != "" && ni.has("SubnetId") {
			return nil, model.Combination("Network interfaces and an instance-level subnet ID may not be specified on the same request")
		}
		if ni.has("SubnetId") {
			in.SubnetID = ni.str("SubnetId")
		}
		if ni.has("PrivateIpAddress") {
			if in.PrivateIP, err = ni.addr("PrivateIpAddress"); err != nil {
				return nil, err
			}
		}
		if in.PrimaryAddrs.Count, err = ni.intOpt("SecondaryPrivateIpAddressCount"); err != nil {
			return nil, err
		}
		if in.PrimaryAddrs.PrefixCount, err = ni.intOpt("Ipv4PrefixCount"); err != nil {
			return nil, err
		}
		if sgs, err := ni.list("SecurityGroupId"); err != nil {
			return nil, err
		} else if len(sgs) > 0 {
			in.SecurityGroups = sgs
		}
	}
	if in.InstanceType == "" {
		in.InstanceType = "t3.micro"
	}
	out, err := b.Mutate(ctx, &in)
	if err != nil {
		return nil, err
	}
	r := toReservation(out.(*model.Reservation))
	return &runInstancesReply{ReservationID: r.ReservationID, OwnerID: r.OwnerID, Groups: r.Groups, Instances: r.Instances}, nil
}

func requiredInt(p params, name string) (int, error) {
	if !p.has(name) {
		return 0, model.Missing(name)
	}
	return p.intOpt(name)
}

type describeInstancesReply struct {
	Meta
	Reservations []xReservation `xml:"reservationSet>item"`
	NextToken    string         `xml:"nextToken,omitempty"`
}

func describeInstances(ctx context.Context, b Backend, p params) (reply, error) {
	in, err := p.describe("InstanceId")
	if err != nil {
		return nil, err
	}
	rep := &describeInstancesReply{Reservations: []xReservation{}}
	err = b.Read(func(m *model.Model) error {
		rs, next, err := m.DescribeInstances(in)
		for _, r := range rs {
			rep.Reservations = append(rep.Reservations, toReservation(r))
		}
		rep.NextToken = next
		return err
	})
	return rep, err
}

type xStateChange struct {
	InstanceID    string `xml:"instanceId"`
	CurrentState  xState `xml:"currentState"`
	PreviousState xState `xml:"previousState"`
}

type terminateInstancesReply struct {
	Meta
	Instances []xStateChange `xml:"instancesSet>item"`
}

func terminateInstances(ctx context.Context, b Backend, p params) (reply, error) {
	ids, err := p.list("InstanceId")
	if err != nil {
		return nil, err
	}
	out, err := b.Mutate(ctx, &model.TerminateInstancesInput{InstanceIDs: ids})
	if err != nil {
		return nil, err
	}
	rep := &terminateInstancesReply{}
	for _, c := range out.([]model.StateChange) {
		rep.Instances = append(rep.Instances, xStateChange{InstanceID: c.InstanceID, CurrentState: state(c.Curr), PreviousState: state(c.Previous)})
	}
	return rep, nil
}

type describeInstanceTypesReply struct {
	Meta
	Types     []xInstanceType `xml:"instanceTypeSet>item"`
	NextToken string          `xml:"nextToken,omitempty"`
}

func describeInstanceTypes(ctx context.Context, b Backend, p params) (reply, error) {
	in, err := p.describe("InstanceType")
	if err != nil {
		return nil, err
	}
	rep := &describeInstanceTypesReply{Types: []xInstanceType{}}
	err = b.Read(func(m *model.Model) error {
		ts, next, err := m.DescribeInstanceTypes(in)
		for _, t := range ts {
			rep.Types = append(rep.Types, toInstanceType(t))
		}
		rep.NextToken = next
		return err
	})
	return rep, err
}

type createNetworkInterfaceReply struct {
	Meta
	ENI xENI `xml:"networkInterface"`
}

func createNetworkInterface(ctx context.Context, b Backend, p params) (reply, error) {
	var in model.CreateNetworkInterfaceInput
	var err error
	if in.SubnetID, err = p.required("SubnetId"); err != nil {
		return nil, err
	}
	in.Description = p.str("Description")
	if in.SecurityGroups, err = p.list("SecurityGroupId"); err != nil {
		return nil, err
	}
	if in.PrimaryIP, err = p.addr("PrivateIpAddress"); err != nil {
		return nil, err
	}
	objs, err := p.objects("PrivateIpAddresses")
	if err != nil {
		return nil, err
	}
	for i, o := range objs {
		a, err := parseAddr("PrivateIpAddresses.PrivateIpAddress", o.str("PrivateIpAddress"))
		if err != nil {
			return nil, err
		}
		primary, err := o.boolOpt("Primary")
		if err != nil {
			return nil, err
		}
		if primary || (i == 0 && !in.PrimaryIP.IsValid() && !anyPrimary(objs)) {
			if in.PrimaryIP.IsValid() && in.PrimaryIP != a {
				return nil, model.Combination("Only one primary private IP address can be specified.")
			}
			in.PrimaryIP = a
			continue
		}
		in.Addrs.Addrs = append(in.Addrs.Addrs, a)
	}
	if in.Addrs.Count, err = p.intOpt("SecondaryPrivateIpAddressCount"); err != nil {
		return nil, err
	}
	if in.Addrs.PrefixCount, err = p.intOpt("Ipv4PrefixCount"); err != nil {
		return nil, err
	}
	if in.Addrs.Prefixes, err = p.prefixList("Ipv4Prefix"); err != nil {
		return nil, err
	}
	if in.TagSpecs, err = p.tagSpecs(); err != nil {
		return nil, err
	}
	out, err := b.Mutate(ctx, &in)
	if err != nil {
		return nil, err
	}
	return &createNetworkInterfaceReply{ENI: toENI(out.(*model.ENI), false)}, nil
}

func anyPrimary(objs []params) bool {
	for _, o := range objs {
		if v, _ := o.boolOpt("Primary"); v {
			return true
		}
	}
	return false
}

func deleteNetworkInterface(ctx context.Context, b Backend, p params) (reply, error) {
	id, err := p.required("NetworkInterfaceId")
	if err != nil {
		return nil, err
	}
	if _, err := b.Mutate(ctx, &model.DeleteNetworkInterfaceInput{ENIID: id}); err != nil {
		return nil, err
	}
	return &returnReply{Return: true}, nil
}

type attachReply struct {
	Meta
	AttachmentID     string `xml:"attachmentId"`
	NetworkCardIndex int    `xml:"networkCardIndex"`
}

func attachNetworkInterface(ctx context.Context, b Backend, p params) (reply, error) {
	var in model.AttachNetworkInterfaceInput
	var err error
	if in.ENIID, err = p.required("NetworkInterfaceId"); err != nil {
		return nil, err
	}
	if in.InstanceID, err = p.required("InstanceId"); err != nil {
		return nil, err
	}
	if in.DeviceIndex, err = p.intPtr("DeviceIndex"); err != nil {
		return nil, err
	}
	if in.DeviceIndex == nil {
		return nil, model.Missing("DeviceIndex")
	}
	if in.NetworkCardIndex, err = p.intOpt("NetworkCardIndex"); err != nil {
		return nil, err
	}
	out, err := b.Mutate(ctx, &in)
	if err != nil {
		return nil, err
	}
	return &attachReply{AttachmentID: out.(string), NetworkCardIndex: in.NetworkCardIndex}, nil
}

func detachNetworkInterface(ctx context.Context, b Backend, p params) (reply, error) {
	var in model.DetachNetworkInterfaceInput
	var err error
	if in.AttachmentID, err = p.required("AttachmentId"); err != nil {
		return nil, err
	}
	if in.Force, err = p.boolOpt("Force"); err != nil {
		return nil, err
	}
	if _, err := b.Mutate(ctx, &in); err != nil {
		return nil, err
	}
	return &returnReply{Return: true}, nil
}

type describeNetworkInterfacesReply struct {
	Meta
	ENIs      []xENI `xml:"networkInterfaceSet>item"`
	NextToken string `xml:"nextToken,omitempty"`
}

func describeNetworkInterfaces(ctx context.Context, b Backend, p params) (reply, error) {
	in, err := p.describe("NetworkInterfaceId")
	if err != nil {
		return nil, err
	}
	rep := &describeNetworkInterfacesReply{ENIs: []xENI{}}
	var enis []*model.ENI
	var next string
	err = b.Read(func(m *model.Model) error {
		var err error
		enis, next, err = m.DescribeNetworkInterfaces(in)
		return err
	})
	if err != nil {
		return nil, err
	}
	for _, e := range enis {
		rep.ENIs = append(rep.ENIs, toENI(e, false))
	}
	rep.NextToken = next
	return rep, nil
}

func modifyNetworkInterfaceAttribute(ctx context.Context, b Backend, p params) (reply, error) {
	var in model.ModifyNetworkInterfaceAttributeInput
	var err error
	if in.ENIID, err = p.required("NetworkInterfaceId"); err != nil {
		return nil, err
	}
	if p.has("Description.Value") {
		d := p.str("Description.Value")
		in.Description = &d
	}
	if in.SecurityGroups, err = p.list("SecurityGroupId"); err != nil {
		return nil, err
	}
	in.AttachmentID = p.str("Attachment.AttachmentId")
	if in.DeleteOnTermination, err = p.boolPtr("Attachment.DeleteOnTermination"); err != nil {
		return nil, err
	}
	if in.SourceDestCheck, err = p.boolPtr("SourceDestCheck.Value"); err != nil {
		return nil, err
	}
	if _, err := b.Mutate(ctx, &in); err != nil {
		return nil, err
	}
	return &returnReply{Return: true}, nil
}

type xAssignedIP struct {
	PrivateIPAddress string `xml:"privateIpAddress"`
}

type assignReply struct {
	Meta
	NetworkInterfaceID string        `xml:"networkInterfaceId"`
	Addrs              []xAssignedIP `xml:"assignedPrivateIpAddressesSet>item"`
	Prefixes           []xPrefix     `xml:"assignedIpv4PrefixSet>item"`
}

func assignPrivateIPAddresses(ctx context.Context, b Backend, p params) (reply, error) {
	var in model.AssignPrivateIpAddressesInput
	var err error
	if in.ENIID, err = p.required("NetworkInterfaceId"); err != nil {
		return nil, err
	}
	if in.Addrs.Addrs, err = p.addrList("PrivateIpAddress"); err != nil {
		return nil, err
	}
	if in.Addrs.Count, err = p.intOpt("SecondaryPrivateIpAddressCount"); err != nil {
		return nil, err
	}
	if in.Addrs.PrefixCount, err = p.intOpt("Ipv4PrefixCount"); err != nil {
		return nil, err
	}
	if in.Addrs.Prefixes, err = p.prefixList("Ipv4Prefix"); err != nil {
		return nil, err
	}
	if in.Addrs.AllowReassignment, err = p.boolOpt("AllowReassignment"); err != nil {
		return nil, err
	}
	out, err := b.Mutate(ctx, &in)
	if err != nil {
		return nil, err
	}
	a := out.(*model.Assigned)
	rep := &assignReply{NetworkInterfaceID: a.ENIID}
	for _, ip := range a.Addrs {
		rep.Addrs = append(rep.Addrs, xAssignedIP{ip.String()})
	}
	for _, pf := range a.Prefixes {
		rep.Prefixes = append(rep.Prefixes, xPrefix{pf.String()})
	}
	return rep, nil
}

func unassignPrivateIPAddresses(ctx context.Context, b Backend, p params) (reply, error) {
	var in model.UnassignPrivateIpAddressesInput
	var err error
	if in.ENIID, err = p.required("NetworkInterfaceId"); err != nil {
		return nil, err
	}
	if in.Addrs, err = p.addrList("PrivateIpAddress"); err != nil {
		return nil, err
	}
	if in.Prefixes, err = p.prefixList("Ipv4Prefix"); err != nil {
		return nil, err
	}
	if _, err := b.Mutate(ctx, &in); err != nil {
		return nil, err
	}
	return &returnReply{Return: true}, nil
}

func tagsInput(p params) (model.TagsInput, error) {
	var in model.TagsInput
	var err error
	if in.ResourceIDs, err = p.list("ResourceId"); err != nil {
		return in, err
	}
	in.Tags, in.ValueSet, err = p.tags("Tag")
	return in, err
}

func createTags(ctx context.Context, b Backend, p params) (reply, error) {
	in, err := tagsInput(p)
	if err != nil {
		return nil, err
	}
	in.ValueSet = nil
	ct := model.CreateTagsInput(in)
	if _, err := b.Mutate(ctx, &ct); err != nil {
		return nil, err
	}
	return &returnReply{Return: true}, nil
}

func deleteTags(ctx context.Context, b Backend, p params) (reply, error) {
	in, err := tagsInput(p)
	if err != nil {
		return nil, err
	}
	dt := model.DeleteTagsInput(in)
	if _, err := b.Mutate(ctx, &dt); err != nil {
		return nil, err
	}
	return &returnReply{Return: true}, nil
}
