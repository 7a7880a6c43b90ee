package fabric

import (
	"fmt"
	"net/netip"
	"sync"
)

// Fabric keeps the namespaces in step with the VPC: feed it every vpcsim event through Handle
// (the hook) and tell it where each instance lives with Bind. Safe for concurrent use.
type Fabric struct {
	mu    sync.Mutex
	state *State
	nl    Netlink
	logf  func(format string, args ...any)
}

// New returns a fabric whose router is the namespace routerNS, set up by SetupRouter.
func New(routerNS string, logf func(format string, args ...any)) *Fabric {
	return &Fabric{state: NewState(), nl: Netlink{RouterNS: routerNS}, logf: logf}
}

// Handle follows one event. Failures are logged: the emulated VPC has committed the change
// and the data plane must not hold it up.
func (f *Fabric) Handle(ev Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	acts := f.state.Handle(ev)
	f.logf("fabric: %s", describe(ev))
	if err := f.nl.Apply(acts); err != nil {
		f.logf("fabric: %s on %s: %v", ev.Kind, ev.ENIID, err)
	}
}

// Bind wires the instance's attached ENIs into node n and any that attach later.
func (f *Fabric) Bind(instanceID string, n Node) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.nl.Apply(f.state.Bind(instanceID, n))
}

// Unbind takes the instance's ports down and forgets its node.
func (f *Fabric) Unbind(instanceID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.nl.Apply(f.state.Unbind(instanceID))
}

// Owner says which instance holds address a on one of its attached ENIs.
func (f *Fabric) Owner(a netip.Addr) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state.Owner(a)
}

// describe says what an event is about in one line.
func describe(ev Event) string {
	s := ev.Kind + " " + ev.ENIID
	if ev.InstanceID != "" {
		s += " on " + ev.InstanceID
	}
	switch {
	case ev.Addr.IsValid():
		s += " " + ev.Addr.String()
	case ev.Prefix.IsValid():
		s += " " + ev.Prefix.String()
	case len(ev.Addrs) > 0:
		s += fmt.Sprintf(" device %d %v %v", ev.DeviceIndex, ev.Addrs, ev.Prefixes)
	}
	return s
}
