package k8s

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/vpcnet/vpcnet/internal/testenv"
)

// TestCgroupRemoveKillsEverythingAndRemovesTheGroups puts a process tree into a node cgroup
// (as node-run does for itself, so containerd, kubelet and pods inherit it), then removes the
// group: every process must be gone and no hierarchy may keep the group.
func TestCgroupRemoveKillsEverythingAndRemovesTheGroups(t *testing.T) {
	testenv.RequireNetns(t)
	name := fmt.Sprintf("vpcnet-t%d-cg", os.Getpid())
	t.Cleanup(func() { _ = removeCgroup(name, 10*time.Second) })
	// sh forks a child that outlives it: the kind of process only the cgroup still knows.
	cmd := exec.Command("sh", "-c", "read go; sleep 300 & sleep 300")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait() }()
	if err := enterCgroup(name, cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if _, err := stdin.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	// The children forked after the move are in the group too.
	deadline := time.Now().Add(10 * time.Second)
	for len(cgroupPIDs(name)) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("cgroup %s holds %v, want sh and its two sleeps", name, cgroupPIDs(name))
		}
		time.Sleep(20 * time.Millisecond)
	}
	pids := cgroupPIDs(name)
	if err := removeCgroup(name, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	for _, p := range pids {
		if alive(p) {
			t.Errorf("pid %d still alive", p)
		}
	}
	if CgroupExists(name) {
		t.Errorf("cgroup %s still exists", name)
	}
	if err := removeCgroup("../x", time.Second); err == nil {
		t.Error("removeCgroup accepted a name climbing out of the hierarchy")
	}
}
