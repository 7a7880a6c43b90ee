package bench

import (
	"math"
	"strings"
	"testing"
)

func TestPairedRatio(t *testing.T) {
	for _, tc := range []struct {
		name     string
		xs, refs []float64
		want     float64
	}{
		{"none", nil, nil, 0},
		{"one round", []float64{9}, []float64{10}, 0.9},
		{"load slows both paths of a round alike", []float64{9, 4.5, 9}, []float64{10, 5, 10}, 0.9},
		{"a zero reference is skipped", []float64{9, 9}, []float64{0, 10}, 0.9},
		{"unequal lengths use the common rounds", []float64{9, 9, 100}, []float64{10, 10}, 0.9},
	} {
		if got := PairedRatio(tc.xs, tc.refs); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("%s: PairedRatio(%v, %v) = %v, want %v", tc.name, tc.xs, tc.refs, got, tc.want)
		}
	}
	// The pairing matters: load slowed rounds 2 and 3 for both paths, and only the path in
	// round 3. Per-round ratios 1, 1, 0.5 give 1; the ratio of the medians (4/8) would give 0.5.
	xs, refs := []float64{10, 4, 4}, []float64{10, 4, 8}
	if got := PairedRatio(xs, refs); got != 1 {
		t.Errorf("PairedRatio(%v, %v) = %v, want 1 (median of 1, 1, 0.5)", xs, refs, got)
	}
	if Median(xs)/Median(refs) != 0.5 {
		t.Errorf("example no longer tells the two apart")
	}
}

func TestPairedRowTarget(t *testing.T) {
	s := series{"pod": {9.6, 4.8, 9.7}, "node": {10, 5, 10}}
	row := pairedRow("pod-to-pod TCP", "Gbit/s", s, "pod", "node", &Target{Op: ">=", Limit: 0.95})
	if row.Value != 9.6 || row.RefValue != 10 {
		t.Errorf("value %v ref %v, want the per-path medians 9.6 and 10", row.Value, row.RefValue)
	}
	if math.Abs(row.Ratio-0.96) > 1e-9 || row.Pass == nil || !*row.Pass {
		t.Errorf("ratio %v pass %v, want 0.96 and a pass", row.Ratio, row.Pass)
	}
	s["pod"] = []float64{9, 4.5, 9}
	if row := pairedRow("pod-to-pod TCP", "Gbit/s", s, "pod", "node", &Target{Op: ">=", Limit: 0.95}); row.Pass == nil || *row.Pass {
		t.Errorf("ratio %v: want a miss", row.Ratio)
	}
}

func TestRotated(t *testing.T) {
	paths := []path{{name: "a"}, {name: "b"}, {name: "c"}}
	first := map[string]int{}
	for i := range 9 {
		r := rotated(paths, i)
		if len(r) != 3 {
			t.Fatalf("round %d: %d paths", i, len(r))
		}
		seen := map[string]bool{}
		for _, p := range r {
			seen[p.name] = true
		}
		if len(seen) != 3 {
			t.Errorf("round %d runs %v: not every path once", i, r)
		}
		first[r[0].name]++
	}
	for _, n := range []string{"a", "b", "c"} {
		if first[n] != 3 {
			t.Errorf("path %s ran first in %d of 9 rounds, want 3", n, first[n])
		}
	}
}

func TestParseIperf3Run(t *testing.T) {
	out := []byte(`{"start":{},"end":{"sum_sent":{"seconds":2.0,"bytes":3e9},"sum_received":{"seconds":2.0,"bytes":2.5e9,"bits_per_second":1e10},
		"cpu_utilization_percent":{"host_total":60,"host_user":1,"host_system":59,"remote_total":40}}}`)
	r, err := ParseIperf3Run(out)
	if err != nil {
		t.Fatal(err)
	}
	if r.bps != 1e10 || r.bytes != 2.5e9 || r.seconds != 2 || r.cpuTotal != 100 {
		t.Errorf("parsed %+v", r)
	}
	// 100% of a CPU for 2 s is 2000 ms for 2.5 GB: 800 ms per GB.
	if got := r.cpuMsPerGB(); math.Abs(got-800) > 1e-9 {
		t.Errorf("cpuMsPerGB = %v, want 800", got)
	}
	for _, tc := range []struct{ in, want string }{
		{`{"error":"unable to connect to server"}`, "unable to connect"},
		{`{"end":{"sum_received":{"bits_per_second":1e9,"bytes":1e9}}}`, "no duration"},
		{`{"end":{"sum_sent":{"seconds":1},"sum_received":{"bits_per_second":1e9,"bytes":1e9},"cpu_utilization_percent":{"host_total":-1}}}`, "negative CPU"},
		{`[]`, "iperf3 output"},
	} {
		if _, err := ParseIperf3Run([]byte(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one saying %q", tc.in, err, tc.want)
		}
	}
}

func FuzzParseIperf3Run(f *testing.F) {
	f.Add([]byte(`{"end":{"sum_sent":{"seconds":1},"sum_received":{"bits_per_second":1e9,"bytes":1e9},"cpu_utilization_percent":{"host_total":50,"remote_total":20}}}`))
	f.Add([]byte(`{"error":"x"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseIperf3Run(b)
		if err != nil {
			return
		}
		if r.bps <= 0 || r.bytes <= 0 || r.seconds <= 0 || r.cpuTotal < 0 || r.cpuMsPerGB() < 0 {
			t.Errorf("accepted %q as %+v", b, r)
		}
	})
}
