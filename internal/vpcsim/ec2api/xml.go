package ec2api

import (
	"encoding/xml"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/vpcnet/vpcnet/internal/vpcsim/model"
)

// xmlns is the namespace of EC2 API version 2016-11-15 replies.
const xmlns = "http://ec2.amazonaws.com/doc/2016-11-15/"

// Meta is the part every reply shares (the root element, ACTIONResponse, is set when encoding).
type Meta struct {
	RequestID string `xml:"requestId"`
}

func (m *Meta) setMeta(requestID string) { m.RequestID = requestID }

type reply interface{ setMeta(requestID string) }

// rootElement is the root of an action's reply.
func rootElement(action string) xml.StartElement {
	return xml.StartElement{Name: xml.Name{Local: action + "Response"}, Attr: []xml.Attr{{Name: xml.Name{Local: "xmlns"}, Value: xmlns}}}
}

// returnReply is the reply of actions that answer only true.
type returnReply struct {
	Meta
	Return bool `xml:"return"`
}

type xTag struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

func tagSet(t model.Tags) []xTag {
	keys := make([]string, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	sortStrings(keys)
	var out []xTag
	for _, k := range keys {
		out = append(out, xTag{k, t[k]})
	}
	return out
}

func ts(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

type xCidrAssoc struct {
	AssociationID string `xml:"associationId"`
	CidrBlock     string `xml:"cidrBlock"`
	State         string `xml:"cidrBlockState>state"`
}

type xVpc struct {
	VpcID           string       `xml:"vpcId"`
	OwnerID         string       `xml:"ownerId"`
	State           string       `xml:"state"`
	CidrBlock       string       `xml:"cidrBlock"`
	CidrAssocs      []xCidrAssoc `xml:"cidrBlockAssociationSet>item"`
	DhcpOptionsID   string       `xml:"dhcpOptionsId"`
	InstanceTenancy string       `xml:"instanceTenancy"`
	IsDefault       bool         `xml:"isDefault"`
	Tags            []xTag       `xml:"tagSet>item,omitempty"`
}

func toVpc(v *model.VPC) xVpc {
	return xVpc{VpcID: v.ID, OwnerID: model.OwnerID, State: "available", CidrBlock: v.CIDR.String(),
		CidrAssocs:    []xCidrAssoc{{AssociationID: "vpc-cidr-assoc-" + strings.TrimPrefix(v.ID, "vpc-"), CidrBlock: v.CIDR.String(), State: "associated"}},
		DhcpOptionsID: "default", InstanceTenancy: "default", Tags: tagSet(v.Tags)}
}

type xSubnet struct {
	SubnetID                string `xml:"subnetId"`
	SubnetArn               string `xml:"subnetArn"`
	State                   string `xml:"state"`
	VpcID                   string `xml:"vpcId"`
	OwnerID                 string `xml:"ownerId"`
	CidrBlock               string `xml:"cidrBlock"`
	AvailableIPAddressCount int    `xml:"availableIpAddressCount"`
	AvailabilityZone        string `xml:"availabilityZone"`
	AvailabilityZoneID      string `xml:"availabilityZoneId"`
	DefaultForAz            bool   `xml:"defaultForAz"`
	MapPublicIPOnLaunch     bool   `xml:"mapPublicIpOnLaunch"`
	Tags                    []xTag `xml:"tagSet>item,omitempty"`
}

func azID(az string) string {
	if az == "" {
		return ""
	}
	return fmt.Sprintf("%s-az%d", az[:len(az)-1], az[len(az)-1]-'a'+1)
}

func regionOf(az string) string {
	if az == "" {
		return ""
	}
	return az[:len(az)-1]
}

func toSubnet(s *model.SubnetView) xSubnet {
	return xSubnet{SubnetID: s.ID, SubnetArn: fmt.Sprintf("arn:aws:ec2:%s:%s:subnet/%s", regionOf(s.AZ), model.OwnerID, s.ID),
		State: "available", VpcID: s.VPCID, OwnerID: model.OwnerID, CidrBlock: s.CIDR.String(), AvailableIPAddressCount: s.Available,
		AvailabilityZone: s.AZ, AvailabilityZoneID: azID(s.AZ), Tags: tagSet(s.Tags)}
}

type xGroup struct {
	GroupID   string `xml:"groupId"`
	GroupName string `xml:"groupName"`
}

func groups(ids []string) []xGroup {
	out := make([]xGroup, 0, len(ids))
	for _, id := range ids {
		out = append(out, xGroup{GroupID: id, GroupName: id})
	}
	return out
}

type xPrivateIP struct {
	PrivateIPAddress string `xml:"privateIpAddress"`
	PrivateDNSName   string `xml:"privateDnsName"`
	Primary          bool   `xml:"primary"`
}

type xPrefix struct {
	Ipv4Prefix string `xml:"ipv4Prefix"`
}

type xAttachment struct {
	AttachmentID        string `xml:"attachmentId"`
	InstanceID          string `xml:"instanceId,omitempty"`
	InstanceOwnerID     string `xml:"instanceOwnerId,omitempty"`
	DeviceIndex         int    `xml:"deviceIndex"`
	NetworkCardIndex    int    `xml:"networkCardIndex"`
	Status              string `xml:"status"`
	AttachTime          string `xml:"attachTime"`
	DeleteOnTermination bool   `xml:"deleteOnTermination"`
}

type xENI struct {
	NetworkInterfaceID string       `xml:"networkInterfaceId"`
	SubnetID           string       `xml:"subnetId"`
	VpcID              string       `xml:"vpcId"`
	AvailabilityZone   string       `xml:"availabilityZone,omitempty"`
	Description        string       `xml:"description"`
	OwnerID            string       `xml:"ownerId"`
	RequesterManaged   *bool        `xml:"requesterManaged,omitempty"`
	Status             string       `xml:"status"`
	MacAddress         string       `xml:"macAddress"`
	PrivateIPAddress   string       `xml:"privateIpAddress"`
	PrivateDNSName     string       `xml:"privateDnsName"`
	SourceDestCheck    bool         `xml:"sourceDestCheck"`
	Groups             []xGroup     `xml:"groupSet>item"`
	Attachment         *xAttachment `xml:"attachment,omitempty"`
	Tags               []xTag       `xml:"tagSet>item,omitempty"`
	PrivateIPs         []xPrivateIP `xml:"privateIpAddressesSet>item"`
	Prefixes           []xPrefix    `xml:"ipv4PrefixSet>item,omitempty"`
	InterfaceType      string       `xml:"interfaceType"`
}

func dnsName(region string, a netip.Addr) string {
	name := "ip-" + strings.ReplaceAll(a.String(), ".", "-")
	if region == "us-east-1" {
		return name + ".ec2.internal"
	}
	return name + "." + region + ".compute.internal"
}

func toENI(e *model.ENI, forInstance bool) xENI {
	region := regionOf(e.AZ)
	x := xENI{NetworkInterfaceID: e.ID, SubnetID: e.SubnetID, VpcID: e.VPCID, Description: e.Description,
		OwnerID: model.OwnerID, Status: e.Status(), MacAddress: e.MAC, PrivateIPAddress: e.PrimaryIP.String(),
		PrivateDNSName: dnsName(region, e.PrimaryIP), SourceDestCheck: true, Groups: groups(e.SecurityGroups),
		Tags: tagSet(e.Tags), InterfaceType: e.InterfaceType}
	if !forInstance {
		f := false
		x.AvailabilityZone, x.RequesterManaged = e.AZ, &f
	} else {
		x.Tags = nil
	}
	for i, a := range e.Addrs() {
		x.PrivateIPs = append(x.PrivateIPs, xPrivateIP{PrivateIPAddress: a.String(), PrivateDNSName: dnsName(region, a), Primary: i == 0})
	}
	for _, p := range e.Prefixes {
		x.Prefixes = append(x.Prefixes, xPrefix{p.String()})
	}
	if a := e.Attachment; a != nil {
		x.Attachment = &xAttachment{AttachmentID: a.ID, DeviceIndex: a.DeviceIndex, NetworkCardIndex: a.NetworkCardIndex,
			Status: a.Status, AttachTime: ts(a.Time), DeleteOnTermination: a.DeleteOnTermination}
		if !forInstance {
			x.Attachment.InstanceID, x.Attachment.InstanceOwnerID = a.InstanceID, model.OwnerID
		}
	}
	return x
}

type xState struct {
	Code int    `xml:"code"`
	Name string `xml:"name"`
}

func state(name string) xState {
	codes := map[string]int{"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopping": 64, "stopped": 80}
	return xState{Code: codes[name], Name: name}
}

type xInstance struct {
	InstanceID     string `xml:"instanceId"`
	ImageID        string `xml:"imageId"`
	State          xState `xml:"instanceState"`
	PrivateDNSName string `xml:"privateDnsName"`
	DNSName        string `xml:"dnsName"`
	AmiLaunchIndex int    `xml:"amiLaunchIndex"`
	InstanceType   string `xml:"instanceType"`
	LaunchTime     string `xml:"launchTime"`
	Placement      struct {
		AvailabilityZone string `xml:"availabilityZone"`
		Tenancy          string `xml:"tenancy"`
	} `xml:"placement"`
	SubnetID           string   `xml:"subnetId,omitempty"`
	VpcID              string   `xml:"vpcId,omitempty"`
	PrivateIPAddress   string   `xml:"privateIpAddress,omitempty"`
	SourceDestCheck    bool     `xml:"sourceDestCheck"`
	Groups             []xGroup `xml:"groupSet>item"`
	Architecture       string   `xml:"architecture"`
	RootDeviceType     string   `xml:"rootDeviceType"`
	VirtualizationType string   `xml:"virtualizationType"`
	Hypervisor         string   `xml:"hypervisor"`
	Tags               []xTag   `xml:"tagSet>item,omitempty"`
	ENIs               []xENI   `xml:"networkInterfaceSet>item"`
}

func toInstance(v *model.InstanceView) xInstance {
	x := xInstance{InstanceID: v.ID, ImageID: v.ImageID, State: state(v.State), AmiLaunchIndex: v.LaunchIndex,
		InstanceType: v.Type, LaunchTime: ts(v.LaunchTime), SourceDestCheck: true, Groups: groups(v.SecurityGroups),
		Architecture: "x86_64", RootDeviceType: "ebs", VirtualizationType: "hvm", Hypervisor: "xen", Tags: tagSet(v.Tags)}
	x.Placement.AvailabilityZone, x.Placement.Tenancy = v.AZ, "default"
	if v.State != model.InstanceTerminated {
		x.SubnetID, x.VpcID = v.SubnetID, v.VPCID
	}
	for _, e := range v.Interfaces {
		x.ENIs = append(x.ENIs, toENI(e, true))
		if e.Attachment.DeviceIndex == 0 {
			x.PrivateIPAddress = e.PrimaryIP.String()
			x.PrivateDNSName = dnsName(regionOf(v.AZ), e.PrimaryIP)
		}
	}
	return x
}

type xReservation struct {
	ReservationID string      `xml:"reservationId"`
	OwnerID       string      `xml:"ownerId"`
	Groups        []xGroup    `xml:"groupSet>item"`
	Instances     []xInstance `xml:"instancesSet>item"`
}

func toReservation(r *model.Reservation) xReservation {
	x := xReservation{ReservationID: r.ID, OwnerID: model.OwnerID, Groups: []xGroup{}}
	for _, i := range r.Instances {
		x.Instances = append(x.Instances, toInstance(i))
	}
	return x
}

type xNetworkCard struct {
	NetworkCardIndex         int    `xml:"networkCardIndex"`
	MaximumNetworkInterfaces int    `xml:"maximumNetworkInterfaces"`
	NetworkPerformance       string `xml:"networkPerformance"`
}

type xInstanceType struct {
	InstanceType      string `xml:"instanceType"`
	CurrentGeneration bool   `xml:"currentGeneration"`
	BareMetal         bool   `xml:"bareMetal"`
	Hypervisor        string `xml:"hypervisor,omitempty"`
	VCPUs             *int   `xml:"vCpuInfo>defaultVCpus,omitempty"`
	NetworkInfo       struct {
		NetworkPerformance        string         `xml:"networkPerformance"`
		MaximumNetworkInterfaces  int            `xml:"maximumNetworkInterfaces"`
		MaximumNetworkCards       int            `xml:"maximumNetworkCards"`
		DefaultNetworkCardIndex   int            `xml:"defaultNetworkCardIndex"`
		NetworkCards              []xNetworkCard `xml:"networkCards>item"`
		Ipv4AddressesPerInterface int            `xml:"ipv4AddressesPerInterface"`
		Ipv6AddressesPerInterface int            `xml:"ipv6AddressesPerInterface"`
		Ipv6Supported             bool           `xml:"ipv6Supported"`
		EnaSupport                string         `xml:"enaSupport"`
	} `xml:"networkInfo"`
}

func toInstanceType(t *model.InstanceTypeView) xInstanceType {
	x := xInstanceType{InstanceType: t.Name, CurrentGeneration: true, BareMetal: t.BareMetal, Hypervisor: t.Hypervisor}
	if t.VCPUs > 0 {
		v := t.VCPUs
		x.VCPUs = &v
	}
	ni := &x.NetworkInfo
	ni.NetworkPerformance = "Up to 10 Gigabit"
	ni.MaximumNetworkInterfaces = t.MaxENIs
	ni.MaximumNetworkCards = len(t.NetworkCards)
	ni.DefaultNetworkCardIndex = t.DefaultCard
	ni.Ipv4AddressesPerInterface = t.IPv4PerENI
	ni.Ipv6AddressesPerInterface = t.IPv4PerENI
	ni.Ipv6Supported = true
	ni.EnaSupport = "required"
	if t.Hypervisor == "xen" {
		ni.EnaSupport = "unsupported"
	}
	for _, c := range t.NetworkCards {
		ni.NetworkCards = append(ni.NetworkCards, xNetworkCard{c.Index, c.MaxInterfaces, "Up to 10 Gigabit"})
	}
	return x
}

type errorReply struct {
	XMLName   xml.Name `xml:"Response"`
	Errors    []xError `xml:"Errors>Error"`
	RequestID string   `xml:"RequestID"`
}

type xError struct {
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
