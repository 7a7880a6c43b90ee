package bench

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestMedianPercentile(t *testing.T) {
	for _, tc := range []struct {
		xs          []float64
		median, p99 float64
		p50         float64
	}{
		{nil, 0, 0, 0},
		{[]float64{5}, 5, 5, 5},
		{[]float64{3, 1, 2}, 2, 3, 2},
		{[]float64{4, 1, 3, 2}, 2.5, 4, 2},
		{[]float64{10, 1, 1, 1, 1, 1, 1, 1, 1, 1}, 1, 10, 1},
	} {
		if got := Median(tc.xs); got != tc.median {
			t.Errorf("Median(%v) = %v, want %v", tc.xs, got, tc.median)
		}
		if got := Percentile(tc.xs, 99); got != tc.p99 {
			t.Errorf("Percentile(%v, 99) = %v, want %v", tc.xs, got, tc.p99)
		}
		if got := Percentile(tc.xs, 50); got != tc.p50 {
			t.Errorf("Percentile(%v, 50) = %v, want %v", tc.xs, got, tc.p50)
		}
	}
	// p99 of 1..200 is the 198th value.
	var xs []float64
	for i := 200; i >= 1; i-- {
		xs = append(xs, float64(i))
	}
	if got := Percentile(xs, 99); got != 198 {
		t.Errorf("p99 of 1..200 = %v, want 198", got)
	}
	if xs[0] != 200 {
		t.Errorf("Percentile sorted its input")
	}
}

func TestTimeWeighted(t *testing.T) {
	s := func(at int, num, den float64) Sample {
		return Sample{At: time.Duration(at) * time.Second, Num: num, Den: den}
	}
	for _, tc := range []struct {
		name    string
		samples []Sample
		want    float64
	}{
		{"none", nil, 0},
		{"one sample closes nothing", []Sample{s(0, 1, 2)}, 0},
		{"constant", []Sample{s(0, 9, 10), s(5, 0, 0)}, 0.9},
		// 1 s at 1/4, 3 s at 3/4: (1+9)/(4+12)
		{"weighted by time, not by sample", []Sample{s(0, 1, 4), s(1, 3, 4), s(4, 0, 0)}, 10.0 / 16},
		{"a later sample at the same instant wins", []Sample{s(0, 1, 2), s(0, 100, 100), s(2, 0, 0)}, 1},
		{"nothing held", []Sample{s(0, 0, 0), s(1, 0, 0)}, 0},
	} {
		if got := TimeWeighted(tc.samples); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestCriticalPath(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	c := func(a string, start, lat int) Call { return Call{Action: a, Start: ms(start), Latency: ms(lat)} }
	for _, tc := range []struct {
		name    string
		calls   []Call
		until   int
		want    int
		actions string
	}{
		{"none", nil, 1000, 0, ""},
		{"one call", []Call{c("Assign", 10, 200)}, 1000, 200, "Assign"},
		{"not done by until", []Call{c("Assign", 10, 200)}, 100, 0, ""},
		{"create, attach, assign in a row",
			[]Call{c("Describe", 0, 0), c("Create", 5, 300), c("Attach", 310, 1000), c("Assign", 1320, 200)}, 2000, 1500, "Create Attach Assign"},
		{"parallel calls count once",
			[]Call{c("Assign", 0, 200), c("Create", 1, 300), c("Attach", 305, 1000), c("Assign", 1310, 200)}, 2000, 1500, "Create Attach Assign"},
		{"overlap is not a chain", []Call{c("Create", 0, 300), c("Create", 100, 300)}, 1000, 300, "Create"},
		{"chain ends before until", []Call{c("Create", 0, 300), c("Attach", 300, 1000)}, 1200, 300, "Create"},
	} {
		got, chain := CriticalPath(tc.calls, ms(tc.until))
		var names []string
		for _, x := range chain {
			names = append(names, x.Action)
		}
		if got != ms(tc.want) || strings.Join(names, " ") != tc.actions {
			t.Errorf("%s: got %v %v, want %v %s", tc.name, got, names, ms(tc.want), tc.actions)
		}
	}
}

func TestTargetAndRow(t *testing.T) {
	for _, tc := range []struct {
		t          Target
		value, rat float64
		want       bool
		str        string
	}{
		{Target{Op: "<=", Limit: 1.3}, 5, 1.3, true, "ratio <= 1.3"},
		{Target{Op: "<=", Limit: 1.3}, 5, 1.31, false, "ratio <= 1.3"},
		{Target{Op: "<", Limit: 1.1}, 5, 1.1, false, "ratio < 1.1"},
		{Target{Op: ">=", Limit: 0.95}, 5, 0.96, true, "ratio >= 0.95"},
		{Target{OnValue: true, Op: ">=", Limit: 90}, 91, 0, true, ">= 90.0%"},
		{Target{OnValue: true, Op: "<", Limit: 0.2}, 0.25, 0, false, "< 0.2"},
		{Target{Op: "?", Limit: 1}, 1, 1, false, "ratio ? 1"},
	} {
		if got := tc.t.Met(tc.value, tc.rat); got != tc.want {
			t.Errorf("%+v.Met(%v, %v) = %v", tc.t, tc.value, tc.rat, got)
		}
		unit := ""
		if tc.t.OnValue && tc.t.Limit == 90 {
			unit = "%"
		}
		if got := tc.t.String(unit); got != tc.str {
			t.Errorf("%+v.String = %q, want %q", tc.t, got, tc.str)
		}
	}
	r := NewRow("setup", "ADD+DEL median", "ms", 13, "ptp + host-local", 10, &Target{Op: "<=", Limit: 1.3})
	if r.Ratio != 1.3 || r.Pass == nil || !*r.Pass {
		t.Errorf("row %+v", r)
	}
	r = NewRow("footprint", "binary", "MiB", 30, "ptp", 0, nil)
	if r.Ratio != 0 || r.Pass != nil {
		t.Errorf("row without reference value or target: %+v", r)
	}
}

func TestWriteTableAndJSON(t *testing.T) {
	rep := Report{Machine: Machine{CPUs: 2, CPU: "Xeon", Kernel: "6.1"}, Short: true, Took: Seconds(95 * time.Second),
		Rows: []Row{
			NewRow("setup", "ADD+DEL median", "ms", 12.345, "ptp + host-local", 10, &Target{Op: "<=", Limit: 1.3}),
			NewRow("churn", "utilisation", "%", 85, "WARM_ENI_TARGET=1", 40, &Target{OnValue: true, Op: ">=", Limit: 90}),
			NewRow("footprint", "vpcnetd RSS", "MiB", 150, "same agent, no pods", 30, nil),
			NewRow("footprint", "lonely", "ms", 7, NoReference, 0, nil),
		},
		Notes: []string{"setup: sequential."}}
	var b bytes.Buffer
	if err := WriteTable(&b, rep); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"2 CPU(s), Xeon, kernel 6.1; short run in 1m35s",
		"SCENARIO", "12.3 ms", "10.0 ms", "1.23", "ratio <= 1.3", "pass",
		"85.0%", "40.0%", ">= 90.0%", "miss", "150 MiB", "setup: sequential."} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`lonely +7\.00 ms +- +- +- +- +-\n`).MatchString(out) {
		t.Errorf("a row without reference shows dashes:\n%s", out)
	}
	if lines := strings.Split(out, "\n"); !strings.HasPrefix(lines[2], "SCENARIO  ") {
		t.Errorf("header line %q", lines[2])
	}
	b.Reset()
	if err := WriteJSON(&b, rep); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Took float64 `json:"tookSeconds"`
		Rows []Row   `json:"rows"`
	}
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Took != 95 || len(back.Rows) != 4 || *back.Rows[0].Pass != true || *back.Rows[1].Pass != false || back.Rows[2].Pass != nil {
		t.Errorf("JSON round trip: %s", b.String())
	}
}

func TestTrace(t *testing.T) {
	spec := TraceSpec{Seed: 7, Nodes: 3, Duration: 30 * time.Second, PerSecond: 3, MeanLife: 5 * time.Second, MinLife: time.Second, MaxPerNode: 6}
	a, b := Trace(spec), Trace(spec)
	if len(a) == 0 || len(a) != len(b) {
		t.Fatalf("trace lengths %d, %d", len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("same seed, different event %d: %+v vs %+v", i, a[i], b[i])
		}
	}
	spec.Seed = 8
	if c := Trace(spec); len(c) == len(a) && c[0] == a[0] {
		t.Errorf("another seed gave the same trace")
	}
	alive := map[string]int{}
	perNode := make([]int, 3)
	starts := 0
	var last time.Duration
	for _, e := range a {
		if e.At < last || e.At >= spec.Duration {
			t.Fatalf("event %+v out of order or after the end", e)
		}
		last = e.At
		if e.Start {
			if _, ok := alive[e.Pod]; ok {
				t.Fatalf("pod %s started twice", e.Pod)
			}
			alive[e.Pod] = e.Node
			perNode[e.Node]++
			starts++
			if perNode[e.Node] > spec.MaxPerNode {
				t.Fatalf("node %d holds %d pods, more than %d", e.Node, perNode[e.Node], spec.MaxPerNode)
			}
			continue
		}
		n, ok := alive[e.Pod]
		if !ok || n != e.Node {
			t.Fatalf("pod %s stopped without running on node %d", e.Pod, e.Node)
		}
		delete(alive, e.Pod)
		perNode[e.Node]--
	}
	// About PerSecond*Duration arrivals, fewer for the cap.
	if starts < 40 || starts > 110 {
		t.Errorf("%d starts for 90 expected arrivals", starts)
	}
}

// The bursty trace: as many arrivals on average, but in groups: many starts within a spread.
func TestBurstTrace(t *testing.T) {
	spec := TraceSpec{Seed: 7, Nodes: 3, Duration: 60 * time.Second, PerSecond: 2, MeanLife: 15 * time.Second, MinLife: time.Second, MaxPerNode: 40}
	plain := Trace(spec)
	spec.Burst, spec.BurstSpread = 8, 500*time.Millisecond
	bursty := Trace(spec)
	if b2 := Trace(spec); len(b2) != len(bursty) {
		t.Fatalf("same seed, %d and %d events", len(bursty), len(b2))
	}
	// The most starts within any 500 ms.
	most := func(ev []TraceEvent) (int, int) {
		var at []time.Duration
		for _, e := range ev {
			if e.Start {
				at = append(at, e.At)
			}
		}
		best, j := 0, 0
		for i := range at {
			for at[i]-at[j] > 500*time.Millisecond {
				j++
			}
			best = max(best, i-j+1)
		}
		return best, len(at)
	}
	pb, pn := most(plain)
	bb, bn := most(bursty)
	if bn < pn/2 || bn > 2*pn {
		t.Errorf("bursty trace starts %d pods, plain %d: the rate should be alike", bn, pn)
	}
	if bb < 2*pb || bb < 8 {
		t.Errorf("bursty trace: at most %d starts within 500ms (plain: %d), want bursts", bb, pb)
	}
	var last time.Duration
	for _, e := range bursty {
		if e.At < last {
			t.Fatalf("events out of order at %+v", e)
		}
		last = e.At
	}
}

func TestParseMetrics(t *testing.T) {
	text := `# HELP vpcnet_ec2_calls_total EC2 and IMDS calls by action.
# TYPE vpcnet_ec2_calls_total counter
vpcnet_ec2_calls_total{action="AssignPrivateIpAddresses"} 3
vpcnet_ec2_calls_total{action="IMDS"} 12
vpcnet_ec2_calls_total{action="CreateNetworkInterface"} 1 1700000000
vpcnet_cni_requests_total{code="OK",op="Add"} 40
vpcnet_cni_requests_total{code="ResourceExhausted",op="Add"} 2
weird{a="x\"y",b="z, w"} 1.5e3
process_resident_memory_bytes 2.5e+07
broken{a=x} 1
nolabelsnovalue
`
	ms := ParseMetrics(text)
	ec2 := SumMetric(ms, "vpcnet_ec2_calls_total", func(l map[string]string) bool { return l["action"] != "IMDS" })
	if ec2 != 4 {
		t.Errorf("EC2 calls %v, want 4", ec2)
	}
	if v := SumMetric(ms, "vpcnet_cni_requests_total", func(l map[string]string) bool { return l["op"] == "Add" && l["code"] != "OK" }); v != 2 {
		t.Errorf("failed adds %v", v)
	}
	if v := SumMetric(ms, "process_resident_memory_bytes", nil); v != 25e6 {
		t.Errorf("rss %v", v)
	}
	for _, m := range ms {
		if m.Name == "weird" && (m.Labels["a"] != `x"y` || m.Labels["b"] != "z, w" || m.Value != 1500) {
			t.Errorf("weird: %+v", m)
		}
		if m.Name == "broken" || m.Name == "nolabelsnovalue" {
			t.Errorf("parsed a bad line: %+v", m)
		}
	}
}

// The footprint row names the agent's GOMAXPROCS from its Go collector's metrics, and fails
// rather than guess when the metric is missing.
func TestProcsOf(t *testing.T) {
	ms := ParseMetrics(`# TYPE go_sched_gomaxprocs_threads gauge
go_sched_gomaxprocs_threads 2
go_threads 9
go_goroutines 40
`)
	procs, threads, err := ProcsOf(ms)
	if err != nil || procs != 2 || threads != 9 {
		t.Errorf("ProcsOf: %d, %d, %v; want 2, 9", procs, threads, err)
	}
	if _, _, err := ProcsOf(ParseMetrics("go_threads 9\n")); err == nil || !strings.Contains(err.Error(), "go_sched_gomaxprocs_threads") {
		t.Errorf("no GOMAXPROCS metric: %v, want an error naming it", err)
	}
}

func TestParseProc(t *testing.T) {
	rss, err := ParseVmRSS("Name:\tvpcnetd\nVmPeak:\t  1 kB\nVmRSS:\t   20480 kB\n")
	if err != nil || rss != 20480*1024 {
		t.Errorf("VmRSS %v %v", rss, err)
	}
	if _, err := ParseVmRSS("Name:\tx\n"); err == nil {
		t.Errorf("no VmRSS: no error")
	}
	ticks, err := ParseCPUTicks("123 (vpc net) S 1 123 123 0 -1 4194560 900 0 0 0 250 75 0 0 20 0 12 0")
	if err != nil || ticks != 325 {
		t.Errorf("ticks %v %v", ticks, err)
	}
	if _, err := ParseCPUTicks("123 (x) S 1"); err == nil {
		t.Errorf("short stat: no error")
	}
}

func TestParseIperf3(t *testing.T) {
	bps, err := ParseIperf3([]byte(`{"start":{},"end":{"sum_sent":{"bits_per_second":2e10},"sum_received":{"bits_per_second":1.9e10}}}`))
	if err != nil || bps != 1.9e10 {
		t.Errorf("bps %v %v", bps, err)
	}
	if _, err := ParseIperf3([]byte(`{"error":"unable to connect to server"}`)); err == nil || !strings.Contains(err.Error(), "unable to connect") {
		t.Errorf("error not passed on: %v", err)
	}
	if _, err := ParseIperf3([]byte(`not json`)); err == nil {
		t.Errorf("bad JSON: no error")
	}
}
