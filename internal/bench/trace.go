package bench

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

// TraceSpec describes a churn trace: pods arrive as a Poisson process over Duration, each on a
// node drawn uniformly, and live for an exponentially distributed time (at least MinLife).
// Arrivals that would put more than MaxPerNode pods on a node are dropped.
type TraceSpec struct {
	Seed       uint64
	Nodes      int
	Duration   time.Duration
	PerSecond  float64 // arrivals per second, all nodes together
	MeanLife   time.Duration
	MinLife    time.Duration
	MaxPerNode int
	// Burst > 1 makes arrivals come in groups (a Deployment scaled up, a Job's pods): groups
	// arrive as a Poisson process at PerSecond/Burst, each of 1 to 2×Burst−1 pods (Burst on
	// average, uniform), spread over BurstSpread, each pod on a node drawn uniformly.
	Burst       int
	BurstSpread time.Duration
}

// TraceEvent starts or stops one pod.
type TraceEvent struct {
	At    time.Duration
	Pod   string
	Node  int
	Start bool
}

// Trace returns the events of spec in time order. Pods still alive at Duration get no stop
// event: the run removes them after the measurement. The same spec always gives the same trace.
func Trace(spec TraceSpec) []TraceEvent {
	rng := rand.New(rand.NewPCG(spec.Seed, 0xc4))
	type life struct {
		end  time.Duration
		node int
		pod  string
	}
	var (
		events []TraceEvent
		alive  []life
		count  = make([]int, spec.Nodes)
		t      time.Duration
	)
	group := max(spec.Burst, 1)
	var pending []time.Duration // the current group's pods still to place, in time order
	for n := 0; ; n++ {
		if len(pending) == 0 {
			t += time.Duration(rng.ExpFloat64() / spec.PerSecond * float64(group) * float64(time.Second))
			if group == 1 {
				pending = []time.Duration{t}
			} else {
				for range 1 + rng.IntN(2*group-1) {
					pending = append(pending, t+time.Duration(rng.Int64N(int64(max(spec.BurstSpread, 1)))))
				}
				slices.Sort(pending)
			}
		}
		t, pending = max(t, pending[0]), pending[1:]
		if t >= spec.Duration {
			break
		}
		// Stops due before this arrival free their node first.
		slices.SortFunc(alive, func(a, b life) int { return int(a.end - b.end) })
		for len(alive) > 0 && alive[0].end <= t {
			count[alive[0].node]--
			alive = alive[1:]
		}
		node := rng.IntN(spec.Nodes)
		lifetime := max(spec.MinLife, time.Duration(rng.ExpFloat64()*float64(spec.MeanLife)))
		if spec.MaxPerNode > 0 && count[node] >= spec.MaxPerNode {
			continue
		}
		pod := fmt.Sprintf("c%d", n)
		count[node]++
		events = append(events, TraceEvent{At: t, Pod: pod, Node: node, Start: true})
		if end := t + lifetime; end < spec.Duration {
			events = append(events, TraceEvent{At: end, Pod: pod, Node: node})
			alive = append(alive, life{end: end, node: node, pod: pod})
		} else {
			alive = append(alive, life{end: spec.Duration + time.Hour, node: node, pod: pod})
		}
	}
	slices.SortStableFunc(events, func(a, b TraceEvent) int { return int(a.At - b.At) })
	return events
}
