package cloud

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
)

// Identity reads the instance's identity and primary interface from IMDS.
func (c *Client) Identity(ctx context.Context) (id Identity, err error) {
	defer c.observe("IMDS", time.Now(), &err)
	get := func(path string) string {
		if err != nil {
			return ""
		}
		var v string
		v, err = c.metadata(ctx, path)
		return v
	}
	id.InstanceID = get("instance-id")
	id.InstanceType = get("instance-type")
	id.Zone = get("placement/availability-zone")
	id.Region = c.cfg.Region
	id.PrimaryMAC = strings.ToLower(get("mac"))
	ip := get("local-ipv4")
	macs := get("network/interfaces/macs/")
	mac := "network/interfaces/macs/" + id.PrimaryMAC + "/"
	id.SubnetID = get(mac + "subnet-id")
	subnet := get(mac + "subnet-ipv4-cidr-block")
	id.VPCID = get(mac + "vpc-id")
	vpcs := get(mac + "vpc-ipv4-cidr-blocks")
	sgs := get(mac + "security-group-ids")
	if err != nil {
		return Identity{}, fmt.Errorf("instance metadata (IMDS at %s): %w", or(c.cfg.IMDSEndpoint, "169.254.169.254"), err)
	}
	for _, m := range lines(macs) {
		id.MACs = append(id.MACs, strings.TrimSuffix(m, "/"))
	}
	id.SecurityGroups = lines(sgs)
	if id.PrimaryIP, err = netip.ParseAddr(ip); err != nil {
		return Identity{}, fmt.Errorf("IMDS local-ipv4 %q: %w", ip, err)
	}
	if id.SubnetCIDR, err = netip.ParsePrefix(subnet); err != nil {
		return Identity{}, fmt.Errorf("IMDS subnet-ipv4-cidr-block %q: %w", subnet, err)
	}
	for _, v := range lines(vpcs) {
		p, perr := netip.ParsePrefix(v)
		if perr != nil {
			return Identity{}, fmt.Errorf("IMDS vpc-ipv4-cidr-blocks %q: %w", v, perr)
		}
		id.VPCCIDRs = append(id.VPCCIDRs, p)
	}
	return id, nil
}

func (c *Client) metadata(ctx context.Context, path string) (string, error) {
	out, err := c.imds.GetMetadata(ctx, &imds.GetMetadataInput{Path: path})
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	defer out.Content.Close()
	b, err := io.ReadAll(out.Content)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return strings.TrimSpace(string(b)), nil
}

func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}
