package bench_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vpcnet/vpcnet/internal/bench"
	"github.com/vpcnet/vpcnet/internal/lab"
	"github.com/vpcnet/vpcnet/internal/testenv"
)

// These tests run the real CLI (`vpcnet lab bench --short`) as root and check the harness:
// every scenario's rows are there, figures and references are measured and sane, and nothing
// of the bench's labs is left behind, also after an interrupt. They do not judge the speed.

func vpcnetBin(t *testing.T) string {
	t.Helper()
	testenv.RequireNetns(t)
	for _, p := range []string{filepath.Join(bench.RefPluginDir, "ptp"), filepath.Join(bench.RefPluginDir, "host-local")} {
		if _, err := os.Stat(p); err != nil {
			if testenv.Strict() {
				t.Fatalf("reference plugin %s missing (install containernetworking-plugins)", p)
			}
			t.Skipf("reference plugin %s missing (install containernetworking-plugins)", p)
		}
	}
	if _, err := exec.LookPath("iperf3"); err != nil {
		if testenv.Strict() {
			t.Fatal("iperf3 missing")
		}
		t.Skip("iperf3 missing")
	}
	return testenv.CLI(t)
}

// noLeftovers checks that no namespace, state directory or process of the bench's labs remains.
func noLeftovers(t *testing.T, name string) {
	t.Helper()
	left, err := bench.Leftovers(name)
	if err != nil {
		t.Fatal(err)
	}
	for _, suffix := range bench.LabSuffixes {
		l, err := lab.Leftovers(name + suffix)
		if err != nil {
			t.Fatal(err)
		}
		left = append(left, l...)
	}
	if len(left) > 0 {
		t.Errorf("the bench left %v", left)
	}
}

// want lists the figures each scenario must report (a prefix of the figure's name).
var want = map[string][]string{
	"setup":     {"ADD+DEL median", "ADD+DEL p99", "ADD median", "DEL median"},
	"burst":     {"10 ADDs: all ready", "per-pod ADD p99"},
	"dataplane": {"pod-to-pod TCP", "pod-to-pod ping RTT"},
	"footprint": {"vpcnetd RSS", "vpcnetd CPU idle", "CPU per pod ADD", "vpcnet-cni binary", "vpcnet-cni start"},
	"scale-out": {"node add → first pod ready", "node add → 5 pods ready"},
	"churn":     {"utilisation, ", "ADDs served warm, ", "EC2 calls per pod, ", "pod ready p99, ", "ceiling, any agent, these calls, "},
}

func TestBenchShort(t *testing.T) {
	bin := vpcnetBin(t)
	name := fmt.Sprintf("b%d", os.Getpid())
	t.Cleanup(func() { noLeftovers(t, name) })
	cmd := exec.Command(bin, "lab", "bench", "--short", "--format", "json", "--name", name)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("lab bench --short: %v\n%s", err, errOut.String())
	}
	t.Logf("lab bench --short took %s", time.Since(start).Round(time.Second))
	var rep bench.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("JSON: %v\n%s", err, out.String())
	}
	if !rep.Short || rep.Machine.CPUs < 1 || len(rep.Notes) != len(bench.DefaultScenarios()) {
		t.Errorf("report header: short %v, machine %+v, %d notes", rep.Short, rep.Machine, len(rep.Notes))
	}
	got := map[string][]bench.Row{}
	for _, r := range rep.Rows {
		got[r.Scenario] = append(got[r.Scenario], r)
		checkRow(t, r)
	}
	for _, s := range bench.DefaultScenarios() {
		for _, fig := range want[s] {
			found := false
			for _, r := range got[s] {
				found = found || strings.HasPrefix(r.Figure, fig)
			}
			if !found {
				t.Errorf("scenario %s reports no %q: %+v", s, fig, got[s])
			}
		}
	}
	// The short churn trace is a smoke run: no row claims pass or miss against upstream's
	// full-trace figures or issue 16's full-trace targets, and the note says so.
	for _, r := range got["churn"] {
		if r.Pass != nil || (strings.HasPrefix(r.Reference, "upstream") && r.Reference != bench.FullTraceOnly) {
			t.Errorf("short churn row %q: reference %q %v, target %v", r.Figure, r.Reference, r.RefValue, r.Target)
		}
	}
	smoke := false
	for _, n := range rep.Notes {
		smoke = smoke || (strings.HasPrefix(n, "churn:") && strings.Contains(n, "smoke run") && strings.Contains(n, "not comparable with upstream"))
	}
	if !smoke {
		t.Errorf("the churn note does not say the short trace is a smoke run: %q", rep.Notes)
	}
	// Nothing can be faster than the cloud work it waited for.
	for _, r := range got["scale-out"] {
		if r.RefValue < 200 || r.Value < r.RefValue {
			t.Errorf("scale-out %s: %v ms against a critical path of %v ms", r.Figure, r.Value, r.RefValue)
		}
	}
}

// checkRow checks one row's figures: measured, positive, within sane bounds, ratio consistent.
func checkRow(t *testing.T, r bench.Row) {
	t.Helper()
	idleCPU := strings.Contains(r.Figure, "CPU idle") // may well be 0 over a short window
	if r.Value <= 0 && !idleCPU && !strings.HasPrefix(r.Figure, "EC2 calls") {
		t.Errorf("%s %q: value %v", r.Scenario, r.Figure, r.Value)
	}
	if r.Reference != "-" && r.Reference != bench.FullTraceOnly && r.RefValue <= 0 && !idleCPU && !strings.HasPrefix(r.Figure, "EC2 calls") {
		t.Errorf("%s %q: reference %q not measured (%v)", r.Scenario, r.Figure, r.Reference, r.RefValue)
	}
	if r.RefValue > 0 && math.Abs(r.Ratio-r.Value/r.RefValue) > 1e-9 {
		t.Errorf("%s %q: ratio %v for %v / %v", r.Scenario, r.Figure, r.Ratio, r.Value, r.RefValue)
	}
	if (r.Target == nil) != (r.Pass == nil) {
		t.Errorf("%s %q: target %v but pass %v", r.Scenario, r.Figure, r.Target, r.Pass)
	}
	limits := map[string]float64{"ms": 120_000, "%": 100, "Gbit/s": 1000, "µs": 1_000_000, "MiB": 4096, "calls": 1000}
	lim, ok := limits[r.Unit]
	if !ok {
		t.Errorf("%s %q: unknown unit %q", r.Scenario, r.Figure, r.Unit)
	}
	if r.Value > lim || r.RefValue > lim || r.Value < 0 || r.RefValue < 0 {
		t.Errorf("%s %q: %v / %v %s out of bounds", r.Scenario, r.Figure, r.Value, r.RefValue, r.Unit)
	}
}

// An interrupted bench still takes its labs down.
func TestBenchInterrupted(t *testing.T) {
	bin := vpcnetBin(t)
	name := fmt.Sprintf("b%di", os.Getpid())
	t.Cleanup(func() { noLeftovers(t, name) })
	cmd := exec.Command(bin, "lab", "bench", "--short", "--scenario", "churn", "--name", name)
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if ns, _ := filepath.Glob("/run/netns/vpcnet-" + name + "c0-pod-*"); len(ns) > 0 {
			break // the trace is playing
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("the bench never started its trace:\n%s", errOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("an interrupted bench exited 0")
		}
	case <-time.After(3 * time.Minute):
		_ = cmd.Process.Kill()
		t.Fatalf("the bench did not stop after SIGINT:\n%s", errOut.String())
	}
}
