package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/vpcnet/vpcnet/internal/lab"
)

// clockTicks is the kernel's USER_HZ, the unit of /proc/PID/stat times (100 on Linux).
const clockTicks = 100

// runFootprint adds an m5.24xlarge node, measures its vpcnetd's resident memory and CPU before
// and with 250 pods, and the vpcnet-cni binary's size and start time against ptp's.
func runFootprint(ctx context.Context, r *runner) error {
	l, err := r.mainLab(ctx)
	if err != nil {
		return err
	}
	pods, idle, execs := 250, 5*time.Second, 50
	if r.opts.Short {
		pods, idle, execs = 20, time.Second, 10
	}
	node, err := l.client.AddNode(ctx, lab.NodeRequest{InstanceType: "m5.24xlarge"}, nil)
	if err != nil {
		return err
	}
	defer func() { _ = l.client.RemoveNode(context.WithoutCancel(ctx), node.Name, nil) }()
	if err := l.waitFree(ctx, node.Name, 100, 2*time.Minute); err != nil {
		return err
	}
	pid := node.Agent.PID
	rss0, err := rss(pid)
	if err != nil {
		return err
	}
	cpu0, err := cpuShare(ctx, pid, idle)
	if err != nil {
		return err
	}
	rt, err := vpcnetRuntime(l, node)
	if err != nil {
		return err
	}
	before, err := cpuTicks(pid)
	if err != nil {
		return err
	}
	plugin0 := childCPU()
	made, addErr := manyPods(ctx, l, rt, "f", pods, 8)
	defer func() { removePods(context.WithoutCancel(ctx), rt, made, 8) }()
	if addErr != nil {
		return addErr
	}
	plugin1 := childCPU()
	after, err := cpuTicks(pid)
	if err != nil {
		return err
	}
	// The same ADDs with ptp + host-local on the same node: their whole cost is in the plugins.
	ref, err := refRuntime(l, node)
	if err != nil {
		return err
	}
	refMade, refErr := manyPods(ctx, l, ref, "g", pods, 8)
	plugin2 := childCPU()
	removePods(context.WithoutCancel(ctx), ref, refMade, 8)
	if refErr != nil {
		return refErr
	}
	time.Sleep(time.Second)
	rss1, err := rss(pid)
	if err != nil {
		return err
	}
	cpu1, err := cpuShare(ctx, pid, idle)
	if err != nil {
		return err
	}
	agentPerPod := float64(after-before) * 1000 / clockTicks / float64(pods)
	pluginPerPod := float64(plugin1-plugin0) / float64(time.Millisecond) / float64(pods)
	refPerPod := float64(plugin2-plugin1) / float64(time.Millisecond) / float64(pods)

	cniSize, err := fileSize(l.cfg.CNIBin)
	if err != nil {
		return err
	}
	ptp, hl := filepath.Join(RefPluginDir, "ptp"), filepath.Join(RefPluginDir, "host-local")
	refSize, err := fileSize(ptp)
	if err != nil {
		return err
	}
	hlSize, err := fileSize(hl)
	if err != nil {
		return err
	}
	ours, theirs, err := startTimes(ctx, l.cfg.CNIBin, ptp, execs)
	if err != nil {
		return err
	}
	// The agent's Ps (GOMAXPROCS) decide part of its memory (per-P caches, GC workers, threads),
	// so the row names what it ran with, from the Go collector on its /metrics.
	procs, threads, err := agentProcs(ctx, node.NS)
	if err != nil {
		return err
	}
	mib := func(b int64) float64 { return float64(b) / (1 << 20) }
	noPods := "same agent, no pods"
	r.add(
		// Issue 16 item 7: at most 25 MiB with 250 pods.
		NewRow("footprint", fmt.Sprintf("vpcnetd RSS, %d pods, GOMAXPROCS %d", pods, procs), "MiB", mib(rss1), noPods, mib(rss0), &Target{OnValue: true, Op: "<=", Limit: 25}),
		NewRow("footprint", fmt.Sprintf("vpcnetd CPU idle, %d pods", pods), "%", cpu1, noPods, cpu0, nil),
		NewRow("footprint", "CPU per pod ADD, vpcnetd + plugin", "ms", agentPerPod+pluginPerPod, "ptp + host-local", refPerPod, nil),
		NewRow("footprint", "vpcnet-cni binary", "MiB", mib(cniSize), "ptp + host-local", mib(refSize+hlSize), nil),
		NewRow("footprint", "vpcnet-cni start (VERSION)", "ms", Median(ours), "ptp", Median(theirs), nil),
	)
	r.note("footprint: node %s (%s, vpcnetd pid %d, GOMAXPROCS %d, %d OS threads after the pods, from its /metrics); RSS from /proc/PID/status, CPU from /proc/PID/stat over %s idle windows before and after %d pods; CPU per ADD over %d ADDs 8 at a time: vpcnetd %.2f ms (its /proc/PID/stat) + vpcnet-cni %.2f ms (the plugin processes' rusage), against %d ptp + host-local ADDs on the same node; start time is the median of %d execs of CNI_COMMAND=VERSION each, alternating.",
		node.Name, node.InstanceType, pid, procs, threads, idle, pods, pods, agentPerPod, pluginPerPod, pods, execs)
	return nil
}

// agentProcs reads the agent's GOMAXPROCS (go_sched_gomaxprocs_threads) and OS threads
// (go_threads) from its /metrics in the node's namespace; an error if either is missing.
func agentProcs(ctx context.Context, nsName string) (procs, threads int, err error) {
	ms, err := agentMetrics(ctx, nsName)
	if err != nil {
		return 0, 0, err
	}
	return ProcsOf(ms)
}

// ProcsOf finds GOMAXPROCS (go_sched_gomaxprocs_threads) and the OS threads (go_threads) in a
// Go program's metrics; an error names the one missing.
func ProcsOf(ms []Metric) (procs, threads int, err error) {
	found := map[string]float64{}
	for _, m := range ms {
		if m.Name == "go_sched_gomaxprocs_threads" || m.Name == "go_threads" {
			found[m.Name] = m.Value
		}
	}
	for _, n := range []string{"go_sched_gomaxprocs_threads", "go_threads"} {
		if _, ok := found[n]; !ok {
			return 0, 0, fmt.Errorf("vpcnetd's /metrics has no %s", n)
		}
	}
	return int(found["go_sched_gomaxprocs_threads"]), int(found["go_threads"]), nil
}

// manyPods adds n pods with conc ADDs in flight and returns those it made.
func manyPods(ctx context.Context, l *benchLab, rt *cniNet, prefix string, n, conc int) ([]*benchPod, error) {
	var (
		mu   sync.Mutex
		made []*benchPod
		errs []error
		wg   sync.WaitGroup
		sem  = make(chan struct{}, conc)
	)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			p, err := newPod(l.name, fmt.Sprintf("%s%d", prefix, i))
			if err == nil {
				mu.Lock()
				made = append(made, p)
				mu.Unlock()
				_, err = rt.addRetry(ctx, p, 20*time.Millisecond)
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return made, errors.Join(errs...)
}

// removePods runs DEL for the pods, conc at a time, and removes their namespaces.
func removePods(ctx context.Context, rt *cniNet, pods []*benchPod, conc int) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, conc)
	for _, p := range pods {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			_ = rt.del(ctx, p)
			_ = p.remove()
		}()
	}
	wg.Wait()
}

func rss(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("vpcnetd pid %d: %w", pid, err)
	}
	return ParseVmRSS(string(b))
}

func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("vpcnetd pid %d: %w", pid, err)
	}
	return ParseCPUTicks(string(b))
}

// cpuShare is the share of one CPU the process used over window, in percent.
func cpuShare(ctx context.Context, pid int, window time.Duration) (float64, error) {
	t0, err := cpuTicks(pid)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(window):
	}
	t1, err := cpuTicks(pid)
	if err != nil {
		return 0, err
	}
	return float64(t1-t0) / clockTicks / time.Since(start).Seconds() * 100, nil
}

func fileSize(p string) (int64, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// startTimes execs each plugin n times with CNI_COMMAND=VERSION, alternating, and returns the
// wall times in milliseconds.
func startTimes(ctx context.Context, ours, ref string, n int) ([]float64, []float64, error) {
	one := func(bin string) (time.Duration, error) {
		cmd := exec.CommandContext(ctx, bin)
		cmd.Env = []string{"CNI_COMMAND=VERSION", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
		cmd.Stdin = bytes.NewReader([]byte(`{"cniVersion":"1.0.0"}`))
		t := time.Now()
		out, err := cmd.Output()
		d := time.Since(t)
		if err != nil || !bytes.Contains(out, []byte("supportedVersions")) {
			return 0, fmt.Errorf("%s VERSION: %v: %s", bin, err, out)
		}
		return d, nil
	}
	var a, b []time.Duration
	for range n {
		d, err := one(ours)
		if err != nil {
			return nil, nil, err
		}
		a = append(a, d)
		if d, err = one(ref); err != nil {
			return nil, nil, err
		}
		b = append(b, d)
	}
	return Millis(a), Millis(b), nil
}

// childCPU is the CPU time used by this process's finished children (the plugins libcni ran).
func childCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
