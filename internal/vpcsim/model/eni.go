package model

import (
	"net/netip"
	"slices"
	"time"
)

// CreateNetworkInterfaceInput creates an ENI in a subnet. PrimaryIP is optional; Addrs asks for
// secondary addresses or prefixes.
type CreateNetworkInterfaceInput struct {
	SubnetID       string
	Description    string     `json:",omitempty"`
	SecurityGroups []string   `json:",omitempty"`
	PrimaryIP      netip.Addr `json:",omitempty"`
	Addrs          AddrRequest
	TagSpecs       []TagSpec `json:",omitempty"`
}

// maxIPv4PerENI is the limit for an unattached ENI: the largest in the catalog.
func (m *Model) maxIPv4PerENI() int {
	limit := 0
	for _, n := range m.cat.Names() {
		t, _ := m.cat.Lookup(n)
		limit = max(limit, t.IPv4PerENI)
	}
	return max(limit, 1)
}

// CreateNetworkInterface makes an available ENI with one primary private IP.
func (m *Model) CreateNetworkInterface(now time.Time, in CreateNetworkInterfaceInput) (*ENI, []Event, error) {
	if in.SubnetID == "" {
		return nil, nil, Missing("SubnetId")
	}
	s, err := m.subnet(in.SubnetID)
	if err != nil {
		return nil, nil, err
	}
	if err := checkTagSpecs(in.TagSpecs, "network-interface"); err != nil {
		return nil, nil, err
	}
	if err := checkDescription(in.Description); err != nil {
		return nil, nil, err
	}
	if err := checkGroups(in.SecurityGroups); err != nil {
		return nil, nil, err
	}
	e, ev, err := m.newENI(now, s, in.PrimaryIP, in.Addrs, m.maxIPv4PerENI())
	if err != nil {
		return nil, nil, err
	}
	e.Description = in.Description
	e.SecurityGroups = groupsOr(in.SecurityGroups, e.VPCID)
	e.Tags = tagsFor(in.TagSpecs, "network-interface")
	return e.clone(), ev, nil
}

// newENI validates and then creates an ENI in the subnet; on error nothing has changed.
func (m *Model) newENI(now time.Time, s *Subnet, primary netip.Addr, r AddrRequest, limit int) (*ENI, []Event, *Error) {
	set := m.used[s.ID]
	if primary.IsValid() {
		if err := m.checkExplicit(s, set, primary); err != nil {
			return nil, nil, err
		}
		if set.taken(primary) {
			return nil, nil, Errf(CodeIPInUse, "Address %s is in use.", primary)
		}
	} else {
		free, ok := set.lowestFree(1)
		if !ok {
			return nil, nil, insufficientAddrs(s, set)
		}
		primary = free[0]
	}
	p, err := m.planAddrs(s, "", 1, limit, r, []netip.Addr{primary})
	if err != nil {
		return nil, nil, err
	}
	if len(p.moves) > 0 {
		return nil, nil, Errf(CodeIPInUse, "Address %s is in use.", p.addrs[0])
	}
	e := &ENI{ID: m.newID("eni"), SubnetID: s.ID, VPCID: s.VPCID, AZ: s.AZ, MAC: m.newMAC(),
		PrimaryIP: primary, Created: now, InterfaceType: "interface"}
	set.mark(primary)
	m.ipOwner[primary] = e.ID
	m.st.ENIs[e.ID] = e
	m.eniOrder = nil
	return e, m.apply(e, p), nil
}

// DeleteNetworkInterface deletes an available ENI.
func (m *Model) DeleteNetworkInterface(id string) ([]Event, error) {
	if id == "" {
		return nil, Missing("NetworkInterfaceId")
	}
	e, err := m.eni(id)
	if err != nil {
		return nil, err
	}
	if e.Attachment != nil {
		return nil, Errf(CodeInvalidParameterValue, "Network interface '%s' is currently in use.", id)
	}
	ev := m.release(e)
	delete(m.st.ENIs, id)
	m.eniOrder = nil
	return ev, nil
}

// AttachNetworkInterfaceInput attaches an available ENI to an instance at a device index.
// Pending leaves the attachment "attaching" until CompleteAttachment.
type AttachNetworkInterfaceInput struct {
	ENIID            string
	InstanceID       string
	DeviceIndex      *int `json:",omitempty"`
	NetworkCardIndex int  `json:",omitempty"`
	Pending          bool `json:",omitempty"`
}

// AttachNetworkInterface attaches and returns the attachment ID.
func (m *Model) AttachNetworkInterface(now time.Time, in AttachNetworkInterfaceInput) (string, []Event, error) {
	switch {
	case in.ENIID == "":
		return "", nil, Missing("NetworkInterfaceId")
	case in.InstanceID == "":
		return "", nil, Missing("InstanceId")
	case in.DeviceIndex == nil:
		return "", nil, Missing("DeviceIndex")
	}
	e, err := m.eni(in.ENIID)
	if err != nil {
		return "", nil, err
	}
	inst, err := m.instance(in.InstanceID)
	if err != nil {
		return "", nil, err
	}
	dev := *in.DeviceIndex
	if dev < 0 || dev > 127 {
		return "", nil, InvalidValue("DeviceIndex", itoa(dev))
	}
	if inst.State != InstanceRunning {
		return "", nil, Errf(CodeIncorrectInstanceState, "The instance '%s' is not in a valid state for this operation.", inst.ID)
	}
	if e.Attachment != nil {
		return "", nil, Errf(CodeENIInUse, "Interface: [%s] in use.", e.ID)
	}
	cardMax, ok := inst.Limits.Cards[in.NetworkCardIndex]
	if !ok {
		return "", nil, Errf(CodeInvalidParameterValue, "Invalid value '%d' for NetworkCardIndex. Instance type %s has no network card %d.", in.NetworkCardIndex, inst.Type, in.NetworkCardIndex)
	}
	if e.AZ != inst.AZ || e.VPCID != inst.VPCID {
		return "", nil, Combination("You may not attach a network interface to an instance if they are not in the same availability zone and VPC (%s in %s, %s in %s).", e.ID, e.AZ, inst.ID, inst.AZ)
	}
	onCard := 0
	for _, id := range inst.ENIs {
		a := m.st.ENIs[id].Attachment
		if a.DeviceIndex == dev && a.NetworkCardIndex == in.NetworkCardIndex {
			return "", nil, Errf(CodeInvalidParameterValue, "Instance '%s' already has an interface attached at device index '%d'.", inst.ID, dev)
		}
		if a.NetworkCardIndex == in.NetworkCardIndex {
			onCard++
		}
	}
	if onCard+1 > cardMax {
		return "", nil, Errf(CodeAttachmentLimitExceeded, "Interface count %d exceeds the limit for %s", onCard+1, inst.Type)
	}
	if e.Slots() > inst.Limits.IPv4PerENI {
		return "", nil, Errf(CodePrivateIPLimitExceeded, "Number of private addresses (%d) of %s exceeds the limit of %d for %s.", e.Slots(), e.ID, inst.Limits.IPv4PerENI, inst.Type)
	}
	if len(e.Prefixes) > 0 && !inst.Limits.Nitro {
		return "", nil, Combination("Instance type %s does not support IPv4 prefixes (not a Nitro-based type).", inst.Type)
	}
	status := AttachAttached
	if in.Pending {
		status = AttachAttaching
	}
	e.Attachment = &Attachment{ID: m.newID("attachment"), InstanceID: inst.ID, DeviceIndex: dev,
		NetworkCardIndex: in.NetworkCardIndex, Status: status, Time: now}
	inst.ENIs = append(inst.ENIs, e.ID)
	var ev []Event
	if !in.Pending {
		ev = []Event{m.attachEvent(EventENIAttached, e, inst.ID, dev)}
	}
	return e.Attachment.ID, ev, nil
}

func (m *Model) byAttachment(id string) (*ENI, *Error) {
	if err := checkID("attachment", id); err != nil {
		return nil, err
	}
	for _, e := range m.st.ENIs {
		if a := e.Attachment; a != nil && a.ID == id {
			return e, nil
		}
	}
	return nil, notFound("attachment", id)
}

// CompleteAttachmentInput moves an attachment from "attaching" to "attached".
type CompleteAttachmentInput struct{ AttachmentID string }

// CompleteAttachment finishes a pending attach; it is a no-op when the attachment is gone or done.
func (m *Model) CompleteAttachment(in CompleteAttachmentInput) ([]Event, error) {
	e, err := m.byAttachment(in.AttachmentID)
	if err != nil || e.Attachment.Status != AttachAttaching {
		return nil, nil
	}
	e.Attachment.Status = AttachAttached
	return []Event{m.attachEvent(EventENIAttached, e, e.Attachment.InstanceID, e.Attachment.DeviceIndex)}, nil
}

// DetachNetworkInterfaceInput detaches by attachment ID. Pending leaves it "detaching" until
// CompleteDetachment.
type DetachNetworkInterfaceInput struct {
	AttachmentID string
	Force        bool `json:",omitempty"`
	Pending      bool `json:",omitempty"`
}

// DetachNetworkInterface detaches a secondary ENI.
func (m *Model) DetachNetworkInterface(in DetachNetworkInterfaceInput) ([]Event, error) {
	if in.AttachmentID == "" {
		return nil, Missing("AttachmentId")
	}
	e, err := m.byAttachment(in.AttachmentID)
	if err != nil {
		return nil, err
	}
	if e.Attachment.DeviceIndex == 0 && e.Attachment.NetworkCardIndex == 0 {
		return nil, Errf(CodeOperationNotPermitted, "The network interface at device index 0 cannot be detached.")
	}
	if e.Attachment.Status == AttachDetaching {
		return nil, Errf(CodeIncorrectInstanceState, "The attachment '%s' is already detaching.", in.AttachmentID)
	}
	if in.Pending {
		e.Attachment.Status = AttachDetaching
		return nil, nil
	}
	return m.detach(e), nil
}

// CompleteDetachmentInput finishes a pending detach.
type CompleteDetachmentInput struct{ AttachmentID string }

// CompleteDetachment finishes a pending detach; a no-op when already done.
func (m *Model) CompleteDetachment(in CompleteDetachmentInput) ([]Event, error) {
	e, err := m.byAttachment(in.AttachmentID)
	if err != nil || e.Attachment.Status != AttachDetaching {
		return nil, nil
	}
	return m.detach(e), nil
}

func (m *Model) detach(e *ENI) []Event {
	a := e.Attachment
	var ev []Event
	if a.Status != AttachAttaching {
		ev = append(ev, m.attachEvent(EventENIDetached, e, a.InstanceID, a.DeviceIndex))
	}
	if inst := m.st.Instances[a.InstanceID]; inst != nil {
		inst.ENIs = slices.DeleteFunc(inst.ENIs, func(id string) bool { return id == e.ID })
	}
	e.Attachment = nil
	return ev
}

// ModifyNetworkInterfaceAttributeInput changes one attribute of an ENI.
type ModifyNetworkInterfaceAttributeInput struct {
	ENIID               string
	Description         *string  `json:",omitempty"`
	SecurityGroups      []string `json:",omitempty"`
	AttachmentID        string   `json:",omitempty"`
	DeleteOnTermination *bool    `json:",omitempty"`
	SourceDestCheck     *bool    `json:",omitempty"`
}

// ModifyNetworkInterfaceAttribute sets the description, the security groups or the attachment's
// DeleteOnTermination.
func (m *Model) ModifyNetworkInterfaceAttribute(in ModifyNetworkInterfaceAttributeInput) error {
	if in.ENIID == "" {
		return Missing("NetworkInterfaceId")
	}
	e, err := m.eni(in.ENIID)
	if err != nil {
		return err
	}
	n := 0
	for _, set := range []bool{in.Description != nil, len(in.SecurityGroups) > 0, in.DeleteOnTermination != nil || in.AttachmentID != "", in.SourceDestCheck != nil} {
		if set {
			n++
		}
	}
	if n == 0 {
		return Missing("Attribute")
	}
	if n > 1 {
		return Combination("Fields for multiple attribute types specified: only one attribute can be modified at a time.")
	}
	switch {
	case in.Description != nil:
		if err := checkDescription(*in.Description); err != nil {
			return err
		}
		e.Description = *in.Description
	case len(in.SecurityGroups) > 0:
		if err := checkGroups(in.SecurityGroups); err != nil {
			return err
		}
		e.SecurityGroups = append([]string(nil), in.SecurityGroups...)
	case in.AttachmentID != "" || in.DeleteOnTermination != nil:
		if in.AttachmentID == "" {
			return Missing("Attachment.AttachmentId")
		}
		if in.DeleteOnTermination == nil {
			return Missing("Attachment.DeleteOnTermination")
		}
		if err := checkID("attachment", in.AttachmentID); err != nil {
			return err
		}
		if e.Attachment == nil || e.Attachment.ID != in.AttachmentID {
			// EC2 answers the same for an unknown ID and for another ENI's attachment.
			return notFound("attachment", in.AttachmentID)
		}
		e.Attachment.DeleteOnTermination = *in.DeleteOnTermination
	case in.SourceDestCheck != nil:
		// Accepted; vpcsim's fabric always checks source addresses.
	}
	return nil
}

// AssignPrivateIpAddressesInput assigns secondary addresses or prefixes to an ENI.
type AssignPrivateIpAddressesInput struct {
	ENIID string
	Addrs AddrRequest
}

// Assigned is what an assign call handed out.
type Assigned struct {
	ENIID    string
	Addrs    []netip.Addr
	Prefixes []netip.Prefix
}

func (m *Model) limitFor(e *ENI) (int, *Instance) {
	if e.Attachment != nil {
		if inst := m.st.Instances[e.Attachment.InstanceID]; inst != nil {
			return inst.Limits.IPv4PerENI, inst
		}
	}
	return m.maxIPv4PerENI(), nil
}

// AssignPrivateIpAddresses assigns within the ENI's IPv4 slot limit (its instance type's, or the
// catalog's largest when unattached).
func (m *Model) AssignPrivateIpAddresses(in AssignPrivateIpAddressesInput) (*Assigned, []Event, error) {
	if in.ENIID == "" {
		return nil, nil, Missing("NetworkInterfaceId")
	}
	e, err := m.eni(in.ENIID)
	if err != nil {
		return nil, nil, err
	}
	if in.Addrs.empty() {
		if err := in.Addrs.check(); err != nil {
			return nil, nil, err
		}
		return nil, nil, Errf(CodeMissingParameter, "The request must contain the parameter SecondaryPrivateIpAddressCount, PrivateIpAddress, Ipv4PrefixCount or Ipv4Prefix")
	}
	limit, inst := m.limitFor(e)
	if inst != nil && !inst.Limits.Nitro && (in.Addrs.PrefixCount > 0 || len(in.Addrs.Prefixes) > 0) {
		return nil, nil, Combination("Instance type %s does not support IPv4 prefixes (not a Nitro-based type).", inst.Type)
	}
	s := m.st.Subnets[e.SubnetID]
	p, err := m.planAddrs(s, e.ID, e.Slots(), limit, in.Addrs, nil)
	if err != nil {
		return nil, nil, err
	}
	ev := m.apply(e, p)
	return &Assigned{ENIID: e.ID, Addrs: p.addrs, Prefixes: p.prefixes}, ev, nil
}

// UnassignPrivateIpAddressesInput removes secondary addresses or prefixes from an ENI.
type UnassignPrivateIpAddressesInput struct {
	ENIID    string
	Addrs    []netip.Addr   `json:",omitempty"`
	Prefixes []netip.Prefix `json:",omitempty"`
}

// UnassignPrivateIpAddresses frees the given secondary addresses and prefixes: all or none.
func (m *Model) UnassignPrivateIpAddresses(in UnassignPrivateIpAddressesInput) ([]Event, error) {
	if in.ENIID == "" {
		return nil, Missing("NetworkInterfaceId")
	}
	e, err := m.eni(in.ENIID)
	if err != nil {
		return nil, err
	}
	if len(in.Addrs) == 0 && len(in.Prefixes) == 0 {
		return nil, Errf(CodeMissingParameter, "The request must contain the parameter PrivateIpAddress or Ipv4Prefix")
	}
	if len(in.Addrs) > 0 && len(in.Prefixes) > 0 {
		return nil, Combination("Private IP addresses and IPv4 prefixes cannot be unassigned in the same request.")
	}
	for _, a := range in.Addrs {
		if a == e.PrimaryIP {
			return nil, Errf(CodeInvalidParameterValue, "The primary private IP address %s of %s cannot be unassigned.", a, e.ID)
		}
		if !slices.Contains(e.SecondaryIPs, a) {
			return nil, Errf(CodeInvalidParameterValue, "Some of the specified addresses are not assigned to interface %s", e.ID)
		}
	}
	for _, p := range in.Prefixes {
		if !slices.Contains(e.Prefixes, p) {
			return nil, Errf(CodeInvalidParameterValue, "Some of the specified prefixes are not assigned to interface %s", e.ID)
		}
	}
	set := m.used[e.SubnetID]
	var ev []Event
	for _, a := range in.Addrs {
		if !slices.Contains(e.SecondaryIPs, a) {
			continue // listed twice
		}
		e.SecondaryIPs = slices.DeleteFunc(e.SecondaryIPs, func(x netip.Addr) bool { return x == a })
		set.unmark(a)
		delete(m.ipOwner, a)
		ev = append(ev, addrEvent(EventAddressUnassigned, e, a))
	}
	for _, p := range in.Prefixes {
		if !slices.Contains(e.Prefixes, p) {
			continue
		}
		e.Prefixes = slices.DeleteFunc(e.Prefixes, func(x netip.Prefix) bool { return x == p })
		set.unmarkPrefix(p)
		delete(m.prefixOwner, p)
		ev = append(ev, prefixEvent(EventPrefixUnassigned, e, p))
	}
	return ev, nil
}
