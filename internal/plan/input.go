package plan

import (
	"fmt"
	"net/netip"

	"github.com/vpcnet/vpcnet/internal/catalog"
)

// Warm holds the warm-pool settings under the names and meanings of the AWS VPC CNI.
type Warm struct {
	// ENITarget is WARM_ENI_TARGET (default 1): keep this many ENIs' worth of free addresses.
	// Secondary-IP mode only, and only when neither IP target is set.
	ENITarget int `json:"warmEniTarget"`
	// IPTarget is WARM_IP_TARGET: keep this many free addresses. 0 means unset.
	IPTarget int `json:"warmIpTarget"`
	// MinimumIPTarget is MINIMUM_IP_TARGET: hold at least this many addresses. 0 means unset.
	MinimumIPTarget int `json:"minimumIpTarget"`
	// PrefixTarget is WARM_PREFIX_TARGET (default 1, as vpcnetd and AWS's manifest): keep this many fully free /28 prefixes.
	// Prefix mode only, and only when neither IP target is set.
	PrefixTarget int `json:"warmPrefixTarget"`
}

// DefaultWarm returns the agent's defaults: WARM_ENI_TARGET=1 (secondary-IP mode) and
// WARM_PREFIX_TARGET=1 (prefix mode), IP targets unset.
func DefaultWarm() Warm { return Warm{ENITarget: 1, PrefixTarget: 1} }

// IPTargets reports whether WARM_IP_TARGET or MINIMUM_IP_TARGET is set; either one switches the
// pool from ENI or prefix targets to IP targets, as in the AWS agent (0 counts as unset there too).
func (w Warm) IPTargets() bool { return w.IPTarget > 0 || w.MinimumIPTarget > 0 }

// Input describes the cluster to plan.
type Input struct {
	VPC              netip.Prefix
	Subnets          []netip.Prefix
	Type             catalog.InstanceType
	Nodes            int
	PodsPerNode      int // pods that need a pod address; host-network pods are not counted
	PrefixDelegation bool
	Warm             Warm
	// MaxPods overrides the node's max pods (kubelet's limit). 0: the AWS formula for the mode,
	// capped at the recommended 110/250 in prefix mode as EKS does.
	MaxPods int
}

// Field names in InputError: they match the `vpcnet plan cluster` flags.
const (
	FieldVPC              = "vpc-cidr"
	FieldSubnet           = "subnet"
	FieldInstanceType     = "instance-type"
	FieldNodes            = "nodes"
	FieldPodsPerNode      = "pods-per-node"
	FieldPrefixDelegation = "prefix-delegation"
	FieldWarmENITarget    = "warm-eni-target"
	FieldWarmIPTarget     = "warm-ip-target"
	FieldMinimumIPTarget  = "minimum-ip-target"
	FieldWarmPrefixTarget = "warm-prefix-target"
	FieldMaxPods          = "max-pods"
)

// InputError is an invalid input; Field names the input at fault.
type InputError struct {
	Field string
	Msg   string
}

func (e *InputError) Error() string { return e.Field + ": " + e.Msg }

func inputErr(field, format string, args ...any) error {
	return &InputError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Limits on sizes: AWS allows VPCs and subnets from /16 to /28. The counts are bounded so that
// no product in the arithmetic can overflow.
const (
	minPrefixBits = 16
	maxPrefixBits = 28
	maxNodes      = 1 << 20
	maxPodsInput  = 1 << 16
	maxWarm       = 1 << 16
)

// Validate checks the input and returns the first problem as an *InputError.
func (in Input) Validate() error {
	if err := checkCIDR(FieldVPC, in.VPC, "VPC"); err != nil {
		return err
	}
	if len(in.Subnets) == 0 {
		return inputErr(FieldSubnet, "at least one subnet is needed")
	}
	for i, s := range in.Subnets {
		if err := checkCIDR(FieldSubnet, s, "subnet"); err != nil {
			return err
		}
		if s.Bits() < in.VPC.Bits() || !in.VPC.Contains(s.Addr()) {
			return inputErr(FieldSubnet, "%s is outside the VPC %s", s, in.VPC)
		}
		for _, prev := range in.Subnets[:i] {
			if s.Overlaps(prev) {
				return inputErr(FieldSubnet, "%s overlaps %s", s, prev)
			}
		}
	}
	t := in.Type
	if t.Name == "" {
		return inputErr(FieldInstanceType, "no instance type given")
	}
	if t.MaxENIs < 1 || t.IPv4PerENI < 2 {
		return inputErr(FieldInstanceType, "%s has %d ENIs with %d addresses each: no room for pod addresses", t.Name, t.MaxENIs, t.IPv4PerENI)
	}
	if in.Nodes < 1 || in.Nodes > maxNodes {
		return inputErr(FieldNodes, "%d: expected 1 to %d nodes", in.Nodes, maxNodes)
	}
	if in.PodsPerNode < 0 || in.PodsPerNode > maxPodsInput {
		return inputErr(FieldPodsPerNode, "%d: expected 0 to %d pods", in.PodsPerNode, maxPodsInput)
	}
	for _, w := range []struct {
		field string
		v     int
	}{
		{FieldWarmENITarget, in.Warm.ENITarget},
		{FieldWarmIPTarget, in.Warm.IPTarget},
		{FieldMinimumIPTarget, in.Warm.MinimumIPTarget},
		{FieldWarmPrefixTarget, in.Warm.PrefixTarget},
		{FieldMaxPods, in.MaxPods},
	} {
		if w.v < 0 || w.v > maxWarm {
			return inputErr(w.field, "%d: expected 0 to %d", w.v, maxWarm)
		}
	}
	if in.PrefixDelegation && !t.Nitro() {
		return inputErr(FieldPrefixDelegation, "instance type %s is not Nitro-based (hypervisor %q): prefix delegation needs Nitro; drop the flag or pick a Nitro type", t.Name, t.Hypervisor)
	}
	return nil
}

func checkCIDR(field string, p netip.Prefix, what string) error {
	switch {
	case !p.IsValid():
		return inputErr(field, "no %s CIDR given", what)
	case !p.Addr().Is4():
		return inputErr(field, "%s is not an IPv4 CIDR", p)
	case p.Masked() != p:
		return inputErr(field, "%s has host bits set; the %s is %s", p, what, p.Masked())
	case p.Bits() < minPrefixBits || p.Bits() > maxPrefixBits:
		return inputErr(field, "%s: a %s must be /%d to /%d", p, what, minPrefixBits, maxPrefixBits)
	}
	return nil
}
