package cloud

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// Limits asks DescribeInstanceTypes once per type.
func (c *Client) Limits(ctx context.Context, instanceType string) (l Limits, err error) {
	c.mu.Lock()
	l, ok := c.limits[instanceType]
	c.mu.Unlock()
	if ok {
		return l, nil
	}
	defer c.observe("DescribeInstanceTypes", time.Now(), &err)
	out, err := c.ec2.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{InstanceTypes: []types.InstanceType{types.InstanceType(instanceType)}})
	if err = classified("DescribeInstanceTypes", false, err); err != nil {
		return Limits{}, fmt.Errorf("DescribeInstanceTypes %s: %w", instanceType, err)
	}
	if len(out.InstanceTypes) == 0 || out.InstanceTypes[0].NetworkInfo == nil {
		return Limits{}, fmt.Errorf("DescribeInstanceTypes %s: no network info", instanceType)
	}
	ni := out.InstanceTypes[0].NetworkInfo
	l = Limits{MaxENIs: int(aws.ToInt32(ni.MaximumNetworkInterfaces)), IPv4PerENI: int(aws.ToInt32(ni.Ipv4AddressesPerInterface))}
	c.mu.Lock()
	c.limits[instanceType] = l
	c.mu.Unlock()
	return l, nil
}

// ENIs describes the instance's attached ENIs; callers within CacheTTL, or while a Describe is
// in flight, share one answer.
func (c *Client) ENIs(ctx context.Context, instanceID string) ([]ENI, error) {
	c.mu.Lock()
	hit, ok := c.enis[instanceID]
	c.mu.Unlock()
	if ok && time.Since(hit.at) < c.cfg.CacheTTL {
		return slices.Clone(hit.enis), nil
	}
	v, err, _ := c.flight.Do("enis/"+instanceID, func() (any, error) {
		c.mu.Lock()
		hit, ok := c.enis[instanceID] // filled by a flight that ended since this caller looked
		gen := c.gen
		c.mu.Unlock()
		if ok && time.Since(hit.at) < c.cfg.CacheTTL {
			return hit.enis, nil
		}
		enis, err := c.describeENIs(ctx, []types.Filter{{Name: aws.String("attachment.instance-id"), Values: []string{instanceID}}})
		if err != nil {
			return nil, err
		}
		enis = slices.DeleteFunc(enis, func(e ENI) bool { return e.AttachmentID == "" })
		slices.SortFunc(enis, func(a, b ENI) int { return a.DeviceIndex - b.DeviceIndex })
		c.mu.Lock()
		if c.gen == gen { // no change of ours landed while this Describe was in flight
			c.enis[instanceID] = cachedENIs{at: time.Now(), enis: enis}
		}
		c.mu.Unlock()
		return enis, nil
	})
	if err != nil {
		return nil, err
	}
	return slices.Clone(v.([]ENI)), nil
}

func (c *Client) describeENIs(ctx context.Context, filters []types.Filter) (enis []ENI, err error) {
	defer c.observe("DescribeNetworkInterfaces", time.Now(), &err)
	p := ec2.NewDescribeNetworkInterfacesPaginator(c.ec2, &ec2.DescribeNetworkInterfacesInput{Filters: filters})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err = classified("DescribeNetworkInterfaces", false, err); err != nil {
			return nil, fmt.Errorf("DescribeNetworkInterfaces: %w", err)
		}
		for _, ni := range out.NetworkInterfaces {
			enis = append(enis, fromEC2(ni))
		}
	}
	return enis, nil
}

func fromEC2(ni types.NetworkInterface) ENI {
	e := ENI{
		ID:       aws.ToString(ni.NetworkInterfaceId),
		MAC:      aws.ToString(ni.MacAddress),
		SubnetID: aws.ToString(ni.SubnetId),
		Status:   string(ni.Status),
		Tags:     map[string]string{},
	}
	if a := ni.Attachment; a != nil {
		e.AttachedTo = aws.ToString(a.InstanceId)
		e.DeleteOnTermination = aws.ToBool(a.DeleteOnTermination)
	}
	if a := ni.Attachment; a != nil && a.Status == types.AttachmentStatusAttached {
		e.AttachmentID = aws.ToString(a.AttachmentId)
		e.DeviceIndex = int(aws.ToInt32(a.DeviceIndex))
	}
	for _, p := range ni.PrivateIpAddresses {
		a, err := netip.ParseAddr(aws.ToString(p.PrivateIpAddress))
		if err != nil {
			continue
		}
		if aws.ToBool(p.Primary) {
			e.PrimaryIP = a
		} else {
			e.IPs = append(e.IPs, a)
		}
	}
	for _, p := range ni.Ipv4Prefixes {
		if x, err := netip.ParsePrefix(aws.ToString(p.Ipv4Prefix)); err == nil {
			e.Prefixes = append(e.Prefixes, x)
		}
	}
	for _, t := range ni.TagSet {
		e.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	e.Unmanaged = e.Tags[TagNoManage] == "true"
	return e
}

// SubnetFree is the subnet's AvailableIpAddressCount. Like ENIs, callers within CacheTTL, or
// while a DescribeSubnets is in flight, share one answer, and every change of ours drops the
// cached one, so an answer never predates a change this client made.
func (c *Client) SubnetFree(ctx context.Context, subnetID string) (int, error) {
	c.mu.Lock()
	hit, ok := c.subnets[subnetID]
	c.mu.Unlock()
	if ok && time.Since(hit.at) < c.cfg.CacheTTL {
		return hit.free, nil
	}
	v, err, _ := c.flight.Do("subnet/"+subnetID, func() (any, error) {
		c.mu.Lock()
		hit, ok := c.subnets[subnetID]
		gen := c.gen
		c.mu.Unlock()
		if ok && time.Since(hit.at) < c.cfg.CacheTTL {
			return hit.free, nil
		}
		n, err := c.describeSubnetFree(ctx, subnetID)
		if err != nil {
			return 0, err
		}
		c.mu.Lock()
		if c.gen == gen {
			c.subnets[subnetID] = cachedFree{at: time.Now(), free: n}
		}
		c.mu.Unlock()
		return n, nil
	})
	if err != nil {
		return 0, err
	}
	return v.(int), nil
}

func (c *Client) describeSubnetFree(ctx context.Context, subnetID string) (n int, err error) {
	defer c.observe("DescribeSubnets", time.Now(), &err)
	out, err := c.ec2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{subnetID}})
	if err = classified("DescribeSubnets", false, err); err != nil {
		return 0, fmt.Errorf("DescribeSubnets %s: %w", subnetID, err)
	}
	if len(out.Subnets) == 0 {
		return 0, fmt.Errorf("DescribeSubnets %s: not found", subnetID)
	}
	return int(aws.ToInt32(out.Subnets[0].AvailableIpAddressCount)), nil
}

// CreateENI creates a tagged ENI with its addresses and attaches it. If the attach fails the
// ENI is deleted; if that fails too, CleanupDetached finds it later by its tags.
func (c *Client) CreateENI(ctx context.Context, id Identity, deviceIndex, ips, prefixes int) (ENI, error) {
	if ips < 0 || prefixes < 0 || (ips > 0 && prefixes > 0) {
		return ENI{}, fmt.Errorf("create ENI with %d addresses and %d prefixes: one kind, not negative", ips, prefixes)
	}
	defer c.invalidate()
	tags := []types.Tag{
		{Key: aws.String(TagInstanceID), Value: aws.String(id.InstanceID)},
		{Key: aws.String(TagCreatedAt), Value: aws.String(time.Now().UTC().Format(time.RFC3339))},
		{Key: aws.String(TagCluster), Value: aws.String(c.cfg.Cluster)},
		{Key: aws.String(TagDeviceIndex), Value: aws.String(strconv.Itoa(deviceIndex))},
	}
	in := &ec2.CreateNetworkInterfaceInput{
		SubnetId:          aws.String(id.SubnetID),
		Groups:            id.SecurityGroups,
		Description:       aws.String("vpcnet pod addresses for " + id.InstanceID),
		ClientToken:       aws.String(fmt.Sprintf("vpcnet-%s-%d-%d", id.InstanceID, deviceIndex, time.Now().UnixNano())),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeNetworkInterface, Tags: tags}},
	}
	if ips > 0 {
		in.SecondaryPrivateIpAddressCount = aws.Int32(int32(ips))
	}
	if prefixes > 0 {
		in.Ipv4PrefixCount = aws.Int32(int32(prefixes))
	}
	var out *ec2.CreateNetworkInterfaceOutput
	err := c.call(ctx, "CreateNetworkInterface", prefixes > 0, func() (err error) {
		out, err = c.ec2.CreateNetworkInterface(ctx, in)
		return err
	})
	if err != nil {
		return ENI{}, fmt.Errorf("create ENI in %s with %d addresses, %d prefixes: %w", id.SubnetID, ips, prefixes, err)
	}
	eni := fromEC2(*out.NetworkInterface)
	var att *ec2.AttachNetworkInterfaceOutput
	err = c.call(ctx, "AttachNetworkInterface", prefixes > 0, func() (err error) {
		att, err = c.ec2.AttachNetworkInterface(ctx, &ec2.AttachNetworkInterfaceInput{
			DeviceIndex: aws.Int32(int32(deviceIndex)), InstanceId: aws.String(id.InstanceID), NetworkInterfaceId: aws.String(eni.ID),
		})
		return err
	})
	if err != nil {
		_ = c.deleteENI(context.WithoutCancel(ctx), eni.ID)
		return ENI{}, fmt.Errorf("attach %s to %s at device %d: %w", eni.ID, id.InstanceID, deviceIndex, err)
	}
	eni.AttachmentID, eni.DeviceIndex = aws.ToString(att.AttachmentId), deviceIndex
	eni.DeleteOnTermination = c.SetDeleteOnTermination(ctx, eni) == nil
	return c.waitAttached(ctx, eni)
}

// SetDeleteOnTermination sets DeleteOnTermination=true on the ENI's attachment with
// ModifyNetworkInterfaceAttribute, as the AWS VPC CNI does after each attach: a terminated
// node's ENIs then go with it and their addresses return to the subnet, with no agent left to
// clean up. CreateENI and AttachENI call it right after the attach; a failure there leaves
// ENI.DeleteOnTermination false, and the agent sets it again later. EC2 errors:
// InvalidAttachmentID.NotFound (detached meanwhile), UnauthorizedOperation.
func (c *Client) SetDeleteOnTermination(ctx context.Context, eni ENI) error {
	if eni.AttachmentID == "" {
		return fmt.Errorf("ENI %s has no attachment to set DeleteOnTermination on", eni.ID)
	}
	err := c.call(ctx, "ModifyNetworkInterfaceAttribute", false, func() error {
		_, err := c.ec2.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
			NetworkInterfaceId: aws.String(eni.ID),
			Attachment:         &types.NetworkInterfaceAttachmentChanges{AttachmentId: aws.String(eni.AttachmentID), DeleteOnTermination: aws.Bool(true)},
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("DeleteOnTermination on %s: %w", eni.ID, err)
	}
	c.invalidate()
	return nil
}

// waitAttached waits until the attachment is complete. It watches IMDS, where an ENI's MAC
// appears under network/interfaces/macs/ once it is attached, every 50 ms: IMDS is local to the
// instance and outside EC2's rate limits, so the wait costs no EC2 call and notices the attach
// at most 50 ms late. The ENI is then as its create and attach calls described it. Should IMDS
// fail, or not show the MAC within a quarter of AttachWait, DescribeNetworkInterfaces is polled
// as well, at an eighth of the time waited so far (50 ms to 1 s), and its answer returned.
func (c *Client) waitAttached(ctx context.Context, eni ENI) (ENI, error) {
	start := time.Now()
	deadline := start.Add(c.cfg.AttachWait)
	fallback := start.Add(c.cfg.AttachWait / 4)
	nextDescribe := start
	for {
		seen, err := c.macAttached(ctx, eni.MAC)
		if seen {
			return eni, nil
		}
		if now := time.Now(); (err != nil || !now.Before(fallback)) && !now.Before(nextDescribe) {
			nextDescribe = now.Add(min(max(now.Sub(start)/8, 50*time.Millisecond), time.Second))
			got, err := c.describeENIs(ctx, []types.Filter{{Name: aws.String("network-interface-id"), Values: []string{eni.ID}}})
			if err == nil && len(got) == 1 && got[0].AttachmentID != "" {
				return got[0], nil
			}
		}
		if time.Now().After(deadline) {
			return ENI{}, fmt.Errorf("ENI %s not attached after %s", eni.ID, c.cfg.AttachWait)
		}
		select {
		case <-ctx.Done():
			return ENI{}, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// macAttached reports whether IMDS lists the MAC among the instance's attached interfaces. Each
// read is observed as an "IMDS" call, so the wait shows in metrics without counting as EC2.
func (c *Client) macAttached(ctx context.Context, mac string) (_ bool, err error) {
	defer c.observe("IMDS", time.Now(), &err)
	if mac == "" {
		return false, fmt.Errorf("no MAC to look for in IMDS")
	}
	macs, err := c.metadata(ctx, "network/interfaces/macs/")
	if err != nil {
		return false, err
	}
	for _, m := range lines(macs) {
		if strings.EqualFold(strings.TrimSuffix(m, "/"), mac) {
			return true, nil
		}
	}
	return false, nil
}

// FreeENI detaches and deletes an ENI we created; it refuses others.
func (c *Client) FreeENI(ctx context.Context, eni ENI) error {
	if eni.Unmanaged || !eni.Ours() || eni.DeviceIndex == 0 {
		return fmt.Errorf("ENI %s is not one vpcnet created: left alone", eni.ID)
	}
	defer c.invalidate()
	if eni.AttachmentID != "" {
		err := c.call(ctx, "DetachNetworkInterface", false, func() error {
			_, err := c.ec2.DetachNetworkInterface(ctx, &ec2.DetachNetworkInterfaceInput{AttachmentId: aws.String(eni.AttachmentID)})
			return err
		})
		if err != nil && Code(err) != ErrENINotFound {
			return fmt.Errorf("detach %s: %w", eni.ID, err)
		}
	}
	// Deleting fails while the detach is still completing; retry briefly.
	var err error
	for delay := 50 * time.Millisecond; delay < 5*time.Second; delay *= 2 {
		if err = c.deleteENI(ctx, eni.ID); err == nil || Code(err) == ErrENINotFound {
			return nil
		}
		if Code(err) != ErrInvalidParameter {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
	}
	return fmt.Errorf("delete %s: %w", eni.ID, err)
}

func (c *Client) deleteENI(ctx context.Context, id string) error {
	return c.call(ctx, "DeleteNetworkInterface", false, func() error {
		_, err := c.ec2.DeleteNetworkInterface(ctx, &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: aws.String(id)})
		return err
	})
}

// AssignIPs asks for n more secondary addresses on the ENI.
func (c *Client) AssignIPs(ctx context.Context, eniID string, n int) ([]netip.Addr, error) {
	defer c.invalidate()
	var out *ec2.AssignPrivateIpAddressesOutput
	err := c.call(ctx, "AssignPrivateIpAddresses", false, func() (err error) {
		out, err = c.ec2.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(eniID), SecondaryPrivateIpAddressCount: aws.Int32(int32(n))})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("assign %d addresses on %s: %w", n, eniID, err)
	}
	var ips []netip.Addr
	for _, a := range out.AssignedPrivateIpAddresses {
		if ip, err := netip.ParseAddr(aws.ToString(a.PrivateIpAddress)); err == nil {
			ips = append(ips, ip)
		}
	}
	return ips, nil
}

// AssignPrefixes asks for n /28 prefixes on the ENI.
func (c *Client) AssignPrefixes(ctx context.Context, eniID string, n int) ([]netip.Prefix, error) {
	defer c.invalidate()
	var out *ec2.AssignPrivateIpAddressesOutput
	err := c.call(ctx, "AssignPrivateIpAddresses", true, func() (err error) {
		out, err = c.ec2.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(eniID), Ipv4PrefixCount: aws.Int32(int32(n))})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("assign %d prefixes on %s: %w", n, eniID, err)
	}
	var ps []netip.Prefix
	for _, p := range out.AssignedIpv4Prefixes {
		if x, err := netip.ParsePrefix(aws.ToString(p.Ipv4Prefix)); err == nil {
			ps = append(ps, x)
		}
	}
	return ps, nil
}

// UnassignIPs gives addresses on the ENI back to the subnet.
func (c *Client) UnassignIPs(ctx context.Context, eniID string, ips []netip.Addr) error {
	defer c.invalidate()
	var s []string
	for _, a := range ips {
		s = append(s, a.String())
	}
	err := c.call(ctx, "UnassignPrivateIpAddresses", false, func() error {
		_, err := c.ec2.UnassignPrivateIpAddresses(ctx, &ec2.UnassignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(eniID), PrivateIpAddresses: s})
		return err
	})
	if err != nil {
		return fmt.Errorf("unassign %d addresses on %s: %w", len(ips), eniID, err)
	}
	return nil
}

// UnassignPrefixes gives prefixes on the ENI back to the subnet.
func (c *Client) UnassignPrefixes(ctx context.Context, eniID string, prefixes []netip.Prefix) error {
	defer c.invalidate()
	var s []string
	for _, p := range prefixes {
		s = append(s, p.String())
	}
	err := c.call(ctx, "UnassignPrivateIpAddresses", false, func() error {
		_, err := c.ec2.UnassignPrivateIpAddresses(ctx, &ec2.UnassignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(eniID), Ipv4Prefixes: s})
		return err
	})
	if err != nil {
		return fmt.Errorf("unassign %d prefixes on %s: %w", len(prefixes), eniID, err)
	}
	return nil
}

// CleanupDetached deletes available (detached) ENIs tagged with our cluster whose created-at
// tag is older than grace. ENIs marked no_manage are left alone, and so are those an agent
// still answers for: one tagged with a live instance other than self (DescribeInstances) is
// that instance's agent's to re-attach or delete, and one tagged with self is kept while inUse
// says local pods hold its addresses. An ENI detached behind an agent's back while its pods use
// its addresses is thus never deleted, so no other node gets those addresses.
func (c *Client) CleanupDetached(ctx context.Context, grace time.Duration, self string, inUse func(ENI) bool) ([]string, error) {
	enis, err := c.describeENIs(ctx, []types.Filter{
		{Name: aws.String("tag:" + TagCluster), Values: []string{c.cfg.Cluster}},
		{Name: aws.String("status"), Values: []string{"available"}},
	})
	if err != nil {
		return nil, err
	}
	var owners []string
	var candidates []ENI
	for _, e := range enis {
		// The filters are checked again here: correctness must not rest on the server's filtering.
		created, perr := time.Parse(time.RFC3339, e.Tags[TagCreatedAt])
		if e.AttachedTo != "" || e.Unmanaged || e.Tags[TagCluster] != c.cfg.Cluster || perr != nil || time.Since(created) < grace {
			continue
		}
		owner := e.Tags[TagInstanceID]
		if owner == self && self != "" && inUse != nil && inUse(e) {
			continue
		}
		if owner != "" && owner != self && !slices.Contains(owners, owner) {
			owners = append(owners, owner)
		}
		candidates = append(candidates, e)
	}
	live, err := c.liveInstances(ctx, owners)
	if err != nil {
		return nil, fmt.Errorf("clean up detached ENIs: whose instances live: %w", err)
	}
	var deleted []string
	for _, e := range candidates {
		if owner := e.Tags[TagInstanceID]; owner != self && live[owner] {
			continue
		}
		if err := c.deleteENI(ctx, e.ID); err != nil && Code(err) != ErrENINotFound {
			return deleted, fmt.Errorf("clean up detached %s: %w", e.ID, err)
		}
		deleted = append(deleted, e.ID)
	}
	return deleted, nil
}

// call runs one EC2 call, reports it to the observer and classifies its error (an *Error);
// prefixes says whether the request asks for /28 prefixes.
func (c *Client) call(_ context.Context, action string, prefixes bool, f func() error) (err error) {
	defer c.observe(action, time.Now(), &err)
	return classified(action, prefixes, f())
}

var _ Cloud = (*Client)(nil)
