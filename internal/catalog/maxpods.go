package catalog

import "fmt"

// PrefixSize is the number of addresses in one delegated /28 prefix.
const PrefixSize = 16

// Mode selects how pods get addresses on a node.
type Mode struct {
	// PrefixDelegation assigns /28 prefixes instead of single secondary addresses.
	PrefixDelegation bool
	// CustomNetworking puts pods on secondary ENIs only; the primary ENI carries no pods.
	CustomNetworking bool
}

// MaxPods is AWS's max-pods formula: ENIs x (IPs per ENI - 1) + 2 in secondary-IP mode,
// ENIs x (IPs per ENI - 1) x 16 + 2 in prefix mode (Nitro only). Custom networking leaves
// the primary ENI out. The +2 stands for host-network pods (aws-node, kube-proxy).
func MaxPods(t InstanceType, m Mode) (int, error) {
	if m.PrefixDelegation && !t.Nitro() {
		return 0, fmt.Errorf("instance type %s is not Nitro-based (hypervisor %q): prefix delegation needs Nitro", t.Name, t.Hypervisor)
	}
	enis := t.MaxENIs
	if m.CustomNetworking {
		enis--
	}
	per := t.IPv4PerENI - 1
	if m.PrefixDelegation {
		per *= PrefixSize
	}
	if enis < 0 || per < 0 {
		return 2, nil
	}
	return enis*per + 2, nil
}

// RecommendedCap is the pod cap AWS recommends: 110, or 250 for types with more than 30 vCPUs.
// ok is false when the catalog does not know the type's vCPUs; the cap is then 110.
func RecommendedCap(t InstanceType) (cap int, ok bool) {
	if t.VCPUs == 0 {
		return 110, false
	}
	if t.VCPUs > 30 {
		return 250, true
	}
	return 110, true
}

// SlotsPerENI is the number of pod address slots on one ENI (the primary address excluded).
func (t InstanceType) SlotsPerENI() int { return t.IPv4PerENI - 1 }

// Capped returns n limited to the type's recommended cap (see RecommendedCap).
func Capped(t InstanceType, n int) int {
	c, _ := RecommendedCap(t)
	return min(n, c)
}
