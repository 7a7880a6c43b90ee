// Package testenv holds what tests share: the root/namespace gate, named test namespaces that
// are always removed, the path of the shared test data, and the project's binaries built once.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vpcnet/vpcnet/internal/netnsx"
)

// EnvRequireNetns makes a test that would skip for want of root or namespaces fail instead (CI).
const EnvRequireNetns = "VPCNET_REQUIRE_NETNS"

// Strict reports whether skips for missing capabilities or data are failures (CI).
func Strict() bool { return os.Getenv(EnvRequireNetns) == "1" }

// skipOrFail skips the test with the reason, or fails it in strict mode.
func skipOrFail(t testing.TB, reason string) {
	t.Helper()
	if Strict() {
		t.Fatalf("%s (and %s=1 forbids skipping)", reason, EnvRequireNetns)
	}
	t.Skip(reason)
}

// RequireNetns skips the test unless it runs as root able to create network namespaces.
func RequireNetns(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		skipOrFail(t, "needs root to create network namespaces")
	}
	sweepOnce()
}

// SharedData returns the path of a file in ../shared/data beside the repository, skipping the
// test (failing in strict mode) when it is not there.
func SharedData(t testing.TB, name string) string {
	t.Helper()
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, "..", "shared", "data", name)
	if _, err := os.Stat(p); err != nil {
		skipOrFail(t, fmt.Sprintf("shared test data %s not found", p))
	}
	return p
}

// ModuleRoot returns the directory holding go.mod, found from the working directory up.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

// nsPrefix starts the name of every namespace a test makes: vpcnet-t<pid>-<seq>.
const nsPrefix = "vpcnet-t"

var nsSeq atomic.Int64

// NewNS creates a uniquely named network namespace that is removed when the test ends.
// Namespaces left by test processes that died are swept first.
func NewNS(t testing.TB) ns.NetNS {
	t.Helper()
	RequireNetns(t)
	name := NSName("")
	h, err := netnsx.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.Close()
		if err := netnsx.Delete(name); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return h
}

// NSName returns a fresh namespace name owned by this test process; tag is added for reading.
func NSName(tag string) string {
	n := fmt.Sprintf("%s%d-%d", nsPrefix, os.Getpid(), nsSeq.Add(1))
	if tag != "" {
		n += "-" + tag
	}
	return n
}

var swept atomic.Bool

// sweepOnce removes test namespaces whose owning process is gone (a test run that was killed).
func sweepOnce() {
	if !swept.CompareAndSwap(false, true) {
		return
	}
	names, _ := netnsx.List(nsPrefix)
	for _, n := range names {
		if ownerGone(strings.TrimPrefix(n, nsPrefix)) {
			_ = netnsx.Delete(n)
		}
	}
}

// ownerGone reports whether name, with its prefix already removed ("<pid>-<rest>"), belongs to
// another test process that has exited; a name without a pid is never taken for a dead one's.
func ownerGone(name string) bool {
	pidStr, _, ok := strings.Cut(name, "-")
	pid, err := strconv.Atoi(pidStr)
	return ok && err == nil && pid != os.Getpid() && !processAlive(pid)
}

func processAlive(pid int) bool {
	return syscall.Kill(pid, 0) == nil
}

// built holds the binaries CLI builds, once per test process.
var built struct {
	once sync.Once
	dir  string
	err  error
}

// buildPrefix names CLI's build directories below the system's temporary directory:
// buildPrefix + the owning test process's pid + "-" + a random suffix. A test process cannot
// remove its own directory (a package's tests have no common end without a TestMain), so the
// next CLI call on the machine removes those whose process is gone (about 200 MB each; a
// machine running the suite a few hundred times otherwise fills its disk).
const buildPrefix = "vpcnet-test-bin-"

// sweepBuilds removes CLI build directories whose owning test process is gone.
func sweepBuilds() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), buildPrefix+"*"))
	for _, d := range dirs {
		if ownerGone(strings.TrimPrefix(filepath.Base(d), buildPrefix)) {
			_ = os.RemoveAll(d)
		}
	}
}

// CLI builds vpcnet, vpcnetd and vpcnet-cni from the module into one directory, once per test
// process (the lab finds its agent and plugin beside the CLI), and returns the vpcnet path. The
// directory outlives the process; the next test process's CLI removes it (sweepBuilds).
func CLI(t testing.TB) string {
	t.Helper()
	built.once.Do(func() {
		root, err := ModuleRoot()
		if err != nil {
			built.err = err
			return
		}
		sweepBuilds()
		if built.dir, built.err = os.MkdirTemp("", fmt.Sprintf("%s%d-", buildPrefix, os.Getpid())); built.err != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", built.dir+"/", "./cmd/vpcnet", "./cmd/vpcnetd", "./cmd/vpcnet-cni")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			built.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return filepath.Join(built.dir, "vpcnet")
}
