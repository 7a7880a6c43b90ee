package main

import (
	"strings"
	"testing"
)

// The bench itself is tested as root in internal/bench; here, that it hangs under lab and
// refuses bad input with exit 2 before building anything.
func TestLabBenchUsage(t *testing.T) {
	out, _, code := vpcnet(t, nil, "lab", "bench", "--help")
	if code != 0 || !strings.Contains(out, "vpcnet lab bench [flags]") || !strings.Contains(out, "--scenario") {
		t.Errorf("lab bench --help: exit %d\n%s", code, out)
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
