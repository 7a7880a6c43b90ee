package ipam

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// addrs returns n consecutive addresses from first.
func addrs(first string, n int) []netip.Addr {
	a := netip.MustParseAddr(first)
	var out []netip.Addr
	for range n {
		out = append(out, a)
		a = a.Next()
	}
	return out
}

func pfxs(ps ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range ps {
		out = append(out, netip.MustParsePrefix(p))
	}
	return out
}

func set(as ...[]netip.Addr) map[netip.Addr]bool {
	m := map[netip.Addr]bool{}
	for _, l := range as {
		for _, a := range l {
			m[a] = true
		}
	}
	return m
}

func base(s Settings, enis ...ENI) State {
	s.Cooldown, s.Backoff, s.BackoffMax, s.PrefixFallback = 30*time.Second, 5*time.Second, 2*time.Minute, 5*time.Minute
	return State{Now: t0, Settings: s, Limits: Limits{MaxENIs: 3, IPv4PerENI: 10}, ENIs: enis}
}

func show(p Plan) string {
	var parts []string
	for _, a := range p.Actions {
		s := string(a.Kind)
		if a.ENI != "" {
			s += " " + a.ENI
		}
		switch {
		case a.Kind == CreateENI && a.ByPrefix:
			s += fmt.Sprint(" ", a.Count, " prefixes")
		case a.Kind == CreateENI || a.Count > 0:
			s += fmt.Sprint(" ", a.Count)
		case len(a.IPs) > 0:
			s += fmt.Sprint(" ", a.IPs)
		case len(a.Prefixes) > 0:
			s += fmt.Sprint(" ", a.Prefixes)
		case !a.Until.IsZero():
			s += " +" + a.Until.Sub(t0).String()
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

// planCase is one table row for Decide: a state, an optional edit of it, the actions wanted (as
// show prints them) and a phrase the plan's reason must contain.
type planCase struct {
	name   string
	state  State
	edit   func(*State)
	want   string
	reason string
}

// check runs Decide on the case's state, reports a difference in actions or reason, and returns
// the plan for further checks.
func (tc planCase) check(t *testing.T) Plan {
	t.Helper()
	s := tc.state
	if tc.edit != nil {
		tc.edit(&s)
	}
	p := Decide(s)
	if got := show(p); got != tc.want {
		t.Errorf("actions\n got: %s\nwant: %s\nreason: %s", got, tc.want, p.Reason)
	}
	if !strings.Contains(p.Reason, tc.reason) {
		t.Errorf("reason %q does not mention %q", p.Reason, tc.reason)
	}
	return p
}

func TestDecide(t *testing.T) {
	ip0 := addrs("10.0.1.10", 9) // a full primary ENI at 10 IPs per ENI
	ip1 := addrs("10.0.1.30", 9)
	prefixLimits := Limits{MaxENIs: 4, IPv4PerENI: 30}
	tests := []planCase{
		{name: "WARM_ENI_TARGET=1 fresh node fills one ENI's worth",
			state: base(Settings{WarmENITarget: 1}, ENI{ID: "eni-0"}),
			want:  "assign-ips eni-0 9"},
		{name: "WARM_ENI_TARGET=2 asks for two ENIs' worth",
			state: base(Settings{WarmENITarget: 2}, ENI{ID: "eni-0"}),
			want:  "assign-ips eni-0 9; create-eni 9", reason: "attaching another ENI with 9 addresses"},
		{name: "WARM_ENI_TARGET=1 primary full and in use attaches an ENI",
			state: base(Settings{WarmENITarget: 1}, ENI{ID: "eni-0", IPs: ip0}),
			edit:  func(s *State) { s.Assigned = set(ip0[:3]) },
			want:  "create-eni 3"},
		{name: "WARM_ENI_TARGET=1 with the subnet's free count unknown asks for the shortfall only",
			state: base(Settings{WarmENITarget: 1}, ENI{ID: "eni-0", IPs: ip0}, ENI{ID: "eni-1", DeviceIndex: 1}),
			edit:  func(s *State) { s.Assigned = set(ip0[:3]) },
			want:  "assign-ips eni-1 3"},
		{name: "WARM_ENI_TARGET=1 grows no further than MAX_PODS",
			state: base(Settings{WarmENITarget: 1, MaxPods: 11}, ENI{ID: "eni-0", IPs: ip0}, ENI{ID: "eni-1", DeviceIndex: 1}),
			edit:  func(s *State) { s.Assigned = set(ip0[:3]) },
			want:  "assign-ips eni-1 2"},
		{name: "WARM_ENI_TARGET=1 frees a whole unused ENI beyond the target",
			state: base(Settings{WarmENITarget: 1}, ENI{ID: "eni-0", IPs: ip0}, ENI{ID: "eni-1", DeviceIndex: 1, IPs: ip1}, ENI{ID: "eni-2", DeviceIndex: 2, IPs: addrs("10.0.1.50", 5)}),
			edit:  func(s *State) { s.Assigned = set(ip0[:2]) },
			want:  "free-eni eni-2", reason: "releasing"},
		{name: "WARM_ENI_TARGET=1 never frees an ENI holding a pod",
			state: base(Settings{WarmENITarget: 1}, ENI{ID: "eni-0", IPs: ip0}, ENI{ID: "eni-1", DeviceIndex: 1, IPs: ip1}),
			edit:  func(s *State) { s.Assigned = set(ip1[:1]) },
			want:  ""},
		{name: "an ENI someone else created is never freed",
			state: base(Settings{WarmENITarget: 1}, ENI{ID: "eni-0", IPs: ip0}, ENI{ID: "eni-1", DeviceIndex: 1, IPs: ip1, Keep: true}),
			want:  ""},
		{name: "WARM_ENI_TARGET=0 does not release single addresses",
			state: base(Settings{}, ENI{ID: "eni-0", IPs: ip0}),
			want:  ""},
		{name: "WARM_ENI_TARGET=0 grows on demand",
			state: base(Settings{}, ENI{ID: "eni-0"}),
			edit:  func(s *State) { s.Demand = 2 },
			want:  "assign-ips eni-0 2"},
		{name: "WARM_IP_TARGET=5 fresh node",
			state: base(Settings{WarmENITarget: 1, WarmIPTarget: 5}, ENI{ID: "eni-0"}),
			want:  "assign-ips eni-0 5"},
		{name: "WARM_IP_TARGET=5 releases the surplus, never an assigned address",
			state: base(Settings{WarmIPTarget: 5}, ENI{ID: "eni-0", IPs: ip0}),
			edit:  func(s *State) { s.Assigned = set(ip0[7:9]) },
			want:  "unassign-ips eni-0 [10.0.1.16 10.0.1.15]"},
		{name: "WARM_IP_TARGET=5 holds at target",
			state: base(Settings{WarmIPTarget: 5}, ENI{ID: "eni-0", IPs: ip0[:7]}),
			edit:  func(s *State) { s.Assigned = set(ip0[:2]) },
			want:  "", reason: "at target"},
		{name: "MINIMUM_IP_TARGET=10 WARM_IP_TARGET=2 spans two ENIs",
			state: base(Settings{WarmIPTarget: 2, MinimumIPTarget: 10}, ENI{ID: "eni-0"}),
			want:  "assign-ips eni-0 9; create-eni 1"},
		{name: "MINIMUM_IP_TARGET=4 alone keeps four",
			state: base(Settings{MinimumIPTarget: 4}, ENI{ID: "eni-0", IPs: ip0[:4]}),
			want:  ""},
		{name: "MINIMUM_IP_TARGET=4 releases beyond four",
			state: base(Settings{MinimumIPTarget: 4}, ENI{ID: "eni-0", IPs: ip0[:6]}),
			want:  "unassign-ips eni-0 [10.0.1.15 10.0.1.14]"},
		{name: "IP targets empty a secondary ENI before touching the primary",
			state: base(Settings{WarmIPTarget: 3}, ENI{ID: "eni-0", IPs: ip0}, ENI{ID: "eni-1", DeviceIndex: 1, IPs: ip1[:2]}),
			edit:  func(s *State) { s.Assigned = set(ip0[:4]) },
			want:  "free-eni eni-1; unassign-ips eni-0 [10.0.1.18 10.0.1.17]"},
		{name: "resting addresses count toward WARM_IP_TARGET, as in the AWS VPC CNI",
			state: base(Settings{WarmIPTarget: 2}, ENI{ID: "eni-0", IPs: ip0[:4]}),
			edit: func(s *State) {
				s.Assigned = set(ip0[:1])
				s.Released = map[netip.Addr]time.Time{ip0[1]: t0.Add(-10 * time.Second), ip0[2]: t0.Add(-10 * time.Second)}
			},
			want: ""},
		{name: "but one address is kept free now: an ADD never waits for a resting one",
			state: base(Settings{WarmIPTarget: 2}, ENI{ID: "eni-0", IPs: ip0[:4]}),
			edit: func(s *State) {
				s.Assigned = set(ip0[:1])
				s.Released = map[netip.Addr]time.Time{ip0[1]: t0.Add(-10 * time.Second), ip0[2]: t0.Add(-10 * time.Second), ip0[3]: t0.Add(-10 * time.Second)}
			},
			want: "assign-ips eni-0 1"},
		{name: "resting addresses count toward WARM_ENI_TARGET, one kept free now",
			state: base(Settings{WarmENITarget: 1}, ENI{ID: "eni-0", IPs: ip0[:9]}),
			edit: func(s *State) {
				s.Limits = Limits{MaxENIs: 3, IPv4PerENI: 10}
				s.Released = map[netip.Addr]time.Time{}
				for _, a := range ip0[:8] {
					s.Released[a] = t0.Add(-10 * time.Second)
				}
			},
			want: ""},
		{name: "cooldown over: the addresses are surplus again",
			state: base(Settings{WarmIPTarget: 2}, ENI{ID: "eni-0", IPs: ip0[:5]}),
			edit: func(s *State) {
				s.Assigned = set(ip0[:1])
				s.Released = map[netip.Addr]time.Time{ip0[1]: t0.Add(-40 * time.Second), ip0[2]: t0.Add(-40 * time.Second)}
			},
			want: "unassign-ips eni-0 [10.0.1.14 10.0.1.13]"},
		{name: "cooling addresses are never released",
			state: base(Settings{WarmIPTarget: 1}, ENI{ID: "eni-0", IPs: ip0[:4]}),
			edit: func(s *State) {
				s.Released = map[netip.Addr]time.Time{ip0[3]: t0.Add(-time.Second), ip0[2]: t0.Add(-time.Second)}
			},
			want: "unassign-ips eni-0 [10.0.1.11]"},
		{name: "resting addresses do not keep an ENI from being emptied first",
			state: base(Settings{WarmIPTarget: 3}, ENI{ID: "eni-0", IPs: ip0[:6]}, ENI{ID: "eni-1", DeviceIndex: 1, IPs: ip1[:4]}),
			edit: func(s *State) {
				s.Assigned = set(ip0[:2])
				s.Released = map[netip.Addr]time.Time{ip1[0]: t0.Add(-time.Second), ip1[1]: t0.Add(-time.Second)}
			},
			want: "unassign-ips eni-1 [10.0.1.33 10.0.1.32]"},
		{name: "releases wait for an emptying ENI's resting addresses instead of touching the next ENI",
			state: base(Settings{WarmIPTarget: 5}, ENI{ID: "eni-0", IPs: ip0}, ENI{ID: "eni-1", DeviceIndex: 1, IPs: ip1[:6]}),
			edit: func(s *State) {
				s.Assigned = set(ip0[:2])
				s.Released = map[netip.Addr]time.Time{}
				for _, a := range ip1[1:6] {
					s.Released[a] = t0.Add(-time.Second)
				}
			},
			want: "unassign-ips eni-1 [10.0.1.30]"},
		{name: "MAX_PODS caps growth",
			state: base(Settings{WarmIPTarget: 5, MaxPods: 6}, ENI{ID: "eni-0", IPs: ip0[:6]}),
			edit:  func(s *State) { s.Assigned = set(ip0[:3]) },
			want:  "", reason: "max pods"},
		{name: "MAX_PODS trims a request",
			state: base(Settings{WarmIPTarget: 5, MaxPods: 4}, ENI{ID: "eni-0", IPs: ip0[:2]}),
			want:  "assign-ips eni-0 2"},
		{name: "MAX_PODS lowered releases down to it even in ENI mode",
			state: base(Settings{WarmENITarget: 1, MaxPods: 4}, ENI{ID: "eni-0", IPs: ip0}),
			want:  "unassign-ips eni-0 [10.0.1.18 10.0.1.17 10.0.1.16 10.0.1.15 10.0.1.14]"},
		{name: "MAX_ENI stops at the limit",
			state: base(Settings{WarmIPTarget: 12, MaxENI: 1}, ENI{ID: "eni-0", IPs: ip0}),
			want:  "", reason: "all 1 ENIs pods may use are full (1 ENIs x 9 addresses (MAX_ENI=1))"},
		{name: "instance limit stops at max ENIs",
			state: base(Settings{WarmIPTarget: 30}, ENI{ID: "eni-0", IPs: ip0}, ENI{ID: "eni-1", DeviceIndex: 1, IPs: ip1}, ENI{ID: "eni-2", DeviceIndex: 2, IPs: addrs("10.0.1.50", 9)}),
			want:  "", reason: "all 3 ENIs pods may use are full (3 ENIs x 9 addresses (the instance type's 3))"},
		{name: "an ENI being attached does not block assignment elsewhere",
			state: base(Settings{WarmIPTarget: 12}, ENI{ID: "eni-0", IPs: ip0}, ENI{ID: "eni-1", DeviceIndex: 1}),
			edit:  func(s *State) { s.Pending.CreatingENI = true },
			want:  "assign-ips eni-1 3"},
		{name: "one ENI create at a time",
			state: base(Settings{WarmIPTarget: 12}, ENI{ID: "eni-0", IPs: ip0}),
			edit:  func(s *State) { s.Pending.CreatingENI = true },
			want:  "", reason: "being attached"},
		{name: "busy ENIs are skipped and their room awaited",
			state: base(Settings{WarmIPTarget: 3}, ENI{ID: "eni-0"}),
			edit:  func(s *State) { s.Pending.Busy = map[string]bool{"eni-0": true} },
			want:  ""},
		{name: "addresses in flight count towards the target",
			state: base(Settings{WarmIPTarget: 5}, ENI{ID: "eni-0"}),
			edit:  func(s *State) { s.Pending.Addrs = 5 },
			want:  ""},
		{name: "subnet exhausted backs off",
			state: base(Settings{WarmIPTarget: 5}, ENI{ID: "eni-0"}),
			edit:  func(s *State) { s.Exhausted, s.Exhaustions = t0.Add(-time.Second), 1 },
			want:  "backoff +4s", reason: "subnet exhausted"},
		{name: "back-off doubles per failure",
			state: base(Settings{WarmIPTarget: 5}, ENI{ID: "eni-0"}),
			edit:  func(s *State) { s.Exhausted, s.Exhaustions = t0.Add(-time.Second), 3 },
			want:  "backoff +19s"},
		{name: "back-off over: try again",
			state: base(Settings{WarmIPTarget: 5}, ENI{ID: "eni-0"}),
			edit:  func(s *State) { s.Exhausted, s.Exhaustions = t0.Add(-10*time.Second), 1 },
			want:  "assign-ips eni-0 5"},
		{name: "prefix mode WARM_PREFIX_TARGET=1 fresh",
			state: base(Settings{PrefixDelegation: true, WarmPrefixTarget: 1, WarmENITarget: 1}, ENI{ID: "eni-0"}),
			edit:  func(s *State) { s.Limits = prefixLimits },
			want:  "assign-prefixes eni-0 1"},
		{name: "prefix mode: a partly used prefix is not a free prefix",
			state: base(Settings{PrefixDelegation: true, WarmPrefixTarget: 1}, ENI{ID: "eni-0", Prefixes: pfxs("10.0.2.0/28")}),
			edit:  func(s *State) { s.Limits, s.Assigned = prefixLimits, set(addrs("10.0.2.0", 1)) },
			want:  "assign-prefixes eni-0 1"},
		{name: "prefix mode releases fully free prefixes beyond the target",
			state: base(Settings{PrefixDelegation: true, WarmPrefixTarget: 1}, ENI{ID: "eni-0", Prefixes: pfxs("10.0.2.0/28", "10.0.2.16/28", "10.0.2.32/28", "10.0.2.48/28")}),
			edit:  func(s *State) { s.Limits, s.Assigned = prefixLimits, set(addrs("10.0.2.0", 1)) },
			want:  "unassign-prefixes eni-0 [10.0.2.48/28 10.0.2.32/28]"},
		{name: "prefix mode WARM_IP_TARGET=5 takes one prefix",
			state: base(Settings{PrefixDelegation: true, WarmIPTarget: 5, WarmPrefixTarget: 3}, ENI{ID: "eni-0"}),
			edit:  func(s *State) { s.Limits = prefixLimits },
			want:  "assign-prefixes eni-0 1"},
		{name: "prefix mode WARM_IP_TARGET=5 gives back a surplus prefix",
			state: base(Settings{PrefixDelegation: true, WarmIPTarget: 5}, ENI{ID: "eni-0", Prefixes: pfxs("10.0.2.0/28", "10.0.2.16/28")}),
			edit:  func(s *State) { s.Limits = prefixLimits },
			want:  "unassign-prefixes eni-0 [10.0.2.16/28]"},
		{name: "prefix mode MINIMUM_IP_TARGET=40 takes three prefixes",
			state: base(Settings{PrefixDelegation: true, MinimumIPTarget: 40}, ENI{ID: "eni-0"}),
			edit:  func(s *State) { s.Limits = prefixLimits },
			want:  "assign-prefixes eni-0 3"},
		{name: "prefix mode ignores WARM_ENI_TARGET: WARM_PREFIX_TARGET=0 keeps one free address",
			state: base(Settings{PrefixDelegation: true, WarmENITarget: 1}, ENI{ID: "eni-0"}),
			want:  "assign-prefixes eni-0 1"},
		{name: "prefix mode WARM_PREFIX_TARGET=0 adds nothing while an address is free",
			state: base(Settings{PrefixDelegation: true, WarmENITarget: 1}, ENI{ID: "eni-0", Prefixes: pfxs("10.0.2.0/28")}),
			edit:  func(s *State) { s.Limits, s.Assigned = prefixLimits, set(addrs("10.0.2.0", 15)) },
			want:  ""},
		{name: "prefix mode WARM_PREFIX_TARGET=0 adds a /28 when the last free address is taken",
			state: base(Settings{PrefixDelegation: true, WarmENITarget: 1}, ENI{ID: "eni-0", Prefixes: pfxs("10.0.2.0/28")}),
			edit:  func(s *State) { s.Limits, s.Assigned = prefixLimits, set(addrs("10.0.2.0", 16)) },
			want:  "assign-prefixes eni-0 1"},
		{name: "prefix mode WARM_PREFIX_TARGET=0 gives back a free /28 when another address is free",
			state: base(Settings{PrefixDelegation: true}, ENI{ID: "eni-0", Prefixes: pfxs("10.0.2.0/28", "10.0.2.16/28")}),
			edit:  func(s *State) { s.Limits, s.Assigned = prefixLimits, set(addrs("10.0.2.0", 15)) },
			want:  "unassign-prefixes eni-0 [10.0.2.16/28]"},
		{name: "prefix mode falls back to single addresses after InsufficientCidrBlocks",
			state: base(Settings{PrefixDelegation: true, WarmPrefixTarget: 1}, ENI{ID: "eni-0"}),
			edit:  func(s *State) { s.Limits, s.NoCIDRBlocks = prefixLimits, t0.Add(-time.Minute) },
			want:  "assign-ips eni-0 16", reason: "single addresses"},
		{name: "prefix fallback holds with single addresses",
			state: base(Settings{PrefixDelegation: true, WarmPrefixTarget: 1}, ENI{ID: "eni-0", IPs: addrs("10.0.1.10", 16)}),
			edit:  func(s *State) { s.Limits, s.NoCIDRBlocks = prefixLimits, t0.Add(-time.Minute) },
			want:  ""},
		{name: "prefix fallback over: prefixes again, then the single addresses go",
			state: base(Settings{PrefixDelegation: true, WarmPrefixTarget: 1}, ENI{ID: "eni-0", IPs: addrs("10.0.1.10", 16)}),
			edit:  func(s *State) { s.Limits, s.NoCIDRBlocks = prefixLimits, t0.Add(-time.Hour) },
			want:  "assign-prefixes eni-0 1"},
		{name: "prefix mode MAX_PODS caps prefixes",
			state: base(Settings{PrefixDelegation: true, MinimumIPTarget: 100, MaxPods: 20}, ENI{ID: "eni-0"}),
			edit:  func(s *State) { s.Limits = prefixLimits },
			want:  "assign-prefixes eni-0 2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.check(t) })
	}
}

func TestCooldownWake(t *testing.T) {
	s := base(Settings{WarmIPTarget: 1}, ENI{ID: "eni-0", IPs: addrs("10.0.1.10", 3)})
	s.Released = map[netip.Addr]time.Time{netip.MustParseAddr("10.0.1.10"): t0.Add(-10 * time.Second)}
	if p := Decide(s); !p.Wake.Equal(t0.Add(20 * time.Second)) {
		t.Fatalf("wake %v, want +20s", p.Wake.Sub(t0))
	}
}

// TestDecideNeverReleasesInUse runs the policy on random pools and checks its safety rules.
func TestDecideNeverReleasesInUse(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	creates, bounded := 0, 0
	for i := range 20000 {
		s := randomState(r)
		p := Decide(s)
		held := map[netip.Addr]bool{}
		for _, e := range s.ENIs {
			for _, a := range e.Addrs() {
				held[a] = true
			}
		}
		for _, a := range p.Actions {
			var gone []netip.Addr
			switch a.Kind {
			case UnassignIPs:
				gone = a.IPs
			case UnassignPrefixes:
				gone = ENI{Prefixes: a.Prefixes}.Addrs()
			case FreeENI:
				for _, e := range s.ENIs {
					if e.ID == a.ENI {
						if e.DeviceIndex == 0 || e.Keep {
							t.Fatalf("case %d: frees the primary ENI or one to keep", i)
						}
						gone = e.Addrs()
					}
				}
			case AssignIPs, AssignPrefixes:
				if s.Pending.Busy[a.ENI] {
					t.Fatalf("case %d: acts on busy %s", i, a.ENI)
				}
			}
			for _, x := range gone {
				if !s.Usable(x) {
					t.Fatalf("case %d: %s releases %s which is assigned or cooling down", i, a.Kind, x)
				}
			}
		}
		released, assigned, created := false, 0, -1
		for _, a := range p.Actions {
			released = released || a.Kind == UnassignIPs || a.Kind == UnassignPrefixes || a.Kind == FreeENI
			switch {
			case a.Kind == AssignIPs:
				assigned += a.Count
			case a.Kind == CreateENI:
				if a.Count < 0 || a.Count > s.Limits.Slots() {
					t.Fatalf("case %d: creates an ENI with %d slots, the limit is %d", i, a.Count, s.Limits.Slots())
				}
				if !a.ByPrefix {
					created = a.Count
				}
				creates++
				if s.SubnetKnown && !a.ByPrefix {
					bounded++
				}
			}
		}
		// A new ENI's primary address and its secondaries come out of the subnet too.
		if s.SubnetKnown && created >= 0 && created > max(s.SubnetFree-assigned-1, 0) {
			t.Fatalf("case %d: creates an ENI with %d addresses after asking for %d of a subnet with %d free", i, created, assigned, s.SubnetFree)
		}
		if released && !p.Over {
			t.Fatalf("case %d: releases without saying the pool is over", i)
		}
		if since, d := s.OverSince, s.Settings.ReleaseDelayOf(); released && d > 0 && (since.IsZero() || s.Now.Before(since.Add(d))) {
			t.Fatalf("case %d: releases before the delay (over since %v)", i, since)
		}
		if s.SubnetKnown && s.SubnetFree > 0 && assigned > s.SubnetFree {
			t.Fatalf("case %d: asks for %d addresses of a subnet with %d free", i, assigned, s.SubnetFree)
		}
		after := Count(s)
		if s.Settings.MaxPods > 0 && after.Total <= s.Settings.MaxPods {
			n := 0
			for _, a := range p.Actions {
				unit := map[Kind]int{AssignIPs: 1, AssignPrefixes: 16, CreateENI: 1}[a.Kind]
				if a.ByPrefix {
					unit = 16
				}
				n += a.Count * unit
			}
			if a := after.Total + n; a > s.Settings.MaxPods+15 {
				t.Fatalf("case %d: grows to %d past MAX_PODS=%d", i, a, s.Settings.MaxPods)
			}
		}
	}
	if creates < 100 || bounded < 100 {
		t.Fatalf("only %d random cases create an ENI, %d with a known subnet count: the test misses the create path", creates, bounded)
	}
}

func randomState(r *rand.Rand) State {
	st := Settings{WarmENITarget: r.IntN(3), PrefixDelegation: r.IntN(3) == 0}
	switch r.IntN(3) {
	case 0:
		st.WarmIPTarget = r.IntN(20)
	case 1:
		st.MinimumIPTarget = r.IntN(30)
	}
	if r.IntN(2) == 0 {
		st.WarmPrefixTarget = r.IntN(3)
	}
	if r.IntN(3) == 0 {
		st.MaxPods = r.IntN(60)
	}
	s := base(st)
	s.Limits = Limits{MaxENIs: 1 + r.IntN(4), IPv4PerENI: 2 + r.IntN(10)}
	s.Assigned, s.Released = map[netip.Addr]bool{}, map[netip.Addr]time.Time{}
	next := netip.MustParseAddr("10.0.0.0")
	for d := range 1 + r.IntN(s.Limits.MaxENIs) {
		e := ENI{ID: fmt.Sprint("eni-", d), DeviceIndex: d, Keep: r.IntN(4) == 0}
		for range r.IntN(s.Limits.Slots() + 1) {
			if st.PrefixDelegation && r.IntN(2) == 0 {
				e.Prefixes = append(e.Prefixes, netip.PrefixFrom(next, 28))
				for range 16 {
					next = next.Next()
				}
			} else {
				e.IPs = append(e.IPs, next)
				for range 16 {
					next = next.Next()
				}
			}
		}
		for _, a := range e.Addrs() {
			switch r.IntN(4) {
			case 0:
				s.Assigned[a] = true
			case 1:
				s.Released[a] = t0.Add(-time.Duration(r.IntN(60)) * time.Second)
			}
		}
		s.ENIs = append(s.ENIs, e)
	}
	if r.IntN(4) == 0 {
		s.Pending.Busy = map[string]bool{"eni-0": true}
	}
	if r.IntN(2) == 0 {
		s.Settings.ReleaseDelay = time.Duration(r.IntN(60)) * time.Second
		s.Settings.WarmENIReleaseDelay = time.Duration(r.IntN(60)) * time.Second
		if r.IntN(2) == 0 {
			s.OverSince = t0.Add(-time.Duration(r.IntN(90)) * time.Second)
		}
	}
	if r.IntN(2) == 0 {
		s.SubnetKnown, s.SubnetFree = true, r.IntN(40)
	}
	return s
}

// TestReleaseDelay covers the hysteresis: a pool above its target keeps the surplus for
// ReleaseDelay from OverSince (WarmENIReleaseDelay under WARM_ENI_TARGET), then gives all of it
// back at once.
func TestReleaseDelay(t *testing.T) {
	ip0 := addrs("10.0.1.10", 9)
	ip1 := addrs("10.0.1.30", 9)
	ip2 := addrs("10.0.1.50", 9)
	delayed := func(st Settings, enis ...ENI) State {
		s := base(st, enis...)
		s.Settings.ReleaseDelay, s.Settings.WarmENIReleaseDelay = 30*time.Second, 10*time.Second
		return s
	}
	tests := []struct {
		name   string
		state  State
		edit   func(*State)
		want   string
		over   bool
		wake   time.Duration // from t0; 0: no wake
		reason string
	}{
		{name: "first seen above target: nothing released, wake after the delay",
			state: delayed(Settings{WarmIPTarget: 3}, ENI{ID: "eni-0", IPs: ip0}),
			edit:  func(s *State) { s.Assigned = set(ip0[:2]) },
			want:  "", over: true, wake: 30 * time.Second, reason: "above WARM_IP_TARGET=3 MINIMUM_IP_TARGET=0 (resting addresses counted, 1 of them free now) by 4 addresses"},
		{name: "above target for part of the delay: still held, wake when it ends",
			state: delayed(Settings{WarmIPTarget: 3}, ENI{ID: "eni-0", IPs: ip0}),
			edit:  func(s *State) { s.Assigned, s.OverSince = set(ip0[:2]), t0.Add(-20*time.Second) },
			want:  "", over: true, wake: 10 * time.Second, reason: "unless pods take them"},
		{name: "a cooldown ending first wakes the agent first",
			state: delayed(Settings{WarmIPTarget: 3}, ENI{ID: "eni-0", IPs: ip0}),
			edit: func(s *State) {
				s.Assigned, s.OverSince = set(ip0[:2]), t0.Add(-20*time.Second)
				s.Released = map[netip.Addr]time.Time{ip0[2]: t0.Add(-25 * time.Second)}
			},
			want: "", over: true, wake: 5 * time.Second},
		{name: "delay over: the whole surplus goes in one call",
			state: delayed(Settings{WarmIPTarget: 3}, ENI{ID: "eni-0", IPs: ip0}),
			edit:  func(s *State) { s.Assigned, s.OverSince = set(ip0[:2]), t0.Add(-30*time.Second) },
			want:  "unassign-ips eni-0 [10.0.1.18 10.0.1.17 10.0.1.16 10.0.1.15]", over: true, reason: "releasing"},
		{name: "delay over across ENIs: one call per ENI, the emptied ENI freed",
			state: delayed(Settings{WarmIPTarget: 3}, ENI{ID: "eni-0", IPs: ip0}, ENI{ID: "eni-1", DeviceIndex: 1, IPs: ip1[:4]}),
			edit:  func(s *State) { s.Assigned, s.OverSince = set(ip0[:4]), t0.Add(-time.Minute) },
			want:  "free-eni eni-1; unassign-ips eni-0 [10.0.1.18 10.0.1.17]", over: true},
		{name: "an unused ENI beyond WARM_ENI_TARGET is held for the WARM_ENI_TARGET delay",
			state: delayed(Settings{WarmENITarget: 1}, ENI{ID: "eni-0", IPs: ip0}, ENI{ID: "eni-1", DeviceIndex: 1, IPs: ip1}, ENI{ID: "eni-2", DeviceIndex: 2, IPs: ip2[:5]}),
			edit:  func(s *State) { s.Assigned, s.OverSince = set(ip0[:2]), t0.Add(-9*time.Second) },
			want:  "", over: true, wake: time.Second, reason: "by 5 addresses"},
		{name: "and freed once that delay is over, before the pool's release delay",
			state: delayed(Settings{WarmENITarget: 1}, ENI{ID: "eni-0", IPs: ip0}, ENI{ID: "eni-1", DeviceIndex: 1, IPs: ip1}, ENI{ID: "eni-2", DeviceIndex: 2, IPs: ip2[:5]}),
			edit:  func(s *State) { s.Assigned, s.OverSince = set(ip0[:2]), t0.Add(-10*time.Second) },
			want:  "free-eni eni-2", over: true},
		{name: "WARM_ENI_TARGET with no delay of its own frees the ENI at once",
			state: base(Settings{WarmENITarget: 1, ReleaseDelay: 30 * time.Second}, ENI{ID: "eni-0", IPs: ip0}, ENI{ID: "eni-1", DeviceIndex: 1, IPs: ip1}, ENI{ID: "eni-2", DeviceIndex: 2, IPs: ip2[:5]}),
			edit:  func(s *State) { s.Assigned = set(ip0[:2]) },
			want:  "free-eni eni-2", over: true},
		{name: "under the IP targets an unused ENI waits for the pool's release delay",
			state: delayed(Settings{WarmIPTarget: 3}, ENI{ID: "eni-0", IPs: ip0}, ENI{ID: "eni-1", DeviceIndex: 1, IPs: ip1[:4]}),
			edit:  func(s *State) { s.Assigned, s.OverSince = set(ip0[:4]), t0.Add(-10*time.Second) },
			want:  "", over: true, wake: 20 * time.Second},
		{name: "and in prefix mode",
			state: delayed(Settings{PrefixDelegation: true, WarmPrefixTarget: 1, WarmENITarget: 1}, ENI{ID: "eni-0", Prefixes: pfxs("10.0.2.0/28", "10.0.2.16/28", "10.0.2.32/28")}),
			edit:  func(s *State) { s.OverSince = t0.Add(-10 * time.Second) },
			want:  "", over: true, wake: 20 * time.Second},
		{name: "an emptied ENI with no addresses left is held too",
			state: delayed(Settings{WarmIPTarget: 3}, ENI{ID: "eni-0", IPs: ip0}, ENI{ID: "eni-1", DeviceIndex: 1}),
			edit:  func(s *State) { s.Assigned = set(ip0[:6]) },
			want:  "", over: true, wake: 30 * time.Second},
		{name: "at target is not over",
			state: delayed(Settings{WarmIPTarget: 3}, ENI{ID: "eni-0", IPs: ip0[:5]}),
			edit:  func(s *State) { s.Assigned, s.OverSince = set(ip0[:2]), t0.Add(-time.Hour) },
			want:  "", over: false, reason: "at target"},
		{name: "only resting addresses beyond the target is not over",
			state: delayed(Settings{WarmIPTarget: 3}, ENI{ID: "eni-0", IPs: ip0[:7]}),
			edit: func(s *State) {
				s.Assigned = set(ip0[:2])
				s.Released = map[netip.Addr]time.Time{ip0[5]: t0.Add(-time.Second), ip0[6]: t0.Add(-time.Second)}
			},
			want: "", over: false, wake: 29 * time.Second},
		{name: "growing is not over, whatever OverSince says",
			state: delayed(Settings{WarmIPTarget: 3}, ENI{ID: "eni-0", IPs: ip0[:4]}),
			edit:  func(s *State) { s.Assigned, s.OverSince = set(ip0[:2]), t0.Add(-time.Hour) },
			want:  "assign-ips eni-0 1", over: false},
		{name: "OverSince in the future counts from now",
			state: delayed(Settings{WarmIPTarget: 3}, ENI{ID: "eni-0", IPs: ip0}),
			edit:  func(s *State) { s.Assigned, s.OverSince = set(ip0[:2]), t0.Add(time.Hour) },
			want:  "", over: true, wake: 30 * time.Second},
		{name: "no delay releases at once, as before",
			state: base(Settings{WarmIPTarget: 3}, ENI{ID: "eni-0", IPs: ip0}),
			edit:  func(s *State) { s.Assigned = set(ip0[:2]) },
			want:  "unassign-ips eni-0 [10.0.1.18 10.0.1.17 10.0.1.16 10.0.1.15]", over: true},
		{name: "the primary ENI and ENIs to keep stay after the delay",
			state: delayed(Settings{WarmIPTarget: 1}, ENI{ID: "eni-0"}, ENI{ID: "eni-1", DeviceIndex: 1, IPs: ip1[:3], Keep: true}),
			edit:  func(s *State) { s.OverSince = t0.Add(-time.Hour) },
			want:  "unassign-ips eni-1 [10.0.1.32 10.0.1.31]", over: true},
		{name: "assigned and cooling addresses stay after the delay",
			state: delayed(Settings{WarmIPTarget: 1}, ENI{ID: "eni-0", IPs: ip0[:5]}),
			edit: func(s *State) {
				s.Assigned, s.OverSince = set(ip0[:2]), t0.Add(-time.Hour)
				s.Released = map[netip.Addr]time.Time{ip0[4]: t0.Add(-time.Second)}
			},
			want: "unassign-ips eni-0 [10.0.1.13]", over: true, wake: 29 * time.Second},
		{name: "an ENI emptied down to MAX_PODS is freed, not unassigned",
			state: delayed(Settings{WarmENITarget: 1, MaxPods: 9}, ENI{ID: "eni-0", IPs: ip0}, ENI{ID: "eni-1", DeviceIndex: 1, IPs: ip1[:5]}),
			edit:  func(s *State) { s.Assigned, s.OverSince = set(ip0[:4]), t0.Add(-time.Hour) },
			want:  "free-eni eni-1", over: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := planCase{tc.name, tc.state, tc.edit, tc.want, tc.reason}.check(t)
			if p.Over != tc.over {
				t.Errorf("over %v, want %v (%s)", p.Over, tc.over, p.Reason)
			}
			var wake time.Duration
			if !p.Wake.IsZero() {
				wake = p.Wake.Sub(t0)
			}
			if wake != tc.wake {
				t.Errorf("wake %v, want %v", wake, tc.wake)
			}
		})
	}
}

// fullPrimary is a node whose primary ENI's nine addresses are taken by pods, with the subnet's
// free count known or not.
func fullPrimary(st Settings, known bool, free int) State {
	ip0 := addrs("10.0.1.10", 9)
	s := base(st, ENI{ID: "eni-0", IPs: ip0})
	s.Assigned = set(ip0[:3]) // 6 free
	s.SubnetKnown, s.SubnetFree = known, free
	return s
}

// TestSubnetBoundedGrowth: under WARM_ENI_TARGET an ENI is filled in one call as far as the
// subnet's known free count goes; short of that the request takes what is left, and an unknown
// count falls back to the shortfall. The IP targets keep asking for the shortfall.
func TestSubnetBoundedGrowth(t *testing.T) {
	ip0 := addrs("10.0.1.10", 9)
	eniTarget := func(known bool, free int) State {
		s := base(Settings{WarmENITarget: 1}, ENI{ID: "eni-0", IPs: ip0}, ENI{ID: "eni-1", DeviceIndex: 1})
		s.Assigned = set(ip0[:3]) // 6 free of the 9 wanted: 3 short
		s.SubnetKnown, s.SubnetFree = known, free
		return s
	}
	tests := []planCase{
		{name: "subnet roomy: the ENI is filled in one call",
			state: eniTarget(true, 200), want: "assign-ips eni-1 9"},
		{name: "batch bounded by the subnet's free count",
			state: eniTarget(true, 5), want: "assign-ips eni-1 5"},
		{name: "never less than the shortfall when the subnet has it",
			state: eniTarget(true, 3), want: "assign-ips eni-1 3"},
		{name: "unknown subnet count falls back to the shortfall",
			state: eniTarget(false, 0), want: "assign-ips eni-1 3"},
		{name: "subnet smaller than the shortfall: ask for what is left",
			state: eniTarget(true, 2), want: "assign-ips eni-1 2", reason: "no more free addresses"},
		{name: "none known free: the shortfall is asked, EC2 has the last word",
			state: eniTarget(true, 0), want: "assign-ips eni-1 3"},
		{name: "MAX_PODS bounds the batch",
			state: eniTarget(true, 200),
			edit:  func(s *State) { s.Settings.MaxPods = 14 },
			want:  "assign-ips eni-1 5"},
		{name: "a fresh node fills its primary ENI",
			state: base(Settings{WarmENITarget: 1}, ENI{ID: "eni-0"}),
			edit:  func(s *State) { s.SubnetKnown, s.SubnetFree = true, 100 },
			want:  "assign-ips eni-0 9"},
		{name: "WARM_ENI_TARGET=0 fills the ENI a pod waits for",
			state: base(Settings{}, ENI{ID: "eni-0"}),
			edit:  func(s *State) { s.Demand, s.SubnetKnown, s.SubnetFree = 1, true, 100 },
			want:  "assign-ips eni-0 9"},
		{name: "the subnet's last addresses span two ENIs, then nothing more is asked",
			state: base(Settings{WarmENITarget: 2}, ENI{ID: "eni-0", IPs: ip0[:7]}, ENI{ID: "eni-1", DeviceIndex: 1}),
			edit:  func(s *State) { s.SubnetKnown, s.SubnetFree = true, 6 },
			want:  "assign-ips eni-0 2; assign-ips eni-1 4", reason: "no more free addresses"},
		{name: "a filled ENI counts against the subnet before another ENI is attached",
			state: base(Settings{WarmENITarget: 2}, ENI{ID: "eni-0"}),
			edit:  func(s *State) { s.SubnetKnown, s.SubnetFree = true, 9 },
			want:  "assign-ips eni-0 9", reason: "no more free addresses"},
		{name: "WARM_IP_TARGET asks for the shortfall, not the ENI's room",
			state: base(Settings{WarmIPTarget: 3}, ENI{ID: "eni-0"}),
			edit:  func(s *State) { s.SubnetKnown, s.SubnetFree = true, 200 },
			want:  "assign-ips eni-0 3"},
		{name: "WARM_IP_TARGET short of subnet: what is left",
			state: base(Settings{WarmIPTarget: 5}, ENI{ID: "eni-0"}),
			edit:  func(s *State) { s.SubnetKnown, s.SubnetFree = true, 2 },
			want:  "assign-ips eni-0 2"},
		{name: "prefix mode ignores the address count",
			state: base(Settings{PrefixDelegation: true, WarmPrefixTarget: 1}, ENI{ID: "eni-0"}),
			edit:  func(s *State) { s.SubnetKnown, s.SubnetFree = true, 3 },
			want:  "assign-prefixes eni-0 1"},
		// A new ENI comes with its addresses, sized as an assign on it would be.
		{name: "new ENI: filled in its create call",
			state: fullPrimary(Settings{WarmENITarget: 1}, true, 200),
			want:  "create-eni 9", reason: "attaching another ENI with 9 addresses"},
		{name: "new ENI: its primary address counts against the subnet",
			state: fullPrimary(Settings{WarmENITarget: 1}, true, 6),
			want:  "create-eni 5"},
		{name: "new ENI: a subnet short of the shortfall gives what is left after the primary",
			state: fullPrimary(Settings{WarmENITarget: 1}, true, 3),
			want:  "create-eni 2"},
		{name: "new ENI: room for its primary only",
			state: fullPrimary(Settings{WarmENITarget: 1}, true, 1),
			want:  "create-eni 0"},
		{name: "new ENI: none known free, no address asked with it",
			state: fullPrimary(Settings{WarmENITarget: 1}, true, 0),
			want:  "create-eni 0"},
		{name: "new ENI: unknown subnet count, the shortfall",
			state: fullPrimary(Settings{WarmENITarget: 1}, false, 0),
			want:  "create-eni 3"},
		{name: "new ENI: MAX_PODS bounds the fill",
			state: fullPrimary(Settings{WarmENITarget: 1, MaxPods: 14}, true, 200),
			want:  "create-eni 5"},
		{name: "new ENI: MAX_PODS below the shortfall",
			state: fullPrimary(Settings{WarmENITarget: 1, MaxPods: 11}, false, 0),
			want:  "create-eni 2"},
		{name: "new ENI: WARM_IP_TARGET asks for the shortfall",
			state: fullPrimary(Settings{WarmIPTarget: 9}, true, 200),
			want:  "create-eni 3"},
		{name: "new ENI: the shortfall beyond what existing ENIs take",
			state: base(Settings{WarmIPTarget: 4}, ENI{ID: "eni-0", IPs: ip0[:7]}),
			edit: func(s *State) {
				s.Assigned = set(ip0[:7])
				s.SubnetKnown, s.SubnetFree = true, 200
			},
			want: "assign-ips eni-0 2; create-eni 2"},
		{name: "new ENI: the subnet's count is shared with the assigns before it",
			state: base(Settings{WarmIPTarget: 6}, ENI{ID: "eni-0", IPs: ip0[:7]}),
			edit: func(s *State) {
				s.Assigned = set(ip0[:7])
				s.SubnetKnown, s.SubnetFree = true, 5
			},
			want: "assign-ips eni-0 2; create-eni 2"},
		{name: "new ENI: no more than an ENI holds",
			state: fullPrimary(Settings{WarmIPTarget: 30}, true, 200),
			want:  "create-eni 9"},
		{name: "new ENI: prefix mode asks for the prefixes still missing",
			state: fullPrimary(Settings{PrefixDelegation: true, WarmPrefixTarget: 2}, true, 3),
			want:  "create-eni 2 prefixes", reason: "with 2 prefixes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.check(t) })
	}
}
