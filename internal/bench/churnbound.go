package bench

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/vpcnet/vpcnet/internal/bench/frontier"
	"github.com/vpcnet/vpcnet/internal/ipam"
)

// churnLimits are the churn labs' m5.large: 3 ENIs of 10 IPv4 addresses, the primary's not a pod's.
var churnLimits = ipam.Limits{MaxENIs: 3, IPv4PerENI: 10}

// settings is cfg's warm-pool setting as ipam reads the agent's environment (WARM_ENI_TARGET=1
// when no other is set), with cooldown as IP_COOLDOWN_PERIOD.
func (cfg churnConfig) settings(cooldown time.Duration) ipam.Settings {
	n := func(k string) int { v, _ := strconv.Atoi(cfg.env(k)); return v }
	st := ipam.Settings{Cooldown: cooldown, WarmIPTarget: n("WARM_IP_TARGET"), MinimumIPTarget: n("MINIMUM_IP_TARGET"),
		PrefixDelegation: cfg.env("ENABLE_PREFIX_DELEGATION") == "true", Adaptive: cfg.env("VPCNET_WARM_POOL") == "adaptive"}
	if !st.Adaptive && !st.IPTargets() {
		st.WarmENITarget = 1
	}
	return st
}

// churnBound is what any agent can reach on the trace played slow times slower under cfg's
// setting (internal/bench/frontier): the most utilisation (%) with at most calls EC2 calls, and
// under 0.2 calls per pod, with 99 % of ADDs warm (issue 16's target; frontier.Relaxed) and, for
// the AWS settings, their targets met within frontier.SettingLag.
func churnBound(tr NamedTrace, slow int, cfg churnConfig, cooldown time.Duration, calls float64) (atCalls, under02 float64, err error) {
	p := frontier.Played(tr.Spec, slow)
	r := frontier.For(cfg.settings(cooldown), churnLimits)
	f, err := frontier.Relaxed(p, r, churnLimits, frontier.WarmBudget(p, 0.99))
	if err != nil {
		return 0, 0, fmt.Errorf("%s %s: %w", tr.Name, cfg.label, err)
	}
	_, under02 = f.UnderPerPod(0.2)
	return f.At(int(math.Round(calls))), under02, nil
}

// The ceiling rows' figure names (before the setting); boundNote says what they are.
const (
	ceilingAtCalls = "ceiling, any agent, these calls, "
	ceilingUnder02 = "ceiling, any agent, < 0.2 calls/pod, "
)

// addBound adds the rows of what any agent can reach with cfg's setting on the trace beside
// the run's own (boundRows).
func (r *runner) addBound(tr NamedTrace, slow int, cfg churnConfig, cooldown time.Duration, sfx string, o churnResult) error {
	at, under, err := churnBound(tr, slow, cfg, cooldown, o.calls)
	if err != nil {
		return err
	}
	r.add(boundRows(cfg, sfx, at, under, o.utilisation)...)
	return nil
}

// boundRows are the ceiling rows of cfg's setting on a trace (sfx names both), with 99 % of ADDs
// warm: at the run's EC2 calls (at, %) beside the run's utilisation (%), and for the adaptive mode
// under 0.2 calls per pod (under, %) beside issue 16's 90 %. No targets: a ceiling is no claim.
func boundRows(cfg churnConfig, sfx string, at, under, utilisation float64) []Row {
	rows := []Row{NewRow("churn", ceilingAtCalls+sfx, "%", at, "this run", utilisation, nil)}
	if cfg.env("VPCNET_WARM_POOL") == "adaptive" {
		rows = append(rows, NewRow("churn", ceilingUnder02+sfx, "%", under, "issue 16's target", 90, nil))
	}
	return rows
}

// boundNote says what the ceiling rows are.
const boundNote = " Ceiling rows (internal/bench/frontier, computed on the trace that ran, as internal/ipam's simulation measures it): \"ceiling, any agent, these calls\" is the most utilisation any agent that cannot know when the next pod comes reaches on this trace with this run's EC2 calls and 99 % of ADDs warm; \"ceiling, any agent, < 0.2 calls/pod\" is the same under 0.2 EC2 calls per pod, beside issue 16's 90 %. Both hold what the setting means (the adaptive mode: pods + resting + 1, a usable free address for the next ADD; the AWS settings: also their targets, resting addresses counted, met within 200 ms), even for an agent that planned its calls knowing the trace, with zero cloud latency, one call per change of the addresses held and the warm-up's state free; BENCHMARKS.md, \"What any agent can reach on these traces\"."
