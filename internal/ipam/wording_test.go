package ipam

import "testing"

// The plan's reason (the agent logs it) counts in the right number: "1 address short", not
// "1 addresses short".
func TestReasonCountsOneAddress(t *testing.T) {
	for _, tc := range []planCase{
		{name: "one address short of the warm target",
			state: base(Settings{WarmENITarget: 1}, ENI{ID: "eni-0", IPs: addrs("10.0.1.10", 8)}),
			want:  "assign-ips eni-0 1", reason: "1 address short of WARM_ENI_TARGET=1"},
		{name: "nine addresses short",
			state: base(Settings{WarmENITarget: 1}, ENI{ID: "eni-0"}),
			want:  "assign-ips eni-0 9", reason: "9 addresses short of WARM_ENI_TARGET=1"},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.check(t) })
	}
}
