package imds

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vpcnet/vpcnet/internal/vpcsim/model"
)

func testMetadata() *model.Metadata {
	return &model.Metadata{InstanceID: "i-0123", InstanceType: "m5.large", ImageID: "ami-1", AZ: "us-east-1a", Region: "us-east-1",
		State: "running", PrivateIP: netip.MustParseAddr("10.0.1.4"), MAC: "02:00:00:00:00:01", LaunchTime: time.Unix(0, 0),
		Interfaces: []model.InterfaceMetadata{{MAC: "02:00:00:00:00:01", ENIID: "eni-1", DeviceIndex: 0,
			Addrs:    []netip.Addr{netip.MustParseAddr("10.0.1.4"), netip.MustParseAddr("10.0.1.5")},
			Prefixes: []netip.Prefix{netip.MustParsePrefix("10.0.1.16/28")}, SubnetID: "subnet-1", SubnetCIDR: netip.MustParsePrefix("10.0.1.0/24"),
			VPCID: "vpc-1", VPCCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/16")}, SecurityGroups: []string{"sg-1", "sg-2"}}}}
}

func TestRenderFormats(t *testing.T) {
	md := testMetadata()
	base := "/latest/meta-data/network/interfaces/macs/02:00:00:00:00:01/"
	for path, want := range map[string]string{
		"/latest/meta-data/instance-id":                    "i-0123",
		"/latest/meta-data/placement/":                     "availability-zone\navailability-zone-id\nregion",
		"/latest/meta-data/placement/availability-zone-id": "us-east-1-az1",
		"/latest/meta-data/network/":                       "interfaces/",
		"/latest/meta-data/network/interfaces/macs":        "02:00:00:00:00:01/",
		base + "local-ipv4s":                               "10.0.1.4\n10.0.1.5",
		base + "ipv4-prefix":                               "10.0.1.16/28",
		base + "security-group-ids":                        "sg-1\nsg-2",
		base + "vpc-ipv4-cidr-block":                       "10.0.0.0/16",
		base + "local-hostname":                            "ip-10-0-1-4.ec2.internal",
		"/latest/dynamic/instance-identity/":               "document",
		"/latest/meta-data/services/domain":                "amazonaws.com",
	} {
		got, ok := render(md, nil, path)
		if !ok || got != want {
			t.Errorf("%s = %q %v, want %q", path, got, ok, want)
		}
	}
	for _, missing := range []string{"/latest/meta-data/nope", base + "nope", "/latest/meta-data/instance-id/x", "/other"} {
		if _, ok := render(md, nil, missing); ok {
			t.Errorf("%s found", missing)
		}
	}
	doc, _ := render(md, nil, identityPath)
	if !strings.Contains(doc, `"instanceId": "i-0123"`) || !strings.Contains(doc, `"privateIp": "10.0.1.4"`) {
		t.Errorf("document %s", doc)
	}
}

// FuzzRender: any request path renders or is a 404, without a panic.
func FuzzRender(f *testing.F) {
	for _, s := range []string{"/latest/meta-data/", "/latest/meta-data/network/interfaces/macs/02:00:00:00:00:01/local-ipv4s", "//", "/latest/meta-data//x/"} {
		f.Add(s)
	}
	md := testMetadata()
	f.Fuzz(func(t *testing.T, path string) {
		body, ok := render(md, nil, path)
		if ok && body == "" {
			t.Fatalf("%q: empty body", path)
		}
	})
}
