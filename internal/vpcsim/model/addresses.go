package model

import (
	"net/netip"
	"slices"
)

// AddrRequest asks for private addresses or /28 prefixes on an ENI: a count or explicit values
// of either kind, but not both kinds in one request.
type AddrRequest struct {
	Count       int            `json:",omitempty"`
	Addrs       []netip.Addr   `json:",omitempty"`
	PrefixCount int            `json:",omitempty"`
	Prefixes    []netip.Prefix `json:",omitempty"`
	// AllowReassignment lets explicit addresses move from another ENI in the subnet.
	AllowReassignment bool `json:",omitempty"`
}

func (r AddrRequest) empty() bool {
	return r.Count == 0 && len(r.Addrs) == 0 && r.PrefixCount == 0 && len(r.Prefixes) == 0
}

// slots is the number of IPv4 slots the request takes.
func (r AddrRequest) slots() int { return r.Count + len(r.Addrs) + r.PrefixCount + len(r.Prefixes) }

func (r AddrRequest) check() *Error {
	if r.Count < 0 {
		return InvalidValue("SecondaryPrivateIpAddressCount", itoa(r.Count))
	}
	if r.PrefixCount < 0 {
		return InvalidValue("Ipv4PrefixCount", itoa(r.PrefixCount))
	}
	if r.Count > 0 && len(r.Addrs) > 0 {
		return Combination("The parameters 'SecondaryPrivateIpAddressCount' and 'PrivateIpAddress' cannot be used together.")
	}
	if r.PrefixCount > 0 && len(r.Prefixes) > 0 {
		return Combination("The parameters 'Ipv4PrefixCount' and 'Ipv4Prefix' cannot be used together.")
	}
	if (r.Count > 0 || len(r.Addrs) > 0) && (r.PrefixCount > 0 || len(r.Prefixes) > 0) {
		return Combination("Private IP addresses and IPv4 prefixes cannot be assigned in the same request.")
	}
	return nil
}

// plan is the concrete outcome of an AddrRequest, found without changing anything.
type plan struct {
	addrs    []netip.Addr
	prefixes []netip.Prefix
	moves    map[netip.Addr]string // address -> ENI it is taken from (AllowReassignment)
}

// planAddrs validates r against the subnet and the slot limit and picks the addresses.
// pending are addresses already picked in the same call (the primary of a new ENI).
func (m *Model) planAddrs(s *Subnet, eniID string, usedSlots, limit int, r AddrRequest, pending []netip.Addr) (*plan, *Error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	if usedSlots+r.slots() > limit {
		return nil, Errf(CodePrivateIPLimitExceeded, "Number of private addresses will exceed limit.")
	}
	set := m.used[s.ID]
	p := &plan{}
	seen := map[netip.Addr]bool{}
	for _, a := range pending {
		seen[a] = true
	}
	for _, a := range r.Addrs {
		if err := m.checkExplicit(s, set, a); err != nil {
			return nil, err
		}
		if seen[a] {
			return nil, Errf(CodeInvalidParameterValue, "Address %s is specified more than once", a)
		}
		seen[a] = true
		if set.taken(a) {
			owner, isIP := m.ipOwner[a]
			if !isIP || owner == eniID || !r.AllowReassignment || m.st.ENIs[owner].PrimaryIP == a {
				return nil, Errf(CodeIPInUse, "Address %s is in use.", a)
			}
			if p.moves == nil {
				p.moves = map[netip.Addr]string{}
			}
			p.moves[a] = owner
		}
		p.addrs = append(p.addrs, a)
	}
	if r.Count > 0 {
		free, ok := set.lowestFree(r.Count + len(pending))
		if !ok {
			return nil, insufficientAddrs(s, set)
		}
		for _, a := range free {
			if len(p.addrs) == len(r.Addrs)+r.Count {
				break
			}
			if !seen[a] {
				p.addrs = append(p.addrs, a)
			}
		}
		if len(p.addrs) < r.Count {
			return nil, insufficientAddrs(s, set)
		}
	}
	seenP := map[netip.Prefix]bool{}
	for _, pf := range r.Prefixes {
		if !pf.Addr().Is4() || pf.Bits() != 28 {
			return nil, Errf(CodeInvalidParameterValue, "Invalid value '%s' for Ipv4Prefix. Only /28 IPv4 prefixes are supported.", pf)
		}
		if pf.Masked() != pf {
			return nil, Errf(CodeInvalidParameterValue, "Invalid value '%s' for Ipv4Prefix. The prefix is not aligned to a /28 boundary.", pf)
		}
		if !s.CIDR.Contains(pf.Addr()) || s.CIDR.Bits() > 28 {
			return nil, Errf(CodeInvalidParameterValue, "Prefix %s does not fall within the subnet's address range", pf)
		}
		if seenP[pf] {
			return nil, Errf(CodeInvalidParameterValue, "Prefix %s is specified more than once", pf)
		}
		seenP[pf] = true
		if !set.prefixFree(pf) || slices.ContainsFunc(pending, pf.Contains) {
			return nil, Errf(CodeIPInUse, "Prefix %s overlaps addresses in use or reserved in subnet %s.", pf, s.ID)
		}
		p.prefixes = append(p.prefixes, pf)
	}
	if r.PrefixCount > 0 {
		free, _ := set.freePrefixes(r.PrefixCount + len(pending))
		for _, pf := range free {
			if len(p.prefixes) == r.PrefixCount {
				break
			}
			if !slices.ContainsFunc(pending, pf.Contains) {
				p.prefixes = append(p.prefixes, pf)
			}
		}
		if len(p.prefixes) < r.PrefixCount {
			return nil, Errf(CodeInsufficientCidrBlocks, "The specified subnet does not have enough free cidr blocks to satisfy the request.")
		}
	}
	return p, nil
}

func insufficientAddrs(s *Subnet, set *addrSet) *Error {
	return Errf(CodeInsufficientFreeAddresses, "Insufficient free IP addresses in subnet %s (%d of %d available).", s.ID, set.available(), set.size-reservedCount)
}

func (m *Model) checkExplicit(s *Subnet, set *addrSet, a netip.Addr) *Error {
	if !a.Is4() || !s.CIDR.Contains(a) {
		return Errf(CodeInvalidParameterValue, "Address %s does not fall within the subnet's address range", a)
	}
	if set.reserved(set.offset(a)) {
		return Errf(CodeInvalidParameterValue, "Address %s is in subnet's reserved address range", a)
	}
	return nil
}

// apply carries out a plan on the ENI and returns the events it causes.
func (m *Model) apply(e *ENI, p *plan) []Event {
	var ev []Event
	set := m.used[e.SubnetID]
	for _, a := range p.addrs {
		if from, ok := p.moves[a]; ok {
			old := m.st.ENIs[from]
			old.SecondaryIPs = slices.DeleteFunc(old.SecondaryIPs, func(x netip.Addr) bool { return x == a })
			ev = append(ev, addrEvent(EventAddressUnassigned, old, a))
		}
		set.mark(a)
		m.ipOwner[a] = e.ID
		e.SecondaryIPs = append(e.SecondaryIPs, a)
		ev = append(ev, addrEvent(EventAddressAssigned, e, a))
	}
	for _, pf := range p.prefixes {
		set.markPrefix(pf)
		m.prefixOwner[pf] = e.ID
		e.Prefixes = append(e.Prefixes, pf)
		ev = append(ev, prefixEvent(EventPrefixAssigned, e, pf))
	}
	return ev
}

// release frees every address and prefix of the ENI, primary included, and returns the
// unassign events for the secondary ones.
func (m *Model) release(e *ENI) []Event {
	var ev []Event
	set := m.used[e.SubnetID]
	set.unmark(e.PrimaryIP)
	delete(m.ipOwner, e.PrimaryIP)
	for _, a := range e.SecondaryIPs {
		set.unmark(a)
		delete(m.ipOwner, a)
		ev = append(ev, addrEvent(EventAddressUnassigned, e, a))
	}
	for _, p := range e.Prefixes {
		set.unmarkPrefix(p)
		delete(m.prefixOwner, p)
		ev = append(ev, prefixEvent(EventPrefixUnassigned, e, p))
	}
	return ev
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	neg := n < 0
	if neg {
		n = -n
	}
	var b []byte
	for n > 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	if neg {
		b = append([]byte{'-'}, b...)
	}
	return string(b)
}
