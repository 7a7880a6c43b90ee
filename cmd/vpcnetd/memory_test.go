package main

import (
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
)

// Unless the operator set them, vpcnetd collects at GOGC=50 under a 16 MiB soft limit (issue 16
// item 7); set, the operator's values stand.
func TestTuneMemory(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	os.Unsetenv("GOGC")
	os.Unsetenv("GOMEMLIMIT")
	debug.SetGCPercent(100)
	tuneMemory()
	if got := debug.SetGCPercent(100); got != defaultGCPercent {
		t.Errorf("GOGC %d, want %d", got, defaultGCPercent)
	}
	if got := debug.SetMemoryLimit(-1); got != defaultMemoryLimit {
		t.Errorf("memory limit %d, want %d", got, defaultMemoryLimit)
	}
	t.Setenv("GOGC", "200")
	t.Setenv("GOMEMLIMIT", "1GiB")
	debug.SetGCPercent(200)
	debug.SetMemoryLimit(1 << 30)
	tuneMemory()
	if got := debug.SetGCPercent(200); got != 200 {
		t.Errorf("GOGC set by the operator became %d", got)
	}
	if got := debug.SetMemoryLimit(-1); got != 1<<30 {
		t.Errorf("GOMEMLIMIT set by the operator became %d", got)
	}
}

// Unless the operator set GOMAXPROCS, vpcnetd runs with at most defaultMaxProcs Ps, however many
// CPUs the node has (96 on the m5.24xlarge of issue 16 item 7's footprint); it never raises a
// smaller count; set, the operator's value stands.
func TestTuneProcs(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	t.Setenv("GOMAXPROCS", "")
	os.Unsetenv("GOMAXPROCS")
	runtime.GOMAXPROCS(96) // what the runtime picks on a 96-vCPU node without a CPU limit
	if got := tuneProcs(); got != defaultMaxProcs || runtime.GOMAXPROCS(0) != defaultMaxProcs {
		t.Errorf("unset on 96 CPUs: tuneProcs %d, GOMAXPROCS %d, want %d", got, runtime.GOMAXPROCS(0), defaultMaxProcs)
	}
	runtime.GOMAXPROCS(1) // a 1-CPU node
	if got := tuneProcs(); got != 1 {
		t.Errorf("unset on 1 CPU: GOMAXPROCS %d, want 1 (never raised)", got)
	}
	// A value the runtime ignored (it then ran one P per CPU) does not lift the cap either; main
	// refuses it before tuneProcs (TestCheckSettings), so this is the second line of defence.
	for _, v := range []string{"abc", "0", "-3", " 4"} {
		t.Setenv("GOMAXPROCS", v)
		runtime.GOMAXPROCS(96)
		if got := tuneProcs(); got != defaultMaxProcs {
			t.Errorf("GOMAXPROCS=%q (ignored by the runtime) on 96 CPUs: tuneProcs %d, want %d", v, got, defaultMaxProcs)
		}
	}
	t.Setenv("GOMAXPROCS", "48")
	runtime.GOMAXPROCS(48) // the runtime read the variable at start
	if got := tuneProcs(); got != 48 {
		t.Errorf("GOMAXPROCS=48 set by the operator became %d", got)
	}
}

// Built as documented (-tags grpcnotrace), vpcnetd links neither gRPC's tracing nor
// html/template, which would make the linker keep every exported method of every reachable type
// (131 MB instead of 52 MB of binary, 60 MiB instead of 36 MiB resident).
func TestBuildLeavesOutTracing(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-tags", buildTag, ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	deps := strings.Fields(string(out))
	for _, p := range []string{"golang.org/x/net/trace", "html/template", "text/template"} {
		if slices.Contains(deps, p) {
			t.Errorf("vpcnetd built with -tags %s links %s", buildTag, p)
		}
	}
}
