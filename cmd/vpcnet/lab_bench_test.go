package main

import (
	"strings"
	"testing"

	"github.com/vpcnet/vpcnet/internal/ipam"
)

// The bench itself is tested as root in internal/bench; here, that it hangs under lab and
// refuses bad input with exit 2 before building anything.
func TestLabBenchUsage(t *testing.T) {
	out, _, code := vpcnet(t, nil, "lab", "bench", "--help")
	if code != 0 || !strings.Contains(out, "vpcnet lab bench [flags]") || !strings.Contains(out, "--scenario") {
		t.Errorf("lab bench --help: exit %d\n%s", code, out)
	}
	// The help says what it does: not every reference is measured in the same run (the churn
	// rows' upstream figures are fixed, from issue 16), --short's churn rows claim nothing, and
	// --real-speed names the agents' default timers as they are.
	flat := strings.Join(strings.Fields(out), " ")
	for _, want := range []string{
		"copied from issue 16 (not measured by the bench)",
		"smoke run on a shortened trace: no pass or miss",
		"VPCNET_POOL_RELEASE_DELAY " + ipam.DefaultReleaseDelay.String(),
		"VPCNET_WARM_ENI_RELEASE_DELAY " + ipam.DefaultWarmENIReleaseDelay.String(),
	} {
		if !strings.Contains(flat, want) {
			t.Errorf("lab bench --help lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(flat, "reference measured in the same run") || strings.Contains(flat, "default 30 s timers") {
		t.Errorf("lab bench --help still claims every reference is measured in the same run or 30 s timers:\n%s", out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--format", "yaml"}, "--format must be table or json"},
		{[]string{"--scenario", "warp"}, `--scenario "warp": one of setup, burst`},
		{[]string{"extra"}, "unknown command"},
	} {
		_, errOut, code := vpcnet(t, nil, append([]string{"lab", "bench"}, tc.args...)...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("lab bench %v: exit %d, stderr %q, want 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
}
