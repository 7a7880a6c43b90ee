package cni

import (
	"errors"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/vpcnet/vpcnet/internal/agentapi"
	"github.com/vpcnet/vpcnet/internal/dataplane"
)

func TestParseConfigDefaults(t *testing.T) {
	c, err := ParseConfig([]byte(`{"cniVersion":"1.1.0","name":"vpcnet","type":"vpcnet-cni"}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.AgentSocket != agentapi.DefaultSocket || c.MTU != dataplane.DefaultMTU || c.VethPrefix != "eni" || c.StateDir != DefaultStateDir {
		t.Fatalf("defaults = %+v", c)
	}
}

func TestParseConfigErrorsNameTheField(t *testing.T) {
	for _, tc := range []struct {
		conf  string
		code  uint
		field string
	}{
		{`{"name":"n","mtu":70000}`, types.ErrInvalidNetworkConfig, "mtu"},
		{`{"name":"n","mtu":-1}`, types.ErrInvalidNetworkConfig, "mtu"},
		{`{"name":"n","vethPrefix":"eth"}`, types.ErrInvalidNetworkConfig, "vethPrefix"},
		{`{"name":"n","vethPrefix":"waytoolong"}`, types.ErrInvalidNetworkConfig, "vethPrefix"},
		{`{"name":"n","agentSocket":"relative.sock"}`, types.ErrInvalidNetworkConfig, "agentSocket"},
		{`{"name":"n","stateDir":"x"}`, types.ErrInvalidNetworkConfig, "stateDir"},
		{`{"mtu":1500}`, types.ErrInvalidNetworkConfig, "name"},
		{`{"name":"` + strings.Repeat("n", MaxNetworkName+1) + `"}`, types.ErrInvalidNetworkConfig, "name"},
		{`{"name":"../etc"}`, types.ErrInvalidNetworkConfig, "name"},
		{`{"name":"a/b"}`, types.ErrInvalidNetworkConfig, "name"},
		{`{"name":"-a"}`, types.ErrInvalidNetworkConfig, "name"},
		{`{"name":"n","statusGracePeriod":"-1s"}`, types.ErrInvalidNetworkConfig, "statusGracePeriod"},
		{`{"name":"n","statusGracePeriod":"soon"}`, types.ErrInvalidNetworkConfig, "statusGracePeriod"},
		{`{"name":"n","mtu":"big"}`, types.ErrDecodingFailure, ""},
		{`not json`, types.ErrDecodingFailure, ""},
	} {
		_, err := ParseConfig([]byte(tc.conf))
		var e *types.Error
		if !errors.As(err, &e) || e.Code != tc.code || !strings.Contains(e.Msg, `"`+tc.field+`"`) && tc.field != "" {
			t.Errorf("ParseConfig(%s) = %v, want code %d naming %q", tc.conf, err, tc.code, tc.field)
		}
	}
}

func TestCheckIfName(t *testing.T) {
	for _, ok := range []string{"eth0", "net1", "a", "eth0.100", strings.Repeat("x", 15)} {
		if err := checkIfName(ok); err != nil {
			t.Errorf("checkIfName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "lo", ".", "..", "a/b", "a:b", "a b", strings.Repeat("x", 16)} {
		if err := checkIfName(bad); err == nil || err.Code != types.ErrInvalidEnvironmentVariables || !strings.Contains(err.Msg, "CNI_IFNAME") {
			t.Errorf("checkIfName(%q) = %v, want code 4 naming CNI_IFNAME", bad, err)
		}
	}
}

// FuzzCheckIfName: CNI_IFNAME comes from the runtime; whatever passes is a name the kernel takes.
func FuzzCheckIfName(f *testing.F) {
	for _, s := range []string{"eth0", "lo", "", "../x", "a:b", "0123456789abcdef"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if checkIfName(name) != nil {
			return
		}
		if name == "" || name == "lo" || len(name) > 15 || strings.ContainsAny(name, "/: \t\n\x00") || name == "." || name == ".." {
			t.Fatalf("checkIfName accepted %q", name)
		}
	})
}

func TestParseArgs(t *testing.T) {
	a, err := ParseArgs("IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;FOO=bar")
	if err != nil || a.K8S_POD_NAMESPACE != "default" || a.K8S_POD_NAME != "web-0" {
		t.Fatalf("ParseArgs = %+v, %v", a, err)
	}
	_, err = ParseArgs("K8S_POD_NAME=x;FOO=bar")
	var e *types.Error
	if !errors.As(err, &e) || e.Code != types.ErrInvalidEnvironmentVariables {
		t.Fatalf("unknown key without IgnoreUnknown: %v, want code 4", err)
	}
	if _, err := ParseArgs("garbage"); err == nil {
		t.Fatal("ParseArgs(garbage) succeeded")
	}
}

// FuzzParse feeds any config and CNI_ARGS to the parsers: they return a CNI error or a config
// that keeps the invariants, and never panic.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"cniVersion":"1.1.0","name":"vpcnet","type":"vpcnet-cni","agentSocket":"/run/vpcnet/vpcnetd.sock","mtu":9001,"vethPrefix":"eni","stateDir":"/var/lib/vpcnet/cni"}`),
		"IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0")
	f.Add([]byte(`{"name":"n","prevResult":{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.1/32"}]}}`), "K8S_POD_NAME=a=b")
	f.Add([]byte(`{"name":"n","mtu":1e9}`), ";;=")
	f.Fuzz(func(t *testing.T, conf []byte, args string) {
		c, err := ParseConfig(conf)
		if err != nil {
			var e *types.Error
			if !errors.As(err, &e) {
				t.Fatalf("ParseConfig error %v is not a CNI error", err)
			}
		} else {
			if c.MTU < MinMTU || c.MTU > MaxMTU || c.Name == "" || len(c.Name) > MaxNetworkName || strings.ContainsAny(c.Name, "/\x00") ||
				c.Name == "." || c.Name == ".." || c.grace < 0 || dataplane.ValidVethPrefix(c.VethPrefix) != nil {
				t.Fatalf("ParseConfig accepted %+v", c)
			}
			if n := dataplane.VethName(c.VethPrefix, "ns", "pod"); len(n) > 15 {
				t.Fatalf("veth name %q longer than 15", n)
			}
		}
		if _, err := ParseArgs(args); err != nil {
			var e *types.Error
			if !errors.As(err, &e) || e.Code != types.ErrInvalidEnvironmentVariables {
				t.Fatalf("ParseArgs error %v is not a CNI error 4", err)
			}
		}
	})
}
