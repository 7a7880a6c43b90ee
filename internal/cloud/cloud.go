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
	// CleanupDetached deletes ENIs this cluster created that have been detached for longer than
	// grace (left by a crash between create and attach, or between detach and delete).
	CleanupDetached(ctx context.Context, grace time.Duration) ([]string, error)
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

// ENI is a network interface attached to the instance.
type ENI struct {
	ID           string
	MAC          string
	DeviceIndex  int
	AttachmentID string
	SubnetID     string
	PrimaryIP    netip.Addr
	IPs          []netip.Addr   // secondary addresses
	Prefixes     []netip.Prefix // delegated prefixes
	Tags         map[string]string
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
