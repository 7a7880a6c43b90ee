package vpcsim_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/vpcnet/vpcnet/internal/vpcsim"
)

func imdsGet(t testing.TB, c *imds.Client, path string) string {
	t.Helper()
	out, err := c.GetMetadata(ctx, &imds.GetMetadataInput{Path: path})
	if err != nil {
		t.Fatalf("IMDS %s: %v", path, err)
	}
	defer out.Content.Close()
	b, _ := io.ReadAll(out.Content)
	return string(b)
}

func TestIMDS(t *testing.T) {
	f := newFixture(t, vpcsim.Options{Region: "eu-central-1"}, "10.0.0.0/16", "10.0.1.0/24")
	inst := f.run(t, "m5.large")
	other := f.run(t, "t3.medium")
	md := imdsClient(t, f.s, *inst.InstanceId)
	primary := inst.NetworkInterfaces[0]
	mac := *primary.MacAddress
	for path, want := range map[string]string{
		"instance-id":                 *inst.InstanceId,
		"instance-type":               "m5.large",
		"local-ipv4":                  *inst.PrivateIpAddress,
		"mac":                         mac,
		"placement/availability-zone": "eu-central-1a",
		"placement/region":            "eu-central-1",
		"network/interfaces/macs/":    mac + "/",
		"network/interfaces/macs/" + mac + "/interface-id":           *primary.NetworkInterfaceId,
		"network/interfaces/macs/" + mac + "/device-number":          "0",
		"network/interfaces/macs/" + mac + "/local-ipv4s":            *inst.PrivateIpAddress,
		"network/interfaces/macs/" + mac + "/subnet-id":              f.subnet,
		"network/interfaces/macs/" + mac + "/subnet-ipv4-cidr-block": "10.0.1.0/24",
		"network/interfaces/macs/" + mac + "/vpc-id":                 f.vpc,
		"network/interfaces/macs/" + mac + "/vpc-ipv4-cidr-blocks":   "10.0.0.0/16",
		"network/interfaces/macs/" + mac + "/security-group-ids":     *primary.Groups[0].GroupId,
	} {
		if got := imdsGet(t, md, path); got != want {
			t.Errorf("%s = %q, want %q", path, got, want)
		}
	}
	if got := imdsGet(t, md, "network/interfaces/macs/"+mac+"/"); !strings.Contains(got, "local-ipv4s\n") || !strings.Contains(got, "interface-id") {
		t.Errorf("per-MAC listing %q", got)
	}
	if got := imdsGet(t, md, ""); !strings.Contains(got, "network/\n") || !strings.Contains(got, "instance-id") {
		t.Errorf("meta-data listing %q", got)
	}
	// A missing key is 404 (ipv4-prefix until a prefix is assigned).
	_, err := md.GetMetadata(ctx, &imds.GetMetadataInput{Path: "network/interfaces/macs/" + mac + "/ipv4-prefix"})
	var re *smithyhttp.ResponseError
	if !errors.As(err, &re) || re.HTTPStatusCode() != 404 {
		t.Fatalf("missing key: %v", err)
	}
	// IMDS tracks EC2 at once: assignments and attachments show on the next read.
	as := must[*ec2.AssignPrivateIpAddressesOutput](t)(f.c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: primary.NetworkInterfaceId, SecondaryPrivateIpAddressCount: aws.Int32(2)}))
	want := *inst.PrivateIpAddress + "\n" + *as.AssignedPrivateIpAddresses[0].PrivateIpAddress + "\n" + *as.AssignedPrivateIpAddresses[1].PrivateIpAddress
	if got := imdsGet(t, md, "network/interfaces/macs/"+mac+"/local-ipv4s"); got != want {
		t.Errorf("local-ipv4s %q, want %q (primary first)", got, want)
	}
	e := f.eni(t)
	must[*ec2.AttachNetworkInterfaceOutput](t)(f.c.AttachNetworkInterface(ctx, &ec2.AttachNetworkInterfaceInput{NetworkInterfaceId: e.NetworkInterfaceId, InstanceId: inst.InstanceId, DeviceIndex: aws.Int32(1)}))
	pf := must[*ec2.AssignPrivateIpAddressesOutput](t)(f.c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: e.NetworkInterfaceId, Ipv4PrefixCount: aws.Int32(2)}))
	if got := imdsGet(t, md, "network/interfaces/macs/"); got != mac+"/\n"+*e.MacAddress+"/" {
		t.Errorf("macs %q", got)
	}
	emac := "network/interfaces/macs/" + *e.MacAddress + "/"
	if got := imdsGet(t, md, emac+"device-number"); got != "1" {
		t.Errorf("device-number %q", got)
	}
	if got := imdsGet(t, md, emac+"ipv4-prefix"); got != *pf.AssignedIpv4Prefixes[0].Ipv4Prefix+"\n"+*pf.AssignedIpv4Prefixes[1].Ipv4Prefix {
		t.Errorf("ipv4-prefix %q", got)
	}
	// The identity document.
	doc, err := md.GetInstanceIdentityDocument(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if doc.InstanceID != *inst.InstanceId || doc.InstanceType != "m5.large" || doc.Region != "eu-central-1" ||
		doc.AvailabilityZone != "eu-central-1a" || doc.PrivateIP != *inst.PrivateIpAddress {
		t.Errorf("identity %+v", doc)
	}
	// Another instance's endpoint answers as that instance.
	if got := imdsGet(t, imdsClient(t, f.s, *other.InstanceId), "instance-id"); got != *other.InstanceId {
		t.Errorf("other instance-id %q", got)
	}
	if _, err := f.s.IMDSEndpoint("i-0abc"); err == nil {
		t.Error("IMDS endpoint for an unknown instance")
	}
	// Region from IMDS, as the agent reads it.
	r, err := md.GetRegion(ctx, nil)
	if err != nil || r.Region != "eu-central-1" {
		t.Errorf("region %v %v", r, err)
	}
}

func TestIMDSTokenFlow(t *testing.T) {
	f := newFixture(t, vpcsim.Options{}, "10.0.0.0/16", "10.0.1.0/24")
	inst := f.run(t, "m5.large")
	url, _ := f.s.IMDSEndpoint(*inst.InstanceId)
	do := func(method, path string, hdr map[string]string) (*http.Response, string) {
		req, _ := http.NewRequest(method, url+path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	if r, _ := do("PUT", "/latest/api/token", nil); r.StatusCode != 400 {
		t.Errorf("token without TTL: %d", r.StatusCode)
	}
	if r, _ := do("PUT", "/latest/api/token", map[string]string{"X-aws-ec2-metadata-token-ttl-seconds": "0"}); r.StatusCode != 400 {
		t.Errorf("token TTL 0: %d", r.StatusCode)
	}
	r, tok := do("PUT", "/latest/api/token", map[string]string{"X-aws-ec2-metadata-token-ttl-seconds": "120"})
	if r.StatusCode != 200 || r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds") != "120" || tok == "" {
		t.Fatalf("token: %d %q %v", r.StatusCode, tok, r.Header)
	}
	if r, _ := do("GET", "/latest/meta-data/instance-id", nil); r.StatusCode != 401 {
		t.Errorf("no token: %d", r.StatusCode)
	}
	if r, _ := do("GET", "/latest/meta-data/instance-id", map[string]string{"X-aws-ec2-metadata-token": "bogus"}); r.StatusCode != 401 {
		t.Errorf("bad token: %d", r.StatusCode)
	}
	r, body := do("GET", "/latest/meta-data/instance-id", map[string]string{"X-aws-ec2-metadata-token": tok})
	if r.StatusCode != 200 || body != *inst.InstanceId {
		t.Errorf("instance-id: %d %q", r.StatusCode, body)
	}
	if r, _ := do("GET", "/latest/meta-data/no-such-key", map[string]string{"X-aws-ec2-metadata-token": tok}); r.StatusCode != 404 {
		t.Errorf("missing key: %d", r.StatusCode)
	}
	r, body = do("GET", "/latest/dynamic/instance-identity/document", map[string]string{"X-aws-ec2-metadata-token": tok})
	var doc map[string]any
	if r.StatusCode != 200 || json.Unmarshal([]byte(body), &doc) != nil || doc["instanceId"] != *inst.InstanceId || doc["privateIp"] != *inst.PrivateIpAddress {
		t.Errorf("document: %d %s", r.StatusCode, body)
	}
	// A token is bound to its instance.
	other := f.run(t, "m5.large")
	url2, _ := f.s.IMDSEndpoint(*other.InstanceId)
	req, _ := http.NewRequest("GET", url2+"/latest/meta-data/instance-id", nil)
	req.Header.Set("X-aws-ec2-metadata-token", tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("token of another instance: %d", resp.StatusCode)
	}
	// Terminated: nothing to tell.
	must[*ec2.TerminateInstancesOutput](t)(f.c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{*inst.InstanceId}}))
	if r, _ := do("GET", "/latest/meta-data/instance-id", map[string]string{"X-aws-ec2-metadata-token": tok}); r.StatusCode != 404 {
		t.Errorf("terminated instance: %d", r.StatusCode)
	}
}

func TestIMDSHandlerIdentifiesBySource(t *testing.T) {
	f := newFixture(t, vpcsim.Options{}, "10.0.0.0/16", "10.0.1.0/24")
	inst := f.run(t, "m5.large")
	h := f.s.IMDSHandler(f.s.IdentifyBySource)
	tokReq, _ := http.NewRequest("PUT", "http://169.254.169.254/latest/api/token", nil)
	tokReq.Header.Set("X-aws-ec2-metadata-token-ttl-seconds", "60")
	tokReq.RemoteAddr = *inst.PrivateIpAddress + ":40000"
	rec := newRecorder()
	h.ServeHTTP(rec, tokReq)
	tok := rec.body.String()
	req, _ := http.NewRequest("GET", "http://169.254.169.254/latest/meta-data/instance-id", nil)
	req.Header.Set("X-aws-ec2-metadata-token", tok)
	req.RemoteAddr = *inst.PrivateIpAddress + ":40001"
	rec = newRecorder()
	h.ServeHTTP(rec, req)
	if rec.code != 200 || rec.body.String() != *inst.InstanceId {
		t.Fatalf("by source: %d %q", rec.code, rec.body.String())
	}
	// A pod address in a /28 prefix of the instance's ENI counts as the instance.
	pf := must[*ec2.AssignPrivateIpAddressesOutput](t)(f.c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: inst.NetworkInterfaces[0].NetworkInterfaceId, Ipv4PrefixCount: aws.Int32(1)}))
	pod := netip.MustParsePrefix(*pf.AssignedIpv4Prefixes[0].Ipv4Prefix).Addr().Next().Next()
	if id, err := f.s.IdentifyBySource(&http.Request{RemoteAddr: netip.AddrPortFrom(pod, 5).String()}); err != nil || id != *inst.InstanceId {
		t.Fatalf("pod address %s: %q %v", pod, id, err)
	}
	req.RemoteAddr = "10.9.9.9:1"
	rec = newRecorder()
	h.ServeHTTP(rec, req)
	if rec.code != 403 {
		t.Fatalf("unknown source: %d", rec.code)
	}
	// The header names an instance only for IdentifyBySourceOrHeader.
	req.Header.Set(vpcsim.InstanceHeader, *inst.InstanceId)
	rec = newRecorder()
	h.ServeHTTP(rec, req)
	if rec.code != 403 {
		t.Fatalf("header honoured by IdentifyBySource: %d", rec.code)
	}
	if id, err := f.s.IdentifyBySourceOrHeader(req); err != nil || id != *inst.InstanceId {
		t.Fatalf("IdentifyBySourceOrHeader: %q %v", id, err)
	}
}
