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
			if c.MTU < MinMTU || c.MTU > MaxMTU || c.Name == "" || dataplane.ValidVethPrefix(c.VethPrefix) != nil {
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
