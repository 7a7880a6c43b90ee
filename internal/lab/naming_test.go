package lab

import (
	"net/netip"
	"testing"
)

func TestValidateName(t *testing.T) {
	for name, ok := range map[string]bool{
		"default": true, "a": true, "demo2": true, "abcdefghijklmnopqrst": true,
		"": false, "Demo": false, "a-b": false, "1lab": false, "abcdefghijklmnopqrstu": false,
		"t1": false, "t123x": false, "test": true, "e2e": true,
	} {
		if err := ValidateName(name); (err == nil) != ok {
			t.Errorf("ValidateName(%q) = %v, want ok=%v", name, err, ok)
		}
	}
}

func TestValidatePodName(t *testing.T) {
	for name, ok := range map[string]bool{
		"web": true, "web-1": true, "1": true, "a-b-c": true,
		"": false, "-a": false, "a-": false, "Web": false, "a_b": false,
		"a234567890123456789012345678901234567890": true, "a2345678901234567890123456789012345678901": false,
	} {
		if err := ValidatePodName(name); (err == nil) != ok {
			t.Errorf("ValidatePodName(%q) = %v, want ok=%v", name, err, ok)
		}
	}
}

func TestNamespaceNames(t *testing.T) {
	tests := []struct{ got, want string }{
		{RouterNS("default"), "vpcnet-default-router"},
		{InternetNS("default"), "vpcnet-default-inet"},
		{NodeNS("demo", 3), "vpcnet-demo-node-3"},
		{PodNS("demo", "web-1"), "vpcnet-demo-pod-web-1"},
		{NSPrefix("demo"), "vpcnet-demo-"},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestNodeName(t *testing.T) {
	tests := []struct{ addr, name string }{
		{"10.10.1.23", "ip-10-10-1-23.ec2.internal"},
		{"192.168.0.5", "ip-192-168-0-5.ec2.internal"},
	}
	for _, tc := range tests {
		if got := NodeName(netip.MustParseAddr(tc.addr)); got != tc.name {
			t.Errorf("NodeName(%s) = %s, want %s", tc.addr, got, tc.name)
		}
		back, err := ParseNodeName(tc.name)
		if err != nil || back.String() != tc.addr {
			t.Errorf("ParseNodeName(%s) = %v, %v; want %s", tc.name, back, err, tc.addr)
		}
	}
	for _, bad := range []string{"node-1", "ip-10-10-1.ec2.internal", "ip-10-10-1-23", "ip-a-b-c-d.ec2.internal"} {
		if _, err := ParseNodeName(bad); err == nil {
			t.Errorf("ParseNodeName(%q) succeeded", bad)
		}
	}
}
