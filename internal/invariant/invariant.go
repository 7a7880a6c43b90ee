// Package invariant checks the pod-network safety invariant of one vpcnet node (issue 11): no
// address on two pods, no live pod without its network, and the agent's allocations, the
// plugin's attachment records and the pods' interfaces telling the same story.
//
// Check is pure: it judges a Snapshot. Collect (collect.go) builds a Snapshot from a running node
// (the plugin's state dir, the node and pod network namespaces); the agent's allocations come
// from the caller (vpcnetd's /v1/pods decoded into []store.Alloc and passed through FromStore).
package invariant

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Key names one attachment as the CNI spec does: network name, container ID, interface name.
type Key struct {
	Network     string
	ContainerID string
	IfName      string
}

func (k Key) String() string { return k.Network + "/" + k.ContainerID + "/" + k.IfName }

// Allocation is an address the agent holds for a key.
type Allocation struct {
	Key  Key
	Addr netip.Addr
}

// Attachment is one of the plugin's attachment records (<stateDir>/<network>/attachments/): a pod
// the plugin wired and has not yet unwired (a live pod, as far as the plugin knows).
type Attachment struct {
	Key      Key
	Addr     netip.Addr
	Netns    string // the pod's network namespace path, as CNI_NETNS gave it
	HostVeth string // the host end of the pod's veth
}

// Interface is one interface inside a pod network namespace (loopback left out).
type Interface struct {
	Netns string // namespace path, the same string as Attachment.Netns for the pod's own
	Name  string
	Up    bool
	Addrs []netip.Addr // IPv4 addresses on it
	// GatewayRoute: `169.254.1.1 dev <Name> scope link`; DefaultRoute: `default via 169.254.1.1`.
	GatewayRoute bool
	DefaultRoute bool
}

// HostRoute is a /32 route to a pod in the node's main table.
type HostRoute struct {
	Addr netip.Addr
	Dev  string
}

// Snapshot is everything Check needs about one node, taken while no verb runs on it.
type Snapshot struct {
	Allocations []Allocation // the agent's, every network
	Attachments []Attachment // the plugin's records
	Pending     []Key        // releases queued in the state dir for an agent that was unreachable
	// Interfaces of the pod namespaces: those the attachments name, and any other pod namespace
	// the caller knows of (a deleted pod's namespace still alive must carry no VPC address).
	Interfaces []Interface
	HostRoutes []HostRoute // /32 routes to pods in the node's main table
	// MissingNetns lists attachment namespaces that could not be opened (gone).
	MissingNetns []string
	// Acknowledged are the ADD results the runtime (the caller) received and has not DELed yet:
	// each must still be held by the agent, recorded and wired (optional; the caller knows them).
	Acknowledged []Allocation
}

// Violation is one broken rule, with the objects it concerns.
type Violation struct {
	Rule string // short stable name, e.g. "address-on-two-pods"
	Msg  string
}

func (v Violation) String() string { return v.Rule + ": " + v.Msg }

// Rules checked, by Violation.Rule.
const (
	RuleAllocNoRecord     = "allocation-without-record"     // the agent holds an address no record (or queued release) of that key explains
	RuleAllocManyIfaces   = "allocation-on-many-interfaces" // an address the agent holds is on more than one pod interface
	RuleDuplicateAlloc    = "address-allocated-twice"       // the agent holds one address for two keys
	RuleDuplicateRecord   = "address-recorded-twice"        // two attachment records hold one address
	RuleAddrOnTwoPods     = "address-on-two-pods"           // one address on interfaces of two namespaces (or two interfaces)
	RuleRecordNotHeld     = "record-not-held"               // a wired pod's address is not held by the agent for its key (the agent considers it free)
	RulePodWithoutNetwork = "pod-without-network"           // a live pod lacks its interface, address, routes or host route
	RuleAddrNotAllocated  = "address-not-allocated"         // a pod interface carries an address the agent holds for no key of that pod
	RuleAcknowledgedLost  = "acknowledged-allocation-lost"  // an ADD result the runtime holds is no longer held by the agent or recorded
)

// Check returns every violation of the invariant in s, in a stable order; none means it holds:
//
//   - every address the agent holds for a key matches exactly one attachment record (same key,
//     same address), or a queued release of that key and no record; and at most one pod
//     interface carries it;
//   - no address is held twice by the agent, recorded twice, or on two pod interfaces;
//   - every attachment record's address is held by the agent for the record's key;
//   - every attachment (live pod) has its interface up in its namespace with its address, the
//     169.254.1.1 link route and the default route via it, and the node has the /32 host route
//     to it through the record's host veth;
//   - every address on a pod interface is held by the agent for a key whose record names that
//     namespace;
//   - every acknowledged ADD result (Snapshot.Acknowledged) is still held by the agent for its key
//     and recorded by the plugin with the same address.
func Check(s Snapshot) []Violation {
	var out []Violation
	add := func(rule, format string, a ...any) { out = append(out, Violation{rule, fmt.Sprintf(format, a...)}) }

	recByKey := map[Key][]Attachment{}
	recByAddr := map[netip.Addr][]Attachment{}
	for _, r := range s.Attachments {
		recByKey[r.Key] = append(recByKey[r.Key], r)
		recByAddr[r.Addr] = append(recByAddr[r.Addr], r)
	}
	pending := map[Key]bool{}
	for _, k := range s.Pending {
		pending[k] = true
	}
	allocByAddr := map[netip.Addr][]Allocation{}
	allocByKey := map[Key]Allocation{}
	for _, a := range s.Allocations {
		allocByAddr[a.Addr] = append(allocByAddr[a.Addr], a)
		allocByKey[a.Key] = a
	}
	type place struct{ netns, name string }
	ifacesByAddr := map[netip.Addr][]place{}
	ifaceByPlace := map[place]Interface{}
	for _, i := range s.Interfaces {
		ifaceByPlace[place{i.Netns, i.Name}] = i
		for _, a := range i.Addrs {
			ifacesByAddr[a] = append(ifacesByAddr[a], place{i.Netns, i.Name})
		}
	}
	hostRoutes := map[netip.Addr][]string{}
	for _, r := range s.HostRoutes {
		hostRoutes[r.Addr] = append(hostRoutes[r.Addr], r.Dev)
	}
	missing := map[string]bool{}
	for _, m := range s.MissingNetns {
		missing[m] = true
	}

	for _, a := range sorted(s.Allocations, func(a Allocation) string { return a.Addr.String() + " " + a.Key.String() }) {
		n := 0
		for _, r := range recByKey[a.Key] {
			if r.Addr == a.Addr {
				n++
			}
		}
		switch {
		case n == 0 && pending[a.Key] && len(recByKey[a.Key]) == 0:
			// released by DEL while the agent was away; the release is queued
		case n != 1:
			add(RuleAllocNoRecord, "agent holds %s for %s, matched by %d attachment records (records of the key: %s)", a.Addr, a.Key, n, describe(recByKey[a.Key]))
		}
		if p := ifacesByAddr[a.Addr]; len(p) > 1 {
			add(RuleAllocManyIfaces, "agent holds %s for %s and %d pod interfaces carry it: %v", a.Addr, a.Key, len(p), p)
		}
	}
	for _, addr := range sortedKeys(allocByAddr) {
		if as := allocByAddr[addr]; len(as) > 1 {
			keys := make([]string, len(as))
			for i, a := range as {
				keys[i] = a.Key.String()
			}
			add(RuleDuplicateAlloc, "agent holds %s for %d keys: %s", addr, len(as), strings.Join(keys, ", "))
		}
	}
	for _, addr := range sortedKeys(recByAddr) {
		if rs := recByAddr[addr]; len(rs) > 1 {
			add(RuleDuplicateRecord, "%s is recorded for %d attachments: %s", addr, len(rs), describe(rs))
		}
	}
	for _, addr := range sortedKeys(ifacesByAddr) {
		ps := ifacesByAddr[addr]
		if len(ps) > 1 {
			add(RuleAddrOnTwoPods, "%s is on %d pod interfaces: %v", addr, len(ps), ps)
		}
		for _, p := range ps {
			ok := false
			for _, a := range allocByAddr[addr] {
				for _, r := range recByKey[a.Key] {
					ok = ok || r.Netns == p.netns && r.Addr == addr
				}
			}
			if !ok {
				add(RuleAddrNotAllocated, "%s on %s in %s is not held by the agent for an attachment of that namespace", addr, p.name, p.netns)
			}
		}
	}
	for _, r := range sorted(s.Attachments, func(r Attachment) string { return r.Key.String() }) {
		if a, ok := allocByKey[r.Key]; !ok || a.Addr != r.Addr {
			held := "nothing"
			if ok {
				held = a.Addr.String()
			}
			add(RuleRecordNotHeld, "attachment %s is wired with %s but the agent holds %s for the key", r.Key, r.Addr, held)
		}
		if missing[r.Netns] {
			add(RulePodWithoutNetwork, "attachment %s (%s): its namespace %s is gone", r.Key, r.Addr, r.Netns)
			continue
		}
		i, ok := ifaceByPlace[place{r.Netns, r.Key.IfName}]
		var lacks []string
		switch {
		case !ok:
			lacks = append(lacks, "interface "+r.Key.IfName)
		default:
			if !i.Up {
				lacks = append(lacks, r.Key.IfName+" up")
			}
			if !slices.Contains(i.Addrs, r.Addr) {
				lacks = append(lacks, r.Addr.String()+"/32 on "+r.Key.IfName)
			}
			if !i.GatewayRoute {
				lacks = append(lacks, "route 169.254.1.1 dev "+r.Key.IfName)
			}
			if !i.DefaultRoute {
				lacks = append(lacks, "default via 169.254.1.1")
			}
		}
		if devs := hostRoutes[r.Addr]; len(devs) != 1 || devs[0] != r.HostVeth {
			lacks = append(lacks, fmt.Sprintf("host route %s dev %s (node has %v)", r.Addr, r.HostVeth, devs))
		}
		if len(lacks) > 0 {
			add(RulePodWithoutNetwork, "attachment %s (%s in %s) lacks %s", r.Key, r.Addr, r.Netns, strings.Join(lacks, ", "))
		}
	}
	for _, a := range sorted(s.Acknowledged, func(a Allocation) string { return a.Key.String() }) {
		held, ok := allocByKey[a.Key]
		recorded := false
		for _, r := range recByKey[a.Key] {
			recorded = recorded || r.Addr == a.Addr
		}
		if !ok || held.Addr != a.Addr || !recorded {
			add(RuleAcknowledgedLost, "ADD of %s answered %s; the agent holds %v for it (held: %v), recorded: %v", a.Key, a.Addr, held.Addr, ok, recorded)
		}
	}
	return out
}

// Err joins the violations into one error (nil when there are none), one line each.
func Err(vs []Violation) error {
	if len(vs) == 0 {
		return nil
	}
	errs := make([]error, len(vs))
	for i, v := range vs {
		errs[i] = errors.New(v.String())
	}
	return fmt.Errorf("pod network invariant broken (%d): %w", len(vs), errors.Join(errs...))
}

func describe(rs []Attachment) string {
	if len(rs) == 0 {
		return "none"
	}
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = fmt.Sprintf("%s=%s in %s", r.Key, r.Addr, r.Netns)
	}
	return strings.Join(s, "; ")
}

func sorted[T any](in []T, key func(T) string) []T {
	out := slices.Clone(in)
	slices.SortStableFunc(out, func(a, b T) int { return strings.Compare(key(a), key(b)) })
	return out
}

func sortedKeys[V any](m map[netip.Addr]V) []netip.Addr {
	out := make([]netip.Addr, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b netip.Addr) int { return a.Compare(b) })
	return out
}
