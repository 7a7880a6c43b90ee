package k8s

import (
	"strings"
	"testing"
)

// ginkgoOutput is the shape of e2e.test --ginkgo.v --ginkgo.no-color output (ginkgo v2).
const ginkgoOutput = `Running Suite: Kubernetes e2e suite - /tmp
===========================================
Will run 3 of 3206 specs
------------------------------
[sig-network] Networking Granular Checks: Pods should function for intra-pod communication: http [NodeConformance] [Conformance] [sig-network, NodeConformance, Conformance]
k8s.io/kubernetes/test/e2e/common/network/networking.go:84
  STEP: Creating a kubernetes client @ 11/30/26 01:20:00.1
• [12.345 seconds]
------------------------------
SSSSSSSSSSSSSSSSSSSSSSSSS
------------------------------
[sig-network] Services should preserve source pod IP for traffic thru service cluster IP [LinuxOnly] [sig-network]
k8s.io/kubernetes/test/e2e/network/service.go:1100
  Automatically polling progress:
  ------------------------------
  I1130 03:17:22.962103   26163 dns_common.go:529] Failed inside E2E framework:
  [FAILED] expected preserved source IP
• [FAILED] [31.000 seconds]
------------------------------
S [SKIPPED] [0.002 seconds]
[sig-network] HostPort validates that there is no conflict [LinuxOnly] [Conformance]
------------------------------

Ran 3 of 3206 Specs in 45.1 seconds
FAIL! -- 1 Passed | 1 Failed | 0 Pending | 3204 Skipped
`

func TestSpecParser(t *testing.T) {
	var p SpecParser
	var got []SpecResult
	for _, l := range strings.Split(ginkgoOutput, "\n") {
		if r, ok := p.Line(l); ok {
			got = append(got, r)
		}
	}
	want := []SpecResult{
		{"[sig-network] Networking Granular Checks: Pods should function for intra-pod communication: http [NodeConformance] [Conformance]", "passed", 12.345},
		{"[sig-network] Services should preserve source pod IP for traffic thru service cluster IP [LinuxOnly]", "failed", 31},
		{"[sig-network] HostPort validates that there is no conflict [LinuxOnly] [Conformance]", "skipped", 0.002},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d specs %+v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("spec %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if p.Ran != 3 || p.Total != 3206 || p.Passed != 1 || p.Failed != 1 || p.Skipped != 3204 || p.Done != 3 || p.SkippedAtRun != 1 {
		t.Errorf("summary %+v", p)
	}
}

func FuzzSpecParser(f *testing.F) {
	f.Add(ginkgoOutput)
	f.Add("------------------------------\n• [1 seconds]\n[x] [a, b]\n")
	f.Fuzz(func(t *testing.T, s string) {
		var p SpecParser
		n := 0
		for _, l := range strings.Split(s, "\n") {
			if r, ok := p.Line(l); ok {
				n++
				if r.Text == "" || r.State == "" {
					t.Fatalf("empty result %+v", r)
				}
			}
		}
		if n != p.Done {
			t.Fatalf("returned %d specs, Done %d", n, p.Done)
		}
	})
}
