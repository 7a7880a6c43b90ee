package cloud

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// What the agent uses to notice, and repair, a cloud changed behind it: an ENI detached,
// deleted or attached elsewhere, an address or prefix unassigned, by someone else.

// Interface is one attached ENI as IMDS lists it under network/interfaces/macs/MAC/.
type Interface struct {
	MAC      string         // lower case, colons
	Addrs    []netip.Addr   // local-ipv4s: the primary first, then the secondary addresses
	Prefixes []netip.Prefix // ipv4-prefix: delegated /28 prefixes
}

// Interfaces reads the instance's attached ENIs from IMDS, by MAC: the macs/ listing, then each
// MAC's local-ipv4s and ipv4-prefix (absent, 404, when it holds none). IMDS is local to the
// instance and outside EC2's rate limits, so the agent can read it every second; it can lag
// EC2 by a moment, so a difference it shows is a reason to ask EC2, not an answer. Each read
// is observed as an "IMDS" call.
func (c *Client) Interfaces(ctx context.Context) (_ map[string]Interface, err error) {
	defer c.observe("IMDS", time.Now(), &err)
	list, err := c.metadata(ctx, "network/interfaces/macs/")
	if err != nil {
		return nil, fmt.Errorf("IMDS: %w", err)
	}
	out := map[string]Interface{}
	for _, m := range lines(list) {
		mac := strings.ToLower(strings.TrimSuffix(m, "/"))
		base := "network/interfaces/macs/" + mac + "/"
		ifc := Interface{MAC: mac}
		ips, err := c.metadata(ctx, base+"local-ipv4s")
		if err != nil {
			if notFound(err) { // detached between the listing and this read
				continue
			}
			return nil, fmt.Errorf("IMDS: %w", err)
		}
		if ifc.Addrs, err = ParseAddrList(ips); err != nil {
			return nil, fmt.Errorf("IMDS %slocal-ipv4s: %w", base, err)
		}
		pfx, err := c.metadata(ctx, base+"ipv4-prefix")
		switch {
		case notFound(err):
		case err != nil:
			return nil, fmt.Errorf("IMDS: %w", err)
		default:
			if ifc.Prefixes, err = ParsePrefixList(pfx); err != nil {
				return nil, fmt.Errorf("IMDS %sipv4-prefix: %w", base, err)
			}
		}
		out[mac] = ifc
	}
	return out, nil
}

func notFound(err error) bool {
	var re *smithyhttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound
}

// ParseAddrList parses an IMDS list of IPv4 addresses, one a line (local-ipv4s).
func ParseAddrList(s string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, l := range lines(s) {
		a, err := netip.ParseAddr(l)
		if err != nil || !a.Is4() {
			return nil, fmt.Errorf("%q is not an IPv4 address", l)
		}
		out = append(out, a)
	}
	return out, nil
}

// ParsePrefixList parses an IMDS list of IPv4 prefixes, one a line (ipv4-prefix).
func ParsePrefixList(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, l := range lines(s) {
		p, err := netip.ParsePrefix(l)
		if err != nil || !p.Addr().Is4() || p != p.Masked() {
			return nil, fmt.Errorf("%q is not an IPv4 prefix", l)
		}
		out = append(out, p)
	}
	return out, nil
}

// DescribeENIs describes ENIs by ID, attached or not; an ENI that no longer exists is simply
// missing from the answer (a filter, not NetworkInterfaceIds, so EC2 does not fail the whole
// call with InvalidNetworkInterfaceID.NotFound).
func (c *Client) DescribeENIs(ctx context.Context, ids []string) ([]ENI, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	return c.describeENIs(ctx, []types.Filter{{Name: aws.String("network-interface-id"), Values: ids}})
}

// AttachENI attaches an existing ENI of ours, detached behind the agent's back, to the instance
// at deviceIndex (its old one, so that pods' routing tables stay right) and waits for the
// attachment as CreateENI does. EC2 errors: InvalidParameterValue (the device index is taken),
// AttachmentLimitExceeded, InvalidNetworkInterfaceID.NotFound (deleted meanwhile),
// InvalidNetworkInterface.InUse (attached elsewhere meanwhile).
func (c *Client) AttachENI(ctx context.Context, id Identity, eni ENI, deviceIndex int) (ENI, error) {
	if eni.Unmanaged || !eni.Ours() {
		return ENI{}, fmt.Errorf("ENI %s is not one vpcnet created: not attached", eni.ID)
	}
	defer c.invalidate()
	var att *ec2.AttachNetworkInterfaceOutput
	err := c.call(ctx, "AttachNetworkInterface", len(eni.Prefixes) > 0, func() (err error) {
		att, err = c.ec2.AttachNetworkInterface(ctx, &ec2.AttachNetworkInterfaceInput{
			DeviceIndex: aws.Int32(int32(deviceIndex)), InstanceId: aws.String(id.InstanceID), NetworkInterfaceId: aws.String(eni.ID),
		})
		return err
	})
	if err != nil {
		return ENI{}, fmt.Errorf("re-attach %s to %s at device %d: %w", eni.ID, id.InstanceID, deviceIndex, err)
	}
	eni.AttachmentID, eni.DeviceIndex, eni.AttachedTo, eni.Status = aws.ToString(att.AttachmentId), deviceIndex, id.InstanceID, "in-use"
	eni.DeleteOnTermination = c.SetDeleteOnTermination(ctx, eni) == nil
	return c.waitAttached(ctx, eni)
}

// AssignExact asks EC2 to give back to the ENI the very addresses and prefixes named, which it
// held before someone unassigned them. Never with AllowReassignment: an address another ENI
// took since stays there, and EC2 refuses (PrivateIpAddressInUse, InvalidParameterValue).
func (c *Client) AssignExact(ctx context.Context, eniID string, ips []netip.Addr, prefixes []netip.Prefix) error {
	if len(ips) == 0 && len(prefixes) == 0 {
		return nil
	}
	defer c.invalidate()
	in := &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(eniID)}
	for _, a := range ips {
		in.PrivateIpAddresses = append(in.PrivateIpAddresses, a.String())
	}
	for _, p := range prefixes {
		in.Ipv4Prefixes = append(in.Ipv4Prefixes, p.String())
	}
	err := c.call(ctx, "AssignPrivateIpAddresses", len(prefixes) > 0, func() error {
		_, err := c.ec2.AssignPrivateIpAddresses(ctx, in)
		return err
	})
	if err != nil {
		return fmt.Errorf("re-assign %v %v on %s: %w", ips, prefixes, eniID, err)
	}
	return nil
}

// liveInstances returns which of the instances EC2 still shows pending, running, stopping or
// stopped: those whose own agent looks after their ENIs.
func (c *Client) liveInstances(ctx context.Context, ids []string) (live map[string]bool, err error) {
	live = map[string]bool{}
	if len(ids) == 0 {
		return live, nil
	}
	defer c.observe("DescribeInstances", time.Now(), &err)
	p := ec2.NewDescribeInstancesPaginator(c.ec2, &ec2.DescribeInstancesInput{Filters: []types.Filter{
		{Name: aws.String("instance-id"), Values: ids},
		{Name: aws.String("instance-state-name"), Values: []string{"pending", "running", "stopping", "stopped"}},
	}})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err = classified("DescribeInstances", false, err); err != nil {
			return nil, fmt.Errorf("DescribeInstances: %w", err)
		}
		for _, r := range out.Reservations {
			for _, in := range r.Instances {
				// The filters are checked again here: correctness must not rest on the server's.
				if id := aws.ToString(in.InstanceId); slices.Contains(ids, id) && in.State != nil && in.State.Name != types.InstanceStateNameTerminated && in.State.Name != types.InstanceStateNameShuttingDown {
					live[id] = true
				}
			}
		}
	}
	return live, nil
}
