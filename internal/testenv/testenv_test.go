package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestSweepBuildsRemovesOnlyDeadOwners: a build directory whose test process has exited goes; one
// whose process still runs (here, a sleeping child) stays.
func TestSweepBuildsRemovesOnlyDeadOwners(t *testing.T) {
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	alive := exec.Command("sleep", "300")
	if err := alive.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = alive.Process.Kill(); _ = alive.Wait() })

	mk := func(pid int) string {
		d, err := os.MkdirTemp("", fmt.Sprintf("%s%d-", buildPrefix, pid))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "vpcnet"), []byte("x"), 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(d) })
		return d
	}
	deadDir, liveDir := mk(gone.Process.Pid), mk(alive.Process.Pid)
	sweepBuilds()
	if _, err := os.Stat(deadDir); !os.IsNotExist(err) {
		t.Errorf("build directory of exited pid %d still there (stat: %v)", gone.Process.Pid, err)
	}
	if _, err := os.Stat(liveDir); err != nil {
		t.Errorf("build directory of running pid %d removed: %v", alive.Process.Pid, err)
	}
}
