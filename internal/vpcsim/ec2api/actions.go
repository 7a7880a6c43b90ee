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

// Each action below reads as its parse, its model call and its reply; these helpers are the
// model call and the shape the replies share.

// describeAction makes a describe-style action: the ID list named idParam with the shared
// filter and paging parameters, the model's lister under the read lock, each entry in its XML
// form, and wrap to put the list and the next-page token in the action's reply. The listers
// hand back copies, so the conversion runs after the lock is released. The list is never nil:
// an empty set is still an (empty) element.
func describeAction[T, X any](idParam string, list func(*model.Model, model.DescribeInput) ([]T, string, error),
	conv func(T) X, wrap func([]X, string) reply) action {
	return func(_ context.Context, b Backend, p params) (reply, error) {
		in, err := p.describe(idParam)
		if err != nil {
			return nil, err
		}
		var items []T
		var next string
		err = b.Read(func(m *model.Model) error {
			var err error
			items, next, err = list(m, in)
			return err
		})
		if err != nil {
			return nil, err
		}
		out := make([]X, 0, len(items))
		for _, it := range items {
			out = append(out, conv(it))
		}
		return wrap(out, next), nil
	}
}

// mutate commits one change and builds the reply from the model's result, whose type (T)
// the action knows.
func mutate[T any](ctx context.Context, b Backend, mu model.Mutation, build func(T) reply) (reply, error) {
	out, err := b.Mutate(ctx, mu)
	if err != nil {
		return nil, err
	}
	return build(out.(T)), nil
}

// mutateOK commits one change whose reply is EC2's bare <return>true</return>.
func mutateOK(ctx context.Context, b Backend, mu model.Mutation) (reply, error) {
	if _, err := b.Mutate(ctx, mu); err != nil {
		return nil, err
	}
	return &returnReply{Return: true}, nil
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
	return mutate(ctx, b, &in, func(v *model.VPC) reply { return &createVpcReply{Vpc: toVpc(v)} })
}

type describeVpcsReply struct {
	Meta
	Vpcs      []xVpc `xml:"vpcSet>item"`
	NextToken string `xml:"nextToken,omitempty"`
}

var describeVpcs = describeAction("VpcId", (*model.Model).DescribeVpcs, toVpc,
	func(xs []xVpc, next string) reply { return &describeVpcsReply{Vpcs: xs, NextToken: next} })

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
	return mutate(ctx, b, &in, func(s *model.SubnetView) reply { return &createSubnetReply{Subnet: toSubnet(s)} })
}

type describeSubnetsReply struct {
	Meta
	Subnets   []xSubnet `xml:"subnetSet>item"`
	NextToken string    `xml:"nextToken,omitempty"`
}

var describeSubnets = describeAction("SubnetId", (*model.Model).DescribeSubnets, toSubnet,
	func(xs []xSubnet, next string) reply { return &describeSubnetsReply{Subnets: xs, NextToken: next} })

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
	return mutate(ctx, b, &in, func(res *model.Reservation) reply {
		r := toReservation(res)
		return &runInstancesReply{ReservationID: r.ReservationID, OwnerID: r.OwnerID, Groups: r.Groups, Instances: r.Instances}
	})
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

var describeInstances = describeAction("InstanceId", (*model.Model).DescribeInstances, toReservation,
	func(xs []xReservation, next string) reply {
		return &describeInstancesReply{Reservations: xs, NextToken: next}
	})

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
	return mutate(ctx, b, &model.TerminateInstancesInput{InstanceIDs: ids}, func(cs []model.StateChange) reply {
		rep := &terminateInstancesReply{}
		for _, c := range cs {
			rep.Instances = append(rep.Instances, xStateChange{InstanceID: c.InstanceID, CurrentState: state(c.Curr), PreviousState: state(c.Previous)})
		}
		return rep
	})
}

type describeInstanceTypesReply struct {
	Meta
	Types     []xInstanceType `xml:"instanceTypeSet>item"`
	NextToken string          `xml:"nextToken,omitempty"`
}

var describeInstanceTypes = describeAction("InstanceType", (*model.Model).DescribeInstanceTypes, toInstanceType,
	func(xs []xInstanceType, next string) reply {
		return &describeInstanceTypesReply{Types: xs, NextToken: next}
	})

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
	return mutate(ctx, b, &in, func(e *model.ENI) reply { return &createNetworkInterfaceReply{ENI: toENI(e, false)} })
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
	return mutateOK(ctx, b, &model.DeleteNetworkInterfaceInput{ENIID: id})
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
	return mutate(ctx, b, &in, func(id string) reply {
		return &attachReply{AttachmentID: id, NetworkCardIndex: in.NetworkCardIndex}
	})
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
	return mutateOK(ctx, b, &in)
}

type describeNetworkInterfacesReply struct {
	Meta
	ENIs      []xENI `xml:"networkInterfaceSet>item"`
	NextToken string `xml:"nextToken,omitempty"`
}

var describeNetworkInterfaces = describeAction("NetworkInterfaceId", (*model.Model).DescribeNetworkInterfaces,
	func(e *model.ENI) xENI { return toENI(e, false) },
	func(xs []xENI, next string) reply { return &describeNetworkInterfacesReply{ENIs: xs, NextToken: next} })

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
	return mutateOK(ctx, b, &in)
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
	return mutate(ctx, b, &in, func(a *model.Assigned) reply {
		rep := &assignReply{NetworkInterfaceID: a.ENIID}
		for _, ip := range a.Addrs {
			rep.Addrs = append(rep.Addrs, xAssignedIP{ip.String()})
		}
		for _, pf := range a.Prefixes {
			rep.Prefixes = append(rep.Prefixes, xPrefix{pf.String()})
		}
		return rep
	})
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
	return mutateOK(ctx, b, &in)
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
	return mutateOK(ctx, b, &ct)
}

func deleteTags(ctx context.Context, b Backend, p params) (reply, error) {
	in, err := tagsInput(p)
	if err != nil {
		return nil, err
	}
	dt := model.DeleteTagsInput(in)
	return mutateOK(ctx, b, &dt)
}
