package main

import (
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
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

// tuneMemory applies the defaults above where GOGC and GOMEMLIMIT are unset.
func tuneMemory() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
}

// tuneProcs caps GOMAXPROCS at defaultMaxProcs where the GOMAXPROCS environment variable is
// unset, and returns the value the agent runs with. It only ever lowers it: a node with fewer
// CPUs keeps the runtime's count, and then (no call to runtime.GOMAXPROCS) the runtime still
// follows a container CPU limit that changes.
func tuneProcs() int {
	if os.Getenv("GOMAXPROCS") == "" && runtime.GOMAXPROCS(0) > defaultMaxProcs {
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
