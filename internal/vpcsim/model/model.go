// Package model is vpcsim's pure model of an EC2 VPC: VPCs, subnets, instances, network
// interfaces (ENIs), private IPs, /28 prefixes, attachments and tags, with the rules and error
// codes of EC2. It does no I/O and reads no clock: every mutation takes the time as input and
// is deterministic, so a journal of mutations replays to the same state.
package model

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/vpcnet/vpcnet/internal/catalog"
)

// OwnerID is the account every resource belongs to.
const OwnerID = "111122223333"

// Status values of instances, ENIs and attachments, as EC2 names them.
const (
	InstanceRunning    = "running"
	InstanceTerminated = "terminated"

	ENIAvailable = "available"
	ENIInUse     = "in-use"

	AttachAttaching = "attaching"
	AttachAttached  = "attached"
	AttachDetaching = "detaching"
)

// Tags maps a tag key to its value.
type Tags map[string]string

// VPC is one virtual private cloud.
type VPC struct {
	ID      string
	CIDR    netip.Prefix
	Tags    Tags `json:",omitempty"`
	Created time.Time
}

// Subnet is a range of a VPC in one availability zone.
type Subnet struct {
	ID      string
	VPCID   string
	AZ      string
	CIDR    netip.Prefix
	Tags    Tags `json:",omitempty"`
	Created time.Time
}

// Limits are the networking limits of an instance, copied from the catalog at launch so that a
// later catalog change does not alter running instances.
type Limits struct {
	MaxENIs    int
	IPv4PerENI int
	Nitro      bool
	Hypervisor string
	// Cards maps a network card index to the interfaces it holds.
	Cards map[int]int
}

// Instance is one EC2 instance.
type Instance struct {
	ID             string
	Type           string
	ImageID        string
	ReservationID  string
	SubnetID       string
	VPCID          string
	AZ             string
	State          string
	LaunchTime     time.Time
	LaunchIndex    int
	Limits         Limits
	SecurityGroups []string `json:",omitempty"`
	Tags           Tags     `json:",omitempty"`
	// ENIs lists the interfaces attached (or attaching, or detaching) to the instance.
	ENIs []string `json:",omitempty"`
}

// Attachment ties an ENI to an instance at a device index.
type Attachment struct {
	ID                  string
	InstanceID          string
	DeviceIndex         int
	NetworkCardIndex    int
	Status              string
	Time                time.Time
	DeleteOnTermination bool
}

// ENI is one elastic network interface.
type ENI struct {
	ID             string
	SubnetID       string
	VPCID          string
	AZ             string
	MAC            string
	Description    string
	SecurityGroups []string `json:",omitempty"`
	PrimaryIP      netip.Addr
	// SecondaryIPs are in assignment order.
	SecondaryIPs []netip.Addr   `json:",omitempty"`
	Prefixes     []netip.Prefix `json:",omitempty"`
	Attachment   *Attachment    `json:",omitempty"`
	Tags         Tags           `json:",omitempty"`
	Created      time.Time
	// InterfaceType is "interface" for ENIs made by CreateNetworkInterface and RunInstances.
	InterfaceType string
}

// Status is the ENI's status as DescribeNetworkInterfaces shows it.
func (e *ENI) Status() string {
	if e.Attachment == nil {
		return ENIAvailable
	}
	return ENIInUse
}

// Slots is the number of IPv4 slots the ENI uses: its addresses, primary included, plus one a prefix.
func (e *ENI) Slots() int { return 1 + len(e.SecondaryIPs) + len(e.Prefixes) }

// Addrs returns the ENI's private addresses, primary first.
func (e *ENI) Addrs() []netip.Addr {
	return append([]netip.Addr{e.PrimaryIP}, e.SecondaryIPs...)
}

// State is everything the model holds; it is what a snapshot stores.
type State struct {
	Region    string
	Seed      uint64
	Counter   uint64
	VPCs      map[string]*VPC
	Subnets   map[string]*Subnet
	Instances map[string]*Instance
	ENIs      map[string]*ENI
}

// Model is the emulated VPC. It is not safe for concurrent use: callers hold one lock around it.
type Model struct {
	st  State
	cat *catalog.Catalog
	// indexes rebuilt from st
	used        map[string]*addrSet // subnet ID -> used offsets
	ipOwner     map[netip.Addr]string
	prefixOwner map[netip.Prefix]string
	// eniOrder caches the sorted ENI IDs; nil when ENIs were added or removed since.
	eniOrder []string
}

// New returns an empty model for the region. seed varies the generated IDs and MACs.
func New(region string, cat *catalog.Catalog, seed int64) *Model {
	if cat == nil {
		cat = catalog.Builtin()
	}
	m := &Model{cat: cat}
	m.st = State{Region: region, Seed: uint64(seed), VPCs: map[string]*VPC{}, Subnets: map[string]*Subnet{},
		Instances: map[string]*Instance{}, ENIs: map[string]*ENI{}}
	m.reindex()
	return m
}

// Region is the model's region.
func (m *Model) Region() string { return m.st.Region }

// Catalog is the instance-type catalog the model launches from.
func (m *Model) Catalog() *catalog.Catalog { return m.cat }

// AZs lists the availability zones of the region.
func (m *Model) AZs() []string {
	out := make([]string, 0, 6)
	for _, c := range "abcdef" {
		out = append(out, m.st.Region+string(c))
	}
	return out
}

func (m *Model) validAZ(az string) bool {
	for _, a := range m.AZs() {
		if a == az {
			return true
		}
	}
	return false
}

// reindex rebuilds the address indexes from the state.
func (m *Model) reindex() {
	m.eniOrder = nil
	m.used = make(map[string]*addrSet, len(m.st.Subnets))
	m.ipOwner = map[netip.Addr]string{}
	m.prefixOwner = map[netip.Prefix]string{}
	for id, s := range m.st.Subnets {
		m.used[id] = newAddrSet(s.CIDR)
	}
	for id, e := range m.st.ENIs {
		set := m.used[e.SubnetID]
		for _, a := range e.Addrs() {
			if set != nil {
				set.mark(a)
			}
			m.ipOwner[a] = id
		}
		for _, p := range e.Prefixes {
			if set != nil {
				set.markPrefix(p)
			}
			m.prefixOwner[p] = id
		}
	}
}

var idPrefix = map[string]string{"vpc": "vpc-", "subnet": "subnet-", "instance": "i-", "eni": "eni-",
	"attachment": "eni-attach-", "reservation": "r-"}

// mix is splitmix64's finaliser: a bijection on uint64, so distinct counters give distinct IDs.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// newID returns the next ID of a kind in EC2's long format: prefix and 17 hex digits.
func (m *Model) newID(kind string) string {
	m.st.Counter++
	return fmt.Sprintf("%s0%016x", idPrefix[kind], mix(m.st.Counter^(m.st.Seed<<32)))
}

// newMAC returns a locally administered unicast MAC unique to the counter value.
func (m *Model) newMAC() string {
	m.st.Counter++
	// An odd multiplier is a bijection modulo 2^40, so MACs never repeat within 2^40 IDs.
	v := (m.st.Counter*0x9E3779B97F + m.st.Seed) & (1<<40 - 1)
	return fmt.Sprintf("02:%02x:%02x:%02x:%02x:%02x", byte(v>>32), byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// MaxSecurityGroupsPerENI is EC2's default quota of security groups per network interface
// (raisable to 16 on AWS; fixed here).
const MaxSecurityGroupsPerENI = 5

// MaxDescriptionLength bounds an ENI's description, as EC2's.
const MaxDescriptionLength = 255

// checkGroups checks security group IDs for an ENI: their form and EC2's per-interface quota.
func checkGroups(groups []string) *Error {
	if len(groups) > MaxSecurityGroupsPerENI {
		return Errf(CodeSecurityGroupsPerENI, "You have exceeded the maximum number of security groups allowed per network interface (%d of %d).", len(groups), MaxSecurityGroupsPerENI)
	}
	for _, g := range groups {
		if len(g) < 4 || g[:3] != "sg-" {
			return Errf(CodeGroupMalformed, "Invalid id: \"%s\" (expecting \"sg-...\")", g)
		}
	}
	return nil
}

func checkDescription(d string) *Error {
	if len(d) > MaxDescriptionLength {
		return Errf(CodeInvalidParameterValue, "Value for parameter Description is too long: %d characters, at most %d are allowed.", len(d), MaxDescriptionLength)
	}
	return nil
}

// DefaultSecurityGroup is the group an ENI gets when its creator names none: the VPC's default.
func DefaultSecurityGroup(vpcID string) string { return "sg-" + strings.TrimPrefix(vpcID, "vpc-") }

func groupsOr(groups []string, vpcID string) []string {
	if len(groups) == 0 {
		return []string{DefaultSecurityGroup(vpcID)}
	}
	return append([]string(nil), groups...)
}

func checkID(kind, id string) *Error {
	if !strings.HasPrefix(id, idPrefix[kind]) || len(id) <= len(idPrefix[kind]) {
		return malformed(kind, id)
	}
	return nil
}

func (m *Model) eni(id string) (*ENI, *Error) {
	if err := checkID("eni", id); err != nil {
		return nil, err
	}
	e, ok := m.st.ENIs[id]
	if !ok {
		return nil, notFound("eni", id)
	}
	return e, nil
}

func (m *Model) subnet(id string) (*Subnet, *Error) {
	if err := checkID("subnet", id); err != nil {
		return nil, err
	}
	s, ok := m.st.Subnets[id]
	if !ok {
		return nil, notFound("subnet", id)
	}
	return s, nil
}

func (m *Model) instance(id string) (*Instance, *Error) {
	if err := checkID("instance", id); err != nil {
		return nil, err
	}
	i, ok := m.st.Instances[id]
	if !ok {
		return nil, notFound("instance", id)
	}
	return i, nil
}

func (m *Model) vpc(id string) (*VPC, *Error) {
	if err := checkID("vpc", id); err != nil {
		return nil, err
	}
	v, ok := m.st.VPCs[id]
	if !ok {
		return nil, notFound("vpc", id)
	}
	return v, nil
}

func sortedKeys[V any](mp map[string]V) []string {
	keys := make([]string, 0, len(mp))
	for k := range mp {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (t Tags) clone() Tags {
	if len(t) == 0 {
		return nil
	}
	out := make(Tags, len(t))
	for k, v := range t {
		out[k] = v
	}
	return out
}

func (e *ENI) clone() *ENI {
	c := *e
	c.SecurityGroups = append([]string(nil), e.SecurityGroups...)
	c.SecondaryIPs = append([]netip.Addr(nil), e.SecondaryIPs...)
	c.Prefixes = append([]netip.Prefix(nil), e.Prefixes...)
	c.Tags = e.Tags.clone()
	if e.Attachment != nil {
		a := *e.Attachment
		c.Attachment = &a
	}
	return &c
}

func (i *Instance) clone() *Instance {
	c := *i
	c.SecurityGroups = append([]string(nil), i.SecurityGroups...)
	c.ENIs = append([]string(nil), i.ENIs...)
	c.Tags = i.Tags.clone()
	return &c
}

func (s *Subnet) clone() *Subnet { c := *s; c.Tags = s.Tags.clone(); return &c }
func (v *VPC) clone() *VPC       { c := *v; c.Tags = v.Tags.clone(); return &c }
