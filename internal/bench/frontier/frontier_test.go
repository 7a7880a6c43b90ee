package frontier

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vpcnet/vpcnet/internal/bench/churntrace"
	"github.com/vpcnet/vpcnet/internal/ipam"
)

// m5large is the churn bench's instance type: 3 ENIs of 10 IPv4 addresses, 9 for pods each.
var m5large = ipam.Limits{MaxENIs: 3, IPv4PerENI: 10}

func start(at time.Duration, node int, pod string) churntrace.Event {
	return churntrace.Event{At: at, Node: node, Pod: pod, Start: true}
}

func stop(at time.Duration, node int, pod string) churntrace.Event {
	return churntrace.Event{At: at, Node: node, Pod: pod}
}

const s = time.Second

// TestHeldByHand checks the dynamic programme on traces small enough to solve by hand. Held[c]
// is the least ∫held dt (address-seconds) with at most c calls; the state at 0 is free.
func TestHeldByHand(t *testing.T) {
	warm := Rule{Name: "pods + 1", Free: 1, Grain: 1}
	cases := []struct {
		name string
		play Play
		rule Rule
		lim  ipam.Limits
		pods float64
		held []float64
	}{{
		// Need 1 on [0,2), 2 on [2,6), 1 on [6,10). 0 calls: 2 all along, 20. 1 call: 2 until 6
		// then 1 (12 + 4 = 16; rising at 2 instead gives 2 + 16 = 18). 2 calls: 1, 2, 1: 2 + 8 +
		// 4 = 14.
		name: "one pod, no cooldown",
		play: Play{Nodes: 1, Window: 10 * s, Events: []churntrace.Event{start(2*s, 0, "a"), stop(6*s, 0, "a")}},
		rule: warm, lim: m5large, pods: 4, held: []float64{20, 16, 14},
	}, {
		// A 2 s cooldown keeps the address after the stop: need 1, 2 on [2,8), 1 on [8,10).
		// 0 calls: 20. 1 call: 2 until 8 then 1 (16 + 2) or 1 then 2 (2 + 16): 18. 2 calls: 2 +
		// 12 + 2 = 16; the step at 6 (need still 2) allows a 3rd call that saves nothing.
		name: "one pod, 2 s cooldown",
		play: Play{Nodes: 1, Window: 10 * s, Events: []churntrace.Event{start(2*s, 0, "a"), stop(6*s, 0, "a")}},
		rule: Rule{Free: 1, Grain: 1, Cooldown: 2 * s}, lim: m5large, pods: 4, held: []float64{20, 18, 16, 16},
	}, {
		// Whole ENIs of 2 addresses (IPv4PerENI 3), WARM_ENI_TARGET=1: need ⌈(pods + 2) / 2⌉
		// ENIs: 1 on [0,1), 2 on [1,7) (1 or 2 pods), 1 on [7,10). Attaching costs 3, freeing 2.
		// 0 and 1 call: 2 ENIs all along, 4 × 10 = 40. 2 calls: free one at 7: 28 + 6 = 34. 3:
		// attach at 1 instead: 2 + 36 = 38, so still 34. 5: both, 2 + 24 + 6 = 32.
		name: "whole ENIs",
		play: Play{Nodes: 1, Window: 10 * s, Events: []churntrace.Event{start(1*s, 0, "a"), start(2*s, 0, "b"), stop(5*s, 0, "a"), stop(7*s, 0, "b")}},
		rule: Rule{Free: 1, Available: 2, Grain: 2, WholeENIs: true}, lim: ipam.Limits{MaxENIs: 3, IPv4PerENI: 3},
		pods: 9, held: []float64{40, 40, 34, 34, 34, 32}, // and 32 for every budget beyond
	}, {
		// WARM_IP_TARGET=3 with a 1 s lag: need 3 on [0,2), 4 from 2, but the lag lets it stay
		// 3 until 3. 0 calls: 4 × 6 = 24. 1 call: 3 until 3, then 4: 9 + 12 = 21.
		name: "lag",
		play: Play{Nodes: 1, Window: 6 * s, Events: []churntrace.Event{start(2*s, 0, "a")}},
		rule: Rule{Free: 1, Available: 3, Grain: 1, Lag: s}, lim: m5large, pods: 4, held: []float64{24, 21, 21},
	}, {
		// Each part of the need lags alone. WARM_IP_TARGET=3, 1 s lag, 1 s cooldown: 5 pods at 0,
		// 4 stop at 1, one starts at 1.5, the 4 resting addresses free at 2. The usable free
		// address asks pods + resting + 1: 6, 6, 7, 3 on [0,1), [1,1.5), [1.5,2), [2,4); the target
		// pods + 3: 8, 4, 5, 5. Lagged apart, then the larger, never under pods + resting (5, 5, 6,
		// 2): 5 on [0,1) (the need before the trace, 1 and 3, for 1 s), 6 on [1,2), 4 on [2,2.5)
		// (free address 3 since 2, target 4 since 1), 5 on [2.5,4). Lagging their max instead
		// would keep 5 on [2,2.5). 0 calls: 6 × 4 = 24; 1: 6 then 5 at 2, 22; 2: 5, 6, 5, 21;
		// 3: 5, 6, 4, 5, 20.5.
		name: "lag of each part",
		play: Play{Nodes: 1, Window: 4 * s, Events: append(five(), stop(s, 0, "p0"), stop(s, 0, "p1"), stop(s, 0, "p2"), stop(s, 0, "p3"), start(1500*time.Millisecond, 0, "f"))},
		rule: Rule{Free: 1, Available: 3, Grain: 1, Lag: s, Cooldown: s}, lim: m5large, pods: 5 + 0.5 + 5, held: []float64{24, 22, 21, 20.5},
	}, {
		// /28 prefixes, 3 available: 13 pods need 16 addresses, 14 need 32. 14 pods start at 0
		// (the warm-up holds 32 for free), one stops at 4 of 8: 0 calls: 32 × 8 = 256; 1 call:
		// back to one /28 at 4: 128 + 64 = 192.
		name: "prefixes",
		play: Play{Nodes: 1, Window: 8 * s, Events: append(fourteen(), stop(4*s, 0, "p0"))},
		rule: Rule{Free: 1, Available: 3, Grain: 16}, lim: m5large, pods: 14*4 + 13*4, held: []float64{256, 192},
	}, {
		// Two nodes: the first as "one pod, no cooldown" (20, 16, 14), the second need 1 on
		// [0,5) and 2 on [5,10) (20, 15). The knapsack: 40; min(16+20, 20+15) = 35; min(14+20,
		// 16+15) = 31; 14 + 15 = 29.
		name: "two nodes",
		play: Play{Nodes: 2, Window: 10 * s, Events: []churntrace.Event{start(2*s, 0, "a"), start(5*s, 1, "b"), stop(6*s, 0, "a")}},
		rule: warm, lim: m5large, pods: 9, held: []float64{40, 35, 31, 29},
	}, {
		// Events take effect at the next 10 ms tick: a start at 1.001 s counts from 1.01 s; the
		// need is 1 before and 2 after: 0 calls 2 × 2 = 4, 1 call 1.01 + 2 × 0.99 = 2.99.
		name: "ticks",
		play: Play{Nodes: 1, Window: 2 * s, Tick: 10 * time.Millisecond, Events: []churntrace.Event{start(1001*time.Millisecond, 0, "a")}},
		rule: warm, lim: m5large, pods: 0.99, held: []float64{4, 2.99},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := Compute(c.play, c.rule, c.lim)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(f.Pods-c.pods) > 1e-9 {
				t.Errorf("∫pods dt = %g pod-seconds, want %g", f.Pods, c.pods)
			}
			if len(f.Held) < len(c.held) {
				t.Fatalf("Held = %v, want %v", f.Held, c.held)
			}
			for i := range f.Held {
				want := c.held[min(i, len(c.held)-1)] // beyond the list: the last
				if math.Abs(f.Held[i]-want) > 1e-9 {
					t.Fatalf("Held = %v, want %v", f.Held, c.held)
				}
			}
		})
	}
}

func five() []churntrace.Event { return fourteen()[:5] }

func fourteen() []churntrace.Event {
	var out []churntrace.Event
	for i := range 14 {
		out = append(out, start(0, 0, fmt.Sprint("p", i)))
	}
	return out
}

// TestRelaxedByHand: "one pod, no cooldown" (Held 20, 16, 14) with 1 node-second allowed
// without a free address. With any calls the best drops the free address for that second: 14 -
// 1 = 13, which the duality bound reaches at the price 1. It never exceeds the strict rule's.
func TestRelaxedByHand(t *testing.T) {
	p := Play{Nodes: 1, Window: 10 * s, Events: []churntrace.Event{start(2*s, 0, "a"), stop(6*s, 0, "a")}}
	r := Rule{Free: 1, Grain: 1}
	f, err := Relaxed(p, r, m5large, 1)
	if err != nil {
		t.Fatal(err)
	}
	strict, _ := Compute(p, r, m5large)
	if last := f.Held[len(f.Held)-1]; math.Abs(last-13) > 1e-9 {
		t.Errorf("relaxed least ∫held dt with any calls %g, want 13", last)
	}
	for c := range f.Held {
		if f.Held[c] > strict.Held[c]+1e-9 {
			t.Errorf("relaxed Held[%d] = %g above the strict %g", c, f.Held[c], strict.Held[c])
		}
	}
}

// TestRelaxedKeepsTargets: Relaxed lets only the usable free address go missing, never what
// the setting's own targets ask. With WARM_IP_TARGET=1 on "one pod, no cooldown" the target is
// pods + 1 itself, so 1 node-second allowed without a free address changes nothing: 20, 16, 14.
func TestRelaxedKeepsTargets(t *testing.T) {
	p := Play{Nodes: 1, Window: 10 * s, Events: []churntrace.Event{start(2*s, 0, "a"), stop(6*s, 0, "a")}}
	f, err := Relaxed(p, Rule{Free: 1, Available: 1, Grain: 1}, m5large, 1)
	if err != nil {
		t.Fatal(err)
	}
	for c, want := range []float64{20, 16, 14, 14} {
		if math.Abs(f.Held[min(c, len(f.Held)-1)]-want) > 1e-9 {
			t.Fatalf("relaxed Held = %v, want 20, 16, 14", f.Held)
		}
	}
}

// TestRelaxedKeepsResting: on the bench's traces with IP_COOLDOWN_PERIOD, the adaptive rule
// relaxed never holds less than pods + resting, the least any agent holds whatever it lets
// wait (Compute of the rule without the free address, the price 0 of the duality bound).
func TestRelaxedKeepsResting(t *testing.T) {
	for _, tr := range churntrace.Churn(false) {
		p := Played(tr.Spec, 1)
		r := Rule{Cooldown: 3 * s, Free: 1, Grain: 1}
		f, err := Relaxed(p, r, m5large, WarmBudget(p, 0.99))
		if err != nil {
			t.Fatal(err)
		}
		r.Free = 0
		floor, err := Compute(p, r, m5large)
		if err != nil {
			t.Fatal(err)
		}
		for c := range f.Held {
			if lo := floor.Held[min(c, len(floor.Held)-1)]; f.Held[c] < lo-1e-9 {
				t.Fatalf("%s: relaxed least ∫held dt with %d calls %g, under ∫(pods + resting) dt's %g", tr.Name, c, f.Held[c], lo)
			}
		}
	}
}

// TestBadPlay: a stop without its start, or more pods than the instance holds, is an error.
func TestBadPlay(t *testing.T) {
	for name, p := range map[string]Play{
		"stop without start": {Nodes: 1, Window: 10 * s, Events: []churntrace.Event{stop(1*s, 0, "a")}},
		"over capacity":      {Nodes: 1, Window: 10 * s, Events: fourteen()},
		"no nodes":           {Window: 10 * s},
	} {
		if _, err := Compute(p, Rule{Free: 1, Grain: 1}, ipam.Limits{MaxENIs: 1, IPv4PerENI: 10}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestWarmBudget: the churn trace's groups are single pods, so 1 % of ADDs allowed to wait is 1
// % of the node-time; on the bursty trace fewer ADDs are a group's first on their node.
func TestWarmBudget(t *testing.T) {
	for _, tr := range churntrace.Churn(false) {
		p := Played(tr.Spec, 1)
		b := WarmBudget(p, 0.99)
		nodeTime := float64(p.Nodes) * p.Window.Seconds()
		switch tr.Name {
		case "churn":
			if math.Abs(b-0.01*nodeTime) > 1e-9 {
				t.Errorf("churn: %g node-seconds, want 1 %% of %g", b, nodeTime)
			}
		default:
			if b <= 0.01*nodeTime {
				t.Errorf("%s: %g node-seconds, want more than 1 %% of %g", tr.Name, b, nodeTime)
			}
		}
	}
}

// TestNoArrivalDropped: the online argument takes each node's arrivals as the trace's Poisson
// process thinned by the node draw; an arrival dropped at Spec.MaxPerNode would depend on the
// node's state. The generator names pods c<n> after its n-th arrival: no gap, none dropped.
func TestNoArrivalDropped(t *testing.T) {
	for _, tr := range churntrace.Churn(false) {
		next := 0
		for _, e := range churntrace.Generate(tr.Spec) {
			if !e.Start {
				continue
			}
			if e.Pod != fmt.Sprint("c", next) {
				t.Fatalf("%s: pod %s after c%d: an arrival was dropped", tr.Name, e.Pod, next-1)
			}
			next++
		}
	}
}

// upstreamCalls is the calls upstream's figure perPod stands for on starts ADDs: the nearest
// whole number (issue 16 gives two or three digits: 0.011 is 1 call of 89).
func upstreamCalls(perPod float64, starts int) int { return int(math.Round(perPod * float64(starts))) }

// upstream is issue 16's upstream AWS VPC CNI calls per pod on the churn trace, per setting.
var upstream = map[string][]float64{
	"default": {0.41}, "WARM_IP_TARGET=3": {0.40}, "WARM_IP_TARGET=3, MINIMUM_IP_TARGET=10": {0.135},
	"prefix + WARM_IP_TARGET=3": {0.011, 0.022},
}

// settings are the churn bench's, as internal/ipam's simulation plays them.
func settings(cooldown time.Duration) []struct {
	name string
	st   ipam.Settings
} {
	base := ipam.Settings{Cooldown: cooldown}
	def, wit, ad := base, base, base
	def.WarmENITarget = 1
	wit.WarmIPTarget = 3
	witMin, pfx, ad0 := wit, wit, ad
	witMin.MinimumIPTarget = 10
	pfx.PrefixDelegation = true
	ad.Adaptive, ad0.Adaptive, ad0.Cooldown = true, true, 0
	return []struct {
		name string
		st   ipam.Settings
	}{{"adaptive", ad}, {"adaptive, no cooldown", ad0}, {"default", def}, {"WARM_IP_TARGET=3", wit},
		{"WARM_IP_TARGET=3, MINIMUM_IP_TARGET=10", witMin}, {"prefix + WARM_IP_TARGET=3", pfx}}
}

// TestTraceFrontiers prints BENCHMARKS.md's frontier table ("What any agent can reach on these
// traces") and checks its conclusions: no online agent reaches 90 % utilisation with 99 % of
// ADDs warm on either trace at either speed, whatever its calls, even without
// IP_COOLDOWN_PERIOD; under 0.2 calls per pod it stays under 70 % (churn) and 64 % (bursty), 81 %
// and 72 % without the cooldown; with 99 % of ADDs warm and the target met within SettingLag,
// upstream's utilisation is out of reach under WARM_IP_TARGET=3 (73 %) and with
// MINIMUM_IP_TARGET=10 (65 %) at any calls, not excluded by default (36.7 % at 0.41) nor with
// prefixes at 0.022 calls per pod, excluded at 0.011 (43.7 %).
//
//	go test -count=1 -run TestTraceFrontiers -v ./internal/bench/frontier/
func TestTraceFrontiers(t *testing.T) {
	var b strings.Builder
	b.WriteString("\n| trace | speed | rule | any calls | < 0.2 calls/pod | at upstream's calls/pod | 0.1 | 0.3 | 0.5 |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, tr := range churntrace.Churn(false) {
		for _, slow := range []int{1, 10} {
			p := Played(tr.Spec, slow)
			budget := WarmBudget(p, 0.99)
			for _, c := range settings(3 * s * time.Duration(slow)) {
				r := For(c.st, m5large)
				f, err := Compute(p, r, m5large)
				if err != nil {
					t.Fatal(err)
				}
				// Every cell gives the strict rule and, in brackets, 1 % of ADDs allowed to wait
				// (Relaxed: issue 16's 99 % warm; the AWS settings' targets still kept).
				g, err := Relaxed(p, r, m5large, budget)
				if err != nil {
					t.Fatal(err)
				}
				pct := func(f, g float64) string { return fmt.Sprintf("%.1f (%.1f) %%", f, g) }
				cell := func(calls int) string { return fmt.Sprintf("%s (%d)", pct(f.At(calls), g.At(calls)), calls) }
				under, _ := f.UnderPerPod(0.2)
				any, u02 := g.Ceiling(), g.At(under)
				row := []string{tr.Name, fmt.Sprintf("×%d", slow), c.name, pct(f.Ceiling(), any), cell(under)}
				if c.st.Adaptive {
					if any >= 90 {
						t.Errorf("%s ×%d %s: %.1f %% reachable with 99 %% warm", tr.Name, slow, c.name, any)
					}
					// BENCHMARKS.md's "at most" under 0.2 calls per pod.
					lim := map[string]float64{"churn/adaptive": 70, "churn/adaptive, no cooldown": 81, "bursty/adaptive": 64, "bursty/adaptive, no cooldown": 72}[tr.Name+"/"+c.name]
					if u02 >= lim {
						t.Errorf("%s ×%d %s: %.1f %% under 0.2 calls per pod", tr.Name, slow, c.name, u02)
					}
				}
				var ups []string
				for _, pp := range upstream[c.name] {
					calls := upstreamCalls(pp, f.Starts)
					ups = append(ups, fmt.Sprintf("%.3g: %s", pp, cell(calls)))
				}
				if len(ups) == 0 {
					ups = []string{"-"}
				}
				row = append(row, strings.Join(ups, ", "))
				for _, pp := range []float64{0.1, 0.3, 0.5} {
					calls, _ := f.AtPerPod(pp)
					row = append(row, cell(calls))
				}
				fmt.Fprintf(&b, "| %s |\n", strings.Join(row, " | "))
				if tr.Name != "churn" || slow != 1 {
					continue
				}
				// Issue 16's upstream figures on the scaled churn trace.
				switch c.name {
				case "WARM_IP_TARGET=3":
					if any >= 73 {
						t.Errorf("%s: %.1f %% with every ADD warm reaches upstream's 73 %%", c.name, any)
					}
				case "WARM_IP_TARGET=3, MINIMUM_IP_TARGET=10":
					if any >= 65 {
						t.Errorf("%s: %.1f %% with every ADD warm reaches upstream's 65 %%", c.name, any)
					}
				case "default":
					if calls := upstreamCalls(0.41, f.Starts); f.At(calls) < 36.7 {
						t.Errorf("%s: %.1f %% at 0.41 calls per pod, under upstream's 36.7 %%", c.name, f.At(calls))
					}
				case "prefix + WARM_IP_TARGET=3":
					// One call (0.011) is short of upstream's 43.7 %, which let an ADD wait; two
					// (0.022, upstream's other run) reach it.
					if one, two := f.At(upstreamCalls(0.011, f.Starts)), f.At(upstreamCalls(0.022, f.Starts)); one >= 43.7 || two < 43.7 {
						t.Errorf("%s: %.1f %% at 0.011 calls per pod, %.1f %% at 0.022; want under and over upstream's 43.7 %%", c.name, one, two)
					}
				}
			}
		}
	}
	t.Log(b.String())
}

// TestAnyAgentAtAll: the three adaptive targets together are out of reach without the
// online argument (no Poisson assumption, no approximation for the bursty trace), for an agent
// that knows the whole trace in advance. On these traces 99 % of ADDs warm is every ADD warm
// (one cold ADD of 89 is 98.9 %, of 75 98.7 %); such an agent then needs at every moment only
// pods + resting (the address an ADD takes may arrive the same tick, a call). Keeping
// IP_COOLDOWN_PERIOD, ∫pods dt / ∫(pods + resting) dt is 85.2 % (churn) and 84.3 % (bursty)
// whatever the calls and whatever waits; ignoring the cooldown too, under 0.2 calls per pod it
// is at most 87.9 % and 80.9 %.
//
//	go test -count=1 -run TestAnyAgentAtAll -v ./internal/bench/frontier/
func TestAnyAgentAtAll(t *testing.T) {
	want := map[string][2]float64{"churn": {85.2, 87.9}, "bursty": {84.3, 80.9}}
	for _, tr := range churntrace.Churn(false) {
		for _, slow := range []int{1, 10} {
			p := Played(tr.Spec, slow)
			if n := WarmBudget(p, 0.99); n <= 0 {
				t.Fatalf("%s: no ADDs", tr.Name)
			}
			starts := 0
			for _, e := range p.Events {
				if e.Start && e.At < p.Window {
					starts++
				}
			}
			if float64(starts-1)/float64(starts) >= 0.99 {
				t.Fatalf("%s: %d ADDs, one cold would still be 99 %% warm", tr.Name, starts)
			}
			cool, err := Compute(p, Rule{Name: "pods + resting", Cooldown: 3 * s * time.Duration(slow), Grain: 1}, m5large)
			if err != nil {
				t.Fatal(err)
			}
			bare, err := Compute(p, Rule{Name: "pods", Grain: 1}, m5large)
			if err != nil {
				t.Fatal(err)
			}
			_, u := bare.UnderPerPod(0.2)
			t.Logf("%s ×%d: %d ADDs; keeping the cooldown %.2f %% at any calls; without it %.2f %% under 0.2 calls per pod (%.2f %% at any)", tr.Name, slow, starts, cool.Ceiling(), u, bare.Ceiling())
			w := want[tr.Name]
			if math.Abs(cool.Ceiling()-w[0]) > 0.05 || math.Abs(u-w[1]) > 0.05 {
				t.Errorf("%s ×%d: %.2f %% and %.2f %%, BENCHMARKS.md says %.1f and %.1f", tr.Name, slow, cool.Ceiling(), u, w[0], w[1])
			}
			if cool.Ceiling() >= 90 || u >= 90 {
				t.Errorf("%s ×%d: an agent that knows the trace reaches 90 %%", tr.Name, slow)
			}
		}
	}
}

// TestSettingLag: the AWS settings' "no" rests on how soon an agent must meet the target after
// a pod start or stop (SettingLag, 200 ms). Churn trace, 99 % of ADDs warm (Relaxed), at
// upstream's calls: WARM_IP_TARGET=3 stays under upstream's 73 % (36 calls) with up to 2 s to
// act and passes it with 3 s; with MINIMUM_IP_TARGET=10 under 65 % (12 calls) up to 3 s, and
// passes it with 5 s, upstream's own top-up tick; at real speed WARM_IP_TARGET=3 stays under
// upstream's 70.4 % (1.10 calls per pod) up to 2 s and passes it with 5 s.
//
//	go test -count=1 -run TestSettingLag -v ./internal/bench/frontier/
func TestSettingLag(t *testing.T) {
	tr := churntrace.Churn(false)[0]
	type check struct {
		slow      int
		minimum   int
		perPod    float64
		upstream  float64
		under, at []time.Duration // under upstream with this long to act; at or over
	}
	for _, c := range []check{
		{1, 0, 0.40, 73, []time.Duration{SettingLag, s, 2 * s}, []time.Duration{3 * s}},
		{1, 10, 0.135, 65, []time.Duration{SettingLag, s, 3 * s}, []time.Duration{5 * s}},
		{10, 0, 1.10, 70.4, []time.Duration{SettingLag, 2 * s}, []time.Duration{5 * s}},
	} {
		p := Played(tr.Spec, c.slow)
		for _, lag := range append(slices.Clone(c.under), c.at...) {
			r := Rule{Cooldown: 3 * s * time.Duration(c.slow), Free: 1, Available: 3, Minimum: c.minimum, Grain: 1, Lag: lag}
			f, err := Relaxed(p, r, m5large, WarmBudget(p, 0.99))
			if err != nil {
				t.Fatal(err)
			}
			calls := upstreamCalls(c.perPod, f.Starts)
			u := f.At(calls)
			t.Logf("×%d WARM_IP_TARGET=3, MINIMUM_IP_TARGET=%d, %s to act: %.1f %% at %d calls (upstream %.1f %%)", c.slow, c.minimum, lag, u, calls, c.upstream)
			if over := u >= c.upstream; over != slices.Contains(c.at, lag) {
				t.Errorf("×%d MINIMUM_IP_TARGET=%d, %s to act: %.1f %% against upstream's %.1f %%", c.slow, c.minimum, lag, u, c.upstream)
			}
		}
	}
}
