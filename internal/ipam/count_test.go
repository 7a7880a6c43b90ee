package ipam

import (
	"strings"
	"testing"
)

// TestCapacity: the pods a node can hold come from the ENIs it may manage and the slots they
// have left, not from the instance type alone (issue 12 item 2).
func TestCapacity(t *testing.T) {
	t3medium := Limits{MaxENIs: 3, IPv4PerENI: 6} // 5 slots per ENI
	m5large := Limits{MaxENIs: 3, IPv4PerENI: 10}
	st := func(l Limits, s Settings, enis ...ENI) State {
		x := base(s, enis...)
		x.Limits = l
		return x
	}
	cases := []struct {
		name  string
		state State
		edit  func(*State)
		pods  int
		enis  int
		limit string
	}{
		{name: "t3.medium, empty primary", state: st(t3medium, Settings{}, ENI{ID: "eni-0"}), pods: 15, enis: 3, limit: "3 ENIs x 5 addresses"},
		{name: "t3.medium, device 1 no_manage", state: st(t3medium, Settings{}, ENI{ID: "eni-0"}),
			edit: func(s *State) { s.Unmanaged = 1 }, pods: 10, enis: 2, limit: "less 1 tagged no_manage"},
		{name: "MAX_ENI", state: st(t3medium, Settings{MaxENI: 2}, ENI{ID: "eni-0"}), pods: 10, enis: 2, limit: "MAX_ENI=2"},
		{name: "MAX_ENI and no_manage both count the attachment", state: st(t3medium, Settings{MaxENI: 2}, ENI{ID: "eni-0"}),
			edit: func(s *State) { s.Unmanaged = 1 }, pods: 5, enis: 1},
		{name: "MAX_PODS below the ENIs", state: st(m5large, Settings{MaxPods: 2}, ENI{ID: "eni-0", IPs: addrs("10.0.1.10", 9)}),
			pods: 2, enis: 3, limit: "MAX_PODS=2"},
		{name: "MAX_PODS above the ENIs does not raise it", state: st(t3medium, Settings{MaxPods: 100}, ENI{ID: "eni-0"}), pods: 15, enis: 3},
		{name: "prefix mode", state: st(m5large, Settings{PrefixDelegation: true}, ENI{ID: "eni-0"}), pods: 3 * 9 * 16, enis: 3, limit: "/28 prefixes of 16"},
		{name: "prefix mode: slots taken by single addresses hold one each",
			state: st(m5large, Settings{PrefixDelegation: true}, ENI{ID: "eni-0", IPs: addrs("10.0.1.10", 4), Prefixes: pfxs("10.0.1.32/28")}),
			pods:  4 + 16 + 4*16 + 2*9*16, enis: 3},
		{name: "prefix fallback on a fragmented subnet: free slots hold one address",
			state: st(m5large, Settings{PrefixDelegation: true}, ENI{ID: "eni-0", Prefixes: pfxs("10.0.1.32/28")}),
			edit:  func(s *State) { s.NoCIDRBlocks = t0.Add(-s.Settings.PrefixFallback / 2) },
			pods:  16 + 8 + 2*9, enis: 3, limit: "single addresses while no aligned /28 is free"},
		{name: "prefix fallback over", state: st(m5large, Settings{PrefixDelegation: true}, ENI{ID: "eni-0", Prefixes: pfxs("10.0.1.32/28")}),
			edit: func(s *State) { s.NoCIDRBlocks = t0.Add(-2 * s.Settings.PrefixFallback) },
			pods: 16 + 8*16 + 2*9*16, enis: 3},
		{name: "an ENI being set up counts as attached, at full slots", state: st(t3medium, Settings{}, ENI{ID: "eni-0"}),
			edit: func(s *State) { s.SettingUp, s.Unmanaged = 1, 1 }, pods: 10, enis: 2},
	}
	for _, c := range cases {
		s := c.state
		if c.edit != nil {
			c.edit(&s)
		}
		got := CapacityOf(s)
		if got.Pods != c.pods || got.ENIs != c.enis || !strings.Contains(got.Limit, c.limit) {
			t.Errorf("%s: got %+v, want %d pods on %d ENIs, limit mentioning %q", c.name, got, c.pods, c.enis, c.limit)
		}
		if got.ByMaxPods != (s.Settings.MaxPods > 0 && s.Settings.MaxPods == got.Pods && strings.HasPrefix(got.Limit, "MAX_PODS")) {
			t.Errorf("%s: ByMaxPods %v with limit %q", c.name, got.ByMaxPods, got.Limit)
		}
	}
}

// TestDecideStopsAtManagedENIs: a no_manage ENI takes an attachment, so the policy does not
// create an ENI the instance cannot attach.
func TestDecideStopsAtManagedENIs(t *testing.T) {
	s := base(Settings{WarmIPTarget: 20}, ENI{ID: "eni-0", IPs: addrs("10.0.1.10", 9)}, ENI{ID: "eni-2", DeviceIndex: 2, IPs: addrs("10.0.1.30", 9)})
	s.Unmanaged = 1
	p := Decide(s)
	if len(p.Actions) != 0 || !strings.Contains(p.Reason, "all 2 ENIs pods may use are full") || !strings.Contains(p.Reason, "less 1 tagged no_manage") {
		t.Fatalf("plan %s: %s", show(p), p.Reason)
	}
	s.Unmanaged = 0
	if p := Decide(s); len(p.Actions) != 1 || p.Actions[0].Kind != CreateENI {
		t.Fatalf("without the no_manage ENI the third ENI is created: %s", show(p))
	}
}

// TestWaitingADDsKeepTheirAddresses: with no release delay, an ENI fetched for a pod whose ADD
// answered try-again is not freed before the pod's retry takes an address (a planner-vs-agent
// comparison found WARM_ENI_TARGET=0 with VPCNET_POOL_RELEASE_DELAY=0 attaching and freeing the
// same ENI forever).
func TestWaitingADDsKeepTheirAddresses(t *testing.T) {
	s := base(Settings{}, ENI{ID: "eni-0", IPs: addrs("10.0.1.10", 9)}, ENI{ID: "eni-1", DeviceIndex: 1, IPs: addrs("10.0.1.30", 9)})
	s.Assigned = set(addrs("10.0.1.10", 9))
	if p := Decide(s); len(p.Actions) != 1 || p.Actions[0].Kind != FreeENI {
		t.Fatalf("nobody waiting: the surplus ENI goes: %s", show(p))
	}
	s.Waiting = 1
	if p := Decide(s); len(p.Actions) != 0 {
		t.Fatalf("an ADD waits: the ENI stays: %s (%s)", show(p), p.Reason)
	}
	s = base(Settings{WarmIPTarget: 1}, ENI{ID: "eni-0", IPs: addrs("10.0.1.10", 6)})
	s.Assigned, s.Waiting = set(addrs("10.0.1.10", 2)), 3
	p := Decide(s)
	if len(p.Actions) != 1 || len(p.Actions[0].IPs) != 1 {
		t.Fatalf("4 free, 3 waiting, WARM_IP_TARGET=1: one address goes, got %s", show(p))
	}
}
