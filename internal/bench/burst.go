package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// runBurst starts 100 pods at once on one node (warm pool filled) with vpcnet-cni and with ptp +
// host-local, through libcni from the node's namespace, and measures the time until all are
// ready and each pod's ADD latency. Namespaces are made before the clock starts.
func runBurst(ctx context.Context, r *runner) error {
	l, nodes, err := r.mainNodes(ctx)
	if err != nil {
		return err
	}
	node := nodes[len(nodes)-1]
	ours, ref, err := bothPlugins(l, node)
	if err != nil {
		return err
	}
	pods, rounds := 100, 2
	if r.opts.Short {
		pods, rounds = 10, 1
	}
	var all = map[*cniNet][]float64{}
	var lat = map[*cniNet][]float64{}
	retried := 0
	for round := range rounds {
		for _, rt := range []*cniNet{ours, ref} {
			if rt == ours {
				if err := l.waitFree(ctx, node.Name, pods, 2*time.Minute); err != nil {
					return err
				}
			}
			total, each, tries, err := burstOnce(ctx, l, rt, fmt.Sprintf("b%d%s", round, tag(rt, ours)), pods)
			if err != nil {
				return err
			}
			retried += tries
			all[rt] = append(all[rt], float64(total)/float64(time.Millisecond))
			lat[rt] = append(lat[rt], Millis(each)...)
		}
	}
	t := &Target{Op: "<=", Limit: 1.3}
	fig := fmt.Sprintf("%d ADDs: all ready", pods)
	r.add(
		NewRow("burst", fig, "ms", Median(all[ours]), ref.name, Median(all[ref]), t),
		NewRow("burst", "per-pod ADD p99", "ms", Percentile(lat[ours], 99), ref.name, Percentile(lat[ref], 99), t),
	)
	r.note("burst: %d concurrent ADDs on %s (%s, WARM_IP_TARGET=110), %d round(s) per plugin, median of rounds; %d vpcnet ADD(s) had to retry for want of a free address.",
		pods, node.Name, node.InstanceType, rounds, retried)
	return nil
}

// burstOnce makes n pod namespaces, then runs n ADDs at once and returns the time until the
// last was ready, each ADD's latency and how many ADDs had to retry. It removes the pods.
func burstOnce(ctx context.Context, l *benchLab, rt *cniNet, prefix string, n int) (time.Duration, []time.Duration, int, error) {
	pods := make([]*benchPod, 0, n)
	defer func() {
		var wg sync.WaitGroup
		for _, p := range pods {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = rt.del(context.WithoutCancel(ctx), p)
				_ = p.remove()
			}()
		}
		wg.Wait()
	}()
	for i := range n {
		p, err := newPod(l.name, fmt.Sprintf("%s%d", prefix, i))
		if err != nil {
			return 0, nil, 0, err
		}
		pods = append(pods, p)
	}
	each := make([]time.Duration, n)
	errs := make([]error, n)
	retried := make([]bool, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i, p := range pods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tries, err := rt.addRetry(ctx, p, 10*time.Millisecond)
			each[i], errs[i], retried[i] = time.Since(start), err, tries > 1
		}()
	}
	wg.Wait()
	total := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return 0, nil, 0, fmt.Errorf("%s: %w", rt.name, err)
	}
	tries := 0
	for _, x := range retried {
		if x {
			tries++
		}
	}
	return total, each, tries, nil
}
