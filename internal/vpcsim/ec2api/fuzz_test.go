package ec2api

import (
	"bytes"
	"encoding/xml"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzQuery sends arbitrary Query bodies through the parser and every action against a live
// model: the answer is always well-formed XML, and never a 5xx or a panic.
func FuzzQuery(f *testing.F) {
	for _, s := range []string{
		form("Action", "CreateVpc", "CidrBlock", "10.0.0.0/16"),
		form("Action", "DescribeVpcs", "Filter.1.Name", "vpc-id", "Filter.1.Value.1", "vpc-*"),
		form("Action", "CreateSubnet", "VpcId", "vpc-00000000000000001", "CidrBlock", "10.0.1.0/24", "AvailabilityZone", "us-east-1b"),
		form("Action", "DescribeSubnets", "SubnetId.1", "subnet-1", "MaxResults", "5"),
		form("Action", "RunInstances", "InstanceType", "m5.large", "SubnetId", "subnet-1", "MinCount", "1", "MaxCount", "3", "TagSpecification.1.ResourceType", "instance", "TagSpecification.1.Tag.1.Key", "k"),
		form("Action", "RunInstances", "MinCount", "1", "MaxCount", "1", "NetworkInterface.1.DeviceIndex", "0", "NetworkInterface.1.SubnetId", "subnet-1", "NetworkInterface.1.SecondaryPrivateIpAddressCount", "3"),
		form("Action", "DescribeInstances", "InstanceId.1", "i-1"),
		form("Action", "TerminateInstances", "InstanceId.1", "i-1", "InstanceId.2", "i-2"),
		form("Action", "DescribeInstanceTypes", "InstanceType.1", "m5.large", "MaxResults", "5", "NextToken", "bTUubGFyZ2U"),
		form("Action", "CreateNetworkInterface", "SubnetId", "subnet-1", "SecondaryPrivateIpAddressCount", "2", "Ipv4Prefix.1.Ipv4Prefix", "10.0.1.16/28", "PrivateIpAddresses.1.PrivateIpAddress", "10.0.1.9", "PrivateIpAddresses.1.Primary", "true"),
		form("Action", "DeleteNetworkInterface", "NetworkInterfaceId", "eni-1"),
		form("Action", "AttachNetworkInterface", "NetworkInterfaceId", "eni-1", "InstanceId", "i-1", "DeviceIndex", "1"),
		form("Action", "DetachNetworkInterface", "AttachmentId", "eni-attach-1", "Force", "true"),
		form("Action", "DescribeNetworkInterfaces", "Filter.1.Name", "tag:k", "Filter.1.Value.1", "v", "MaxResults", "5", "NextToken", "x"),
		form("Action", "ModifyNetworkInterfaceAttribute", "NetworkInterfaceId", "eni-1", "Attachment.AttachmentId", "eni-attach-1", "Attachment.DeleteOnTermination", "true"),
		form("Action", "AssignPrivateIpAddresses", "NetworkInterfaceId", "eni-1", "Ipv4Prefix.1", "10.0.1.32/28"),
		form("Action", "UnassignPrivateIpAddresses", "NetworkInterfaceId", "eni-1", "PrivateIpAddress.1", "10.0.1.5"),
		form("Action", "CreateTags", "ResourceId.1", "vpc-1", "Tag.1.Key", "a", "Tag.1.Value", "b"),
		form("Action", "DeleteTags", "ResourceId.1", "vpc-1", "Tag.1.Key", "a"),
		"Action=DescribeVpcs&Version=2016-11-15&VpcId.99999999999999999999=x",
		"%%%&&&==",
		"",
	} {
		f.Add(s)
	}
	h := newTestHandler()
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest("POST", "/", strings.NewReader(body))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("HTTP %d for %q: %s", rec.Code, body, rec.Body.String())
		}
		dec := xml.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
		for {
			if _, err := dec.Token(); err != nil {
				if err.Error() != "EOF" {
					t.Fatalf("reply to %q is not XML: %v\n%s", body, err, rec.Body.String())
				}
				break
			}
		}
	})
}
