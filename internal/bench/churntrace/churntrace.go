// Package churntrace generates the churn bench's seeded traces of pod starts and stops: pure,
// so that the lab bench (internal/bench) and the warm-pool policy's simulation (internal/ipam's
// tests) play the same traces.
package churntrace

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

// Spec describes a churn trace: pods arrive as a Poisson process over Duration, each on a
// node drawn uniformly, and live for an exponentially distributed time (at least MinLife).
// Arrivals that would put more than MaxPerNode pods on a node are dropped.
type Spec struct {
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

// Event starts or stops one pod.
type Event struct {
	At    time.Duration
	Pod   string
	Node  int
	Start bool
	// Group numbers the arrival group the pod came in (Spec.Burst; with Burst ≤ 1 every pod is
	// its own group), on both of its events.
	Group int
}

// Generate returns the events of spec in time order. Pods still alive at Duration get no stop
// event: the run removes them after the measurement. The same spec always gives the same trace.
func Generate(spec Spec) []Event {
	rng := rand.New(rand.NewPCG(spec.Seed, 0xc4))
	type life struct {
		end  time.Duration
		node int
		pod  string
	}
	var (
		events []Event
		alive  []life
		count  = make([]int, spec.Nodes)
		t      time.Duration
		groups int
	)
	group := max(spec.Burst, 1)
	var pending []time.Duration // the current group's pods still to place, in time order
	for n := 0; ; n++ {
		if len(pending) == 0 {
			groups++
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
		events = append(events, Event{At: t, Pod: pod, Node: node, Start: true, Group: groups})
		if end := t + lifetime; end < spec.Duration {
			events = append(events, Event{At: end, Pod: pod, Node: node, Group: groups})
			alive = append(alive, life{end: end, node: node, pod: pod})
		} else {
			alive = append(alive, life{end: spec.Duration + time.Hour, node: node, pod: pod})
		}
	}
	slices.SortStableFunc(events, func(a, b Event) int { return int(a.At - b.At) })
	return events
}

// Named is one of the churn scenario's seeded traces.
type Named struct {
	Name string
	Spec Spec
}

// Churn returns the churn scenario's two seeded traces: Poisson arrivals ("churn"), and the
// same rate in bursts ("bursty"); short gives CI's small run, the churn trace only. The ipam
// package's policy simulation plays the same traces.
func Churn(short bool) []Named {
	spec := Spec{Seed: 20261121, Nodes: 3, Duration: 45 * time.Second, PerSecond: 2, MeanLife: 15 * time.Second,
		MinLife: time.Second, MaxPerNode: 25}
	if short {
		spec.Duration, spec.PerSecond, spec.MeanLife = 8*time.Second, 2, 3*time.Second
	}
	traces := []Named{{"churn", spec}}
	if short {
		// CI's short run checks the harness: the bursty trace plays through the same code,
		// and 8 s of it may hold no burst at all (its rows would then measure nothing).
		return traces
	}
	bursty := spec
	bursty.Seed, bursty.Burst, bursty.BurstSpread = 20261130, 8, 500*time.Millisecond
	return append(traces, Named{"bursty", bursty})
}
