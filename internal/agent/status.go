package agent

import (
	"fmt"
	"time"

	"github.com/vpcnet/vpcnet/internal/ipam"
)

// Status says whether Add can hand out an address now, and if not why.
type Status struct {
	Ready    bool   `json:"ready"`
	Reason   string `json:"reason,omitempty"` // starting, no-addresses, subnet-exhausted, cloud-unreachable, cloud-unauthorized, max-pods
	Message  string `json:"message"`
	Free     int    `json:"free"`
	Assigned int    `json:"assigned"`
	MaxPods  int    `json:"maxPods"`
}

// Reasons, stable codes for machines.
const (
	ReasonStarting         = "starting"
	ReasonNoAddresses      = "no-addresses"
	ReasonSubnetExhausted  = "subnet-exhausted"
	ReasonCloudUnreachable = "cloud-unreachable"
	// ReasonCloudUnauthorized: EC2 refused a call's permission or the node's credentials
	// (UnauthorizedOperation, AuthFailure, ...); the message names the IAM action.
	ReasonCloudUnauthorized = "cloud-unauthorized"
	ReasonMaxPods           = "max-pods"
)

func (a *Agent) statusLocked(now time.Time, sum ipam.Summary) Status {
	st := Status{Free: sum.Free, Assigned: sum.Assigned, MaxPods: a.st.maxPods}
	switch {
	case !a.st.started && a.st.cloudErr != nil:
		st.Reason, st.Message = cloudFailure("starting: ", a.st.cloudErr)
	case !a.st.started:
		st.Reason, st.Message = ReasonStarting, "starting: reading the instance's identity and ENIs"
	case sum.Free > 0:
		st.Ready = true
		st.Message = fmt.Sprintf("%d addresses free, %d assigned, %d cooling down on %d ENIs", sum.Free, sum.Assigned, sum.Cooldown, sum.ENIs)
	case a.st.maxPods > 0 && sum.Assigned >= a.st.maxPods:
		why := "MAX_PODS"
		if a.cfg.Pool.MaxPods == 0 {
			why = "the instance's ENI limits"
		}
		st.Reason, st.Message = ReasonMaxPods, fmt.Sprintf("all %d pod addresses allowed by %s are held by pods", a.st.maxPods, why)
	case a.st.exhaustions > 0:
		st.Reason = ReasonSubnetExhausted
		st.Message = fmt.Sprintf("subnet %s (%s) has no free addresses (InsufficientFreeAddressesInSubnet, %d in a row, last at %s): free addresses in it, grow it, add a subnet or enable prefix mode",
			a.st.id.SubnetID, a.st.id.SubnetCIDR, a.st.exhaustions, a.st.exhausted.UTC().Format(time.TimeOnly))
	case a.st.cloudErr != nil:
		st.Reason, st.Message = cloudFailure("no free address: ", a.st.cloudErr)
	default:
		st.Reason = ReasonNoAddresses
		st.Message = fmt.Sprintf("no free address now (%d assigned, %d cooling down); the pool is growing: %s", sum.Assigned, sum.Cooldown, a.st.lastPlan.Reason)
	}
	return st
}
