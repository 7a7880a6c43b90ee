package bench

import (
	"math"
	"slices"
	"time"
)

// Median returns the middle value of xs (the mean of the two middle values for an even count),
// or 0 for none.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Percentile returns the nearest-rank p-th percentile (0 < p <= 100) of xs, or 0 for none.
func Percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	return s[min(max(rank, 1), len(s))-1]
}

// Millis turns durations into milliseconds.
func Millis(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = float64(d) / float64(time.Millisecond)
	}
	return out
}

// Ratio returns a/b, or 0 when b is 0.
func Ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// Sample is one observation of a ratio's two sides at a moment: e.g. pods (Num) and addresses
// held (Den) on the nodes.
type Sample struct {
	At       time.Duration
	Num, Den float64
}

// TimeWeighted returns ∫Num dt / ∫Den dt over the samples, each sample's values holding until
// the next one (the last sample only closes the interval). Samples must be in time order.
func TimeWeighted(samples []Sample) float64 {
	var num, den float64
	for i := 0; i+1 < len(samples); i++ {
		dt := float64(samples[i+1].At - samples[i].At)
		if dt <= 0 {
			continue
		}
		num += samples[i].Num * dt
		den += samples[i].Den * dt
	}
	return Ratio(num, den)
}

// Call is one cloud call the agent made, relative to a start: when it was sent and how long
// the cloud kept it busy (the configured latency: before the reply for a synchronous action,
// the attaching state for AttachNetworkInterface).
type Call struct {
	Action  string
	Start   time.Duration
	Latency time.Duration
}

// CriticalPath returns the largest sum of latencies over a chain of calls in which each call
// starts only once the cloud is done with the previous one, and every call is done by until.
// The agent can reach a state no sooner than this chain of cloud work allows, so until minus
// the chain is the time the agent itself added. It also returns the chain, in order.
func CriticalPath(calls []Call, until time.Duration) (time.Duration, []Call) {
	var cs []Call
	for _, c := range calls {
		if c.Start >= 0 && c.Start+c.Latency <= until {
			cs = append(cs, c)
		}
	}
	slices.SortStableFunc(cs, func(a, b Call) int { return int(a.Start - b.Start) })
	best := make([]time.Duration, len(cs))
	prev := make([]int, len(cs))
	top := -1
	for j, c := range cs {
		best[j], prev[j] = c.Latency, -1
		for i := range j {
			if cs[i].Start+cs[i].Latency <= c.Start && best[i]+c.Latency > best[j] {
				best[j], prev[j] = best[i]+c.Latency, i
			}
		}
		if top < 0 || best[j] > best[top] {
			top = j
		}
	}
	if top < 0 {
		return 0, nil
	}
	var chain []Call
	for i := top; i >= 0; i = prev[i] {
		chain = append(chain, cs[i])
	}
	slices.Reverse(chain)
	return best[top], chain
}
