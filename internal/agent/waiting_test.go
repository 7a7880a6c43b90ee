package agent

import (
	"testing"
	"time"
)

// A pod whose ADD is retried (kubelet: a new sandbox each try) is one pod waiting for an address,
// not one more per try; a pod served or silent for waitWindow no longer waits. Counting tries
// made a node in an exhausted subnet plan for 80 and more waiting pods after minutes of retries.
func TestWaitingCountsPodsNotTries(t *testing.T) {
	a := &Agent{}
	now := time.Unix(1_700_000_000, 0)
	for i := range 50 {
		a.missLocked("default/web-0", now.Add(time.Duration(i)*250*time.Millisecond))
	}
	if got := a.waitingLocked(now.Add(13 * time.Second)); got != 1 {
		t.Fatalf("one pod retried 50 times: %d waiting, want 1", got)
	}
	a.missLocked("default/web-1", now.Add(13*time.Second))
	a.missLocked("c0ffee", now.Add(13*time.Second)) // outside Kubernetes: by container ID
	if got := a.waitingLocked(now.Add(13 * time.Second)); got != 3 {
		t.Fatalf("three pods: %d waiting, want 3", got)
	}
	delete(a.st.missed, "default/web-1") // served
	if got := a.waitingLocked(now.Add(14 * time.Second)); got != 2 {
		t.Fatalf("one served: %d waiting, want 2", got)
	}
	if got := a.waitingLocked(now.Add(13*time.Second + waitWindow)); got != 0 {
		t.Fatalf("no try for waitWindow: %d waiting, want 0", got)
	}
}
