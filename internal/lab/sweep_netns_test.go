package lab

import (
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/vpcnet/vpcnet/internal/netnsx"
	"github.com/vpcnet/vpcnet/internal/testenv"
)

// TestNamespacePIDs: a process started in a lab-made namespace with no lab environment (as
// a DaemonSet's vpcnetd under containerd) is found by its namespace, and Sweep's rule stops
// it; this test's own process (in the machine's namespace) is never listed.
func TestNamespacePIDs(t *testing.T) {
	testenv.RequireNetns(t)
	name := testenv.NSName("nspids")
	h, err := netnsx.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	h.Close()
	t.Cleanup(func() { _ = netnsx.Delete(name) })
	if got := NamespacePIDs(name); len(got) != 0 {
		t.Fatalf("fresh namespace %s: pids %v, want none", name, got)
	}
	cmd := exec.Command("sleep", "300")
	cmd.Env = []string{}
	if err := StartIn(name, cmd); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	got := NamespacePIDs(name)
	if !slices.Equal(got, []int{cmd.Process.Pid}) {
		t.Fatalf("NamespacePIDs(%s) = %v, want [%d]", name, got, cmd.Process.Pid)
	}
	for _, pid := range got {
		if err := Terminate(pid, 3*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("the process in the namespace still runs after Terminate")
	}
	if got := NamespacePIDs(name); len(got) != 0 {
		t.Fatalf("after Terminate: %v", got)
	}
	if got := NamespacePIDs("vpcnet-no-such-namespace"); got != nil {
		t.Fatalf("missing namespace: %v", got)
	}
}
