package main

import (
	"fmt"
	"log/slog"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
)

// The agent runs on every node for the node's life, so its resident memory is paid once per
// node (issue 16 item 7: at most 25 MiB with 250 pods). Its live heap is a few MiB (the pool,
// the store, the gRPC and HTTP servers); the Go defaults let the heap grow to twice that between
// collections. Unless the operator sets them (the Go runtime reads both at start):
const (
	// defaultGCPercent is GOGC: the heap may grow by half its live size before a collection.
	// The agent allocates little once running (an ADD is a few KiB), so collections stay rare.
	defaultGCPercent = 50
	// defaultMemoryLimit is GOMEMLIMIT, a soft limit on the Go runtime's memory (heap, stacks,
	// runtime structures; not the binary's mapped code): above it the collector runs more
	// often, never beyond half the CPU (the runtime's own cap), so it cannot stall pods' ADDs.
	defaultMemoryLimit = 16 << 20
	// defaultMaxProcs caps GOMAXPROCS. The Go runtime sets it to the node's CPU count (96 on an
	// m5.24xlarge: Go 1.25+ lowers it to a container's CPU limit, never below 2, and the
	// DaemonSet sets no limit), and each P costs memory whether the agent uses it or not: its
	// allocation caches, a GC mark worker and its stack, the threads that run them. At 96 the
	// agent held 27.0 MiB with 250 pods instead of 23.2-23.4 (BENCHMARKS.md, "GOMAXPROCS on the node
	// type the target names"). The agent needs little CPU: an ADD picks its address under the
	// agent's one lock, about 3 ms of its CPU a pod, and an fsync waits without a P.
	defaultMaxProcs = 2
)

// The Go runtime's variables vpcnetd gives its own defaults to. The runtime reads them before
// main; vpcnetd checks them as the runtime parses them (checkRuntime), so a value the runtime
// would silently ignore stops the start instead of running with the runtime's defaults.
const (
	envGOMAXPROCS = "GOMAXPROCS"
	envGOGC       = "GOGC"
	envGOMEMLIMIT = "GOMEMLIMIT"
)

// runtimeVariables documents them for --help, with vpcnetd's defaults.
var runtimeVariables = []envDoc{
	{envGOMAXPROCS, fmt.Sprintf("the CPUs, at most %d", defaultMaxProcs), "Ps running Go code: a whole number above 0; unset, vpcnetd caps the runtime's count (the node's CPUs, or the container's CPU limit) at " + strconv.Itoa(defaultMaxProcs)},
	{envGOGC, strconv.Itoa(defaultGCPercent), "heap growth, in percent of the live heap, before a collection: a whole number (negative or off: no collection until the memory limit)"},
	{envGOMEMLIMIT, fmt.Sprintf("%dMiB", defaultMemoryLimit>>20), "soft limit on the Go runtime's memory: bytes, or a whole number with B, KiB, MiB, GiB or TiB, or off; a malformed value stops the Go runtime itself before vpcnetd runs (fatal error, exit 2)"},
}

// checkRuntime checks the Go runtime's variables in the environment (getenv) exactly as the
// runtime parses them (runtime.schedinit, readGOGC, readGOMEMLIMIT; empty means unset): a
// GOMAXPROCS other than a 32-bit integer above 0, a GOGC other than a 32-bit integer or "off",
// a GOMEMLIMIT other than a byte count or "off" is an error in the settings' one-line form.
func checkRuntime(getenv func(string) string) error {
	if v := getenv(envGOMAXPROCS); v != "" && !validMaxProcs(v) {
		return fmt.Errorf("%s: %q is not a whole number above 0 (the Go runtime would ignore it and run one P per CPU)", envGOMAXPROCS, v)
	}
	if v := getenv(envGOGC); v != "" && v != "off" {
		if _, err := strconv.ParseInt(v, 10, 32); err != nil {
			return fmt.Errorf("%s: %q is not a whole number or off (the Go runtime would ignore it and collect at 100)", envGOGC, v)
		}
	}
	if v := getenv(envGOMEMLIMIT); v != "" && v != "off" {
		if _, ok := parseByteCount(v); !ok {
			return fmt.Errorf("%s: %q is not a byte count such as 16MiB or 16777216, or off", envGOMEMLIMIT, v)
		}
	}
	return nil
}

// validMaxProcs reports whether the runtime takes v as GOMAXPROCS.
func validMaxProcs(v string) bool {
	n, err := strconv.ParseInt(v, 10, 32)
	return err == nil && n > 0
}

// parseByteCount parses a GOMEMLIMIT value as the runtime does: a non-negative decimal int64,
// optionally followed by B, KiB, MiB, GiB or TiB, the product fitting an int64.
func parseByteCount(s string) (int64, bool) {
	unit := int64(1)
	for i, suffix := range []string{"TiB", "GiB", "MiB", "KiB", "B"} {
		if strings.HasSuffix(s, suffix) {
			s = strings.TrimSuffix(s, suffix)
			if suffix != "B" {
				unit = 1 << (10 * (4 - i))
			}
			break
		}
	}
	if s == "" || s[len(s)-1] < '0' || s[len(s)-1] > '9' {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/unit {
		return 0, false
	}
	return n * unit, true
}

// tuneMemory applies the defaults above where GOGC and GOMEMLIMIT are unset.
func tuneMemory() {
	if os.Getenv(envGOGC) == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	if os.Getenv(envGOMEMLIMIT) == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
}

// tuneProcs caps GOMAXPROCS at defaultMaxProcs unless the GOMAXPROCS environment variable holds
// a value the runtime took (main refuses any other before it gets here), and returns the value
// the agent runs with. It only ever lowers it: a node with fewer CPUs keeps the runtime's count,
// and then (no call to runtime.GOMAXPROCS) the runtime still follows a container CPU limit that
// changes.
func tuneProcs() int {
	if !validMaxProcs(os.Getenv(envGOMAXPROCS)) && runtime.GOMAXPROCS(0) > defaultMaxProcs {
		runtime.GOMAXPROCS(defaultMaxProcs)
	}
	return runtime.GOMAXPROCS(0)
}

// buildTag is the build tag vpcnetd is meant to be built with: it leaves gRPC's
// golang.org/x/net/trace out, and with it html/template, whose use of reflection makes the
// linker keep every exported method of every reachable type (all of the EC2 client's
// operations): 52 MB instead of 131 MB of binary, 38 MiB instead of 60 MiB resident.
const buildTag = "grpcnotrace"

// builtWithTag reports whether this binary was built with -tags buildTag.
func builtWithTag() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-tags" && slices.Contains(strings.Split(s.Value, ","), buildTag) {
			return true
		}
	}
	return false
}

// warnBuild says so when the binary was built without buildTag.
func warnBuild(log *slog.Logger) {
	if !builtWithTag() {
		log.Warn("vpcnetd was built without -tags " + buildTag + ": it links gRPC's tracing and is about 2.5 times larger in binary and 1.6 times in resident memory; build it with go build -tags " + buildTag)
	}
}
