package bench

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vpcnet/vpcnet/internal/agentapi"
)

// scaleLatency is EC2-like latency for the calls that grow a pool.
var scaleLatency = map[string]time.Duration{
	"CreateNetworkInterface":   300 * time.Millisecond,
	"AttachNetworkInterface":   time.Second,
	"AssignPrivateIpAddresses": 200 * time.Millisecond,
}

// runScaleOut starts a fresh node's vpcnetd against vpcsim with EC2-like latencies while pods
// wait for it, and measures the time from the agent's start to the first pod address and to
// the last of them, against the cloud latency on the critical path of the calls the agent
// actually made (recorded by a proxy in front of vpcsim).
func runScaleOut(ctx context.Context, r *runner) error {
	pods, itype := 30, "m5.xlarge"
	if r.opts.Short {
		pods = 5
	}
	name := r.name + "s"
	r.teardown(name)
	n, err := startSimNode(ctx, name, itype, r.agentBin, scaleLatency)
	defer func() { _ = n.close() }()
	if err != nil {
		return err
	}
	if err := n.launch(); err != nil {
		return err
	}
	got, err := waitPods(ctx, n, pods, 2*time.Minute)
	if err != nil {
		return err
	}
	first, last := slices.Min(got), slices.Max(got)
	ms, mErr := n.metrics(ctx)
	calls, count := n.recordedCalls(scaleLatency)
	cpFirst, chainFirst := CriticalPath(calls, first)
	cpLast, chainLast := CriticalPath(calls, last)
	ms2 := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	t := &Target{Op: "<", Limit: 1.1}
	ref := "cloud latency on the critical path"
	r.add(
		NewRow("scale-out", "node start → first pod address", "ms", ms2(first), ref, ms2(cpFirst), t),
		NewRow("scale-out", fmt.Sprintf("node start → %d pods", pods), "ms", ms2(last), ref, ms2(cpLast), t),
	)
	agentCount := ""
	if mErr == nil {
		agentCount = fmt.Sprintf("; the agent's own count (vpcnet_ec2_calls_total, EC2 only): %.0f", SumMetric(ms, "vpcnet_ec2_calls_total", func(l map[string]string) bool { return l["action"] != "IMDS" }))
	}
	firstCall := time.Duration(0)
	if len(calls) > 0 {
		firstCall = slices.MinFunc(calls, func(a, b Call) int { return int(a.Start - b.Start) }).Start
	}
	r.note("scale-out: a fresh %s whose vpcnetd starts with %d pods waiting (retrying ADD every 20 ms, the first every 5 ms), vpcsim latencies %s; the agent's first EC2 call came %s after its exec, its CNI config (node ready) %s after; EC2 calls by action, as recorded in front of vpcsim: %s%s. Critical path to the first address (%s): %s; to %d pods (%s): %s.",
		itype, pods, latencies(), firstCall.Round(time.Millisecond), n.ready.Round(time.Millisecond), counts(count), agentCount, first.Round(time.Millisecond), chain(chainFirst), pods, last.Round(time.Millisecond), chain(chainLast))
	return nil
}

// waitPods waits for the agent's CNI config, as kubelet waits for a node to be ready, then asks
// for n addresses at once, retrying each while the agent has none, and returns when each got
// one, measured from the agent's start.
func waitPods(ctx context.Context, n *simNode, count int, timeout time.Duration) ([]time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for !n.confReady() {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("vpcnetd on the scale-out node never got ready; see %s", n.paths.AgentLog())
		case <-time.After(2 * time.Millisecond):
		}
	}
	n.ready = time.Since(n.start)
	conn, err := agentapi.Dial(n.paths.AgentSocket())
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	cl := agentapi.NewAgentClient(conn)
	got := make([]time.Duration, count)
	errs := make([]error, count)
	var wg sync.WaitGroup
	for i := range count {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := &agentapi.AddRequest{Version: agentapi.Version, Key: &agentapi.Key{Network: "vpcnet", ContainerId: fmt.Sprintf("scale%d", i), Ifname: "eth0"},
				PodNamespace: "bench", PodName: fmt.Sprintf("scale-%d", i), Netns: "/run/netns/none"}
			for {
				_, err := cl.Add(ctx, req)
				if err == nil {
					got[i] = time.Since(n.start)
					return
				}
				if c := status.Code(err); c != codes.ResourceExhausted && c != codes.Unavailable {
					errs[i] = err
					return
				}
				select {
				case <-ctx.Done():
					errs[i] = fmt.Errorf("pod %d: no address: %w", i, ctx.Err())
					return
				case <-time.After(retry(i)):
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return got, nil
}

// retry is how long pod i waits between tries: the first pod asks often, so that the first
// address is seen within 5 ms of the agent having it; the others every 20 ms.
func retry(i int) time.Duration {
	if i == 0 {
		return 5 * time.Millisecond
	}
	return 20 * time.Millisecond
}

func latencies() string {
	var parts []string
	for a, d := range scaleLatency {
		parts = append(parts, fmt.Sprintf("%s %s", a, d))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

func counts(m map[string]int) string {
	var parts []string
	for a, c := range m {
		parts = append(parts, fmt.Sprintf("%s×%d", a, c))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

func chain(cs []Call) string {
	if len(cs) == 0 {
		return "none"
	}
	var parts []string
	for _, c := range cs {
		parts = append(parts, fmt.Sprintf("%s %s at +%s", c.Action, c.Latency, c.Start.Round(time.Millisecond)))
	}
	return strings.Join(parts, " → ")
}
