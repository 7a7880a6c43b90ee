package lab

import (
	"net/netip"
	"time"
)

// The control API between the CLI and the lab controller: JSON over HTTP on the lab's control
// socket. Long requests answer a stream of Progress lines, one JSON object a line, the last of
// which carries the result or the error.

// Progress is one line of a streamed answer.
type Progress struct {
	Step   string `json:"step,omitempty"`   // a sentence for the user, while working
	Error  string `json:"error,omitempty"`  // the request failed; last line
	Code   string `json:"code,omitempty"`   // a stable error code, e.g. "subnet-exhausted"
	Result any    `json:"result,omitempty"` // the request succeeded; last line
}

// NodeRequest asks for a new node.
type NodeRequest struct {
	InstanceType string `json:"instanceType,omitempty"`
	Subnet       string `json:"subnet,omitempty"` // subnet ID or CIDR; default the lab's first subnet
}

// PodRequest asks for a new pod.
type PodRequest struct {
	Name string `json:"name"`
	Node string `json:"node,omitempty"` // default: the ready node with the fewest pods
}

// Error codes the controller returns.
const (
	CodeSubnetExhausted = "subnet-exhausted"
	CodeNoAddress       = "no-address"
	CodeNotFound        = "not-found"
	CodeExists          = "exists"
	CodeInvalid         = "invalid"
)

// Status is everything `lab status` shows.
type Status struct {
	Name    string       `json:"name"`
	Dir     string       `json:"dir"`
	VPC     VPCInfo      `json:"vpc"`
	Subnets []SubnetInfo `json:"subnets"`
	Nodes   []NodeInfo   `json:"nodes"`
	Pods    []PodInfo    `json:"pods"`
}

// VPCInfo is the lab's VPC.
type VPCInfo struct {
	ID   string       `json:"id"`
	CIDR netip.Prefix `json:"cidr"`
}

// SubnetInfo is one subnet with its address use. Usable excludes the five addresses AWS keeps.
type SubnetInfo struct {
	ID     string       `json:"id"`
	CIDR   netip.Prefix `json:"cidr"`
	AZ     string       `json:"az"`
	Usable int          `json:"usable"`
	Free   int          `json:"free"`
	Used   int          `json:"used"`
}

// NodeInfo is one node: its instance, agent and ENIs.
type NodeInfo struct {
	Name         string     `json:"name"`
	Index        int        `json:"index"`
	NS           string     `json:"netns"`
	InstanceID   string     `json:"instanceId"`
	InstanceType string     `json:"instanceType"`
	SubnetID     string     `json:"subnetId"`
	PrimaryIP    netip.Addr `json:"primaryIp"`
	Agent        AgentInfo  `json:"agent"`
	ENIs         []ENIInfo  `json:"enis"`
	MaxENIs      int        `json:"maxEnis"`
	IPv4PerENI   int        `json:"ipv4PerEni"`
	MaxPods      int        `json:"maxPods"`
	Pods         []string   `json:"pods"`
}

// AgentInfo is what the node's vpcnetd says about itself.
type AgentInfo struct {
	PID      int    `json:"pid"`
	Restarts int    `json:"restarts"`
	Ready    bool   `json:"ready"`
	Reason   string `json:"reason,omitempty"`
	Message  string `json:"message,omitempty"`
	Free     int    `json:"free"`
	Assigned int    `json:"assigned"`
	MaxPods  int    `json:"maxPods"`
}

// ENIInfo is one ENI attached to a node.
type ENIInfo struct {
	ID          string         `json:"id"`
	DeviceIndex int            `json:"deviceIndex"`
	MAC         string         `json:"mac"`
	SubnetID    string         `json:"subnetId"`
	PrimaryIP   netip.Addr     `json:"primaryIp"`
	Secondary   []netip.Addr   `json:"secondaryIps"`
	Prefixes    []netip.Prefix `json:"prefixes"`
}

// Slots is how many of the ENI's IPv4 slots are taken (the primary, each secondary, each prefix).
func (e ENIInfo) Slots() int { return 1 + len(e.Secondary) + len(e.Prefixes) }

// PodInfo is one pod.
type PodInfo struct {
	Name        string     `json:"name"`
	Node        string     `json:"node"`
	NS          string     `json:"netns"`
	IP          netip.Addr `json:"ip"`
	ContainerID string     `json:"containerId"`
}

// EC2Call is one EC2 API call the lab's vpcsim served, as the controller recorded it: the
// agents' calls (through the fabric's EC2 address), the controller's own (RunInstances, ...)
// and those of tools on the EC2 socket. Start and End are when the request reached the
// controller and when the answer was written, so they include vpcsim's configured latency.
type EC2Call struct {
	Seq    uint64    `json:"seq"`    // 1, 2, ... in the order the calls ended
	Action string    `json:"action"` // e.g. AssignPrivateIpAddresses; "?" when the request named none
	Caller string    `json:"caller"` // an instance ID, CallerController, or "" when unknown
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	Code   string    `json:"code,omitempty"` // EC2's error code, e.g. RequestLimitExceeded; "" on success
}

// CallerController is EC2Call.Caller for the controller's own calls.
const CallerController = "controller"

// EC2Calls is the part of the controller's record a request asked for.
type EC2Calls struct {
	Calls []EC2Call `json:"calls"`
	// Next is the Seq of the last call recorded so far: ask for calls after it to get only
	// newer ones.
	Next uint64 `json:"next"`
	// Dropped counts the calls the record has forgotten (it keeps the newest EC2CallsKept).
	Dropped uint64 `json:"dropped"`
}

// EC2CallsKept is how many calls the controller's record holds.
const EC2CallsKept = 10000
