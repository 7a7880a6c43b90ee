// Package dataplane is the host networking of a vpcnet node, done through netlink and nftables
// in the caller's network namespace: the per-pod veth, addresses, routes and policy rules the CNI
// plugin sets up, and the node-level ENI devices, routing tables and SNAT the agent sets up.
//
// Every function is idempotent and safe to run again after a crash half-way through.
package dataplane

import "net/netip"

const (
	// DefaultMTU is the MTU of pod interfaces and ENIs unless configured (VPC jumbo frames).
	DefaultMTU = 9001
	// DefaultVethPrefix starts the name of every host-side pod veth.
	DefaultVethPrefix = "eni"

	// RulePrioToPod sends traffic to a pod through the main table (host route to its veth).
	RulePrioToPod = 512
	// RulePrioSNATMark sends pod traffic marked for SNAT through the main table (primary ENI).
	RulePrioSNATMark = 1024
	// RulePrioFromPod sends traffic from a pod on a secondary ENI through that ENI's table.
	RulePrioFromPod = 1536

	// SNATMark is the packet mark of pod traffic that leaves with the node's primary IP.
	SNATMark = 0x80

	// TableName is our nftables table (family inet).
	TableName = "vpcnet"

	mainTable = 254
)

// Gateway is the pod's default gateway: a link-local address answered by the host veth's MAC
// through a permanent neighbour entry in the pod.
var Gateway = netip.MustParseAddr("169.254.1.1")

// TableForDevice returns the routing table of the ENI at deviceIndex: 0 (main) for the primary
// ENI, deviceIndex+1 otherwise.
func TableForDevice(deviceIndex int) int {
	if deviceIndex <= 0 {
		return 0
	}
	return deviceIndex + 1
}
