package model

import (
	"net/netip"
	"strings"
	"time"
)

// TagSpec is one TagSpecification: tags for the resources of one type that a call creates.
type TagSpec struct {
	ResourceType string
	Tags         []Tag
}

// Tag is one key/value pair.
type Tag struct{ Key, Value string }

func tagsFor(specs []TagSpec, resourceType string) Tags {
	var t Tags
	for _, s := range specs {
		if s.ResourceType != resourceType {
			continue
		}
		for _, tg := range s.Tags {
			if t == nil {
				t = Tags{}
			}
			t[tg.Key] = tg.Value
		}
	}
	return t
}

func checkTagSpecs(specs []TagSpec, allowed ...string) *Error {
	for _, s := range specs {
		ok := false
		for _, a := range allowed {
			ok = ok || s.ResourceType == a
		}
		if !ok {
			return Errf(CodeInvalidParameterValue, "'%s' is not a valid taggable resource type for this operation.", s.ResourceType)
		}
		if err := checkTags(s.Tags, 0); err != nil {
			return err
		}
	}
	return nil
}

// reservedTagPrefix starts the tag keys AWS keeps for itself; callers may neither set nor
// delete them.
const reservedTagPrefix = "aws:"

func checkReservedKey(key string) *Error {
	if len(key) >= len(reservedTagPrefix) && strings.EqualFold(key[:len(reservedTagPrefix)], reservedTagPrefix) {
		return Errf(CodeInvalidParameterValue, "Value ( %s ) for parameter key is invalid. Tag keys starting with 'aws:' are reserved for internal use", key)
	}
	return nil
}

// maxTags is EC2's limit of tags per resource.
const maxTags = 50

func checkTags(tags []Tag, existing int) *Error {
	if existing+len(tags) > maxTags {
		return Errf(CodeTagLimitExceeded, "The maximum number of Tags for a resource has been reached.")
	}
	for _, t := range tags {
		if t.Key == "" || len(t.Key) > 128 {
			return Errf(CodeInvalidParameterValue, "Tag key must be between 1 and 128 characters long")
		}
		if err := checkReservedKey(t.Key); err != nil {
			return err
		}
		if len(t.Value) > 256 {
			return Errf(CodeInvalidParameterValue, "Tag value cannot be longer than 256 characters")
		}
	}
	return nil
}

// CreateVpcInput creates a VPC with an IPv4 CIDR of /16 to /28.
type CreateVpcInput struct {
	CIDR     netip.Prefix
	TagSpecs []TagSpec `json:",omitempty"`
}

// CreateVpc makes a VPC.
func (m *Model) CreateVpc(now time.Time, in CreateVpcInput) (*VPC, error) {
	if !in.CIDR.IsValid() {
		return nil, Missing("CidrBlock")
	}
	if !in.CIDR.Addr().Is4() || in.CIDR.Bits() < 16 || in.CIDR.Bits() > 28 {
		return nil, Errf(CodeVPCRange, "The CIDR '%s' is invalid.", in.CIDR)
	}
	if in.CIDR.Masked() != in.CIDR {
		return nil, Errf(CodeInvalidParameterValue, "Value (%s) for parameter cidrBlock is invalid. This is not a valid CIDR block.", in.CIDR)
	}
	if err := checkTagSpecs(in.TagSpecs, "vpc"); err != nil {
		return nil, err
	}
	v := &VPC{ID: m.newID("vpc"), CIDR: in.CIDR, Tags: tagsFor(in.TagSpecs, "vpc"), Created: now}
	m.st.VPCs[v.ID] = v
	return v.clone(), nil
}

// CreateSubnetInput creates a subnet inside a VPC.
type CreateSubnetInput struct {
	VPCID    string
	CIDR     netip.Prefix
	AZ       string    `json:",omitempty"`
	TagSpecs []TagSpec `json:",omitempty"`
}

// SubnetView is a subnet with its free address count.
type SubnetView struct {
	Subnet
	Available int
}

// CreateSubnet makes a subnet: /16 to /28, inside its VPC, overlapping no other subnet.
func (m *Model) CreateSubnet(now time.Time, in CreateSubnetInput) (*SubnetView, error) {
	if in.VPCID == "" {
		return nil, Missing("VpcId")
	}
	if !in.CIDR.IsValid() {
		return nil, Missing("CidrBlock")
	}
	v, err := m.vpc(in.VPCID)
	if err != nil {
		return nil, err
	}
	if in.CIDR.Masked() != in.CIDR {
		return nil, Errf(CodeInvalidParameterValue, "Value (%s) for parameter cidrBlock is invalid. This is not a valid CIDR block.", in.CIDR)
	}
	if !in.CIDR.Addr().Is4() || in.CIDR.Bits() < 16 || in.CIDR.Bits() > 28 ||
		!v.CIDR.Contains(in.CIDR.Addr()) || in.CIDR.Bits() < v.CIDR.Bits() {
		return nil, Errf(CodeSubnetRange, "The CIDR '%s' is invalid.", in.CIDR)
	}
	for _, id := range sortedKeys(m.st.Subnets) {
		s := m.st.Subnets[id]
		if s.VPCID == v.ID && s.CIDR.Overlaps(in.CIDR) {
			return nil, Errf(CodeSubnetConflict, "The CIDR '%s' conflicts with another subnet", in.CIDR)
		}
	}
	az := in.AZ
	if az == "" {
		az = m.st.Region + "a"
	}
	if !m.validAZ(az) {
		return nil, Errf(CodeInvalidParameterValue, "Value (%s) for parameter availabilityZone is invalid. Subnets can currently only be created in the following availability zones: %s.", az, joinComma(m.AZs()))
	}
	if err := checkTagSpecs(in.TagSpecs, "subnet"); err != nil {
		return nil, err
	}
	s := &Subnet{ID: m.newID("subnet"), VPCID: v.ID, AZ: az, CIDR: in.CIDR, Tags: tagsFor(in.TagSpecs, "subnet"), Created: now}
	m.st.Subnets[s.ID] = s
	m.used[s.ID] = newAddrSet(s.CIDR)
	return m.subnetView(s), nil
}

func (m *Model) subnetView(s *Subnet) *SubnetView {
	return &SubnetView{Subnet: *s.clone(), Available: m.used[s.ID].available()}
}

func joinComma(xs []string) string {
	out := ""
	for i, x := range xs {
		if i > 0 {
			out += ", "
		}
		out += x
	}
	return out
}
