package agent

import (
	"slices"
	"time"

	"github.com/vpcnet/vpcnet/internal/ipam"
)

// demandLog is what the agent remembers for the adaptive mode (ipam.History): when ADDs asked
// for an address, and how long recent grows took. Guarded by Agent.mu; the policy reads it as
// input, never keeps it.
type demandLog struct {
	starts    []time.Time
	replenish []time.Duration
}

// startLocked records a pod start: an ADD served an address, at the moment it asked (now).
// ADDs answered try-again are not counted, so a runtime's retries count as one start. Starts
// older than ipam.RateWindow are forgotten.
func (d *demandLog) startLocked(now time.Time) {
	i := 0
	for i < len(d.starts) && now.Sub(d.starts[i]) > ipam.RateWindow {
		i++
	}
	d.starts = append(d.starts[i:], now)
}

// replenishedLocked records how long a grow took, from the request to usable addresses.
func (d *demandLog) replenishedLocked(took time.Duration) {
	d.replenish = append(d.replenish, took)
	if n := len(d.replenish); n > ipam.ReplenishSamples {
		d.replenish = slices.Delete(d.replenish, 0, n-ipam.ReplenishSamples)
	}
}

// historyLocked is the log as the policy's input.
func (d *demandLog) historyLocked() ipam.History {
	return ipam.History{Starts: slices.Clone(d.starts), Replenish: slices.Clone(d.replenish)}
}

// PoolSizing is the adaptive mode's reasoning as status shows it (ipam.AdaptiveOf).
type PoolSizing struct {
	Mode             string  `json:"mode"`             // "adaptive"
	StartRate        float64 `json:"startRate"`        // pod starts per second, last 30 s
	Burst            int     `json:"burst"`            // most starts within twice the replenish latency
	ReplenishSeconds float64 `json:"replenishSeconds"` // median of the recent grows
	TargetFree       int     `json:"targetFree"`       // free addresses kept
	Batch            int     `json:"batch"`            // addresses a grow asks beyond the target; surplus kept before releasing
	Reason           string  `json:"reason"`
}

// sizingLocked is the adaptive sizing now, nil in the AWS modes.
func (a *Agent) sizingLocked(now time.Time) *PoolSizing {
	if !a.cfg.Pool.Adaptive {
		return nil
	}
	ad := ipam.AdaptiveOf(a.stateLocked(now))
	return &PoolSizing{Mode: "adaptive", StartRate: ad.StartRate, Burst: ad.Burst, ReplenishSeconds: ad.Replenish.Seconds(),
		TargetFree: ad.Target, Batch: ad.Batch, Reason: ad.Reason}
}
