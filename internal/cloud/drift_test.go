package cloud_test

import (
	"strings"
	"testing"

	"github.com/vpcnet/vpcnet/internal/cloud"
)

// FuzzParseAddrList: IMDS's local-ipv4s answer, whatever it holds, gives IPv4 addresses or an
// error naming the line, never a panic.
func FuzzParseAddrList(f *testing.F) {
	f.Add("10.0.1.4\n10.0.1.5\n")
	f.Add("10.0.1.4\r\n::1")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		addrs, err := cloud.ParseAddrList(s)
		if err != nil {
			if addrs != nil || !strings.Contains(err.Error(), "is not an IPv4 address") {
				t.Fatalf("%q: %v %v", s, addrs, err)
			}
			return
		}
		for _, a := range addrs {
			if !a.Is4() {
				t.Fatalf("%q gave %v", s, a)
			}
		}
	})
}

// FuzzParsePrefixList: IMDS's ipv4-prefix answer gives masked IPv4 prefixes or an error.
func FuzzParsePrefixList(f *testing.F) {
	f.Add("10.0.1.16/28\n10.0.1.32/28")
	f.Add("10.0.1.17/28")
	f.Add("2001:db8::/64")
	f.Fuzz(func(t *testing.T, s string) {
		ps, err := cloud.ParsePrefixList(s)
		if err != nil {
			if ps != nil {
				t.Fatalf("%q: %v with %v", s, ps, err)
			}
			return
		}
		for _, p := range ps {
			if !p.Addr().Is4() || p != p.Masked() {
				t.Fatalf("%q gave %v", s, p)
			}
		}
	})
}

func TestParseIMDSLists(t *testing.T) {
	if a, err := cloud.ParseAddrList("10.0.1.4\n10.0.1.9\n"); err != nil || len(a) != 2 || a[1].String() != "10.0.1.9" {
		t.Fatalf("%v %v", a, err)
	}
	if _, err := cloud.ParseAddrList("10.0.1.4\nfe80::1"); err == nil {
		t.Fatal("IPv6 accepted in local-ipv4s")
	}
	if p, err := cloud.ParsePrefixList("10.0.1.16/28"); err != nil || len(p) != 1 {
		t.Fatalf("%v %v", p, err)
	}
	if _, err := cloud.ParsePrefixList("10.0.1.17/28"); err == nil {
		t.Fatal("unmasked prefix accepted")
	}
}
