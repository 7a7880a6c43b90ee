package ipam

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// History is what the policy remembers of the node's demand and of the cloud. It is input to
// Decide like the rest of State: the agent records it, the policy only reads it.
type History struct {
	// Starts are the moments ADDs asked for an address (pod starts), oldest first; the agent
	// keeps those of the last RateWindow.
	Starts []time.Time
	// Replenish are how long recent grows took, from the request to usable addresses (an
	// assign, or an ENI created, attached and set up with its addresses), oldest first; the
	// agent keeps the last ReplenishSamples.
	Replenish []time.Duration
}

const (
	// RateWindow is how far back the adaptive mode looks for the pod start rate.
	RateWindow = 30 * time.Second
	// ReplenishSamples is how many recent grows the replenish latency is taken from.
	ReplenishSamples = 16
	// NothingSeenTarget is the free addresses kept before any pod start was seen (in the last
	// RateWindow): the first pod's, and one for a pod that starts with it while its grow is on
	// its way (a Deployment scaled up starts its pods together; with one kept, the churn bench's
	// bursty trace saw its second pod wait).
	NothingSeenTarget = 2
	// DefaultReplenish is the replenish latency assumed before any grow was measured: about an
	// AssignPrivateIpAddresses plus the agent's pass on EC2.
	DefaultReplenish = time.Second
)

// Adaptive is how the adaptive mode (Settings.Adaptive, VPCNET_WARM_POOL=adaptive) sizes the
// pool from History: enough free addresses that the pods starting while a grow is on its way
// find one ("pods must not wait"), topped up in batches that the pod start rate uses up within
// the release delay, with the addresses resting after pods stopped (IP_COOLDOWN_PERIOD)
// counted towards the batch, since each is back within the cooldown. Shown in status and
// metrics.
type Adaptive struct {
	StartRate float64       // pod starts per second over the last RateWindow (or since the first start, if later)
	Burst     int           // most starts seen within twice the replenish latency
	Replenish time.Duration // median of the recent grows' durations (DefaultReplenish before any)
	Target    int           // free addresses kept (usable now; resting ones do not count)
	Batch     int           // addresses beyond the target a grow tops up to and the pool keeps before releasing, free or resting
	Reason    string
}

// AdaptiveOf sizes the adaptive pool from s.History at s.Now:
//
//	Target = max(ceil(StartRate × 2 × Replenish), Burst) + 1
//	         (before any start NothingSeenTarget in the adaptive mode; 1 as the AWS modes' usable floor)
//	Batch  = ceil(StartRate × ReleaseDelay), at most one ENI's slots
//
// Twice the replenish latency covers the starts during one grow and the one that triggers the
// next; Burst covers bursts the average hides; the +1 is the address the next pod takes while a
// grow is started. Batch: an address fetched ahead is used within the release delay at the rate
// seen, so the batch costs no release that the delay would not have made anyway.
func AdaptiveOf(s State) Adaptive {
	h := s.History
	ad := Adaptive{Replenish: DefaultReplenish}
	if len(h.Replenish) > 0 {
		r := slices.Clone(h.Replenish)
		slices.Sort(r)
		ad.Replenish = r[len(r)/2]
	}
	var recent []time.Time
	for _, t := range h.Starts {
		if !t.After(s.Now) && s.Now.Sub(t) <= RateWindow {
			recent = append(recent, t)
		}
	}
	slices.SortFunc(recent, func(a, b time.Time) int { return a.Compare(b) })
	if len(recent) > 0 {
		// The rate over the window, or over the time since the first start seen when that is
		// shorter (a node that just started), at least one replenish long.
		span := max(min(RateWindow, s.Now.Sub(recent[0])), ad.Replenish, time.Second)
		ad.StartRate = float64(len(recent)) / span.Seconds()
	}
	ad.Burst = maxWithin(recent, 2*ad.Replenish)
	ad.Target = max(int(math.Ceil(ad.StartRate*2*ad.Replenish.Seconds())), ad.Burst) + 1
	if len(recent) == 0 && s.Settings.Adaptive {
		ad.Target = NothingSeenTarget
	}
	ad.Batch = int(math.Ceil(ad.StartRate * s.Settings.ReleaseDelay.Seconds()))
	if sl := s.Limits.Slots(); sl > 0 {
		ad.Batch = min(ad.Batch, sl)
	}
	ad.Reason = fmt.Sprintf("adaptive: %.2f pod starts/s, at most %d within %s, replenish %s: %d free kept, batches of %d",
		ad.StartRate, ad.Burst, 2*ad.Replenish, ad.Replenish.Round(time.Millisecond), ad.Target, ad.Batch)
	return ad
}

// maxWithin is the most times that fall within any interval of length d (times sorted).
func maxWithin(ts []time.Time, d time.Duration) int {
	best, j := 0, 0
	for i := range ts {
		for ts[i].Sub(ts[j]) > d {
			j++
		}
		best = max(best, i-j+1)
	}
	return best
}
