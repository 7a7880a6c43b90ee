package agent

import (
	"fmt"
	"time"

	"github.com/vpcnet/vpcnet/internal/ipam"
)

// Status is the agent's answer to "can this node run pods, and can an ADD get an address now".
//
// Ready means the node's pod network works: the agent has read the instance and its ENIs, set
// up the host, and answers ADD, either with an address or, while the pool grows, with
// try-again (CNI code 11). It does not wait for a free address: a pool whose target is 0
// (WARM_ENI_TARGET=0, WARM_PREFIX_TARGET=0 with no IP target) holds none until the first ADD
// asks, and a full node (max-pods) stays ready and says it is full. Ready is false only while
// the agent starts.
//
// Reason is empty when an ADD gets an address now; otherwise it says why not.
type Status struct {
	Ready    bool   `json:"ready"`
	Reason   string `json:"reason,omitempty"` // starting, no-addresses, subnet-exhausted, cloud-unreachable, cloud-unauthorized, max-pods
	Message  string `json:"message"`
	Free     int    `json:"free"`     // addresses an ADD can get now
	Assigned int    `json:"assigned"` // addresses held by pods
	// MaxPods is the node's pod-address capacity (ipam.CapacityOf): the most pods with a VPC
	// address it can run. kubelet's maxPods is MaxPods plus the node's host-network pods.
	MaxPods int `json:"maxPods"`
	// CapacityLimit says what bounds MaxPods: "MAX_PODS=N" or the ENIs and slots behind it.
	CapacityLimit string `json:"capacityLimit,omitempty"`
	// Pool is the adaptive mode's sizing and its inputs (VPCNET_WARM_POOL=adaptive; nil
	// otherwise): the pod start rate seen, the replenish latency measured, the free target.
	Pool *PoolSizing `json:"pool,omitempty"`
	// PodsWithoutCloudAddress names each pod whose address EC2 no longer assigns to the node
	// (an ENI or address taken away outside vpcnet): "namespace/name (address: why)".
	PodsWithoutCloudAddress []string `json:"podsWithoutCloudAddress,omitempty"`
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
	if !a.st.started {
		st := Status{Reason: ReasonStarting, Message: "starting: reading the instance's identity and ENIs"}
		if a.st.cloudErr != nil {
			st.Reason, st.Message = cloudFailure("starting: ", a.st.cloudErr)
		}
		return st
	}
	c := ipam.CapacityOf(a.stateLocked(now))
	st := Status{Ready: true, Free: sum.Free, Assigned: sum.Assigned, MaxPods: c.Pods, CapacityLimit: c.Limit, Pool: a.sizingLocked(now)}
	switch {
	case sum.Assigned >= c.Pods:
		st.Reason = ReasonMaxPods
		st.Message = fmt.Sprintf("full: pods hold all %d pod addresses this node can hold (%s); a pod gets one when another is deleted", c.Pods, c.Limit)
	case sum.Free > 0:
		st.Message = fmt.Sprintf("%d addresses free, %d assigned, %d cooling down on %d ENIs; capacity %d pods (%s)", sum.Free, sum.Assigned, sum.Cooldown, sum.ENIs, c.Pods, c.Limit)
	case sum.Total >= c.Pods:
		st.Reason = ReasonNoAddresses
		st.Message = fmt.Sprintf("no free address now: the node holds all %d addresses it can (%s), %d by pods and %d cooling down (IP_COOLDOWN_PERIOD %s); they are handed out again when they have rested",
			c.Pods, c.Limit, sum.Assigned, sum.Cooldown, a.cfg.Pool.Cooldown)
	case a.st.exhaustions > 0:
		st.Reason = ReasonSubnetExhausted
		st.Message = subnetExhaustedMessage(a.st.id.SubnetID, a.st.id.SubnetCIDR.String(), a.st.exhaustions, a.st.exhausted)
	case a.st.cloudErr != nil:
		st.Reason, st.Message = cloudFailure("no free address: ", a.st.cloudErr)
	case a.growingLocked(now):
		st.Reason = ReasonNoAddresses
		st.Message = fmt.Sprintf("no free address now (%d assigned, %d cooling down); the pool is growing: %s", sum.Assigned, sum.Cooldown, a.st.lastPlan.Reason)
	default:
		st.Reason = ReasonNoAddresses
		st.Message = fmt.Sprintf("no free address now (%d assigned, %d cooling down): the pool is at its target (%s); an ADD makes it grow and is answered try-again until the address arrives",
			sum.Assigned, sum.Cooldown, a.st.lastPlan.Reason)
	}
	a.driftStatusLocked(&st)
	return st
}

// subnetExhaustedMessage says what helps when EC2 has no address left in the node's subnet.
// Prefix mode is not among them: a /28 needs 16 free aligned addresses, which a full subnet has not.
func subnetExhaustedMessage(subnetID, cidr string, n int, at time.Time) string {
	return fmt.Sprintf("subnet %s (%s) has no free addresses (InsufficientFreeAddressesInSubnet, %d in a row, last at %s): "+
		"to start more pods, free addresses in it (delete unused ENIs; shrink the other nodes' warm pools with a lower "+
		"WARM_ENI_TARGET or with WARM_IP_TARGET and MINIMUM_IP_TARGET) or give the nodes a bigger or an extra subnet", subnetID, cidr, n, at.UTC().Format(time.TimeOnly))
}

// growingLocked reports whether the pool is growing: an assign or an ENI create is in flight,
// or the last plan asks for one and the cloud is not being waited for. At target, at a limit or
// backing off, it is not.
func (a *Agent) growingLocked(now time.Time) bool {
	if a.st.pending.Addrs > 0 || a.st.pending.CreatingENI {
		return true
	}
	if now.Before(a.st.retryAt) {
		return false
	}
	for _, act := range a.st.lastPlan.Actions {
		switch act.Kind {
		case ipam.CreateENI, ipam.AssignIPs, ipam.AssignPrefixes:
			return true
		}
	}
	return false
}
