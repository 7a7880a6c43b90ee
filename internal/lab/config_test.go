package lab

import (
	"net/netip"
	"testing"
	"time"
)

func TestFlagName(t *testing.T) {
	for in, want := range map[string]string{
		"WARM_IP_TARGET": "warm-ip-target", "ENABLE_PREFIX_DELEGATION": "enable-prefix-delegation",
		"AWS_VPC_K8S_CNI_EXTERNALSNAT": "externalsnat", "AWS_VPC_ENI_MTU": "eni-mtu",
	} {
		if got := FlagName(in); got != want {
			t.Errorf("FlagName(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	p := netip.MustParsePrefix
	tests := []struct {
		name string
		edit func(*Config)
		ok   bool
	}{
		{"default", func(*Config) {}, true},
		{"two subnets", func(c *Config) { c.Subnets = append(c.Subnets, p("10.10.2.0/28")) }, true},
		{"bad name", func(c *Config) { c.Name = "Bad" }, false},
		{"VPC too big", func(c *Config) { c.VPCCIDR = p("10.0.0.0/8") }, false},
		{"VPC not a network", func(c *Config) { c.VPCCIDR = p("10.10.0.1/16") }, false},
		{"no subnet", func(c *Config) { c.Subnets = nil }, false},
		{"subnet outside", func(c *Config) { c.Subnets = []netip.Prefix{p("10.11.1.0/24")} }, false},
		{"subnet too small", func(c *Config) { c.Subnets = []netip.Prefix{p("10.10.1.0/29")} }, false},
		{"overlap", func(c *Config) { c.Subnets = []netip.Prefix{p("10.10.0.0/23"), p("10.10.1.0/24")} }, false},
		{"unknown instance type", func(c *Config) { c.InstanceType = "t3.mediun" }, false},
		{"agent setting", func(c *Config) { c.Agent = map[string]string{"WARM_IP_TARGET": "3"} }, true},
		{"unknown setting", func(c *Config) { c.Agent = map[string]string{"NOPE": "1"} }, false},
	}
	for _, tc := range tests {
		c := DefaultConfig("demo")
		tc.edit(&c)
		if err := c.Validate(); (err == nil) != tc.ok {
			t.Errorf("%s: Validate() = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

func TestParseLatency(t *testing.T) {
	tests := []struct {
		in     string
		action string
		d      time.Duration
		ok     bool
	}{
		{"AttachNetworkInterface=1s", "AttachNetworkInterface", time.Second, true},
		{"RunInstances=250ms", "RunInstances", 250 * time.Millisecond, true},
		{"AttachNetworkInterface", "", 0, false},
		{"=1s", "", 0, false},
		{"X=soon", "", 0, false},
		{"X=-1s", "", 0, false},
		{"AttachNetworkInterface=-1s", "", 0, false},
		{"Foo=1s", "", 0, false},                                    // not an action vpcsim serves: refused, not ignored
		{"AttachNetworkInterface=1s,RunInstances=1s", "", 0, false}, // one per flag
		{"*=10ms", "*", 10 * time.Millisecond, true},
	}
	for _, tc := range tests {
		a, d, err := ParseLatency(tc.in)
		if (err == nil) != tc.ok || a != tc.action || time.Duration(d) != tc.d {
			t.Errorf("ParseLatency(%q) = %q, %v, %v; want %q, %v, ok=%v", tc.in, a, d, err, tc.action, tc.d, tc.ok)
		}
	}
}
