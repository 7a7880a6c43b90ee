package plan

import (
	"testing"

	"github.com/vpcnet/vpcnet/internal/catalog"
)

func typ(t *testing.T, name string) catalog.InstanceType {
	t.Helper()
	it, err := catalog.Builtin().Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return it
}

// TestWarmArithmetic checks the node pool under every warm setting against numbers worked out
// by hand from the agent's policy (ipam.Decide) and kubelet's max pods (m5.large: 3 ENIs x 9 slots; t3.medium: 3 x 5).
func TestWarmArithmetic(t *testing.T) {
	tests := []struct {
		name      string
		typ       string
		prefix    bool
		pods      int
		warm      Warm
		maxPods   int
		enis      int
		addresses int
		prefixes  int
		without   int
		limit     string
	}{
		// WARM_ENI_TARGET: whole ENIs, ceil(pods/9) + W of them, at most 3.
		{"eni=1 no pods", "m5.large", false, 0, Warm{ENITarget: 1}, 0, 1, 9, 0, 0, ""},
		{"eni=1 5 pods", "m5.large", false, 5, Warm{ENITarget: 1}, 0, 2, 18, 0, 0, ""},
		{"eni=1 9 pods", "m5.large", false, 9, Warm{ENITarget: 1}, 0, 2, 18, 0, 0, ""},
		{"eni=1 10 pods", "m5.large", false, 10, Warm{ENITarget: 1}, 0, 3, 27, 0, 0, ""},
		{"eni=1 20 pods hits max ENIs", "m5.large", false, 20, Warm{ENITarget: 1}, 0, 3, 27, 0, 0, "max ENIs"},
		{"eni=1 30 pods: kubelet admits 27 (max pods 29), the ENIs are full", "m5.large", false, 30, Warm{ENITarget: 1}, 0, 3, 27, 0, 3, "max ENIs"},
		{"eni=2 1 pod", "m5.large", false, 1, Warm{ENITarget: 2}, 0, 3, 27, 0, 0, ""},
		{"eni=2 t3.medium 4 pods", "t3.medium", false, 4, Warm{ENITarget: 2}, 0, 3, 15, 0, 0, ""},
		// WARM_ENI_TARGET=0: no warm pool; a pod that finds no free address grows it, filling the ENI.
		{"eni=0 no pods", "m5.large", false, 0, Warm{}, 0, 1, 0, 0, 0, ""},
		{"eni=0 8 pods", "m5.large", false, 8, Warm{}, 0, 1, 9, 0, 0, ""},
		{"eni=0 9 pods", "m5.large", false, 9, Warm{}, 0, 1, 9, 0, 0, ""},
		{"eni=0 10 pods", "m5.large", false, 10, Warm{}, 0, 2, 18, 0, 0, ""},
		// kubelet's max pods does not cap the agent's warm pool (MAX_PODS is unset).
		{"eni=1 max pods 10", "m5.large", false, 5, Warm{ENITarget: 1}, 10, 2, 18, 0, 0, ""},
		{"eni=1 max pods 9", "m5.large", false, 5, Warm{ENITarget: 1}, 9, 2, 18, 0, 0, ""},
		// WARM_IP_TARGET: pods + W addresses, spread over as few ENIs as hold them.
		{"ip=5 no pods", "m5.large", false, 0, Warm{ENITarget: 1, IPTarget: 5}, 0, 1, 5, 0, 0, ""},
		{"ip=5 20 pods", "m5.large", false, 20, Warm{ENITarget: 1, IPTarget: 5}, 0, 3, 25, 0, 0, ""},
		{"ip=5 25 pods hits max ENIs", "m5.large", false, 25, Warm{IPTarget: 5}, 0, 3, 27, 0, 0, "max ENIs"},
		{"ip=1 9 pods", "m5.large", false, 9, Warm{IPTarget: 1}, 0, 2, 10, 0, 0, ""},
		// MINIMUM_IP_TARGET: at least M addresses, and pods + WARM_IP_TARGET when that is more.
		{"min=20 no pods", "m5.large", false, 0, Warm{MinimumIPTarget: 20}, 0, 3, 20, 0, 0, ""},
		{"min=20 3 pods", "m5.large", false, 3, Warm{MinimumIPTarget: 20}, 0, 3, 20, 0, 0, ""},
		{"min=10 ip=2 12 pods", "m5.large", false, 12, Warm{IPTarget: 2, MinimumIPTarget: 10}, 0, 2, 14, 0, 0, ""},
		{"min=10 ip=2 5 pods", "m5.large", false, 5, Warm{IPTarget: 2, MinimumIPTarget: 10}, 0, 2, 10, 0, 0, ""},
		// MINIMUM_IP_TARGET alone: no warm addresses beyond the minimum, but every pod that finds
		// none free grows the pool (issue 12 item 4: the agent gives all 12 an address).
		{"min=8 only, 6 pods", "m5.large", false, 6, Warm{MinimumIPTarget: 8}, 0, 1, 8, 0, 0, ""},
		{"min=8 only, 12 pods", "m5.large", false, 12, Warm{MinimumIPTarget: 8}, 0, 2, 12, 0, 0, ""},
		{"prefix min=8 only, 20 pods", "m5.large", true, 20, Warm{MinimumIPTarget: 8}, 0, 1, 32, 2, 0, ""},
		// IP targets with max pods: kubelet admits max pods - 2 pods; the minimum is held anyway.
		{"min=25 max pods 10", "m5.large", false, 0, Warm{MinimumIPTarget: 25}, 10, 3, 25, 0, 0, ""},
		{"ip=1 pods 20 max pods 12", "m5.large", false, 20, Warm{IPTarget: 1}, 12, 2, 11, 0, 10, "max pods"},
		// WARM_PREFIX_TARGET: ceil(pods/16) + W prefixes; W=0 adds one once no address is free.
		{"prefix=0 no pods", "m5.large", true, 0, Warm{ENITarget: 1}, 0, 1, 16, 1, 0, ""},
		{"prefix=0 15 pods", "m5.large", true, 15, Warm{ENITarget: 1}, 0, 1, 16, 1, 0, ""},
		{"prefix=0 16 pods", "m5.large", true, 16, Warm{ENITarget: 1}, 0, 1, 32, 2, 0, ""},
		{"prefix=1 1 pod", "m5.large", true, 1, Warm{PrefixTarget: 1}, 0, 1, 32, 2, 0, ""},
		{"prefix=1 16 pods", "m5.large", true, 16, Warm{PrefixTarget: 1}, 0, 1, 32, 2, 0, ""},
		{"prefix=2 17 pods", "m5.large", true, 17, Warm{PrefixTarget: 2}, 0, 1, 64, 4, 0, ""},
		{"prefix=9 1 pod: 9 free /28s beside the used one", "m5.large", true, 1, Warm{PrefixTarget: 9}, 0, 2, 160, 10, 0, ""},
		{"prefix=9 spills onto a 2nd ENI", "m5.large", true, 1, Warm{PrefixTarget: 9}, 300, 2, 160, 10, 0, ""},
		// prefix mode: max pods defaults to the recommended cap, 110 on m5.large: 108 pods, 7 prefixes.
		{"prefix=0 200 pods capped at 110", "m5.large", true, 200, Warm{}, 0, 1, 112, 7, 92, "max pods"},
		// IP targets override WARM_PREFIX_TARGET and count in whole /28s.
		{"prefix ip=5 20 pods", "m5.large", true, 20, Warm{IPTarget: 5, PrefixTarget: 3}, 0, 1, 32, 2, 0, ""},
		{"prefix min=40 no pods", "m5.large", true, 0, Warm{MinimumIPTarget: 40}, 0, 1, 48, 3, 0, ""},
		{"prefix ip=16 16 pods", "m5.large", true, 16, Warm{IPTarget: 16}, 0, 1, 32, 2, 0, ""},
		// WARM_ENI_TARGET does not apply in prefix mode.
		{"prefix ignores eni=3", "m5.large", true, 1, Warm{ENITarget: 3}, 0, 1, 16, 1, 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := Input{Type: typ(t, tc.typ), PodsPerNode: tc.pods, Warm: tc.warm, MaxPods: tc.maxPods, PrefixDelegation: tc.prefix}
			mode := Secondary
			if tc.prefix {
				mode = Prefix
			}
			n := node(in, mode)
			if n.ENIs != tc.enis || n.Addresses != tc.addresses || n.Prefixes != tc.prefixes || n.PodsWithoutAddress != tc.without || n.Limit != tc.limit {
				t.Fatalf("node = ENIs %d, addresses %d, prefixes %d, without %d, limit %q; want %d, %d, %d, %d, %q",
					n.ENIs, n.Addresses, n.Prefixes, n.PodsWithoutAddress, n.Limit, tc.enis, tc.addresses, tc.prefixes, tc.without, tc.limit)
			}
			if n.Warm != n.Addresses-n.PodsWithAddress || n.SubnetAddresses != n.ENIs+n.Addresses {
				t.Fatalf("inconsistent node %+v", n)
			}
		})
	}
}

func TestMaxPodsPerMode(t *testing.T) {
	m5 := typ(t, "m5.large")
	big := typ(t, "m5.24xlarge")
	tests := []struct {
		it       catalog.InstanceType
		mode     Mode
		override int
		want     int
	}{
		{m5, Secondary, 0, 29},
		{m5, Prefix, 0, 110},
		{m5, Overlay, 0, 110},
		{big, Secondary, 0, 737},
		{big, Prefix, 0, 250},
		{big, Overlay, 0, 250},
		{m5, Prefix, 58, 58},
		{m5, Secondary, 17, 17},
	}
	for _, tc := range tests {
		n := node(Input{Type: tc.it, MaxPods: tc.override, Warm: DefaultWarm()}, tc.mode)
		if n.MaxPods != tc.want {
			t.Errorf("%s %s max pods %d: got %d; want %d", tc.it.Name, tc.mode, tc.override, n.MaxPods, tc.want)
		}
	}
	// Pods + 2 host-network pods against max pods.
	for _, tc := range []struct {
		pods    int
		exceeds bool
	}{{27, false}, {28, true}} {
		n := node(Input{Type: m5, PodsPerNode: tc.pods, Warm: DefaultWarm()}, Secondary)
		if n.ExceedsMaxPods != tc.exceeds {
			t.Errorf("m5.large %d pods: exceeds max pods = %v; want %v", tc.pods, n.ExceedsMaxPods, tc.exceeds)
		}
	}
}

func TestRules(t *testing.T) {
	m5 := typ(t, "m5.large")
	for _, tc := range []struct {
		w    Warm
		mode Mode
		want string
	}{
		{DefaultWarm(), Secondary, "WARM_ENI_TARGET=1: keep 1 ENI's worth (9) of free addresses"},
		{Warm{}, Secondary, "WARM_ENI_TARGET=0: no warm pool; each pod that finds no free address grows it"},
		{Warm{IPTarget: 3}, Secondary, "WARM_IP_TARGET=3, MINIMUM_IP_TARGET=0: keep 3 free and hold at least 0 addresses"},
		{Warm{PrefixTarget: 2}, Prefix, "WARM_PREFIX_TARGET=2: keep 2 free /28 prefixes"},
		{Warm{MinimumIPTarget: 9}, Prefix, "WARM_IP_TARGET=0, MINIMUM_IP_TARGET=9: keep 0 free and hold at least 9 addresses; each pod beyond the minimum grows the pool as it arrives, counted in whole /28s"},
		{Warm{IPTarget: 2, MinimumIPTarget: 9}, Prefix, "WARM_IP_TARGET=2, MINIMUM_IP_TARGET=9: keep 2 free and hold at least 9 addresses, counted in whole /28s"},
	} {
		if got := node(Input{Type: m5, Warm: tc.w}, tc.mode).Rule; got != tc.want {
			t.Errorf("%s %+v rule %q; want %q", tc.mode, tc.w, got, tc.want)
		}
	}
}

// TestAWSPrefixExamples replays the worked examples in the AWS VPC CNI's prefix-mode documentation
// (t3.small: 3 ENIs x 3 prefix slots).
func TestAWSPrefixExamples(t *testing.T) {
	small := typ(t, "t3.small")
	tests := []struct {
		warm           Warm
		pods, prefixes int
		enis           int
	}{
		{Warm{PrefixTarget: 1}, 0, 1, 1},
		{Warm{PrefixTarget: 1}, 5, 2, 1},
		{Warm{PrefixTarget: 1}, 16, 2, 1},
		{Warm{PrefixTarget: 1}, 17, 3, 1},
		{Warm{PrefixTarget: 1}, 58, 5, 2},
		{Warm{IPTarget: 1, MinimumIPTarget: 1}, 0, 1, 1},
		{Warm{IPTarget: 1, MinimumIPTarget: 1}, 5, 1, 1},
		{Warm{IPTarget: 1, MinimumIPTarget: 1}, 17, 2, 1},
		{Warm{IPTarget: 1, MinimumIPTarget: 1}, 58, 4, 2},
		{Warm{IPTarget: 7, MinimumIPTarget: 20}, 5, 2, 1},
		{Warm{IPTarget: 7, MinimumIPTarget: 20}, 17, 2, 1},
		{Warm{IPTarget: 7, MinimumIPTarget: 20}, 58, 5, 2},
	}
	for _, tc := range tests {
		n := node(Input{Type: small, PodsPerNode: tc.pods, Warm: tc.warm, PrefixDelegation: true}, Prefix)
		if n.Prefixes != tc.prefixes || n.ENIs != tc.enis {
			t.Errorf("%+v, %d pods: %d prefixes on %d ENIs; AWS documents %d on %d", tc.warm, tc.pods, n.Prefixes, n.ENIs, tc.prefixes, tc.enis)
		}
	}
}
