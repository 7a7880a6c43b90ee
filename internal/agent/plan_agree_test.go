package agent_test

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/vpcnet/vpcnet/internal/catalog"
	"github.com/vpcnet/vpcnet/internal/plan"
	"github.com/vpcnet/vpcnet/internal/vpcsim"
)

// TestPlanAgreesWithAgent: for a table of settings, `vpcnet plan cluster`'s node (addresses,
// prefixes and ENIs it holds with that many pods) is what a real agent against vpcsim holds at
// steady state once those pods arrived one by one (issue 12 item 4: the planner kept its own
// model of the warm-pool rules and said 4 of 12 pods get no address where the agent gave all 12).
func TestPlanAgreesWithAgent(t *testing.T) {
	cases := []struct {
		typ    string
		prefix bool
		warm   plan.Warm
		pods   int
	}{
		{"m5.large", false, plan.Warm{ENITarget: 1}, 0},
		{"m5.large", false, plan.Warm{ENITarget: 1}, 5},
		{"m5.large", false, plan.Warm{ENITarget: 1}, 12},
		{"m5.large", false, plan.Warm{}, 0},
		{"m5.large", false, plan.Warm{}, 10},
		{"t3.medium", false, plan.Warm{ENITarget: 2}, 3},
		{"t3.medium", false, plan.Warm{ENITarget: 1}, 15},
		{"m5.large", false, plan.Warm{IPTarget: 3}, 7},
		{"m5.large", false, plan.Warm{IPTarget: 1}, 26},
		{"m5.large", false, plan.Warm{MinimumIPTarget: 8}, 12},
		{"m5.large", false, plan.Warm{IPTarget: 2, MinimumIPTarget: 10}, 12},
		{"m5.large", true, plan.Warm{PrefixTarget: 1}, 20},
		{"m5.large", true, plan.Warm{}, 17},
		{"m5.large", true, plan.Warm{IPTarget: 5}, 20},
		{"m5.large", true, plan.Warm{MinimumIPTarget: 40}, 3},
	}
	for _, c := range cases {
		name := fmt.Sprintf("%s prefix=%v %+v pods=%d", c.typ, c.prefix, c.warm, c.pods)
		t.Run(name, func(t *testing.T) {
			it, err := catalog.Builtin().Lookup(c.typ)
			if err != nil {
				t.Fatal(err)
			}
			in := plan.Input{VPC: netip.MustParsePrefix("10.0.0.0/16"), Subnets: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/20")},
				Type: it, Nodes: 1, PodsPerNode: c.pods, PrefixDelegation: c.prefix, Warm: c.warm}
			r, err := plan.Plan(in)
			if err != nil {
				t.Fatal(err)
			}
			want := r.Selected().Node
			if want.PodsWithoutAddress != 0 {
				t.Fatalf("the table wants pods that all get an address: %+v", want)
			}

			x := newSim(t, vpcsim.Options{}, "10.0.0.0/20", c.typ)
			cfg := testConfig(t, x)
			p := plan.AgentSettings(in, r.Mode)
			p.Cooldown, p.Backoff, p.BackoffMax, p.PrefixFallback = cfg.Pool.Cooldown, cfg.Pool.Backoff, cfg.Pool.BackoffMax, cfg.Pool.PrefixFallback
			cfg.Pool = p
			n := startNode(t, x, cfg)
			n.waitReady()
			for i := range c.pods {
				n.mustAdd(fmt.Sprint("pod", i))
			}
			got := n.settle(fmt.Sprintf("the plan's %d addresses on %d ENIs", want.Addresses, want.ENIs), func(p poolView) bool {
				return p.total == want.Addresses && p.enis == want.ENIs && p.assigned == c.pods
			})
			t.Logf("plan and agent: %d addresses (%d prefixes) on %d ENIs for %d pods", got.total, want.Prefixes, got.enis, c.pods)
		})
	}
}
