package ipam_test

import (
	"math"
	"testing"

	"github.com/vpcnet/vpcnet/internal/bench/churntrace"
	"github.com/vpcnet/vpcnet/internal/bench/frontier"
	"github.com/vpcnet/vpcnet/internal/ipam"
)

// TestPolicyUnderFrontier (issue 16) checks the offline frontier (internal/bench/frontier)
// against the policy: every setting's simulated run of the churn bench's traces, at both
// speeds, lies on or under the frontier of its setting's rule at the EC2 calls it made. The
// frontier claims to bound every agent, online or clairvoyant; an oracle too pessimistic (a need
// the policy does not keep, a call charged that the policy does not make, a measurement that
// differs from the simulation's) shows here as a policy above it. For the adaptive mode, whose
// rule is the online warm bound pods + resting + 1, the simulation's own integral of that bound
// (simResult.ceiling) must equal the frontier's ceiling: the two measure the same window, ticks
// and cooldowns.
func TestPolicyUnderFrontier(t *testing.T) {
	lim := ipam.Limits{MaxENIs: 3, IPv4PerENI: 10}
	for _, tr := range churntrace.Churn(false) {
		for _, slow := range []int{1, 10} {
			play := frontier.Played(tr.Spec, slow)
			for _, c := range simSettings() {
				name, st := atSpeed(tr, slow, c.st)
				c.st = st
				t.Run(name+"/"+c.name, func(t *testing.T) {
					t.Parallel()
					r := simulateSlowed(c.st, tr.Spec, slow)
					f, err := frontier.Compute(play, frontier.For(c.st, lim), lim)
					if err != nil {
						t.Fatal(err)
					}
					bound := f.At(r.calls)
					t.Logf("policy %.2f%% with %d calls, %d/%d warm; frontier %.2f%% at %d calls (%s)", r.utilisation(), r.calls, r.warm, r.starts, bound, r.calls, f)
					if f.Starts != r.starts {
						t.Errorf("frontier counts %d ADDs in the window, the simulation %d", f.Starts, r.starts)
					}
					if math.Abs(f.Pods-r.pods) > 1e-6*r.pods {
						t.Errorf("frontier ∫pods dt %.3f pod-seconds, the simulation %.3f", f.Pods, r.pods)
					}
					if r.utilisation() > bound*(1+1e-9) {
						t.Errorf("policy utilisation %.3f%% with %d EC2 calls is above the frontier's %.3f%% for that many", r.utilisation(), r.calls, bound)
					}
					if c.st.Adaptive && r.warm == r.starts {
						if last := f.Held[len(f.Held)-1]; math.Abs(last-r.ceiling) > 1e-6*r.ceiling {
							t.Errorf("frontier's least ∫held dt with any calls %.3f address-seconds, the simulation's ∫(pods+resting+1) dt %.3f", last, r.ceiling)
						}
					}
				})
			}
		}
	}
}
