package cni_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/vpcnet/vpcnet/internal/testenv"
)

// Built once per test run: the real vpcnet-cni and vpcnetd binaries, and a CNI bin dir holding
// vpcnet-cni plus the reference plugins from /usr/lib/cni.
var (
	binDir     string // CNI_PATH for libcni
	agentBin   string
	agentErr   error // why vpcnetd could not be built
	pluginErr  error
	refPlugins = []string{"portmap", "bandwidth", "tuning", "ptp", "host-local", "loopback"}
)

const refDir = "/usr/lib/cni"

func TestMain(m *testing.M) {
	code := func() int {
		if os.Geteuid() != 0 {
			return m.Run() // namespace tests skip (or fail under VPCNET_REQUIRE_NETNS=1)
		}
		dir, err := os.MkdirTemp("", "vpcnet-cni-test-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		binDir = filepath.Join(dir, "bin")
		_ = os.MkdirAll(binDir, 0o755)
		root, err := testenv.ModuleRoot()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		pluginErr = goBuild(root, filepath.Join(binDir, "vpcnet-cni"), "./cmd/vpcnet-cni")
		agentBin = filepath.Join(dir, "vpcnetd")
		agentErr = goBuild(root, agentBin, "./cmd/vpcnetd")
		for _, p := range refPlugins {
			_ = os.Symlink(filepath.Join(refDir, p), filepath.Join(binDir, p))
		}
		return m.Run()
	}()
	os.Exit(code)
}

func goBuild(root, out, pkg string) error {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return nil
}

// needPlugin gates tests on root and a built plugin.
func needPlugin(t testing.TB) {
	t.Helper()
	testenv.RequireNetns(t)
	if pluginErr != nil {
		t.Fatal(pluginErr)
	}
}

// needAgent gates tests on the real node agent binary.
func needAgent(t testing.TB) {
	t.Helper()
	needPlugin(t)
	if agentErr != nil {
		if testenv.Strict() {
			t.Fatalf("the node agent is needed: %v", agentErr)
		}
		t.Skipf("the node agent is needed: %v", agentErr)
	}
}

// needRef gates tests on the reference plugins (Debian containernetworking-plugins).
func needRef(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := os.Stat(filepath.Join(refDir, n)); err != nil {
			if testenv.Strict() {
				t.Fatalf("reference plugin %s missing: install containernetworking-plugins", n)
			}
			t.Skipf("reference plugin %s missing: install containernetworking-plugins", n)
		}
	}
}
