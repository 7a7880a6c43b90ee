package model

import "net/netip"

// Event kinds, in the words of docs/CONTRACTS.md.
const (
	EventENIAttached       = "eni-attached"
	EventENIDetached       = "eni-detached"
	EventAddressAssigned   = "address-assigned"
	EventAddressUnassigned = "address-unassigned"
	EventPrefixAssigned    = "prefix-assigned"
	EventPrefixUnassigned  = "prefix-unassigned"
)

// Event tells a data plane what a committed change did to attachments and addresses.
type Event struct {
	Kind        string
	InstanceID  string // "" when the ENI is not attached
	ENIID       string
	MAC         string
	DeviceIndex int
	Subnet      netip.Prefix
	Addrs       []netip.Addr   // eni-attached/detached: primary first
	Prefixes    []netip.Prefix // eni-attached/detached
	Addr        netip.Addr     // address-(un)assigned
	Prefix      netip.Prefix   // prefix-(un)assigned
}

func (m *Model) attachEvent(kind string, e *ENI, instanceID string, device int) Event {
	return Event{Kind: kind, InstanceID: instanceID, ENIID: e.ID, MAC: e.MAC, DeviceIndex: device,
		Subnet: m.st.Subnets[e.SubnetID].CIDR, Addrs: e.Addrs(), Prefixes: append([]netip.Prefix(nil), e.Prefixes...)}
}

// attachedInstance is the instance the ENI belongs to for events: "" unless the attachment is complete.
func attachedInstance(e *ENI) string {
	if e.Attachment == nil || e.Attachment.Status == AttachAttaching {
		return ""
	}
	return e.Attachment.InstanceID
}

func addrEvent(kind string, e *ENI, a netip.Addr) Event {
	return Event{Kind: kind, ENIID: e.ID, MAC: e.MAC, InstanceID: attachedInstance(e), Addr: a}
}

func prefixEvent(kind string, e *ENI, p netip.Prefix) Event {
	return Event{Kind: kind, ENIID: e.ID, MAC: e.MAC, InstanceID: attachedInstance(e), Prefix: p}
}
