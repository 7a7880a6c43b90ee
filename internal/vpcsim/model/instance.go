package model

import (
	"net/netip"
	"time"
)

// RunInstancesInput launches MinCount..MaxCount instances of a type into a subnet, each with a
// primary ENI at device index 0 (DeleteOnTermination true).
type RunInstancesInput struct {
	ImageID        string `json:",omitempty"`
	InstanceType   string
	SubnetID       string
	MinCount       int
	MaxCount       int
	PrivateIP      netip.Addr `json:",omitempty"`
	SecurityGroups []string   `json:",omitempty"`
	TagSpecs       []TagSpec  `json:",omitempty"`
	// PrimaryAddrs asks for secondary addresses or prefixes on each primary ENI.
	PrimaryAddrs AddrRequest
}

// Reservation is what RunInstances returns.
type Reservation struct {
	ID        string
	Instances []*InstanceView
}

// InstanceView is an instance with its attached ENIs, ordered by device index.
type InstanceView struct {
	Instance
	Interfaces []*ENI
}

// DefaultImageID is used when RunInstances names no image.
const DefaultImageID = "ami-0vpcsim000000000"

// RunInstances launches instances; they are running at once.
func (m *Model) RunInstances(now time.Time, in RunInstancesInput) (*Reservation, []Event, error) {
	switch {
	case in.InstanceType == "":
		return nil, nil, Missing("InstanceType")
	case in.SubnetID == "":
		return nil, nil, Missing("SubnetId")
	case in.MinCount < 1:
		return nil, nil, Errf(CodeInvalidParameterValue, "Invalid value '%d' for MinCount. Must be greater than zero.", in.MinCount)
	case in.MaxCount < in.MinCount:
		return nil, nil, Errf(CodeInvalidParameterValue, "Invalid value '%d' for MaxCount. Must be at least MinCount (%d).", in.MaxCount, in.MinCount)
	case in.MaxCount > 1000:
		return nil, nil, Errf(CodeInvalidParameterValue, "Invalid value '%d' for MaxCount. At most 1000 instances can be launched at once.", in.MaxCount)
	case in.PrivateIP.IsValid() && in.MaxCount > 1:
		return nil, nil, Combination("Network interfaces and an instance-level private IP address should not be specified on the same request with more than one instance.")
	}
	// The counts are checked before any arithmetic on them (a negative address count once
	// divided by zero).
	if err := in.PrimaryAddrs.check(); err != nil {
		return nil, nil, err
	}
	if err := checkGroups(in.SecurityGroups); err != nil {
		return nil, nil, err
	}
	t, lerr := m.cat.Lookup(in.InstanceType)
	if lerr != nil {
		return nil, nil, Errf(CodeInvalidParameterValue, "Invalid value '%s' for InstanceType.", in.InstanceType)
	}
	s, err := m.subnet(in.SubnetID)
	if err != nil {
		return nil, nil, err
	}
	if err := checkTagSpecs(in.TagSpecs, "instance", "network-interface"); err != nil {
		return nil, nil, err
	}
	if in.PrimaryAddrs.slots() > 0 && in.PrimaryAddrs.slots()+1 > t.IPv4PerENI {
		return nil, nil, Errf(CodePrivateIPLimitExceeded, "Number of private addresses will exceed limit.")
	}
	set := m.used[s.ID]
	count := in.MaxCount
	need := 1 + in.PrimaryAddrs.Count + len(in.PrimaryAddrs.Addrs)
	if fit := set.available() / need; fit < count {
		count = fit
	}
	if count < in.MinCount {
		return nil, nil, Errf(CodeInsufficientFreeAddresses, "There are not enough free addresses in subnet '%s' to satisfy the requested number of instances.", s.ID)
	}
	limits := Limits{MaxENIs: t.MaxENIs, IPv4PerENI: t.IPv4PerENI, Nitro: t.Nitro(), Hypervisor: t.Hypervisor, Cards: map[int]int{}}
	for _, c := range t.NetworkCards {
		limits.Cards[c.Index] = c.MaxInterfaces
	}
	if len(limits.Cards) == 0 {
		limits.Cards[0] = t.MaxENIs
	}
	if in.PrimaryAddrs.PrefixCount > 0 && !limits.Nitro {
		return nil, nil, Combination("Instance type %s does not support IPv4 prefixes (not a Nitro-based type).", t.Name)
	}
	// Validate the first ENI fully before changing anything; later ones can only fail on
	// prefixes, which are checked by counting below.
	if _, err := m.planAddrs(s, "", 1, t.IPv4PerENI, in.PrimaryAddrs, nil); err != nil {
		return nil, nil, err
	}
	if in.PrimaryAddrs.PrefixCount > 0 {
		if free, _ := set.freePrefixes(count*in.PrimaryAddrs.PrefixCount + count); len(free) < count*in.PrimaryAddrs.PrefixCount+count {
			return nil, nil, Errf(CodeInsufficientCidrBlocks, "The specified subnet does not have enough free cidr blocks to satisfy the request.")
		}
	}
	image := in.ImageID
	if image == "" {
		image = DefaultImageID
	}
	res := &Reservation{ID: m.newID("reservation")}
	var events []Event
	for i := 0; i < count; i++ {
		e, ev, err := m.newENI(now, s, in.PrivateIP, in.PrimaryAddrs, t.IPv4PerENI)
		if err != nil {
			// Unreachable after the checks above; undo what this call made so far.
			for _, iv := range res.Instances {
				m.terminate(iv.ID)
				delete(m.st.Instances, iv.ID)
			}
			return nil, nil, err
		}
		inst := &Instance{ID: m.newID("instance"), Type: t.Name, ImageID: image, ReservationID: res.ID,
			SubnetID: s.ID, VPCID: s.VPCID, AZ: s.AZ, State: InstanceRunning, LaunchTime: now, LaunchIndex: i,
			Limits: limits, SecurityGroups: groupsOr(in.SecurityGroups, s.VPCID), Tags: tagsFor(in.TagSpecs, "instance"),
			ENIs: []string{e.ID}}
		e.SecurityGroups = groupsOr(in.SecurityGroups, s.VPCID)
		e.Tags = tagsFor(in.TagSpecs, "network-interface")
		e.Description = ""
		e.Attachment = &Attachment{ID: m.newID("attachment"), InstanceID: inst.ID, DeviceIndex: 0, Status: AttachAttached,
			Time: now, DeleteOnTermination: true}
		m.st.Instances[inst.ID] = inst
		// The secondary addresses were assigned before the attachment (InstanceID ""); the
		// attach event then carries them all.
		events = append(events, ev...)
		events = append(events, m.attachEvent(EventENIAttached, e, inst.ID, 0))
		res.Instances = append(res.Instances, m.instanceView(inst))
	}
	return res, events, nil
}

func (m *Model) instanceView(inst *Instance) *InstanceView {
	v := &InstanceView{Instance: *inst.clone()}
	for _, id := range inst.ENIs {
		v.Interfaces = append(v.Interfaces, m.st.ENIs[id].clone())
	}
	sortByDevice(v.Interfaces)
	return v
}

func sortByDevice(es []*ENI) {
	for i := 1; i < len(es); i++ {
		for j := i; j > 0 && es[j].Attachment.DeviceIndex < es[j-1].Attachment.DeviceIndex; j-- {
			es[j], es[j-1] = es[j-1], es[j]
		}
	}
}

// StateChange is one instance's change in TerminateInstances.
type StateChange struct {
	InstanceID     string
	Previous, Curr string
}

// TerminateInstancesInput terminates instances; their ENIs detach, and those with
// DeleteOnTermination are deleted.
type TerminateInstancesInput struct{ InstanceIDs []string }

// TerminateInstances terminates all the instances or none (when one ID is unknown).
func (m *Model) TerminateInstances(in TerminateInstancesInput) ([]StateChange, []Event, error) {
	if len(in.InstanceIDs) == 0 {
		return nil, nil, Missing("InstanceId")
	}
	for _, id := range in.InstanceIDs {
		if _, err := m.instance(id); err != nil {
			return nil, nil, err
		}
	}
	var out []StateChange
	var ev []Event
	for _, id := range in.InstanceIDs {
		inst := m.st.Instances[id]
		prev := inst.State
		ev = append(ev, m.terminate(id)...)
		out = append(out, StateChange{InstanceID: id, Previous: prev, Curr: inst.State})
	}
	return out, ev, nil
}

func (m *Model) terminate(id string) []Event {
	inst := m.st.Instances[id]
	var ev []Event
	ids := append([]string(nil), inst.ENIs...)
	for _, eid := range ids {
		e := m.st.ENIs[eid]
		del := e.Attachment.DeleteOnTermination
		ev = append(ev, m.detach(e)...)
		if del {
			ev = append(ev, m.release(e)...)
			delete(m.st.ENIs, eid)
			m.eniOrder = nil
		}
	}
	inst.State = InstanceTerminated
	inst.ENIs = nil
	return ev
}
