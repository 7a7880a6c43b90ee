// Package cloud is what the node agent needs from a cloud — its instance's identity and limits,
// its ENIs, and addresses on them — and the aws-sdk-go-v2 implementation of it over EC2 and IMDS,
// rate limited, retried, cached and tagged.
package cloud

import (
	"context"
	"errors"
	"net/netip"
	"time"

	"github.com/aws/smithy-go"
)

// Cloud is the agent's view of EC2. Every method is safe for concurrent use.
type Cloud interface {
	// Identity describes the instance the agent runs on, from IMDS.
	Identity(ctx context.Context) (Identity, error)
	// Limits returns an instance type's networking limits.
	Limits(ctx context.Context, instanceType string) (Limits, error)
	// ENIs lists the ENIs attached to the instance, primary first. Cached briefly; concurrent
	// callers share one Describe call.
	ENIs(ctx context.Context, instanceID string) ([]ENI, error)
	// SubnetFree is the number of free addresses in the subnet (AvailableIpAddressCount). Cached
	// briefly, dropped by our own changes; concurrent callers share one Describe call.
	SubnetFree(ctx context.Context, subnetID string) (int, error)
	// CreateENI creates a tagged ENI in the instance's subnet with ips secondary addresses or
	// prefixes /28 prefixes (in the same call; EC2 gives all or none), attaches it at
	// deviceIndex, and returns it with its addresses once it is attached.
	CreateENI(ctx context.Context, id Identity, deviceIndex, ips, prefixes int) (ENI, error)
	// FreeENI detaches an ENI of ours and deletes it.
	FreeENI(ctx context.Context, eni ENI) error
	AssignIPs(ctx context.Context, eniID string, n int) ([]netip.Addr, error)
	AssignPrefixes(ctx context.Context, eniID string, n int) ([]netip.Prefix, error)
	UnassignIPs(ctx context.Context, eniID string, ips []netip.Addr) error
	UnassignPrefixes(ctx context.Context, eniID string, prefixes []netip.Prefix) error
	// CleanupDetached deletes detached ENIs this cluster created more than grace ago (left by a
	// crash between create and attach, or between detach and delete), except those an agent
	// still answers for: an ENI tagged with a live instance other than self is that instance's
	// agent's to re-attach or delete, and one tagged with self is kept while inUse says local
	// pods hold its addresses.
	CleanupDetached(ctx context.Context, grace time.Duration, self string, inUse func(ENI) bool) ([]string, error)

	// Interfaces reads the attached ENIs' MACs, addresses and prefixes from IMDS.
	Interfaces(ctx context.Context) (map[string]Interface, error)
	// DescribeENIs describes ENIs by ID, attached or not; deleted ones are missing.
	DescribeENIs(ctx context.Context, ids []string) ([]ENI, error)
	// AttachENI re-attaches a detached ENI of ours at deviceIndex and waits for it.
	AttachENI(ctx context.Context, id Identity, eni ENI, deviceIndex int) (ENI, error)
	// AssignExact assigns the named addresses and prefixes (which it held before) to the ENI.
	AssignExact(ctx context.Context, eniID string, ips []netip.Addr, prefixes []netip.Prefix) error
	// SetDeleteOnTermination sets the attachment's DeleteOnTermination, so that EC2 deletes the
	// ENI, and frees its addresses, when the instance terminates.
	SetDeleteOnTermination(ctx context.Context, eni ENI) error
}

// Identity is the instance and its primary network interface, as IMDS reports them.
type Identity struct {
	InstanceID     string
	InstanceType   string
	Region         string
	Zone           string
	PrimaryMAC     string
	PrimaryIP      netip.Addr
	SubnetID       string
	SubnetCIDR     netip.Prefix
	VPCID          string
	VPCCIDRs       []netip.Prefix
	SecurityGroups []string
	// MACs lists the MACs IMDS shows attached, the primary's included.
	MACs []string
}

// Limits are an instance type's networking limits.
type Limits struct {
	MaxENIs    int
	IPv4PerENI int // private addresses per ENI, the primary included
}

// ENI is a network interface attached to the instance (or, from DescribeENIs, to any or none).
type ENI struct {
	ID           string
	MAC          string
	DeviceIndex  int
	AttachmentID string // set once the attachment is complete ("attached")
	AttachedTo   string // instance of the attachment in any state; "" when detached
	// DeleteOnTermination: EC2 deletes the ENI with the instance (the attachment's attribute).
	DeleteOnTermination bool
	Status              string // EC2's: available, in-use, attaching, detaching
	SubnetID            string
	PrimaryIP           netip.Addr
	IPs                 []netip.Addr   // secondary addresses
	Prefixes            []netip.Prefix // delegated prefixes
	Tags                map[string]string
	// Unmanaged ENIs carry node.k8s.amazonaws.com/no_manage=true: never used or changed.
	Unmanaged bool
}

// Ours reports whether vpcnet created the ENI.
func (e ENI) Ours() bool { return e.Tags[TagCreatedAt] != "" }

// Tag keys vpcnet puts on the ENIs it creates, and the one that keeps it away from an ENI.
const (
	TagInstanceID = "vpcnet.io/instance-id"
	TagCreatedAt  = "vpcnet.io/created-at"
	TagCluster    = "vpcnet.io/cluster-name"
	TagNoManage   = "node.k8s.amazonaws.com/no_manage"
	// TagDeviceIndex is the device index the ENI was created for: pods' policy rules name its
	// routing table, so an ENI detached behind the agent's back is re-attached there.
	TagDeviceIndex = "vpcnet.io/device-index"
)

// EC2 error codes the agent acts on.
const (
	ErrSubnetFull       = "InsufficientFreeAddressesInSubnet"
	ErrNoCIDRBlocks     = "InsufficientCidrBlocks"
	ErrIPLimit          = "PrivateIpAddressLimitExceeded"
	ErrAttachLimit      = "AttachmentLimitExceeded"
	ErrENINotFound      = "InvalidNetworkInterfaceID.NotFound"
	ErrThrottled        = "RequestLimitExceeded"
	ErrUnauthorized     = "UnauthorizedOperation"
	ErrInvalidParameter = "InvalidParameterValue"
)

// Code returns the EC2 error code in err, or "" when err is not an EC2 API error.
func Code(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) {
		return api.ErrorCode()
	}
	return ""
}

// Observer is told of every EC2 call: its action, how long it took (retries included) and its
// error. Attempt is told of every HTTP attempt, so retries can be counted.
type Observer struct {
	Call    func(action string, took time.Duration, err error)
	Attempt func(action string)
}
