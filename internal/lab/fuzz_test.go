package lab

import (
	"testing"
)

// FuzzParseNodeName: any name that parses names the address it parsed to.
func FuzzParseNodeName(f *testing.F) {
	for _, s := range []string{"ip-10-10-1-23.ec2.internal", "ip-1-2-3.ec2.internal", "node", "ip--.ec2.internal"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseNodeName(s)
		if err != nil {
			return
		}
		if !a.Is4() {
			t.Fatalf("ParseNodeName(%q) = %v, not IPv4", s, a)
		}
		if back, err := ParseNodeName(NodeName(a)); err != nil || back != a {
			t.Fatalf("round trip of %v: %v, %v", a, back, err)
		}
	})
}

// FuzzParseLatency: what parses is an action and a non-negative duration.
func FuzzParseLatency(f *testing.F) {
	for _, s := range []string{"AttachNetworkInterface=1s", "=", "a=-1s", "x=1h2m"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, d, err := ParseLatency(s)
		if err == nil && (a == "" || d < 0) {
			t.Fatalf("ParseLatency(%q) = %q, %v", s, a, d)
		}
	})
}
