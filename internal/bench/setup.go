package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/vpcnet/vpcnet/internal/lab"
)

// runSetup measures sequential ADD+DEL latency of vpcnet-cni with a warm pool against ptp +
// host-local on the same node, both through libcni from the node's namespace, alternating so
// that drift hits both alike. Pod namespaces are made before and removed after each ADD+DEL,
// outside the timed part, the same for both.
func runSetup(ctx context.Context, r *runner) error {
	l, nodes, err := r.mainNodes(ctx)
	if err != nil {
		return err
	}
	node := nodes[0]
	ours, ref, err := bothPlugins(l, node)
	if err != nil {
		return err
	}
	iters, warmup := 150, 3
	if r.opts.Short {
		iters, warmup = 5, 1
	}
	if err := l.waitFree(ctx, node.Name, 10, time.Minute); err != nil {
		return err
	}
	rpc0, err := rpcTimes(ctx, node.NS)
	if err != nil {
		return err
	}
	type sample struct{ add, del []time.Duration }
	got := map[*cniNet]*sample{ours: {}, ref: {}}
	retried := 0
	for i := range warmup + iters {
		order := []*cniNet{ours, ref}
		if i%2 == 1 {
			order = []*cniNet{ref, ours}
		}
		for _, rt := range order {
			p, err := newPod(l.name, fmt.Sprintf("s%d%s", i, tag(rt, ours)))
			if err != nil {
				return err
			}
			t0 := time.Now()
			tries, err := rt.addRetry(ctx, p, 10*time.Millisecond)
			t1 := time.Now()
			if err == nil {
				err = rt.del(ctx, p)
			}
			t2 := time.Now()
			_ = p.remove()
			if err != nil {
				return fmt.Errorf("%s: %w", rt.name, err)
			}
			if tries > 1 {
				retried++
			}
			if i >= warmup {
				got[rt].add = append(got[rt].add, t1.Sub(t0))
				got[rt].del = append(got[rt].del, t2.Sub(t1))
			}
		}
	}
	rpc1, err := rpcTimes(ctx, node.NS)
	if err != nil {
		return err
	}
	sum := func(s *sample) []float64 {
		out := Millis(s.add)
		for i, d := range Millis(s.del) {
			out[i] += d
		}
		return out
	}
	o, f := sum(got[ours]), sum(got[ref])
	t := &Target{Op: "<=", Limit: 1.3}
	r.add(
		NewRow("setup", "ADD+DEL median", "ms", Median(o), ref.name, Median(f), t),
		NewRow("setup", "ADD+DEL p99", "ms", Percentile(o, 99), ref.name, Percentile(f, 99), t),
		NewRow("setup", "ADD median", "ms", Median(Millis(got[ours].add)), ref.name, Median(Millis(got[ref].add)), nil),
		NewRow("setup", "DEL median", "ms", Median(Millis(got[ours].del)), ref.name, Median(Millis(got[ref].del)), nil),
	)
	r.note("setup: %d sequential ADD+DEL pairs per plugin on %s (%s, warm pool), alternating vpcnet-cni and ptp + host-local through libcni from the node's namespace; %d vpcnet ADD(s) had to retry. Inside vpcnetd (vpcnet_cni_request_duration_seconds) an Add took %.2f ms and a Del %.2f ms on average; the rest of vpcnet-cni's time is its exec and the pod's data plane.",
		iters, node.Name, node.InstanceType, retried, rpc1.mean("Add", rpc0), rpc1.mean("Del", rpc0))
	return nil
}

// tag is a short mark for pod names: v for vpcnet-cni, r for the reference.
func tag(rt, ours *cniNet) string {
	if rt == ours {
		return "v"
	}
	return "r"
}

// mainNodes opens the main lab and lists its nodes.
func (r *runner) mainNodes(ctx context.Context) (*benchLab, []lab.NodeInfo, error) {
	l, err := r.mainLab(ctx)
	if err != nil {
		return nil, nil, err
	}
	nodes, err := l.nodes(ctx)
	return l, nodes, err
}

// bothPlugins makes the two plugins setup and burst compare on node: vpcnet-cni as the
// node's vpcnetd configured it (ours) and ptp + host-local (ref).
func bothPlugins(l *benchLab, node lab.NodeInfo) (ours, ref *cniNet, err error) {
	if ours, err = vpcnetRuntime(l, node); err != nil {
		return nil, nil, err
	}
	if ref, err = refRuntime(l, node); err != nil {
		return nil, nil, err
	}
	return ours, ref, nil
}

// rpcStats is the agent's request-duration histogram: sum (seconds) and count by operation.
type rpcStats struct{ sum, count map[string]float64 }

func rpcTimes(ctx context.Context, nodeNS string) (rpcStats, error) {
	ms, err := agentMetrics(ctx, nodeNS)
	if err != nil {
		return rpcStats{}, err
	}
	st := rpcStats{sum: map[string]float64{}, count: map[string]float64{}}
	for _, m := range ms {
		switch m.Name {
		case "vpcnet_cni_request_duration_seconds_sum":
			st.sum[m.Labels["op"]] += m.Value
		case "vpcnet_cni_request_duration_seconds_count":
			st.count[m.Labels["op"]] += m.Value
		}
	}
	return st, nil
}

// mean is the average duration in ms of op's requests since before.
func (s rpcStats) mean(op string, before rpcStats) float64 {
	return 1000 * Ratio(s.sum[op]-before.sum[op], s.count[op]-before.count[op])
}
