package model

import (
	"net/netip"
	"time"
)

// Metadata is what the instance metadata service tells an instance about itself.
type Metadata struct {
	InstanceID   string
	InstanceType string
	ImageID      string
	AZ           string
	Region       string
	State        string
	PrivateIP    netip.Addr
	MAC          string
	LaunchTime   time.Time
	// Interfaces are the attached ENIs by device index (attaching ones are not yet visible).
	Interfaces []InterfaceMetadata
}

// InterfaceMetadata is one ENI as IMDS shows it under network/interfaces/macs/MAC/.
type InterfaceMetadata struct {
	MAC         string
	ENIID       string
	DeviceIndex int
	// NetworkCardIndex is the network card the ENI is attached on (IMDS network-card).
	NetworkCardIndex int
	Addrs            []netip.Addr // primary first
	Prefixes         []netip.Prefix
	SubnetID         string
	SubnetCIDR       netip.Prefix
	VPCID            string
	VPCCIDRs         []netip.Prefix
	SecurityGroups   []string
}

// Metadata returns the instance's metadata, or InvalidInstanceID.NotFound.
func (m *Model) Metadata(instanceID string) (*Metadata, error) {
	inst, err := m.instance(instanceID)
	if err != nil {
		return nil, err
	}
	md := &Metadata{InstanceID: inst.ID, InstanceType: inst.Type, ImageID: inst.ImageID, AZ: inst.AZ,
		Region: m.st.Region, State: inst.State, LaunchTime: inst.LaunchTime}
	view := m.instanceView(inst)
	for _, e := range view.Interfaces {
		if e.Attachment.Status == AttachAttaching {
			continue
		}
		im := InterfaceMetadata{MAC: e.MAC, ENIID: e.ID, DeviceIndex: e.Attachment.DeviceIndex,
			NetworkCardIndex: e.Attachment.NetworkCardIndex, Addrs: e.Addrs(),
			Prefixes: e.Prefixes, SubnetID: e.SubnetID, VPCID: e.VPCID, SecurityGroups: e.SecurityGroups}
		if s := m.st.Subnets[e.SubnetID]; s != nil {
			im.SubnetCIDR = s.CIDR
		}
		if v := m.st.VPCs[e.VPCID]; v != nil {
			im.VPCCIDRs = []netip.Prefix{v.CIDR}
		}
		if im.DeviceIndex == 0 && e.Attachment.NetworkCardIndex == 0 {
			md.PrivateIP, md.MAC = e.PrimaryIP, e.MAC
		}
		md.Interfaces = append(md.Interfaces, im)
	}
	return md, nil
}

// InstanceByAddr returns the instance holding the address (or a /28 prefix containing it) on
// one of its attached ENIs.
func (m *Model) InstanceByAddr(a netip.Addr) (string, bool) {
	id, ok := m.ipOwner[a]
	if !ok && a.Is4() {
		// A pod address inside a delegated /28.
		p, _ := a.Prefix(28)
		id, ok = m.prefixOwner[p]
	}
	if !ok {
		return "", false
	}
	e := m.st.ENIs[id]
	if e.Attachment == nil {
		return "", false
	}
	return e.Attachment.InstanceID, true
}

// Instances lists every instance ID, sorted.
func (m *Model) Instances() []string { return sortedKeys(m.st.Instances) }

// AttachedEvents describes the current attachments as eni-attached events, for a data plane
// that starts following a restored state.
func (m *Model) AttachedEvents() []Event {
	var ev []Event
	for _, id := range sortedKeys(m.st.ENIs) {
		e := m.st.ENIs[id]
		if a := e.Attachment; a != nil && a.Status != AttachAttaching {
			ev = append(ev, m.attachEvent(EventENIAttached, e, a.InstanceID, a.DeviceIndex))
		}
	}
	return ev
}
