package bench

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// markRunning marks pod name Running as the watch's goroutine does: under the lock, waking waiters.
func (pw *podWatch) markRunning(name string) {
	pw.mu.Lock()
	pw.running[name] = time.Now()
	close(pw.changed)
	pw.changed = make(chan struct{})
	pw.mu.Unlock()
}

func newTestWatch() *podWatch {
	return &podWatch{running: map[string]time.Time{}, changed: make(chan struct{}), done: make(chan struct{})}
}

// The one wait both k8s flows use: the churn's per-pod waitRunning and the scale-out's "all n
// Running" wake on each Running pod and end on the watch's error, its close or ctx.
func TestPodWatchWaitFor(t *testing.T) {
	pw := newTestWatch()
	all3 := func() (bool, string) { return len(pw.running) == 3, "not all 3" }
	errc := make(chan error, 2)
	go func() { errc <- pw.waitFor(context.Background(), all3) }()
	go func() { errc <- pw.waitRunning(context.Background(), "b") }()
	for _, p := range []string{"a", "b", "c"} {
		pw.markRunning(p)
	}
	for range 2 {
		select {
		case err := <-errc:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("waitFor did not return once its condition held")
		}
	}

	// ctx ends: the error names what was missing.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err := pw.waitRunning(ctx, "d")
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "pod d not Running") {
		t.Errorf("ctx ended: %v", err)
	}

	// The watch closes: nothing more will come.
	close(pw.done)
	if err := pw.waitRunning(context.Background(), "d"); err == nil || !strings.Contains(err.Error(), "pod watch closed: pod d not Running") {
		t.Errorf("watch closed: %v", err)
	}
	if err := pw.waitRunning(context.Background(), "a"); err != nil {
		t.Errorf("a closed watch that saw the pod Running: %v", err)
	}

	// The watch failed.
	pw = newTestWatch()
	pw.err = errors.New("410 Gone")
	if err := pw.waitRunning(context.Background(), "a"); err == nil || !strings.Contains(err.Error(), "pod watch: 410 Gone (pod a not Running)") {
		t.Errorf("watch error: %v", err)
	}
}
