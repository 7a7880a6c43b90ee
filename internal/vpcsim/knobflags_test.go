package vpcsim_test

import (
	"testing"
	"time"

	"github.com/vpcnet/vpcnet/internal/vpcsim"
)

func TestKnobFlags(t *testing.T) {
	lat, err := vpcsim.ParseLatency("AttachNetworkInterface=2s, *=10ms")
	if err != nil || lat["AttachNetworkInterface"] != 2*time.Second || lat["*"] != 10*time.Millisecond {
		t.Fatalf("%v %v", lat, err)
	}
	th, err := vpcsim.ParseThrottle("*=20/40,AssignPrivateIpAddresses=0.5/1")
	if err != nil || th["*"] != (vpcsim.Rate{PerSecond: 20, Burst: 40}) || th["AssignPrivateIpAddresses"].PerSecond != 0.5 {
		t.Fatalf("%v %v", th, err)
	}
	fl, err := vpcsim.ParseFail("CreateNetworkInterface=0.1")
	if err != nil || fl["CreateNetworkInterface"] != 0.1 {
		t.Fatalf("%v %v", fl, err)
	}
	for _, bad := range []func() error{
		func() error { _, err := vpcsim.ParseLatency("Nope=1s"); return err },
		func() error { _, err := vpcsim.ParseLatency("DescribeVpcs=soon"); return err },
		func() error { _, err := vpcsim.ParseLatency("DescribeVpcs"); return err },
		func() error { _, err := vpcsim.ParseThrottle("DescribeVpcs=5"); return err },
		func() error { _, err := vpcsim.ParseThrottle("DescribeVpcs=0/1"); return err },
		func() error { _, err := vpcsim.ParseFail("DescribeVpcs=2"); return err },
		func() error { _, err := vpcsim.ParseDeny("Nope"); return err },
	} {
		if bad() == nil {
			t.Error("bad knob accepted")
		}
	}
}

// FuzzKnobFlags: the flag parsers return a value or an error, never panic.
func FuzzKnobFlags(f *testing.F) {
	f.Add("AttachNetworkInterface=2s,*=20/40")
	f.Add("=,=,")
	f.Fuzz(func(t *testing.T, s string) {
		vpcsim.ParseLatency(s)
		vpcsim.ParseThrottle(s)
		vpcsim.ParseFail(s)
		vpcsim.ParseDeny(s)
	})
}
