package fabric

import "net/netip"

// Event kinds, as vpcsim names them.
const (
	ENIAttached       = "eni-attached"
	ENIDetached       = "eni-detached"
	AddressAssigned   = "address-assigned"
	AddressUnassigned = "address-unassigned"
	PrefixAssigned    = "prefix-assigned"
	PrefixUnassigned  = "prefix-unassigned"
)

// Event is one committed change in the emulated VPC that the data plane must follow. It has the
// fields of vpcsim's Event so that the fabric can be tested without starting vpcsim.
type Event struct {
	Kind        string
	InstanceID  string
	ENIID       string
	MAC         string
	DeviceIndex int
	Subnet      netip.Prefix
	Addrs       []netip.Addr   // eni-attached/detached: every address, primary first
	Prefixes    []netip.Prefix // eni-attached/detached
	Addr        netip.Addr     // address-(un)assigned
	Prefix      netip.Prefix   // prefix-(un)assigned
}
