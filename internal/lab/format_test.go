package lab

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
)

func TestWriteDescribeNode(t *testing.T) {
	a := netip.MustParseAddr
	n := NodeInfo{Name: "ip-10-10-1-4.ec2.internal", InstanceID: "i-1", InstanceType: "t3.medium", PrimaryIP: a("10.10.1.4"),
		MaxENIs: 3, IPv4PerENI: 6, MaxPods: 15, Pods: []string{"web"},
		Agent: AgentInfo{PID: 42, Ready: true, Free: 4, Assigned: 1},
		ENIs: []ENIInfo{
			{ID: "eni-a", DeviceIndex: 0, PrimaryIP: a("10.10.1.4"), Secondary: []netip.Addr{a("10.10.1.5"), a("10.10.1.6")}},
			{ID: "eni-b", DeviceIndex: 1, PrimaryIP: a("10.10.1.9"), Prefixes: []netip.Prefix{netip.MustParsePrefix("10.10.1.16/28")}},
		}}
	var b bytes.Buffer
	WriteDescribeNode(&b, n, []PodInfo{{Name: "web", Node: n.Name, IP: a("10.10.1.5")}, {Name: "other", Node: "x", IP: a("10.10.1.7")}})
	out := b.String()
	for _, want := range []string{
		"Instance type:       t3.medium",
		"eth0    eni-a",
		"3/6",
		"10.10.1.16/28",
		"2 of 3 attached",
		"5 of 18 used",
		"Max pods:          15 (pod addresses",
		"1 running, 14 more fit",
		"web   10.10.1.5",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("describe node lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "other") {
		t.Errorf("describe node lists another node's pod:\n%s", out)
	}
}
