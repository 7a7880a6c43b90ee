// Package frontier computes what any warm-pool agent can reach on the churn bench's seeded
// traces (internal/bench/churntrace): for a need rule, the fewest addresses a node must hold at
// each moment, and for every budget of EC2 calls, the least address-time ∫held dt the nodes
// together must hold, hence the most utilisation (∫pods dt / ∫held dt, in %) that any agent
// keeping the rule reaches with that many calls, even one that plans its calls knowing the
// whole trace. The rules' usable free address comes from the online argument below, so it binds
// agents that cannot know when the next pod comes (any real one); an agent that knew the trace
// would need only pods + resting (TestAnyAgentAtAll: still under 90 % on these traces, under
// 0.2 calls per pod even without the cooldown). Issue 16 asks the adaptive warm pool for
// at least 90 % utilisation, 99 % of ADDs warm and under 0.2 EC2 calls per pod, and every AWS
// setting for upstream's figures at once; this package says by computation what the traces
// allow. Pure: no clock, no I/O.
//
// # The online warm bound (why the adaptive rules hold pods + resting + 1)
//
// On the churn trace pods arrive as a Poisson process, 2 a second over the cluster, each on a
// node drawn uniformly: on each node an independent Poisson process of 2/3 a second (thinning),
// whatever happened before (no arrival of these traces is dropped at Spec.MaxPerNode; checked
// by the tests). A node's agent sees its own node's past only, and nothing it does changes the
// trace. For such an agent the expected number of ADDs that find no usable address is λ·E[T0],
// T0 the time the node holds no usable free address (PASTA: Poisson arrivals see time
// averages; the arrival rate given the past is the constant λ). So 99 % of ADDs warm, in
// expectation, needs a usable free address 99 % of the time: the node holds pods + resting + 1
// (resting: addresses whose pod stopped less than IP_COOLDOWN_PERIOD ago, still held and not
// usable; an agent without the cooldown has none) for all but 1 % of the time. Zero cloud
// latency is assumed (a taken address is replaced the same instant), which can only help. The
// argument is in expectation; on one run of the churn trace, the chance that an agent is short
// of a usable free address for T node-seconds in all and still serves every ADD warm is at most
// exp(-λT) (exp(λ·T0) while no ADD was cold is a martingale), and on these traces 99 % warm is
// every ADD warm (88 of 89 is 98.9 %).
//
// The bursty trace's pods come in groups of 1 to 15 (uniform) spread over 500 ms, each pod on a
// node drawn uniformly; a group's start is an exponential gap (mean 4 s) after the previous
// group's last pod. A group's later pods on a node are partly predictable once its first one is
// seen, so the argument is applied to the first pod of each group on a node: its time is the
// group's start, unseen, plus the group's offset, so up to the at most 500 ms a group lasts
// against the 4 s between groups (the one way the past informs the next first pod: it cannot
// come while the previous group is still under way) these arrive at a rate the node's past does
// not change, and the share of them finding no usable address is the share of time with none.
// The ADDs allowed to wait (1 % of all) can then all be such first pods, which allows no usable
// free address for 1 % × ADDs / first pods of the time: 2.8 % on this trace (75 ADDs, 27 firsts;
// WarmBudget). Treat the bursty trace's online bound as this approximation; the churn trace's is
// exact in expectation. Relaxed computes the frontier with that time allowed; Compute holds the
// rule at every moment.
//
// # The offline frontier
//
// Per node, the need is a step function of time: it changes where a pod starts or stops, where
// an address's cooldown ends and, for a rule with Lag, Lag after each of those. Between two such
// breakpoints a best agent holds a constant number of addresses: an increase inside the
// interval can move to its end and a decrease to its start, for no more calls and no more
// address-time. A dynamic programme over the breakpoints (state: addresses held, calls used)
// gives the least ∫held dt for every budget, and a knapsack over the nodes' budgets combines
// them. Wherever unsure it is optimistic, so the result bounds utilisation from above for every
// agent: zero latency; addresses counted per node, not per ENI (which ENI a pod sits on is
// ignored); one call per change of the addresses held, however many it spans (an assign or an
// unassign); under WARM_ENI_TARGET whole ENIs, 3 calls to attach one with its addresses and 2 to
// free one (the bench's count: create, attach, DeleteOnTermination; detach, delete). That last
// is the setting as upstream and internal/ipam play it, not a floor for every agent: one that
// kept ENIs attached and moved an ENI's addresses in one call would be bounded as Grain 9
// without WholeENIs (churn trace: 37.0 % at 8 calls against 33.3 %, 38.3 against 38.1 % at 36).
//
// Measured as internal/ipam's churn simulation and `vpcnet lab bench --scenario churn` measure:
// over the trace's Duration from its first moment, events seen at the simulation's 10 ms tick at
// or after them, calls counted from the trace's first moment. Both let the agents warm up for
// seconds before the trace and do not count those calls, so the state at the trace's start is
// free here too: any addresses, every ENI attached (so, but for whole ENIs, no ENI create is
// charged). Calls per pod are calls over the ADDs in the window.
package frontier

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/vpcnet/vpcnet/internal/bench/churntrace"
	"github.com/vpcnet/vpcnet/internal/ipam"
)

// SettingLag is how long an AWS setting's target may stay unmet after a pod start or stop
// raised it: the longest single action internal/ipam's simulation gives the cloud (an ENI
// created and attached, 200 ms; an assign takes 30 ms). An agent cannot meet a target faster
// than the cloud acts, so the setting rules allow it; the warm bound (the adaptive rules) has
// no lag: there the time without a free address is the online argument's own (WarmBudget).
const SettingLag = 200 * time.Millisecond

// Rule is what a node must hold at every moment: at least pods + resting + Free addresses,
// pods + Available, and Minimum, rounded up to whole Grains, at most the instance's capacity.
type Rule struct {
	Name      string
	Cooldown  time.Duration // IP_COOLDOWN_PERIOD as played: a stopped pod's address rests (held, not usable) this long
	Free      int           // usable free addresses at every moment: 1, the online warm bound
	Available int           // free or resting addresses kept: WARM_IP_TARGET; WARM_ENI_TARGET × an ENI's slots
	Minimum   int           // addresses held at least: MINIMUM_IP_TARGET
	Grain     int           // addresses per unit held: 1 (secondary IPs), 16 (/28 prefixes), an ENI's slots (WholeENIs)
	WholeENIs bool          // units are ENIs with all their addresses: 3 calls to attach one, 2 to free one
	Lag       time.Duration // how long the need may stay unmet after it rose (SettingLag for the AWS settings)
}

// For is the rule of the warm-pool setting st as internal/ipam's policy reads it (the AWS VPC
// CNI's meanings, resting addresses counted as available, at least one usable free address for
// a warm ADD): WARM_ENI_TARGET in whole ENIs of lim.Slots() addresses; WARM_IP_TARGET and
// MINIMUM_IP_TARGET in addresses, or in /28s with prefix delegation (WARM_PREFIX_TARGET as
// that many /28s' worth of free addresses, which asks less than whole free /28s); the adaptive
// mode as the online warm bound alone, pods + resting + 1.
func For(st ipam.Settings, lim ipam.Limits) Rule {
	r := Rule{Cooldown: st.Cooldown, Free: 1, Grain: 1, Lag: SettingLag}
	switch {
	case st.Adaptive:
		r.Name, r.Lag = "adaptive", 0
	case st.PrefixDelegation:
		r.Grain, r.Available, r.Minimum = 16, st.WarmIPTarget, st.MinimumIPTarget
		if !st.IPTargets() {
			r.Available = 16 * st.WarmPrefixTarget
		}
		r.Name = fmt.Sprintf("prefix, %d available, %d held", r.Available, r.Minimum)
	case st.IPTargets():
		r.Available, r.Minimum = st.WarmIPTarget, st.MinimumIPTarget
		r.Name = fmt.Sprintf("WARM_IP_TARGET=%d, MINIMUM_IP_TARGET=%d", st.WarmIPTarget, st.MinimumIPTarget)
	default:
		r.Grain, r.WholeENIs, r.Available = lim.Slots(), true, st.WarmENITarget*lim.Slots()
		r.Name = fmt.Sprintf("WARM_ENI_TARGET=%d", st.WarmENITarget)
	}
	if st.Cooldown == 0 {
		r.Name += ", no cooldown"
	}
	return r
}

// target is the addresses the setting's targets ask for with pods on the node (resting ones
// count as available), before rounding: what Relaxed never lets go.
func (r Rule) target(pods int) int {
	return max(pods+r.Available, r.Minimum)
}

// Play is a trace as played and measured.
type Play struct {
	Events []churntrace.Event // in time order; Node is taken modulo Nodes
	Nodes  int
	Window time.Duration // the measurement: [0, Window)
	Tick   time.Duration // events take effect at the first multiple of Tick at or after them; 0: at once
}

// SimTick is internal/ipam's simulation tick.
const SimTick = 10 * time.Millisecond

// Played is spec's trace slow times slower (the bench's --real-speed: 10), ticked as
// internal/ipam's simulation plays it.
func Played(spec churntrace.Spec, slow int) Play {
	ev := churntrace.Generate(spec)
	for i := range ev {
		ev[i].At *= time.Duration(slow)
	}
	return Play{Events: ev, Nodes: spec.Nodes, Window: spec.Duration * time.Duration(slow), Tick: SimTick}
}

// Frontier is the most utilisation any agent reaches under Rule for every budget of calls.
type Frontier struct {
	Rule   Rule
	Starts int       // ADDs in the window
	Pods   float64   // ∫pods dt over the nodes, pod-seconds
	Held   []float64 // Held[c]: the least ∫held dt over the nodes with at most c EC2 calls, address-seconds; the last is the least with any number
}

// At is the most utilisation (%) with at most calls EC2 calls.
func (f Frontier) At(calls int) float64 {
	return 100 * f.Pods / f.Held[min(max(calls, 0), len(f.Held)-1)]
}

// AtPerPod is the most utilisation (%) with at most perPod EC2 calls per ADD, and the calls.
func (f Frontier) AtPerPod(perPod float64) (calls int, utilisation float64) {
	calls = int(math.Floor(perPod*float64(f.Starts) + 1e-9))
	return calls, f.At(calls)
}

// UnderPerPod is the most utilisation (%) with fewer than perPod EC2 calls per ADD, and the calls.
func (f Frontier) UnderPerPod(perPod float64) (calls int, utilisation float64) {
	calls = int(math.Ceil(perPod*float64(f.Starts)-1e-9)) - 1
	return calls, f.At(calls)
}

// Ceiling is the most utilisation (%) with any number of calls: ∫pods dt / ∫need dt.
func (f Frontier) Ceiling() float64 { return f.At(len(f.Held) - 1) }

// segment is one stretch between breakpoints on one node.
type segment struct {
	dur  float64 // seconds
	pods int
	phys int // units held whatever the rule: pods + resting, rounded up
	need int // units the rule asks for (lagged)
	// floor is the units the setting's own targets ask for (pods + Available, Minimum; lagged),
	// without the usable free address: Relaxed lets the need fall to it, never below.
	floor int
	soft  int // units below need allowed at a price (Relaxed); == need otherwise
}

// Compute returns the frontier of rule r on p for an instance with limits lim. It fails when a
// node's pods and resting addresses exceed what the instance can hold.
func Compute(p Play, r Rule, lim ipam.Limits) (Frontier, error) {
	nodes, f, err := prepare(p, r, lim)
	if err != nil {
		return f, err
	}
	var total []float64
	for _, segs := range nodes {
		total = combine(total, nodeHeld(segs, r, 0))
	}
	f.Held = total
	return f, nil
}

func prepare(p Play, r Rule, lim ipam.Limits) ([][]segment, Frontier, error) {
	f := Frontier{Rule: r}
	if p.Nodes < 1 || r.Grain < 1 || p.Window <= 0 {
		return nil, f, fmt.Errorf("frontier: %d nodes, grain %d, window %s: want at least one of each", p.Nodes, r.Grain, p.Window)
	}
	capacity := lim.MaxENIs * lim.Slots()
	if r.Grain == 16 {
		capacity *= 16
	}
	per := make([][]segment, p.Nodes)
	for n := range p.Nodes {
		segs, starts, err := nodeSegments(p, n, r, capacity)
		if err != nil {
			return nil, f, err
		}
		per[n] = segs
		f.Starts += starts
		for _, s := range segs {
			f.Pods += float64(s.pods) * s.dur
		}
	}
	return per, f, nil
}

// change is what happens on a node at one moment.
type change struct {
	pods, resting, starts int
}

func nodeSegments(p Play, node int, r Rule, capacity int) ([]segment, int, error) {
	at := func(d time.Duration) time.Duration {
		if p.Tick > 0 {
			d = (d + p.Tick - 1) / p.Tick * p.Tick
		}
		return d
	}
	changes := map[time.Duration]change{0: {}}
	starts := 0
	for _, e := range p.Events {
		t := at(e.At)
		if e.Node%p.Nodes != node || t < 0 || t >= p.Window {
			continue
		}
		c := changes[t]
		if e.Start {
			c.pods++
			c.starts++
			starts++
		} else {
			c.pods--
			if r.Cooldown > 0 {
				c.resting++
				if end := t + r.Cooldown; end < p.Window {
					ce := changes[end]
					ce.resting--
					changes[end] = ce
				}
			}
		}
		changes[t] = c
	}
	var moments []time.Duration
	for t := range changes {
		moments = append(moments, t)
		if r.Lag > 0 && t > 0 && t+r.Lag < p.Window {
			moments = append(moments, t+r.Lag)
		}
	}
	slices.Sort(moments)
	moments = slices.Compact(moments)
	units := func(a int) int { return (a + r.Grain - 1) / r.Grain }
	capU := capacity / r.Grain
	var segs []segment
	pods, resting := 0, 0
	for i, t := range moments {
		c := changes[t]
		pods, resting = pods+c.pods, resting+c.resting
		if pods < 0 || resting < 0 {
			return nil, 0, fmt.Errorf("frontier: node %d at %s: %d pods, %d resting: a pod stopped that never started", node, t, pods, resting)
		}
		if pods+resting > capacity {
			return nil, 0, fmt.Errorf("frontier: node %d at %s: %d pods and %d resting addresses, more than the %d it can hold", node, t, pods, resting, capacity)
		}
		end := p.Window
		if i+1 < len(moments) {
			end = moments[i+1]
		}
		segs = append(segs, segment{dur: (end - t).Seconds(), pods: pods, phys: units(pods + resting),
			need: min(units(pods+resting+r.Free), capU), floor: min(units(r.target(pods)), capU)})
	}
	// The lag: each part of the need at t (the usable free address; the setting's targets) is
	// the least that part asked for over [t-Lag, t], and never under pods + resting. Lagging the
	// parts apart, not their max, allows each its own 200 ms, which can only lower the need.
	lag := func(of func(segment) int, before int) []int {
		lagged := make([]int, len(segs))
		for k := range segs {
			lagged[k] = of(segs[k])
			from := moments[k] - r.Lag
			if r.Lag > 0 && from < 0 {
				lagged[k] = min(lagged[k], before)
			}
			for j := k - 1; r.Lag > 0 && j >= 0; j-- {
				end := moments[j+1]
				if end <= from {
					break
				}
				lagged[k] = min(lagged[k], of(segs[j]))
			}
			lagged[k] = max(lagged[k], segs[k].phys)
		}
		return lagged
	}
	warm := lag(func(s segment) int { return s.need }, min(units(r.Free), capU))
	floor := lag(func(s segment) int { return s.floor }, min(units(r.target(0)), capU))
	for k := range segs {
		need := max(warm[k], floor[k])
		segs[k].need, segs[k].soft, segs[k].floor = need, need, floor[k]
	}
	return segs, starts, nil
}

var inf = math.Inf(1)

// nodeHeld is the least ∫held dt (address-seconds) of one node for every budget of calls: the
// dynamic programme over its segments. A segment may sit below its need, down to its soft
// floor, at mu per second per unit short.
func nodeHeld(segs []segment, r Rule, mu float64) []float64 {
	top := 0
	for _, s := range segs {
		top = max(top, s.need)
	}
	step := 1 // the most calls one change costs
	if r.WholeENIs {
		step = 3 * top
	}
	maxC := step * (len(segs) - 1)
	g := float64(r.Grain)
	cost := func(s segment, u int) float64 {
		if u < s.soft {
			return inf
		}
		c := float64(u) * g * s.dur
		if u < s.need {
			c += mu * float64(s.need-u) * s.dur
		}
		return c
	}
	cur := make([][]float64, top+1)
	next := make([][]float64, top+1)
	for u := range cur {
		cur[u] = make([]float64, maxC+1)
		next[u] = make([]float64, maxC+1)
		for c := range cur[u] {
			cur[u][c] = cost(segs[0], u) // the state at the trace's start is the warm-up's: free
		}
	}
	best := make([]float64, maxC+1)
	for _, s := range segs[1:] {
		if !r.WholeENIs {
			for c := range best {
				best[c] = inf
				for u := range cur {
					best[c] = min(best[c], cur[u][c])
				}
			}
		}
		for u := range next {
			k := cost(s, u)
			for c := range next[u] {
				if math.IsInf(k, 1) {
					next[u][c] = inf
					continue
				}
				prev := cur[u][c]
				if r.WholeENIs {
					for v := range cur {
						calls := 2 * (v - u)
						if u > v {
							calls = 3 * (u - v)
						}
						if calls <= c {
							prev = min(prev, cur[v][c-calls])
						}
					}
				} else if c > 0 {
					prev = min(prev, best[c-1])
				}
				next[u][c] = k + prev
			}
		}
		cur, next = next, cur
	}
	out := make([]float64, maxC+1)
	for c := range out {
		out[c] = inf
		for u := range cur {
			out[c] = min(out[c], cur[u][c])
		}
	}
	return out
}

// combine is the knapsack of two nodes' budgets: out[c] = min over a+b = c of x[a] + y[b].
// Both are "at most c calls", so non-increasing, and so is out.
func combine(x, y []float64) []float64 {
	if x == nil {
		return slices.Clone(y)
	}
	out := make([]float64, len(x)+len(y)-1)
	for c := range out {
		out[c] = inf
	}
	for a, xa := range x {
		for b, yb := range y {
			out[a+b] = min(out[a+b], xa+yb)
		}
	}
	return out
}

// WarmBudget is the node-seconds without a usable free address, summed over the nodes, that the
// online argument allows an agent with the share warm (0.99) of ADDs warm: (1 - warm) × ADDs /
// unpredictable ADDs × nodes × window, where the unpredictable ADDs are each group's first on
// a node (every ADD on the churn trace, whose groups are single pods).
func WarmBudget(p Play, warm float64) float64 {
	type key struct{ group, node int }
	seen := map[key]bool{}
	all, first := 0, 0
	for _, e := range p.Events {
		if !e.Start || e.At >= p.Window {
			continue
		}
		all++
		k := key{e.Group, e.Node % p.Nodes}
		if !seen[k] {
			seen[k] = true
			first++
		}
	}
	if first == 0 {
		return 0
	}
	return (1 - warm) * float64(all) / float64(first) * float64(p.Nodes) * p.Window.Seconds()
}

// Relaxed is Compute with the usable free address allowed to go missing for budget node-seconds
// in all (WarmBudget: the time without one the online argument allows): the need may fall to
// what the setting's own targets ask (pods + Available, Minimum, lagged as the need; pods +
// resting for the adaptive rule), never below, so a node is short by at most one unit and a
// unit-second short is a node-second without a usable free address. It is a bound by Lagrangian
// duality, so still an upper bound on utilisation: for every price mu ≥ 0 per unit-second
// short, an agent within the budget holds at least the least ∫held + mu·∫short dt over all
// agents, less mu × budget; Held[c] is the best of these over a grid of prices (never above
// Compute's, the price being finite).
func Relaxed(p Play, r Rule, lim ipam.Limits, budget float64) (Frontier, error) {
	nodes, f, err := prepare(p, r, lim)
	if err != nil {
		return f, err
	}
	for _, segs := range nodes {
		for k := range segs {
			segs[k].soft = segs[k].floor
		}
	}
	for _, mu := range prices() {
		mu *= float64(r.Grain)
		var total []float64
		for _, segs := range nodes {
			total = combine(total, nodeHeld(segs, r, mu))
		}
		if f.Held == nil {
			f.Held = make([]float64, len(total))
		}
		for c := range total {
			f.Held[c] = max(f.Held[c], total[c]-mu*budget)
		}
	}
	return f, nil
}

// prices are Relaxed's grid of prices per address-second short: any price gives a valid bound,
// the grid only decides how close to the best it gets.
func prices() []float64 {
	var out []float64
	for i := range 61 {
		out = append(out, float64(i)*0.05)
	}
	return append(out, 4, 6, 10, 20, 50)
}

// String is the frontier in short: the ceiling and a few budgets.
func (f Frontier) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d ADDs, ceiling %.1f%%", f.Rule.Name, f.Starts, f.Ceiling())
	for _, pp := range []float64{0, 0.1, 0.2, 0.4} {
		c, u := f.AtPerPod(pp)
		fmt.Fprintf(&b, "; %.2f calls/pod (%d) %.1f%%", pp, c, u)
	}
	return b.String()
}
