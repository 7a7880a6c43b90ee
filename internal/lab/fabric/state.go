package fabric

import (
	"net/netip"
	"slices"
)

// eni is what the fabric remembers of one ENI.
type eni struct {
	id, instance, mac string
	device            int
	subnet            netip.Prefix
	addrs             []netip.Addr // primary first
	prefixes          []netip.Prefix
	attached          bool
}

func (e *eni) primary() netip.Addr {
	if len(e.addrs) == 0 {
		return netip.Addr{}
	}
	return e.addrs[0]
}

// dsts is every destination routed to the ENI: its addresses as /32s, then its prefixes.
func (e *eni) dsts() []netip.Prefix {
	out := make([]netip.Prefix, 0, len(e.addrs)+len(e.prefixes))
	for _, a := range e.addrs {
		out = append(out, netip.PrefixFrom(a, 32))
	}
	return append(out, e.prefixes...)
}

// State is the fabric's view of the VPC: which ENIs are attached to which instance with which
// addresses, and which instance lives in which node namespace. It turns events into the
// Actions that make the namespaces match, and does no I/O. It is not safe for concurrent use.
//
// An instance's ENIs reach the data plane only once the instance is bound to a node: vpcsim
// attaches the primary ENI inside RunInstances, before the lab knows the instance's ID.
type State struct {
	enis     map[string]*eni
	nodes    map[string]Node // by instance ID
	gateways map[netip.Addr]bool
}

// NewState returns an empty fabric state.
func NewState() *State {
	return &State{enis: map[string]*eni{}, nodes: map[string]Node{}, gateways: map[netip.Addr]bool{}}
}

// Gateway is the subnet router's address: the subnet's first address + 1, as on AWS.
func Gateway(subnet netip.Prefix) netip.Addr { return subnet.Masked().Addr().Next() }

// Handle records ev and returns the actions that make the data plane follow it.
func (s *State) Handle(ev Event) []Action {
	switch ev.Kind {
	case ENIAttached:
		if old := s.enis[ev.ENIID]; old != nil && old.attached {
			// A repeated attach: start from a clean port.
			acts := s.detach(old)
			e := s.record(ev)
			return append(acts, s.attach(e)...)
		}
		return s.attach(s.record(ev))
	case ENIDetached:
		e := s.enis[ev.ENIID]
		if e == nil {
			e = s.record(ev)
		}
		acts := s.detach(e)
		e.attached, e.instance = false, ""
		return acts
	case AddressAssigned, AddressUnassigned, PrefixAssigned, PrefixUnassigned:
		return s.assignment(ev)
	}
	return nil
}

func (s *State) record(ev Event) *eni {
	e := &eni{id: ev.ENIID, instance: ev.InstanceID, mac: ev.MAC, device: ev.DeviceIndex, subnet: ev.Subnet,
		addrs: slices.Clone(ev.Addrs), prefixes: slices.Clone(ev.Prefixes), attached: ev.Kind == ENIAttached}
	s.enis[e.id] = e
	return e
}

func (s *State) assignment(ev Event) []Action {
	e := s.enis[ev.ENIID]
	if e == nil {
		// An ENI the fabric never saw attached; its attach event will carry its addresses.
		return nil
	}
	var dst netip.Prefix
	switch ev.Kind {
	case AddressAssigned:
		if slices.Contains(e.addrs, ev.Addr) {
			return nil
		}
		e.addrs = append(e.addrs, ev.Addr)
		dst = netip.PrefixFrom(ev.Addr, 32)
	case AddressUnassigned:
		i := slices.Index(e.addrs, ev.Addr)
		if i < 0 {
			return nil
		}
		e.addrs = slices.Delete(e.addrs, i, i+1)
		dst = netip.PrefixFrom(ev.Addr, 32)
	case PrefixAssigned:
		if slices.Contains(e.prefixes, ev.Prefix) {
			return nil
		}
		e.prefixes = append(e.prefixes, ev.Prefix)
		dst = ev.Prefix
	case PrefixUnassigned:
		i := slices.Index(e.prefixes, ev.Prefix)
		if i < 0 {
			return nil
		}
		e.prefixes = slices.Delete(e.prefixes, i, i+1)
		dst = ev.Prefix
	}
	n, ok := s.boundNode(e)
	if !ok {
		return nil
	}
	op := AddRoute
	if ev.Kind == AddressUnassigned || ev.Kind == PrefixUnassigned {
		op = DelRoute
	}
	return []Action{{Op: op, Port: PortFor(n, e.device, e.mac, e.primary()), Dst: dst}}
}

// boundNode is the node an ENI's port lives on, if the ENI is attached and its instance bound.
func (s *State) boundNode(e *eni) (Node, bool) {
	if !e.attached {
		return Node{}, false
	}
	n, ok := s.nodes[e.instance]
	return n, ok
}

func (s *State) attach(e *eni) []Action {
	n, ok := s.boundNode(e)
	if !ok {
		return nil
	}
	var acts []Action
	gw := Gateway(e.subnet)
	if !s.gateways[gw] {
		s.gateways[gw] = true
		acts = append(acts, Action{Op: AddGateway, Addr: netip.PrefixFrom(gw, 32)})
	}
	port := PortFor(n, e.device, e.mac, e.primary())
	acts = append(acts, Action{Op: AddPort, Port: port})
	for _, d := range e.dsts() {
		acts = append(acts, Action{Op: AddRoute, Port: port, Dst: d})
	}
	if e.device == 0 && e.primary().IsValid() {
		acts = append(acts,
			Action{Op: ConfigureNode, Port: port, Addr: netip.PrefixFrom(e.primary(), e.subnet.Bits()), Gateway: gw},
			Action{Op: AllowEgress, Addr: netip.PrefixFrom(e.primary(), 32)})
	}
	return acts
}

func (s *State) detach(e *eni) []Action {
	n, ok := s.boundNode(e)
	if !ok {
		return nil
	}
	port := PortFor(n, e.device, e.mac, e.primary())
	var acts []Action
	if e.device == 0 && e.primary().IsValid() {
		acts = append(acts, Action{Op: DenyEgress, Addr: netip.PrefixFrom(e.primary(), 32)})
	}
	for _, d := range e.dsts() {
		acts = append(acts, Action{Op: DelRoute, Port: port, Dst: d})
	}
	return append(acts, Action{Op: DelPort, Port: port})
}

// Bind places instanceID's ENIs in node n and returns the actions that build the ports of
// those already attached, primary ENI first.
func (s *State) Bind(instanceID string, n Node) []Action {
	s.nodes[instanceID] = n
	var acts []Action
	for _, e := range s.instanceENIs(instanceID) {
		acts = append(acts, s.attach(e)...)
	}
	return acts
}

// Unbind forgets where instanceID lives and returns the actions that take its ports down.
func (s *State) Unbind(instanceID string) []Action {
	var acts []Action
	for _, e := range s.instanceENIs(instanceID) {
		acts = append(acts, s.detach(e)...)
	}
	delete(s.nodes, instanceID)
	return acts
}

// instanceENIs returns the ENIs attached to the instance by device index.
func (s *State) instanceENIs(instanceID string) []*eni {
	var out []*eni
	for _, e := range s.enis {
		if e.attached && e.instance == instanceID {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b *eni) int { return a.device - b.device })
	return out
}

// Owner returns the instance an attached ENI holding a (as an address or inside a prefix)
// belongs to: IMDS uses it to tell which node is calling.
func (s *State) Owner(a netip.Addr) (string, bool) {
	for _, e := range s.enis {
		if !e.attached {
			continue
		}
		if slices.Contains(e.addrs, a) {
			return e.instance, true
		}
		for _, p := range e.prefixes {
			if p.Contains(a) {
				return e.instance, true
			}
		}
	}
	return "", false
}
